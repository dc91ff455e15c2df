"""agt.conformance.suite: every key of a suite entry is checked; a missing or unknown key is an error naming
the file, the case and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from agt.conformance import SuiteError, load_suite

ROOT = Path(__file__).resolve().parents[1]
HEAD = f"suite: s\npolicies: {{yaml: {ROOT / 'policies' / 'starter.yaml'}}}\ncases:\n"
READ = "{action: {tool: read_file, kind: read}, agent: {id: a}}"


def _load(tmp_path: Path, case: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + "  - " + case + "\n")
    load_suite(path)


def _error(tmp_path: Path, case: str) -> str:
    with pytest.raises(SuiteError) as info:
        _load(tmp_path, case)
    return str(info.value)


def test_a_complete_case_loads(tmp_path: Path):
    _load(tmp_path, f"{{name: c, action: {READ}, expect: {{effect: allow, rules: [default]}}}}")


def test_missing_rules_is_an_error_naming_file_case_and_key(tmp_path: Path):
    message = _error(tmp_path, f"{{name: c, action: {READ}, expect: {{effect: allow}}}}")
    assert str(tmp_path / "s.yaml") in message and "case 'c'" in message and "'rules'" in message


def test_missing_effect_is_an_error_naming_the_key(tmp_path: Path):
    assert "'effect'" in _error(tmp_path, f"{{name: c, action: {READ}, expect: {{rules: [default]}}}}")


def test_missing_expect_is_an_error_naming_the_key(tmp_path: Path):
    assert "required key 'expect'" in _error(tmp_path, f"{{name: c, action: {READ}}}")


def test_missing_action_is_an_error_naming_the_key(tmp_path: Path):
    assert "required key 'action'" in _error(tmp_path, "{name: c, expect: {effect: allow, rules: [default]}}")


def test_missing_name_is_an_error_naming_the_case_by_position(tmp_path: Path):
    message = _error(tmp_path, f"{{action: {READ}, expect: {{effect: allow, rules: [default]}}}}")
    assert "case #1" in message and "'name'" in message


def test_a_misspelled_case_key_is_an_error_not_ignored(tmp_path: Path):
    message = _error(tmp_path, f"{{name: c, action: {READ}, expect: {{effect: allow, rules: [default]}}, not_portible: {{}}}}")
    assert "unknown key 'not_portible'" in message


def test_a_misspelled_expect_key_is_an_error_not_ignored(tmp_path: Path):
    message = _error(tmp_path, f"{{name: c, action: {READ}, expect: {{effect: require_approval, rules: [x], approver: [a]}}}}")
    assert "unknown key 'approver'" in message


def test_an_empty_rules_list_is_an_error(tmp_path: Path):
    assert "expect.rules" in _error(tmp_path, f"{{name: c, action: {READ}, expect: {{effect: allow, rules: []}}}}")


def test_a_misspelled_suite_key_is_an_error(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text(HEAD.replace("suite: s", "suite: s\ndefault: {}") + f"  - {{name: c, action: {READ}, expect: {{effect: allow, rules: [default]}}}}\n")
    with pytest.raises(SuiteError, match="unknown key 'default'"):
        load_suite(path)
