"""`agt verify`: the table and --json, --strict exit codes, --evidence and --check, and errors naming the field."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from agt.cli import EXIT_ERROR, EXIT_USAGE, cli
from agt.verify import load_mapping
from verify_helpers import ROOT, good_deployment, junit_report, write_config

MAPPING = load_mapping()


def agt(*args):
    return CliRunner().invoke(cli, ["verify", *map(str, args)])


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path / "agt.yaml", good_deployment(tmp_path))


@pytest.fixture
def passing(tmp_path):
    return junit_report(tmp_path / "tests.xml", {}, ids=MAPPING.test_ids())


def test_the_table_names_every_risk_and_its_status(config):
    result = agt("--config", config)
    assert result.exit_code == 0, result.output
    for risk in MAPPING.risks:
        assert f"{risk.id} {risk.name}" in result.output
    assert "tests: not checked (give --junit REPORT.xml)" in result.output
    assert "1 covered, 8 partly, 1 not covered" in result.output


def test_json_gives_risks_facts_tests_and_summary(config, passing):
    result = agt("--config", config, "--junit", passing, "--json")
    doc = json.loads(result.output)
    assert set(doc) == {"ok", "mapping", "engine", "revision", "risks", "facts", "tests", "summary", "evidence"}
    assert doc["ok"] is True and doc["engine"] == "yaml"
    risk = doc["risks"][1]
    assert set(risk) == {"id", "name", "coverage", "status", "reasons", "accepted", "controls"}
    assert (risk["id"], risk["status"]) == ("ASI02", "covered")
    assert set(risk["controls"][0]) == {"id", "gate", "applicable", "effective", "problems", "tests"}
    assert {f["id"] for f in doc["facts"]} >= {"policy.default_deny", "audit.key_outside_log"}
    assert {t["status"] for t in doc["tests"]} == {"passed"}
    assert doc["summary"] == {"covered": 1, "partly": 8, "not covered": 1, "strict_failures": [
        "ASI01", "ASI03", "ASI04", "ASI05", "ASI06", "ASI07", "ASI08", "ASI09", "ASI10"]}


def test_strict_fails_on_a_risk_not_covered(config, passing):
    result = agt("--config", config, "--junit", passing, "--strict")
    assert result.exit_code == EXIT_ERROR
    assert "strict: not covered: ASI01, ASI03" in result.output


def test_strict_passes_when_every_limit_agt_states_is_accepted_and_every_control_is_effective(config, passing):
    accepted = [a for r in MAPPING.risks if r.coverage != "full" for a in ("--accept", r.id)]
    result = agt("--config", config, "--junit", passing, "--strict", *accepted)
    assert result.exit_code == 0, result.output


def test_an_accepted_risk_still_fails_strict_when_the_deployment_leaves_a_control_out(config, passing, tmp_path):
    import yaml

    doc = yaml.safe_load(config.read_text())
    del doc["approvals"]["registry"]  # signed approvals now approve nothing
    cfg = tmp_path / "noreg.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    accepted = [a for r in MAPPING.risks if r.coverage != "full" for a in ("--accept", r.id)]
    result = agt("--config", cfg, "--junit", passing, "--strict", "--json", *accepted)
    assert result.exit_code == EXIT_ERROR
    assert json.loads(result.output)["summary"]["strict_failures"] == ["ASI01", "ASI03", "ASI05", "ASI09", "ASI10"]


def test_strict_fails_when_a_mapped_test_failed(config, tmp_path):
    accepted = [a for r in MAPPING.risks if r.coverage != "full" for a in ("--accept", r.id)]
    failing = junit_report(tmp_path / "f.xml", {MAPPING.controls["parsed-facts"].tests[0]: "failed"}, ids=MAPPING.test_ids())
    result = agt("--config", config, "--junit", failing, "--strict", "--json", *accepted)
    assert result.exit_code == EXIT_ERROR
    assert "ASI02" in json.loads(result.output)["summary"]["strict_failures"]


def test_strict_without_test_results_is_a_usage_error(config):
    result = agt("--config", config, "--strict")
    assert result.exit_code == EXIT_USAGE and "--strict needs --junit" in result.output


def test_accepting_an_unknown_risk_is_a_usage_error(config, passing):
    result = agt("--config", config, "--junit", passing, "--accept", "ASI11")
    assert result.exit_code == EXIT_USAGE and "ASI11" in result.output


def test_flags_alone_describe_a_deployment(tmp_path):
    result = agt("--policy", ROOT / "policies" / "starter.yaml", "--require-identity", "--json")
    facts = {f["id"]: f for f in json.loads(result.output)["facts"]}
    assert facts["identity.required"]["ok"] is True and facts["policy.default_deny"]["ok"] is False


def test_a_bad_config_names_the_file_line_and_field_as_json(tmp_path):
    cfg = tmp_path / "agt.yaml"
    cfg.write_text("policy: p.yaml\nidentity:\n  requre: true\n")
    result = agt("--config", cfg, "--json")
    assert result.exit_code == EXIT_ERROR
    doc = json.loads(result.output)
    assert (doc["file"], doc["line"], doc["field"], doc["type"]) == (str(cfg), 3, "identity.requre", "ConfigError")


def test_a_bad_flag_value_names_the_flag(tmp_path):
    result = agt("--policy", ROOT / "policies" / "starter.yaml", "--state", "postgres://db", "--json")
    assert result.exit_code == EXIT_ERROR and json.loads(result.output)["field"] == "--state"


def test_no_policy_is_an_error_naming_it():
    result = agt("--json")
    assert result.exit_code == EXIT_ERROR and json.loads(result.output)["field"] == "policy"


def test_a_policy_that_does_not_load_exits_1_naming_its_file(tmp_path):
    broken = tmp_path / "p.yaml"
    broken.write_text("rules: [ {name: x, condition: 'tool_name ==', action: deny} ]\n")
    result = agt("--policy", broken, "--json")
    assert result.exit_code == EXIT_ERROR and json.loads(result.output)["file"] == str(broken)


def test_a_junit_file_that_is_not_a_report_exits_1(config, tmp_path):
    bad = tmp_path / "r.xml"
    bad.write_text("<html/>")
    result = agt("--config", config, "--junit", bad, "--json")
    assert result.exit_code == EXIT_ERROR and json.loads(result.output)["file"] == str(bad)


def test_evidence_written_then_checked_offline(config, passing, tmp_path):
    out = tmp_path / "owasp.json"
    assert agt("--config", config, "--junit", passing, "--evidence", out).exit_code == 0
    pub = good_public_key(config)
    result = agt("--check", out, "--key", pub)
    assert result.exit_code == 0, result.output
    assert "1 covered, 8 partly, 1 not covered" in result.output
    doc = json.loads(agt("--check", out, "--key", pub, "--json").output)
    assert doc["ok"] is True and doc["summary"]["covered"] == 1


def test_a_tampered_evidence_file_fails_check_naming_the_section(config, passing, tmp_path):
    out = tmp_path / "owasp.json"
    agt("--config", config, "--junit", passing, "--evidence", out)
    doc = json.loads(out.read_text())
    doc["risks"][0]["status"] = "covered"
    out.write_text(json.dumps(doc))
    result = agt("--check", out, "--key", good_public_key(config), "--json")
    assert result.exit_code == EXIT_ERROR
    assert json.loads(result.output)["field"] == "risks"


def test_check_with_another_key_exits_1(config, tmp_path):
    from agt.audit.log import load_or_create_key

    out = tmp_path / "owasp.json"
    agt("--config", config, "--evidence", out)
    load_or_create_key(tmp_path / "other" / "k.key")
    result = agt("--check", out, "--key", tmp_path / "other" / "k.pub")
    assert result.exit_code == EXIT_ERROR and "signed with another key" in result.output


def test_check_without_a_key_is_a_usage_error(tmp_path):
    result = agt("--check", tmp_path / "owasp.json")
    assert result.exit_code == EXIT_USAGE and "--check needs --key" in result.output


def test_verify_help_names_evidence_check_and_strict():
    result = CliRunner().invoke(cli, ["verify", "--help"])
    assert result.exit_code == 0
    for option in ("--evidence", "--check", "--strict", "--junit", "--accept", "--config"):
        assert option in result.output


def good_public_key(config):
    import yaml

    return yaml.safe_load(config.read_text())["audit"]["public_key"]


def test_a_bad_flag_over_a_good_config_names_the_flag(config):
    result = agt("--config", config, "--state", "postgres://db", "--json")
    assert result.exit_code == EXIT_ERROR and json.loads(result.output)["field"] == "--state"
