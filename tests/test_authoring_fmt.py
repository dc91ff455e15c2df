"""agt.authoring.fmt and `agt fmt`: Cedar through cedarpy's formatter, Rego through opa fmt, YAML left alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agt.authoring.fmt import format_file, format_paths, format_text
from agt.cli import cli

UGLY_REGO = "package x\nallow if {  1==1 }\n"
CANONICAL_REGO = "package x\n\nallow if 1 == 1\n"
UGLY_CEDAR = '// keep me\n@id("a")\npermit(principal,action,resource)   when {context.tool=="x"};\n'
BROKEN_CEDAR = '@id("a")\npermit(principal, action, resource);\n\n@id("b")\nforbid(principal, action resource);\n'


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture
def fmt(tmp_path):
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, ["fmt", *map(str, args)])


def test_rego_goes_through_opa_fmt(opa_binary):
    assert format_text(UGLY_REGO, "rego") == CANONICAL_REGO


def test_cedar_goes_through_cedars_formatter_and_keeps_comments():
    out = format_text(UGLY_CEDAR, "cedar")
    assert out.startswith("// keep me\n@id(\"a\")\npermit (principal, action, resource)")
    assert format_text(out, "cedar") == out


def test_cedar_that_does_not_parse_is_an_error_with_its_line(tmp_path):
    result = format_file(_write(tmp_path, "p.cedar", BROKEN_CEDAR))
    assert result.error.startswith(f"{tmp_path / 'p.cedar'}:4: Cedar does not parse")
    assert not result.changed


def test_rego_that_does_not_parse_is_an_error_naming_the_file_and_line(tmp_path, opa_binary):
    result = format_file(_write(tmp_path, "p.rego", "package x\nallow if {\n"))
    assert f"{tmp_path / 'p.rego'}:3: rego_parse_error" in result.error


def test_yaml_is_left_alone_and_says_so(tmp_path):
    text = "# comment\nrules: [ {name: a} ]\n"
    result = format_file(_write(tmp_path, "p.yaml", text))
    assert not result.changed and result.formatted is None and "left as written" in result.note


def test_a_directory_is_searched_recursively(tmp_path, opa_binary):
    _write(tmp_path, "a.rego", CANONICAL_REGO)
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub", "b.cedar", UGLY_CEDAR)
    assert sorted(Path(r.path).name for r in format_paths([tmp_path])) == ["a.rego", "b.cedar"]


def test_check_exits_1_and_names_the_file_that_would_change(fmt, tmp_path, opa_binary):
    p = _write(tmp_path, "p.rego", UGLY_REGO)
    result = fmt("--check", p)
    assert result.exit_code == 1 and f"would reformat {p}" in result.output
    assert p.read_text() == UGLY_REGO


def test_check_exits_0_when_everything_is_formatted(fmt, tmp_path, opa_binary):
    assert fmt("--check", _write(tmp_path, "p.rego", CANONICAL_REGO)).exit_code == 0


def test_fail_exits_2_when_a_file_would_change_as_opa_fmt(fmt, tmp_path, opa_binary):
    assert fmt("--fail", "-l", _write(tmp_path, "p.rego", UGLY_REGO)).exit_code == 2


def test_list_prints_only_the_names_of_changed_files(fmt, tmp_path, opa_binary):
    ugly = _write(tmp_path, "a.rego", UGLY_REGO)
    _write(tmp_path, "b.rego", CANONICAL_REGO)
    assert fmt("-l", tmp_path).output.splitlines() == [str(ugly)]


def test_diff_prints_a_unified_diff(fmt, tmp_path, opa_binary):
    output = fmt("--diff", _write(tmp_path, "p.rego", UGLY_REGO)).output
    assert "-allow if {  1==1 }\n+\n+allow if 1 == 1\n" in output


def test_write_overwrites_the_file(fmt, tmp_path, opa_binary):
    p = _write(tmp_path, "p.rego", UGLY_REGO)
    assert fmt("-w", p).exit_code == 0
    assert p.read_text() == CANONICAL_REGO


def test_without_flags_the_formatted_text_goes_to_stdout(fmt, tmp_path):
    p = _write(tmp_path, "p.cedar", UGLY_CEDAR)
    assert fmt(p).output == format_text(UGLY_CEDAR, "cedar")
    assert p.read_text() == UGLY_CEDAR


def test_a_file_that_does_not_parse_exits_1(fmt, tmp_path):
    assert fmt("--check", _write(tmp_path, "p.cedar", BROKEN_CEDAR)).exit_code == 1


def test_json_lists_every_file(fmt, tmp_path, opa_binary):
    _write(tmp_path, "a.rego", UGLY_REGO)
    _write(tmp_path, "b.yaml", "rules: []\n")
    data = json.loads(fmt("--check", "--json", tmp_path).output)
    assert [(Path(f["path"]).name, f["changed"]) for f in data["files"]] == [("a.rego", True), ("b.yaml", False)]
