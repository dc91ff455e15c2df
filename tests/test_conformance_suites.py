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


# --- typed params: the catalog, and cases Cedar cannot see ------------------------------------------

MONEY_DIR = SUITE_DIR / "policies" / "money"


def _suite(tmp_path: Path, cases: str, catalog: bool = True) -> Path:
    text = f"""\
suite: t
{"catalog: " + str(MONEY_DIR / "catalog.yaml") if catalog else ""}
policies:
  yaml: {MONEY_DIR / "money.yaml"}
  cedar: {MONEY_DIR}
defaults:
  agent: {{id: alice}}
cases:
{cases}
"""
    path = tmp_path / "t.yaml"
    path.write_text(text, "utf-8")
    return path


def test_case_on_a_param_a_rule_reads_but_the_catalog_does_not_declare_is_not_portable_to_cedar(tmp_path):
    suite = load_suite(_suite(tmp_path, "  - {name: c, action: {action: {tool: issue_credit, params: {credit: 600}}}, expect: {effect: deny, rules: [credit-limit]}}"))
    reason = suite.cases[0].not_portable["cedar"]
    assert "credit-limit" in reason and "action.params.credit" in reason and "issue_credit" in reason


def test_case_without_the_undeclared_param_stays_portable(tmp_path):
    suite = load_suite(_suite(tmp_path, "  - {name: c, action: {action: {tool: issue_credit, params: {reason: x}}}, expect: {effect: allow, rules: [default]}}"))
    assert suite.cases[0].not_portable == {}


def test_case_on_a_declared_param_stays_portable(tmp_path):
    suite = load_suite(_suite(tmp_path, "  - {name: c, action: {action: {tool: refund, params: {amount: 150.00}}}, expect: {effect: require_approval, rules: [refund-approval]}}"))
    assert suite.cases[0].not_portable == {}


def test_a_rule_pinned_to_another_tool_does_not_make_a_case_unportable(tmp_path):
    suite = load_suite(_suite(tmp_path, "  - {name: c, action: {action: {tool: other, params: {credit: 600}}}, expect: {effect: allow, rules: [default]}}"))
    assert suite.cases[0].not_portable == {}


def test_suite_catalog_path_is_resolved_and_decimals_are_exact(tmp_path):
    suite = load_suite(_suite(tmp_path, "  - {name: c, action: {action: {tool: refund, params: {amount: 922337203685477.5807}}}, expect: {effect: allow, rules: [default]}}"))
    assert suite.catalog == str(MONEY_DIR / "catalog.yaml")
    assert str(suite.cases[0].action.action.params["amount"]) == "922337203685477.5807"


def test_suite_catalog_reaches_every_engine(tmp_path):
    suite = load_suite(_suite(tmp_path, "  - {name: c, action: {action: {tool: refund, params: {amount: '1'}}}, expect: {effect: deny, rules: [engine_error]}}"))
    engines = open_engines(suite, ("yaml", "cedar"))
    assert all(e.catalog is not None for e in engines.values())
