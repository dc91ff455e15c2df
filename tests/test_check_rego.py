"""agt check for Rego (agt.authoring.check): opa check --strict with the action JSON Schema, at file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agt.authoring.check import check_policy, guess_engine
from agt.cli import cli

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "rego" / "agt"
TYPO = """package agt.policies.budget

deny["token-budget"] := "Session token budget exhausted." if {
\tinput.context.token_used > 100
}
"""
GOOD = TYPO.replace("token_used", "tokens_used")


def _policy(tmp_path: Path, text: str) -> Path:
    d = tmp_path / "policy"
    d.mkdir()
    (d / "budget.rego").write_text(text)
    return d


def test_a_misspelt_input_field_is_an_error_at_file_line_and_rule(tmp_path, opa_binary):
    result = check_policy(_policy(tmp_path, TYPO), "rego")
    [d] = result.errors
    assert (Path(d.file).name, d.line, d.column, d.rule) == ("budget.rego", 4, 2, "token-budget")
    assert "input.context.token_used" in d.message and "tokens_used" in d.message


def test_the_correct_field_passes_and_lists_the_rules(tmp_path, opa_binary):
    result = check_policy(_policy(tmp_path, GOOD), "opa")
    assert result.ok
    assert result.rules[0]["id"] == "token-budget" and result.rules[0]["message"] == "Session token budget exhausted."


def test_an_unknown_top_level_input_key_is_an_error(tmp_path, opa_binary):
    result = check_policy(_policy(tmp_path, GOOD.replace("input.context.tokens_used", "input.contxt.tokens_used")), "rego")
    assert not result.ok and "input.contxt" in result.errors[0].message


def test_strict_mode_flags_an_unused_variable(tmp_path, opa_binary):
    text = GOOD.replace("\tinput.context.tokens_used > 100", "\tx := 1\n\tinput.context.tokens_used > 100")
    assert "unused" in check_policy(_policy(tmp_path, text), "rego").errors[0].message


def test_the_repository_rego_library_and_starter_pass(opa_binary):
    result = check_policy(ROOT / "rego", "rego")
    assert result.ok, result.errors
    assert "block-destructive-db-tools" in {r["id"] for r in result.rules}


def test_a_policy_calling_the_agt_library_without_it_says_how_to_add_it(opa_binary):
    result = check_policy(ROOT / "conformance" / "policies" / "money" / "rego", "rego")
    assert not result.ok and "--data" in result.errors[0].message
    assert check_policy(ROOT / "conformance" / "policies" / "money" / "rego", "rego", data=[LIBRARY]).ok


def test_a_rego_directory_is_guessed_as_opa(tmp_path):
    assert guess_engine(_policy(tmp_path, GOOD)) == "opa"
    assert guess_engine(ROOT / "rego") == "opa"  # the .rego files sit in subdirectories


def test_cli_check_rego_exits_1_and_prints_file_line(tmp_path, opa_binary):
    result = CliRunner().invoke(cli, ["check", str(_policy(tmp_path, TYPO))])
    assert result.exit_code == 1
    assert f"{tmp_path / 'policy' / 'budget.rego'}:4:2: error: rule 'token-budget': undefined ref: input.context.token_used" in result.output


@pytest.mark.parametrize("engine", ["opa", "rego"])
def test_cli_check_accepts_opa_and_rego_as_the_engine(tmp_path, opa_binary, engine):
    assert CliRunner().invoke(cli, ["check", "-e", engine, str(_policy(tmp_path, GOOD))]).exit_code == 0


def test_cli_check_rego_json(tmp_path, opa_binary):
    data = json.loads(CliRunner().invoke(cli, ["check", "--json", str(_policy(tmp_path, TYPO))]).output)
    assert data["ok"] is False and data["engine"] == "opa"
    assert (data["errors"][0]["line"], data["errors"][0]["code"]) == (4, "rego_type_error")
