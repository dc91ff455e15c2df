"""agt test (agt/cli/test.py): output, exit codes as opa test (0 pass, 2 a failure, 1 an error), --json, --junit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from agt.cli import cli
from unit_suite_helpers import secrets_suite


@pytest.fixture
def run(root, monkeypatch):
    monkeypatch.chdir(root)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args))


def test_all_passing_exits_0_with_a_summary_per_engine(run, tmp_path, opa_binary):
    result = run("test", str(secrets_suite(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "PASS: 28/28 (yaml 10/10, cedar 8/8, opa 10/10)" in result.output


def test_a_failure_exits_2_like_opa_test(run, tmp_path):
    assert run("test", str(secrets_suite(tmp_path, cedar_bug=True)), "-e", "yaml,cedar").exit_code == 2


def test_a_failure_is_printed_with_engine_case_and_both_decisions(run, tmp_path):
    output = run("test", str(secrets_suite(tmp_path, cedar_bug=True)), "-e", "cedar").output
    assert "FAIL cedar read secret: got deny ['secret-tools-need-approval'], expected require_approval" in output


def test_passing_tests_are_printed_only_with_verbose(run, tmp_path):
    suite = str(secrets_suite(tmp_path))
    assert "PASS yaml  clean message" not in run("test", suite, "-e", "yaml").output
    assert "PASS yaml  clean message" in run("test", suite, "-e", "yaml", "-v").output


def test_a_malformed_suite_exits_1_naming_file_case_and_key(run, tmp_path):
    suite = secrets_suite(tmp_path, cases="  - {name: c, action: {action: {tool: x}}, expect: {rules: [default]}}\n")
    result = run("test", str(suite))
    assert result.exit_code == 1
    assert f"{suite}: case 'c': 'expect' lacks the required key 'effect'" in result.output


def test_json_gives_every_test_with_its_status(run, tmp_path):
    result = run("test", str(secrets_suite(tmp_path, cedar_bug=True)), "-e", "cedar", "--json")
    data = json.loads(result.output)
    assert data["exit_code"] == 2 and data["summary"] == {"pass": 6, "fail": 2, "skip": 2}
    assert {t["case"] for t in data["suites"][0]["tests"] if t["status"] == "fail"} == {"read secret", "rotate secret with key in params"}


def test_json_on_an_error_is_json_too(run, tmp_path):
    suite = secrets_suite(tmp_path, cases="  - {name: c, expect: {effect: allow, rules: [default]}}\n")
    result = run("test", str(suite), "--json")
    assert result.exit_code == 1
    assert "lacks the required key 'action'" in json.loads(result.output)["error"]


def test_junit_file_marks_only_the_failed_engine(run, tmp_path, opa_binary):
    report = tmp_path / "r.xml"
    run("test", str(secrets_suite(tmp_path, cedar_bug=True)), "--junit", str(report))
    red = {tc.get("classname") for tc in ET.parse(report).getroot().iter("testcase") if tc.find("failure") is not None}
    assert red == {"secrets.cedar"}


def test_coverage_prints_rule_and_rego_line_coverage(run, tmp_path, opa_binary):
    output = run("test", str(secrets_suite(tmp_path)), "--coverage").output
    assert "rule coverage" in output and "Rego line coverage from OPA (10 inputs)" in output


def test_an_unknown_engine_exits_1(run, tmp_path):
    result = run("test", str(secrets_suite(tmp_path)), "-e", "prolog")
    assert result.exit_code == 1 and "unknown engine 'prolog'" in result.output
