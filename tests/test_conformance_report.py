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
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("6", "1", "1")


def _junit_failed(tmp_path: Path, engines: list[str], results: list[CaseResult]) -> set[tuple[str, str]]:
    path = tmp_path / "j.xml"
    write_junit([build_report("s", engines, results)], str(path))
    return {(tc.get("classname"), tc.get("name")) for tc in ET.parse(path).getroot().iter("testcase") if tc.find("failure") is not None}


def test_junit_marks_only_the_engine_that_missed_the_expectation(tmp_path: Path):
    case = _case("c", Effect.DENY, ("x",))
    right = _d(Effect.DENY, ("x",))
    results = [CaseResult(case, {"yaml": right, "cedar": _d(Effect.ALLOW, ("default",)), "opa": right})]
    assert _junit_failed(tmp_path, ["yaml", "cedar", "opa"], results) == {("s.cedar", "c")}


def test_junit_one_engine_bug_across_cases_is_one_red_testcase_per_case(tmp_path: Path):
    cases = [_case(f"c{i}", Effect.DENY, ("x",)) for i in range(3)]
    results = [CaseResult(c, {"yaml": _d(Effect.DENY, ("x",)), "cedar": _d(Effect.ALLOW, ("default",))}) for c in cases]
    assert _junit_failed(tmp_path, ["yaml", "cedar"], results) == {("s.cedar", f"c{i}") for i in range(3)}


def _approval(approvers: tuple[str, ...]) -> Decision:
    return Decision(Effect.REQUIRE_APPROVAL, (Reason("a"),), approvers=approvers, matched=("a",))


def test_junit_disagreement_the_expectation_leaves_open_marks_the_minority(tmp_path: Path):
    case = _case("c", Effect.REQUIRE_APPROVAL, ("a",))  # no approvers expected: each engine meets it
    results = [CaseResult(case, {"yaml": _approval(("lead",)), "cedar": _approval(("ops",)), "opa": _approval(("lead",))})]
    assert _junit_failed(tmp_path, ["yaml", "cedar", "opa"], results) == {("s.cedar", "c")}


def test_junit_disagreement_without_a_majority_marks_every_engine(tmp_path: Path):
    case = _case("c", Effect.REQUIRE_APPROVAL, ("a",))
    results = [CaseResult(case, {"yaml": _approval(("lead",)), "cedar": _approval(("ops",))})]
    assert _junit_failed(tmp_path, ["yaml", "cedar"], results) == {("s.yaml", "c"), ("s.cedar", "c")}
