"""agt.verify.junit: JUnit reports (pytest --junitxml) become passed / failed / skipped / missing per mapped test id."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agt.verify import assess, load_mapping
from agt.verify.facts import FACTS, Fact
from agt.verify.junit import JunitError, junit_name, read_reports
from verify_helpers import junit_report

MAPPING = load_mapping()
ID = "tests/attacks/test_opa_control_plane.py::test_without_the_token_the_api_is_refused"


def test_a_node_id_becomes_pytests_classname_and_name():
    assert junit_name(ID) == ("tests.attacks.test_opa_control_plane", "test_without_the_token_the_api_is_refused")
    assert junit_name("tests/test_x.py::TestY::test_z") == ("tests.test_x.TestY", "test_z")


@pytest.mark.parametrize("outcome", ["passed", "failed", "skipped"])
def test_each_outcome_is_read(tmp_path, outcome):
    reports = read_reports([junit_report(tmp_path / "r.xml", {ID: outcome})])
    assert reports.result(ID).status == outcome


def test_an_error_counts_as_a_failure(tmp_path):
    assert read_reports([junit_report(tmp_path / "r.xml", {ID: "error"})]).result(ID).status == "failed"


def test_a_test_absent_from_every_report_is_missing(tmp_path):
    reports = read_reports([junit_report(tmp_path / "r.xml", {"tests/test_other.py::test_a": "passed"})])
    assert reports.result(ID).status == "missing"


def test_a_parametrized_test_fails_when_one_case_fails(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text('<testsuites><testsuite name="pytest">'
                    '<testcase classname="tests.test_conformance_suites" name="test_case[a]"/>'
                    '<testcase classname="tests.test_conformance_suites" name="test_case[b]"><skipped/></testcase>'
                    '<testcase classname="tests.test_conformance_suites" name="test_case[c]"><failure/></testcase>'
                    '<testcase classname="tests.test_conformance_suites" name="test_case_other"/>'
                    "</testsuite></testsuites>")
    result = read_reports([path]).result("tests/test_conformance_suites.py::test_case")
    assert (result.status, result.passed, result.skipped, result.failed) == ("failed", 1, 1, 1)


def test_a_parametrized_test_with_some_cases_skipped_passes(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text('<testsuite name="pytest">'
                    '<testcase classname="tests.test_conformance_suites" name="test_case[a]"/>'
                    '<testcase classname="tests.test_conformance_suites" name="test_case[b]"><skipped/></testcase>'
                    "</testsuite>")
    assert read_reports([path]).result("tests/test_conformance_suites.py::test_case").status == "passed"


def test_a_failure_in_any_of_several_reports_stays_a_failure(tmp_path):
    reports = read_reports([junit_report(tmp_path / "a.xml", {ID: "failed"}), junit_report(tmp_path / "b.xml", {ID: "passed"})])
    assert reports.result(ID).status == "failed"
    assert [f["path"] for f in reports.files] == [str(tmp_path / "a.xml"), str(tmp_path / "b.xml")]


@pytest.mark.parametrize(("text", "message"), [
    ("<html><body/></html>", "not a JUnit report: the root element is <html>"),
    ("<testsuites><testsuite", "not XML"),
    ('<testsuites><testsuite><testcase name="x"/></testsuite></testsuites>', "lacks its classname or name"),
])
def test_a_file_that_is_not_a_junit_report_is_named(tmp_path, text, message):
    path = tmp_path / "r.xml"
    path.write_text(text)
    with pytest.raises(JunitError, match=message) as info:
        read_reports([path])
    assert info.value.file == str(path)


def test_a_failed_test_makes_its_control_and_risk_not_covered(tmp_path):
    facts = [Fact(f, True, "") for f in FACTS]
    control_tests = MAPPING.controls["parsed-facts"].tests
    reports = read_reports([junit_report(tmp_path / "r.xml", {control_tests[0]: "failed"}, ids=MAPPING.test_ids())])
    risks = {r.id: r for r in assess(MAPPING, facts, reports).risks}
    assert risks["ASI02"].status == "partly"
    assert f"parsed-facts: test failed: {control_tests[0]}" in risks["ASI02"].reasons


def test_a_missing_test_makes_its_control_not_effective(tmp_path):
    facts = [Fact(f, True, "") for f in FACTS]
    ids = tuple(t for t in MAPPING.test_ids() if t != MAPPING.controls["tool-catalog"].tests[-1])
    reports = read_reports([junit_report(tmp_path / "r.xml", {}, ids=ids)])
    risks = {r.id: r for r in assess(MAPPING, facts, reports).risks}
    assert risks["ASI02"].status == "partly"
    assert any(r.startswith("tool-catalog: test missing:") for r in risks["ASI02"].reasons)


def test_every_test_passing_with_every_fact_holding_covers_tool_misuse(tmp_path):
    facts = [Fact(f, True, "") for f in FACTS]
    reports = read_reports([junit_report(tmp_path / "r.xml", {}, ids=MAPPING.test_ids())])
    risks = {r.id: r for r in assess(MAPPING, facts, reports).risks}
    assert risks["ASI02"].status == "covered" and risks["ASI02"].reasons == ()


def test_a_report_pytest_itself_wrote_is_read(tmp_path):
    # Real pytest output, not a hand-made file: one passing and one failing test in a throwaway tests/ tree.
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_demo.py").write_text("def test_ok():\n    pass\n\ndef test_bad():\n    assert False\n")
    report = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                    f"--junitxml={report}", "tests/test_demo.py"], cwd=tmp_path, capture_output=True, check=False)
    reports = read_reports([report])
    assert reports.result("tests/test_demo.py::test_ok").status == "passed"
    assert reports.result("tests/test_demo.py::test_bad").status == "failed"
