"""Exit codes (docs/cli.md), JSON errors under --json, and defaults that work from any directory."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agt.cli import EXIT_ENGINE_ERROR, EXIT_ERROR, EXIT_USAGE, cli

AGT = str(Path(sys.executable).parent / "agt")
READ = json.dumps({"agent": {"id": "a"}, "action": {"tool": "read_file", "kind": "read"}})
EMAIL = json.dumps({"agent": {"id": "a"}, "action": {"tool": "send_email", "kind": "message"}})


def _invoke(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input)


def _commands(group=cli, prefix=("agt",)):
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), cmd


# --- the engine-error code ----------------------------------------------------------------------


def test_an_unreachable_opa_exits_with_the_engine_error_code_not_deny():
    from agt.opa.server import free_port

    result = _invoke("eval", "-e", "opa", "--opa-url", f"http://127.0.0.1:{free_port()}", "-", input=READ)
    assert result.exit_code == EXIT_ENGINE_ERROR == 5


def test_a_timeout_exits_with_the_engine_error_code():
    import socket

    with socket.socket() as s:  # accepts the connection (backlog), never answers
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        result = _invoke("eval", "-e", "opa", "--opa-url", url, "--opa-timeout", "0.2", "--json", "-", input=READ)
    assert result.exit_code == EXIT_ENGINE_ERROR
    assert "timeout" in json.loads(result.output)["reasons"][0]["message"]


def test_a_condition_that_errors_exits_with_the_engine_error_code(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: governance.toolkit/v1\nname: p\nrules:\n  - name: big\n    action: deny\n"
                      "    condition: \"action.params.size > 10\"\n")
    doc = json.dumps({"agent": {"id": "a"}, "action": {"tool": "t", "params": {"size": "huge"}}})
    assert _invoke("eval", "-p", str(policy), "-", input=doc).exit_code == EXIT_ENGINE_ERROR


# --- JSON errors ----------------------------------------------------------------------------------------


def test_a_bad_action_under_json_is_a_json_error_with_file_and_line():
    result = _invoke("eval", "--json", "-", input='{"agent": \n  {"id": }')
    doc = json.loads(result.output)
    assert result.exit_code == EXIT_ERROR
    assert (doc["ok"], doc["file"], doc["line"], doc["exit_code"]) == (False, "<stdin>", 2, EXIT_ERROR)


def test_a_policy_load_error_under_json_names_file_line_and_rule(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: governance.toolkit/v1\nname: b\nrules:\n  - name: r1\n    action: deny\n"
                   "    condition: \"tool_name ==\"\n")
    doc = json.loads(_invoke("eval", "-p", str(bad), "--json", "-", input=READ).output)
    assert (doc["file"], doc["line"], doc["rule"], doc["type"]) == (str(bad), 6, "r1", "PolicyLoadError")


def test_a_usage_error_under_json_is_a_json_error_with_code_2():
    result = _invoke("eval", "--json", "--engine", "nope", "-", input=READ)
    doc = json.loads(result.output)
    assert result.exit_code == EXIT_USAGE and doc["exit_code"] == EXIT_USAGE and "nope" in doc["error"]


def test_an_error_without_json_stays_text_on_stderr():
    result = CliRunner().invoke(cli, ["eval", "-"], input="{")
    assert result.exit_code == EXIT_ERROR and result.output.startswith("error:")


def test_an_invalid_bundle_under_json_is_a_json_error(tmp_path):
    (tmp_path / "b.tar.gz").write_bytes(b"not a bundle")
    (tmp_path / "k.pem").write_text("not a key")
    result = _invoke("bundle", "verify", str(tmp_path / "b.tar.gz"), "--verification-key", str(tmp_path / "k.pem"), "--json")
    assert result.exit_code == EXIT_ERROR and json.loads(result.output)["ok"] is False


# --- one table, and --json everywhere ----------------------------------------------------------------


LONG_RUNNING = {"agt bundle serve", "agt mcp proxy"}  # servers (mcp proxy speaks MCP on stdout): nothing to print as JSON


def test_every_command_has_a_json_option():
    missing = [path for path, cmd in _commands() if path not in LONG_RUNNING
               and not any("--json" in p.opts for p in cmd.params)]
    assert missing == []


def test_docs_cli_md_has_a_row_for_every_command(root):
    table = (root / "docs" / "cli.md").read_text()
    rows = set(re.findall(r"^\| `(agt[^`]*)` \|", table, re.MULTILINE))
    assert [path for path, _ in _commands() if path not in rows] == []


def test_help_lists_the_exit_codes():
    for args in (["--help"], ["eval", "--help"]):
        text = _invoke(*args).output
        assert "Exit codes" in text and "5  agt eval: deny because the engine could not decide" in text


# --- from any directory (the installed console script, cwd outside the checkout) ------------------------


def _run(args, cwd, input=None):
    env = {k: v for k, v in os.environ.items() if k not in ("AGT_OPA_URL",)}
    return subprocess.run([AGT, *args], cwd=cwd, input=input, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("engine", ["yaml", "cedar"])
def test_eval_uses_the_shipped_starter_from_any_directory(tmp_path, engine):
    done = _run(["eval", "-e", engine, "--json", "-"], tmp_path, input=EMAIL)
    assert done.returncode == 4, done.stderr
    assert json.loads(done.stdout)["approvers"] == ["comms-lead"]


def test_eval_opa_uses_the_shipped_rego_from_any_directory(tmp_path, opa_binary):
    done = _run(["eval", "-e", "opa", "--json", "-"], tmp_path, input=EMAIL)
    assert done.returncode == 4, done.stderr


def test_demo_runs_from_any_directory(tmp_path):
    done = _run(["demo", "--engines", "yaml,cedar", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert all(json.loads(line)["agree"] for line in done.stdout.splitlines())
