"""agt.conformance.unit: one test per (case, engine), judged on that engine alone; coverage; JUnit; exit codes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from agt.conformance import SuiteError
from agt.conformance.unit import EXIT_FAILED, EXIT_PASSED, find_suites, run_tests
from unit_suite_helpers import ROOT, SECRETS, secrets_suite

CLEAN_ONLY = "  - {name: clean message, action: {action: {params: {text: hello}}}, expect: {effect: allow, rules: [default]}}\n"


def test_every_case_passes_on_every_engine(tmp_path: Path, opa_binary):
    run = run_tests([secrets_suite(tmp_path)])
    assert run.exit_code == EXIT_PASSED
    assert {o.engine for o in run.outcomes} == {"yaml", "cedar", "opa"}
    assert run.to_dict()["summary"] == {"pass": 28, "fail": 0, "skip": 2}


def test_a_cedar_bug_fails_only_the_cedar_test(tmp_path: Path, opa_binary):
    run = run_tests([secrets_suite(tmp_path, cedar_bug=True)])
    # The misspelt @approval turns the approval into a deny: two cases, both on Cedar only.
    assert [(o.case, o.engine) for o in run.failures] == [("read secret", "cedar"), ("rotate secret with key in params", "cedar")]
    assert run.exit_code == EXIT_FAILED


def test_a_failure_says_what_the_engine_decided_and_what_was_expected(tmp_path: Path):
    run = run_tests([secrets_suite(tmp_path, cedar_bug=True)], ["cedar"])
    assert run.failures[0].reason == "got deny ['secret-tools-need-approval'], expected require_approval " \
                                     "['secret-tools-need-approval'] approvers=['security']"


def test_engine_option_runs_one_engine(tmp_path: Path):
    run = run_tests([secrets_suite(tmp_path)], ["cedar"])
    assert {o.engine for o in run.outcomes} == {"cedar"}


def test_rego_is_another_name_for_the_opa_engine(tmp_path: Path, opa_binary):
    run = run_tests([secrets_suite(tmp_path, cases=CLEAN_ONLY)], ["rego"])
    assert [o.engine for o in run.outcomes] == ["opa"]


def test_a_case_not_portable_to_an_engine_is_skipped_with_the_reason(tmp_path: Path):
    run = run_tests([secrets_suite(tmp_path)], ["cedar"])
    skipped = [o for o in run.outcomes if o.status == "skip"]
    assert [o.case for o in skipped] == ["word akia without a key", "too-short key"]
    assert "Cedar has no regex" in skipped[0].reason


def test_junit_has_one_testcase_per_case_and_engine_and_only_the_failed_engine_is_red(tmp_path: Path, opa_binary):
    run = run_tests([secrets_suite(tmp_path, cedar_bug=True)])
    path = tmp_path / "j.xml"
    run.write_junit(path)
    suite = ET.parse(path).getroot().find("testsuite")
    red = [(tc.get("classname"), tc.get("name")) for tc in suite.iter("testcase") if tc.find("failure") is not None]
    assert red == [("secrets.cedar", "read secret"), ("secrets.cedar", "rotate secret with key in params")]
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("30", "2", "2")


def test_rule_coverage_names_a_rule_no_case_reaches(tmp_path: Path):
    run = run_tests([secrets_suite(tmp_path, cases=CLEAN_ONLY)], ["yaml", "cedar"], coverage=True)
    cov = {c.rule_id: c for c in run.suites[0].rule_coverage}
    assert cov["block-private-keys"].never("yaml") and cov["block-private-keys"].never("cedar")


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_rego_line_coverage_shows_the_body_of_an_unreached_rule_as_not_covered(tmp_path: Path, opa_binary):
    run = run_tests([secrets_suite(tmp_path, cases=CLEAN_ONLY)], ["opa"], coverage=True)
    lc = run.suites[0].line_coverage
    rego = next(f for f in lc.files if f.path.endswith("secrets.rego"))
    line = _line_of(SECRETS / "rego" / "secrets.rego", '"private key-----"')
    assert line in rego.not_covered and line not in rego.covered


def test_rego_line_coverage_counts_a_line_a_case_reached_as_covered(tmp_path: Path, opa_binary):
    run = run_tests([secrets_suite(tmp_path)], ["opa"], coverage=True)
    lc = run.suites[0].line_coverage
    rego = next(f for f in lc.files if f.path.endswith("secrets.rego"))
    assert _line_of(SECRETS / "rego" / "secrets.rego", '"-----begin"') in rego.covered
    assert lc.mismatches == () and lc.inputs == 10


def test_rego_line_coverage_leaves_out_inputs_opa_raised_an_error_on(opa_binary):
    run = run_tests([ROOT / "conformance" / "money.yaml"], ["opa"], coverage=True)
    lc = run.suites[0].line_coverage
    assert lc.errored and not set(lc.errored) & {o.case for o in run.outcomes if o.decision and not o.decision.is_engine_error}
    assert lc.mismatches == ()


def test_rego_line_coverage_leaves_out_the_unit_test_files(opa_binary):
    run = run_tests([ROOT / "conformance" / "starter.yaml"], ["opa"], coverage=True)
    paths = [f.path for f in run.suites[0].line_coverage.files]
    assert paths and not any(p.endswith("_test.rego") for p in paths)


def test_a_suite_entry_without_rules_is_an_error_naming_the_key(tmp_path: Path):
    suite = secrets_suite(tmp_path, cases="  - {name: c, action: {action: {params: {text: hi}}}, expect: {effect: allow}}\n")
    with pytest.raises(SuiteError, match="case 'c': 'expect' lacks the required key 'rules'"):
        run_tests([suite], ["yaml"])


def test_no_test_running_at_all_is_an_error(tmp_path: Path):
    text = secrets_suite(tmp_path).read_text()
    only_yaml = tmp_path / "only-yaml.yaml"
    only_yaml.write_text("\n".join(line for line in text.splitlines() if not line.strip().startswith(("cedar:", "opa:"))))
    with pytest.raises(SuiteError, match="no policy for engine cedar"):
        run_tests([only_yaml], ["cedar"])


def test_a_directory_gives_its_yaml_files_not_its_subdirectories(tmp_path: Path):
    secrets_suite(tmp_path)
    assert find_suites([tmp_path]) == [tmp_path / "secrets-suite.yaml"]
