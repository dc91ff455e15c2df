"""AGT's conflict strategies in the yaml engine (docs/agt-compatibility.md, "Conflict strategies")."""

from __future__ import annotations

from pathlib import Path

import pytest

from agt.action import from_agt_context
from agt.engines.yaml import YamlEngine
from agt.engines.yaml_policy import load_policy
from agt.errors import PolicyLoadError

RULES = """rules:
  - {name: low-deny, condition: "tool_name == 'x'", action: deny, priority: 1}
  - {name: mid-approval, condition: "tool_name == 'x'", action: require_approval, approvers: [lead], priority: 5}
  - {name: high-allow, condition: "tool_name == 'x'", action: allow, priority: 10}
  - {name: high-audit, condition: "tool_name == 'x'", action: audit, priority: 99}
"""


def engine(tmp_path: Path, strategy: str | None, rules: str = RULES, extra: str = "") -> YamlEngine:
    head = "apiVersion: governance.toolkit/v1\nname: t\ndefault_action: deny\n"
    if strategy:
        head += f"conflict_strategy: {strategy}\n"
    p = tmp_path / "p.yaml"
    p.write_text(head + extra + rules, "utf-8")
    return YamlEngine(p)


def decide(e: YamlEngine, **ctx):
    d = e.evaluate(from_agt_context({"tool_name": "x", **ctx}))
    return d.effect.value, d.rule_ids


def test_default_strategy_is_deny_overrides(tmp_path):
    assert decide(engine(tmp_path, None)) == ("deny", ("low-deny",))


def test_priority_first_match_takes_the_highest_deciding_rule(tmp_path):
    assert decide(engine(tmp_path, "priority_first_match")) == ("allow", ("high-allow",))


def test_advisory_rule_never_wins_first_match_but_is_noted(tmp_path):
    d = engine(tmp_path, "priority_first_match").evaluate(from_agt_context({"tool_name": "x"}))
    assert tuple(n.rule_id for n in d.notes) == ("high-audit",)


def test_priority_tie_goes_to_the_rule_written_first(tmp_path):
    rules = """rules:
  - {name: first, condition: "tool_name == 'x'", action: deny, priority: 3}
  - {name: second, condition: "tool_name == 'x'", action: allow, priority: 3}
"""
    assert decide(engine(tmp_path, "priority_first_match", rules)) == ("deny", ("first",))


def test_allow_overrides_takes_the_highest_allow(tmp_path):
    assert decide(engine(tmp_path, "allow_overrides")) == ("allow", ("high-allow",))


def test_allow_overrides_without_an_allow_takes_the_highest_deciding_rule(tmp_path):
    rules = RULES.replace("action: allow, priority: 10", "action: deny, priority: 0")
    assert decide(engine(tmp_path, "allow_overrides", rules)) == ("require_approval", ("mid-approval",))


def test_most_specific_wins_ranks_the_documents_scope_first(tmp_path):
    (tmp_path / "a.yaml").write_text("apiVersion: governance.toolkit/v1\nname: a\nconflict_strategy: most_specific_wins\n"
                                     "scope: global\nrules:\n  - {name: global-allow, condition: \"tool_name == 'x'\", "
                                     "action: allow, priority: 100}\n", "utf-8")
    (tmp_path / "b.yaml").write_text("apiVersion: governance.toolkit/v1\nname: b\nconflict_strategy: most_specific_wins\n"
                                     "scope: agent\nrules:\n  - {name: agent-deny, condition: \"tool_name == 'x'\", "
                                     "action: deny, priority: 1}\n", "utf-8")
    d = YamlEngine(tmp_path).evaluate(from_agt_context({"tool_name": "x"}))
    assert (d.effect.value, d.rule_ids) == ("deny", ("agent-deny",))


def test_governance_limits_deny_under_first_match(tmp_path):
    e = engine(tmp_path, "priority_first_match", extra="governance:\n  max_tool_calls_per_task: 2\n")
    assert decide(e, tool_call_count=3) == ("deny", ("governance.max_tool_calls_per_task",))


def test_unknown_strategy_is_a_load_error_naming_the_line(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: governance.toolkit/v1\nname: t\nconflict_strategy: first_wins\nrules: []\n", "utf-8")
    with pytest.raises(PolicyLoadError) as info:
        load_policy(p)
    assert (info.value.line, "priority_first_match" in info.value.message) == (3, True)


def test_files_of_one_policy_must_agree_on_the_strategy(tmp_path):
    (tmp_path / "a.yaml").write_text("apiVersion: governance.toolkit/v1\nname: a\nconflict_strategy: deny_overrides\nrules: []\n")
    (tmp_path / "b.yaml").write_text("apiVersion: governance.toolkit/v1\nname: b\nconflict_strategy: priority_first_match\nrules: []\n")
    with pytest.raises(PolicyLoadError, match="disagree on conflict_strategy"):
        load_policy(tmp_path)


def test_unknown_scope_is_refused_not_treated_as_global(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: governance.toolkit/v1\nname: t\nscope: team\nrules: []\n", "utf-8")
    with pytest.raises(PolicyLoadError, match="scope must be one of"):
        load_policy(p)


PRIORITY_SUITE_POLICY = Path(__file__).resolve().parent.parent / "conformance" / "policies" / "priority" / "priority.yaml"


def test_the_priority_suites_policy_decides_differently_under_deny_overrides(tmp_path):
    # The conformance suite conformance/priority.yaml can fail: without the strategy, its first case denies.
    p = tmp_path / "p.yaml"
    p.write_text(PRIORITY_SUITE_POLICY.read_text("utf-8").replace("conflict_strategy: priority_first_match", ""), "utf-8")
    from agt.action import Action

    admin_secret = Action.from_dict({"agent": {"id": "root", "roles": ["admin"]}, "action": {"tool": "read_secret", "kind": "read"}})
    assert (YamlEngine(PRIORITY_SUITE_POLICY).evaluate(admin_secret).rule_ids,
            YamlEngine(p).evaluate(admin_secret).rule_ids) == (("allow-admin-reads",), ("deny-secrets",))
