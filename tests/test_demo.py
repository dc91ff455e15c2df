"""agt.demo: the scripted session covers every kind of call the README promises."""

from agt.decision import Effect
from agt.demo import SCRIPT, run_demo


def test_demo_covers_harmless_destructive_budget_and_approval(root):
    rows = run_demo(("yaml", "cedar"), root=root)
    reasons = {r for row in rows for r in row.decisions["yaml"].rule_ids}
    assert {"default", "block-destructive-patterns", "token-budget", "email-approval"} <= reasons


def test_demo_engines_agree_on_every_step(root):
    assert all(row.agree for row in run_demo(("yaml", "cedar"), root=root))


def test_demo_has_every_effect(root):
    effects = {row.decisions["cedar"].effect for row in run_demo(("cedar",), root=root)}
    assert effects == set(Effect)


def test_script_steps_build_valid_actions():
    assert all(step.action().action.tool == step.tool for step in SCRIPT)
