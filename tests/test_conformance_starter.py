"""The starter policy's conformance suite on the embedded engines: one test per case and engine.

Each decision must match the case's expectation (effect, rule ids, approvers) and, through that,
every other engine's decision.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agt.conformance import load_suite, open_engines
from agt.conformance.runner import CaseResult

SUITE = load_suite(Path(__file__).resolve().parents[1] / "conformance" / "starter.yaml")
ENGINES = ("yaml", "cedar")


@pytest.fixture(scope="module")
def engines():
    opened = open_engines(SUITE, ENGINES)
    yield opened
    for e in opened.values():
        e.close()


def test_suite_has_at_least_100_cases():
    assert len(SUITE.cases) >= 100


def test_every_starter_rule_determines_some_case():
    determined = {r for case in SUITE.cases for r in case.expect.rules}
    yaml_rules = {r.id for r in open_engines(SUITE, ("yaml",))["yaml"].policy.rules}
    assert yaml_rules <= determined


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", SUITE.cases, ids=[c.name for c in SUITE.cases])
def test_case_decision_matches_expectation(engines, case, engine):
    decision = engines[engine].evaluate(case.action)
    result = CaseResult(case, {engine: decision})
    assert result.matches_expectation(engine), (
        f"{engine} decided {decision.effect.value} {list(decision.rule_ids)} approvers={list(decision.approvers)}; "
        f"expected {case.expect.effect.value} {list(case.expect.rules)} approvers={case.expect.approvers}; "
        f"action={case.action.to_json()}"
    )


def test_engines_agree_on_every_case_in_a_batch(engines):
    """evaluate_many (Cedar batches) must agree with the per-case expectation too."""
    actions = [c.action for c in SUITE.cases]
    batched = {name: e.evaluate_many(actions) for name, e in engines.items()}
    for i, case in enumerate(SUITE.cases):
        seen = {(batched[n][i].effect, batched[n][i].rule_ids) for n in engines}
        assert seen == {(case.expect.effect, case.expect.rules)}, case.name
