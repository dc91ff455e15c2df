"""agt.conformance.report and runner: coverage roles, failures, JSON and JUnit output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from agt.action import from_call
from agt.conformance import CaseResult, build_report, write_json, write_junit
from agt.conformance.suite import Case, Expectation
from agt.decision import Decision, Effect, Reason

ACTION = from_call("send_email", {})


def _d(effect: Effect, ids: tuple[str, ...], matched: tuple[str, ...] = ()) -> Decision:
    return Decision(effect, tuple(Reason(i) for i in ids), matched=matched or ids)


def _case(name: str, effect: Effect, rules: tuple[str, ...], not_portable=None) -> Case:
    return Case(name, ACTION, Expectation(effect, rules), not_portable or {})


def test_coverage_counts_determining_and_matched_per_engine():
    case = _case("c", Effect.DENY, ("deny-x",))
    r = CaseResult(case, {"yaml": _d(Effect.DENY, ("deny-x",), ("approve-y", "deny-x"))})
    report = build_report("s", ["yaml"], [r], known_rules={"deny-x", "approve-y", "unused"})
    cov = {c.rule_id: c for c in report.coverage}
    assert cov["deny-x"].determining == {"yaml": 1}
    assert cov["approve-y"].matched == {"yaml": 1}
    assert cov["unused"].never("yaml")
    assert set(report.never_determined()) == {"approve-y", "unused"}


def test_disagreement_between_engines_is_a_failure_even_if_one_is_right():
    case = _case("c", Effect.ALLOW, ("default",))
    r = CaseResult(case, {"yaml": _d(Effect.ALLOW, ("default",)), "cedar": _d(Effect.DENY, ("x",))})
    report = build_report("s", ["yaml", "cedar"], [r])
    assert not report.passed
    assert report.to_dict()["failures"][0]["wrong_engines"] == ["cedar"]


def test_reasons_must_match_not_only_the_effect():
    case = _case("c", Effect.DENY, ("a",))
    assert not CaseResult(case, {"yaml": _d(Effect.DENY, ("b",))}).passed


def test_json_report_lists_not_portable_cases(tmp_path: Path):
    case = _case("regex", Effect.ALLOW, ("default",), {"cedar": "no regex"})
    report = build_report("s", ["yaml", "cedar"], [CaseResult(case, {"yaml": _d(Effect.ALLOW, ("default",))})])
    write_json([report], str(tmp_path / "r.json"))
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["suites"][0]["not_portable"] == [{"case": "regex", "engines": {"cedar": "no regex"}}]
    assert data["passed"] is True


def test_junit_has_one_testcase_per_case_and_engine_with_skips_and_failures(tmp_path: Path):
    ok = _case("ok", Effect.ALLOW, ("default",))
    bad = _case("bad", Effect.DENY, ("x",))
    np = _case("np", Effect.ALLOW, ("default",), {"cedar": "no regex"})
    results = [
        CaseResult(ok, {"yaml": _d(Effect.ALLOW, ("default",)), "cedar": _d(Effect.ALLOW, ("default",))}),
        CaseResult(bad, {"yaml": _d(Effect.DENY, ("x",)), "cedar": _d(Effect.ALLOW, ("default",))}),
        CaseResult(np, {"yaml": _d(Effect.ALLOW, ("default",))}),
    ]
    path = tmp_path / "j.xml"
    write_junit([build_report("s", ["yaml", "cedar"], results)], str(path))
    suite = ET.parse(path).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("6", "2", "1")
