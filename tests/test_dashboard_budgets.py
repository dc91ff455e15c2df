"""Budget limits read from a YAML policy's rules, for the counters beside them."""

from __future__ import annotations

from pathlib import Path

from agt.engines import create_engine
from agt.resources import starter_policy
from agt.serve.dashboard.budgets import budget_limits


def test_the_starter_policy_limits_are_read_from_its_budget_rules() -> None:
    assert budget_limits(create_engine("yaml", str(starter_policy("yaml")))) == {
        "tokens_used": 8000, "tool_calls": 20, "files_changed": 15}


def test_a_greater_or_equal_limit_is_the_last_count_that_passes(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: governance.toolkit/v1\nname: p\ndefault_action: allow\nrules:\n"
                      "  - {name: calls, condition: 'context.tool_calls >= 5', action: deny}\n"
                      "  - {name: not-a-budget, condition: 'context.tokens_used > 10', action: require_approval}\n")
    assert budget_limits(create_engine("yaml", str(policy))) == {"tool_calls": 4}


def test_an_engine_without_yaml_rules_has_no_limits_to_show(starter_cedar: str) -> None:
    assert budget_limits(create_engine("cedar", starter_cedar)) == {}
