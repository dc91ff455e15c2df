"""Start-up stays cheap (issue 14): ``agt --help`` and ``import agt`` do not import the heavy dependencies, and the
lazily loaded command list is complete and summarised as each command's own help says. Not timed: the wall-time
figures are in ``make bench``."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from agt.cli import COMMANDS, cli

HEAVY = ("cedarpy", "sqlglot", "bashlex", "cryptography", "httpx", "jsonschema", "rich", "yaml")


def _imported_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return {m.split(".")[0] for m in json.loads(out.strip().splitlines()[-1])}


def test_import_agt_cli_and_help_import_nothing_heavy():
    for code in ("import agt.cli", "import agt", "from agt import Action, create_engine",
                 "from agt.cli import cli\ntry:\n    cli(['--help'])\nexcept SystemExit:\n    pass"):
        assert not _imported_after(code) & set(HEAVY), code


def test_a_yaml_decision_does_not_import_the_other_engines():
    policy = Path(__file__).resolve().parents[1] / "policies" / "starter.yaml"
    loaded = _imported_after(f"import agt\nagt.create_engine('yaml', {str(policy)!r})"
                             ".evaluate(agt.from_call('send_email', {'to': 'a@example.com'}))")
    assert not loaded & {"cedarpy", "httpx", "sqlglot", "bashlex", "cryptography"}


def test_the_public_api_resolves_lazily():
    import agt

    for name in agt.__all__:
        assert getattr(agt, name) is not None
    assert agt.engines.base.create_engine is agt.create_engine
    assert set(agt.__all__) <= set(dir(agt))


def test_every_command_is_listed_with_its_own_summary():
    for name, (module, attribute, summary) in COMMANDS.items():
        command = getattr(importlib.import_module(module), attribute)
        assert command.name == name
        assert isinstance(command, click.Command)
        for limit in (45, 80, 200):
            assert click.Command(name, help=summary).get_short_help_str(limit) == command.get_short_help_str(limit), name
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = result.output.split("Commands:")[1].split("Exit codes")[0]
    assert [line.split()[0] for line in listed.splitlines() if line.strip()] == sorted(COMMANDS)


def test_no_command_module_is_left_out_of_the_table():
    modules = {p.stem for p in Path(importlib.import_module("agt.cli").__file__).parent.glob("*.py")
               if not p.stem.startswith("_")}
    assert modules == {m.rsplit(".", 1)[1] for m, _a, _s in COMMANDS.values()}


def test_command_modules_import_rich_only_when_they_print():
    # out and err are made on first use, and tables and markup escapes import rich where they are built.
    for module in ("eval", "check", "fmt", "audit", "test", "conformance", "compile", "bundle", "demo", "doctor",
                   "identity", "schema", "opa"):
        assert "rich" not in _imported_after(f"import agt.cli.{module}"), module
