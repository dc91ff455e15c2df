"""agt.compile and `agt compile`: what is written, what is reported as not portable, and the checks it passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agt.authoring.fmt import format_text
from agt.cli import cli
from agt.compile import CompileError, compile_policy
from agt.compile.manifest import MANIFEST, find_manifests
from agt.errors import PolicyLoadError

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ROOT / "conformance" / "policies" / "secrets" / "secrets.yaml"


def test_a_regex_rule_is_reported_not_portable_to_cedar_with_its_file_and_line(tmp_path, opa_binary):
    result = compile_policy(SECRETS, tmp_path)
    [np] = result.not_portable
    assert (np.engine, np.rule, np.construct) == ("cedar", "block-aws-access-keys", "regex")
    assert np.where == f"{SECRETS}:7"


def test_a_rule_not_portable_is_left_out_of_the_cedar_twin_and_marked_in_it(tmp_path, opa_binary):
    compile_policy(SECRETS, tmp_path)
    text = (tmp_path / "cedar" / "secrets.cedar").read_text()
    assert '@id("block-aws-access-keys")' not in text
    assert "NOT PORTABLE: block-aws-access-keys" in text


def test_the_manifest_names_the_rule_not_portable_for_the_suite(tmp_path, opa_binary):
    compile_policy(SECRETS, tmp_path)
    [manifest] = find_manifests(str(tmp_path / "cedar"))
    assert manifest.engine == "cedar"
    assert [n.rule for n in manifest.not_portable] == ["block-aws-access-keys"]
    assert find_manifests(str(tmp_path / "rego"))[0].not_portable == ()


def test_rule_ids_messages_approvers_and_critical_marks_carry_over(tmp_path, opa_binary):
    compile_policy(ROOT / "policies" / "starter.yaml", tmp_path)
    rego = (tmp_path / "rego" / "agt_starter.rego").read_text()
    cedar = (tmp_path / "cedar" / "agt_starter.cedar").read_text()
    assert 'approval["refund-approval"] := {"message": "Refunds over 100.00 need a finance approval.", "approvers": ["finance-lead"]}' in rego
    assert 'critical contains "block-destructive-db-tools"' in rego
    assert '@id("refund-approval")\n@approval\n@approvers("finance-lead")\n@message("Refunds over 100.00 need a finance approval.")' in cedar
    assert '@id("block-destructive-db-tools")\n@critical' in cedar


def test_generated_files_are_already_formatted(tmp_path, opa_binary):
    compile_policy(ROOT / "policies" / "starter.yaml", tmp_path)
    for f, language in ((tmp_path / "rego" / "agt_starter.rego", "rego"), (tmp_path / "cedar" / "agt_starter.cedar", "cedar")):
        text = f.read_text()
        assert format_text(text, language, str(f)) == text


def test_the_rego_directory_carries_the_agt_library_and_passes_opa_check_strict(tmp_path, opa_binary):
    from agt.authoring.check import check_policy
    from agt.resources import rego_library_files

    compile_policy(ROOT / "conformance" / "policies" / "money" / "money.yaml", tmp_path)
    for lib in rego_library_files():
        assert (tmp_path / "rego" / "agt" / lib.name).read_bytes() == lib.read_bytes()
    assert check_policy(tmp_path / "rego", "opa").ok


def test_a_priority_policy_keeps_its_strategy_rule_by_rule(tmp_path, opa_binary):
    compile_policy(ROOT / "conformance" / "policies" / "priority" / "priority.yaml", tmp_path)
    cedar = (tmp_path / "cedar" / "priority.cedar").read_text()
    assert "unless" in cedar.split('@id("deny-secrets")')[1].split("@id")[0]


def test_a_directory_holding_someone_elses_policy_is_refused(tmp_path, opa_binary):
    (tmp_path / "cedar").mkdir()
    (tmp_path / "cedar" / "mine.cedar").write_text("permit (principal, action, resource);")
    with pytest.raises(CompileError, match="mine.cedar"):
        compile_policy(SECRETS, tmp_path, ["cedar"])


def test_compiling_again_replaces_what_the_last_compile_wrote(tmp_path, opa_binary):
    compile_policy(SECRETS, tmp_path, ["cedar"])
    compile_policy(ROOT / "conformance" / "policies" / "priority" / "priority.yaml", tmp_path, ["cedar"])
    assert sorted(p.name for p in (tmp_path / "cedar").glob("*.cedar")) == ["priority.cedar"]


def test_a_policy_that_does_not_load_is_an_error_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: governance.toolkit/v1\nrules:\n  - name: r\n    condition: \"tool_name ==\"\n")
    with pytest.raises(PolicyLoadError) as exc:
        compile_policy(bad, tmp_path / "out")
    assert (exc.value.file, exc.value.line, exc.value.rule) == (str(bad), 4, "r")


def test_an_unknown_target_is_an_error(tmp_path):
    with pytest.raises(CompileError, match="unknown target 'wasm'"):
        compile_policy(SECRETS, tmp_path, ["wasm"])


def test_cli_json_lists_files_and_not_portable_rules(tmp_path, opa_binary):
    res = CliRunner().invoke(cli, ["compile", str(SECRETS), "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["not_portable"][0]["rule"] == "block-aws-access-keys"
    assert str(tmp_path / "cedar" / MANIFEST) in doc["files"]["cedar"]


def test_cli_strict_fails_on_a_rule_not_portable(tmp_path, opa_binary):
    res = CliRunner().invoke(cli, ["compile", str(SECRETS), "--out", str(tmp_path), "--strict"])
    assert res.exit_code == 1


def test_cli_error_names_file_and_line_in_json(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: governance.toolkit/v1\nrules:\n  - name: r\n    condition: \"tool_name ==\"\n")
    res = CliRunner().invoke(cli, ["compile", str(bad), "--out", str(tmp_path / "o"), "--json"])
    doc = json.loads(res.output)
    assert res.exit_code == 1 and (doc["file"], doc["line"], doc["rule"]) == (str(bad), 4, "r")


def test_a_suite_on_the_compiled_twin_marks_the_cases_a_left_out_rule_decides(tmp_path, opa_binary):
    from agt.conformance import load_suite

    compile_policy(SECRETS, tmp_path / "out")
    suite = tmp_path / "suite.yaml"
    suite.write_text(json.dumps({
        "policies": {"yaml": str(SECRETS), "cedar": str(tmp_path / "out" / "cedar"), "opa": str(tmp_path / "out" / "rego")},
        "defaults": {"agent": {"id": "alice"}},
        "cases": [
            {"name": "key", "action": {"action": {"tool": "post", "params": {"text": "AKIAIOSFODNN7EXAMPLE"}}},
             "expect": {"effect": "deny", "rules": ["block-aws-access-keys"]}},
            {"name": "plain", "action": {"action": {"tool": "post", "params": {"text": "hello"}}},
             "expect": {"effect": "allow", "rules": ["default"]}},
        ]}))
    key, plain = load_suite(suite).cases
    assert "block-aws-access-keys" in key.not_portable["cedar"] and "regular expressions" in key.not_portable["cedar"]
    assert plain.not_portable == {}
