"""Every conformance suite under pytest: one test per case and engine, on real engines (OPA included).

A case marked not portable to an engine shows up as a skip carrying the reason, never as a pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agt.conformance import CaseResult, load_suite, open_engines

SUITE_DIR = Path(__file__).resolve().parents[1] / "conformance"
SUITES = {p.stem: load_suite(p) for p in sorted(SUITE_DIR.glob("*.yaml"))}
ENGINES = ("yaml", "cedar", "opa")
PARAMS = [
    pytest.param(name, case, engine, id=f"{name}::{engine}::{case.name}")
    for name, suite in SUITES.items()
    for case in suite.cases
    for engine in ENGINES
]


@pytest.fixture(scope="module")
def engines(request):
    opened: dict[tuple[str, str], object] = {}

    def get(suite_name: str, engine: str):
        key = (suite_name, engine)
        if key not in opened:
            if engine == "opa":
                request.getfixturevalue("opa_binary")
            opened[key] = open_engines(SUITES[suite_name], (engine,))[engine]
        return opened[key]

    yield get
    for e in opened.values():
        e.close()


def test_at_least_300_cases_across_suites():
    assert sum(len(s.cases) for s in SUITES.values()) >= 300


def test_every_suite_names_a_policy_for_every_engine():
    for name, suite in SUITES.items():
        assert set(ENGINES) <= set(suite.policies), name


@pytest.mark.parametrize("suite_name,case,engine", PARAMS)
def test_case(engines, suite_name, case, engine):
    if engine in case.not_portable:
        pytest.skip(f"not portable to {engine}: {case.not_portable[engine]}")
    decision = engines(suite_name, engine).evaluate(case.action)
    result = CaseResult(case, {engine: decision})
    assert result.matches_expectation(engine), (
        f"{engine} decided {decision.effect.value} {list(decision.rule_ids)} approvers={list(decision.approvers)}; "
        f"expected {case.expect.effect.value} {list(case.expect.rules)} approvers={case.expect.approvers}; "
        f"reasons={[r.message for r in decision.reasons]}; action={case.action.to_json()}"
    )
