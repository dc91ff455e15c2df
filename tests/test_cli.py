"""agt.cli: commands, exit codes and --json output, run through click's test runner."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agt.cli import EXIT_ALLOW, EXIT_APPROVAL, EXIT_DENY, EXIT_ENGINE_ERROR, EXIT_ERROR, cli

EMAIL = json.dumps({"agent": {"id": "a"}, "action": {"tool": "send_email", "kind": "message"}})
READ = json.dumps({"agent": {"id": "a"}, "action": {"tool": "read_file", "kind": "read"}})
DROP = json.dumps({"agent": {"id": "a"}, "action": {"tool": "drop_table", "kind": "delete"}})


@pytest.fixture
def run(root, monkeypatch):
    monkeypatch.chdir(root)
    runner = CliRunner()
    return lambda *args, input=None: runner.invoke(cli, list(args), input=input)


@pytest.mark.parametrize("engine", ["yaml", "cedar"])
@pytest.mark.parametrize(
    "doc,code", [(READ, EXIT_ALLOW), (DROP, EXIT_DENY), (EMAIL, EXIT_APPROVAL)], ids=["allow", "deny", "approval"]
)
def test_eval_exit_code_follows_effect(run, engine, doc, code):
    assert run("eval", "--engine", engine, "-", input=doc).exit_code == code


def test_eval_json_prints_the_decision(run, starter_cedar):
    result = run("eval", "--policy", starter_cedar, "--json", "-", input=EMAIL)
    out = json.loads(result.output)
    assert out["effect"] == "require_approval"
    assert out["approvers"] == ["comms-lead"]
    assert out["engine"] == "cedar"


def test_eval_reads_an_action_file(run, tmp_path, starter_yaml):
    f = tmp_path / "a.json"
    f.write_text(DROP)
    result = run("eval", "-p", starter_yaml, str(f))
    assert result.exit_code == EXIT_DENY
    assert "block-destructive-db-tools" in result.output


def test_eval_invalid_action_is_an_error_naming_the_field(run):
    result = run("eval", "-", input=json.dumps({"agent": {"id": "a", "trust_score": 5000}, "action": {"tool": "x"}}))
    assert result.exit_code == EXIT_ERROR
    assert "agent.trust_score" in result.output


def test_eval_nan_param_is_rejected_not_allowed(run):
    result = run("eval", "-", input='{"agent": {"id": "a"}, "action": {"tool": "read_file", "params": {"x": NaN}}}')
    assert result.exit_code == EXIT_ERROR
    assert "action.params.x" in result.output


def test_eval_malformed_json_names_line_and_column(run):
    result = run("eval", "-", input='{"agent": \n  {"id": }')
    assert result.exit_code == EXIT_ERROR
    assert "<stdin>:2:" in result.output


def test_check_valid_policy_lists_rules(run, starter_yaml):
    result = run("check", "--json", starter_yaml)
    out = json.loads(result.output)
    assert result.exit_code == 0 and out["ok"]
    assert "email-approval" in {r["id"] for r in out["rules"]}


def test_check_guesses_cedar_for_a_cedar_directory(run, starter_cedar):
    out = json.loads(run("check", "--json", starter_cedar).output)
    assert out["engine"] == "cedar"


def test_check_bad_policy_reports_file_line_and_rule(run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: governance.toolkit/v1\nname: b\nrules:\n  - name: r1\n    action: deny\n"
        "    condition: \"tool_name ==\"\n"
    )
    result = run("check", "--json", str(bad))
    out = json.loads(result.output)
    assert result.exit_code == EXIT_ERROR
    assert (out["file"], out["line"], out["rule"]) == (str(bad), 6, "r1")


def test_doctor_json_lists_engines(run):
    out = json.loads(run("doctor", "--json").output)
    assert out["engines"]["cedar"]["available"] is True
    assert out["engines"]["cedar"]["version"].startswith("cedarpy ")


def test_demo_json_reports_engine_agreement(run):
    result = run("demo", "--json")
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 0
    assert len(rows) >= 10
    assert all(r["agree"] for r in rows)
    assert {r["decisions"]["yaml"]["effect"] for r in rows} == {"allow", "deny", "require_approval"}


def test_demo_table_mentions_every_engine(run):
    result = run("demo")
    assert result.exit_code == 0
    assert "yaml" in result.output and "cedar" in result.output


def test_schema_prints_the_json_schema(run):
    out = json.loads(run("schema").output)
    assert out["title"] == "agt action document"


def test_help_shows_quick_start(run):
    assert "Quick start" in run("--help").output


def test_eval_with_opa_engine(run, opa_binary):
    result = run("eval", "--engine", "opa", "-p", "rego", "--json", "-", input=EMAIL)
    assert result.exit_code == EXIT_APPROVAL
    assert json.loads(result.output)["engine"] == "opa"


def test_eval_opa_unreachable_url_denies_with_the_engine_error_exit_code(run):
    from agt.opa.server import free_port

    result = run("eval", "--engine", "opa", "--opa-url", f"http://127.0.0.1:{free_port()}", "--json", "-", input=READ)
    assert result.exit_code == EXIT_ENGINE_ERROR
    assert json.loads(result.output)["reasons"][0]["id"] == "engine_error"


def test_conformance_run_writes_json_and_junit(run, tmp_path, opa_binary):
    j, x = tmp_path / "r.json", tmp_path / "r.xml"
    result = run("conformance", "run", "conformance/secrets.yaml", "--json", str(j), "--junit", str(x))
    assert result.exit_code == 0, result.output
    data = json.loads(j.read_text())
    assert data["passed"] and data["suites"][0]["engines"] == ["yaml", "cedar", "opa"]
    assert "<testsuites" in x.read_text()


def test_conformance_run_exits_1_and_shows_the_disagreement(run, tmp_path):
    broken = tmp_path / "broken.yaml"
    import shutil

    shutil.copy("conformance/starter.yaml", broken)
    text = broken.read_text().replace("../policies/starter.yaml", str(Path("policies/starter.yaml").resolve()))
    text = text.replace("../cedar", str(Path("cedar").resolve())).replace("../rego", str(Path("rego").resolve()))
    text = text.replace("../policies/catalog.yaml", str(Path("policies/catalog.yaml").resolve()))
    text = text.replace("expect: {effect: allow, rules: [default]}}", "expect: {effect: deny, rules: [nope]}}", 1)
    broken.write_text(text)
    result = run("conformance", "run", str(broken), "-e", "yaml,cedar", "--no-coverage")
    assert result.exit_code == 1
    assert "read file in workspace" in result.output


def test_conformance_fuzz_json(run, tmp_path):
    result = run("conformance", "fuzz", "conformance/starter.yaml", "-n", "300", "--seed", "4", "-e", "yaml,cedar",
                 "--out", str(tmp_path), "--json")
    out = json.loads(result.output)
    assert result.exit_code == 0
    assert (out["generated"], out["disagreements"]) == (300, 0)


def _pending_request(db: str, approvers=("comms-lead", "ops"), quorum=2, agent="alice") -> str:
    import time as _time

    from agt.runtime.approvals import SqliteApprovals, new_request
    from approval_helpers import stored_call

    req = new_request(agent, "send_email", ("email-approval",), approvers, quorum, 300, stored_call(agent), _time.time())
    SqliteApprovals(db).create(req)
    return req.id


@pytest.fixture
def keys(run, tmp_path, monkeypatch):
    """An approver key store with keys for comms-lead, ops and mallory, made by `agt approvals keygen`."""
    directory = tmp_path / "approver-keys"
    monkeypatch.setenv("AGT_APPROVER_KEYS", str(directory))
    for name in ("comms-lead", "ops", "mallory"):
        assert run("approvals", "keygen", name, "--registry", str(tmp_path / "registry.json")).exit_code == 0
    return directory


def test_approvals_keygen_writes_a_private_key_and_a_registry_entry(keys, tmp_path):
    from agt.runtime.approvers import ApproverRegistry

    assert (keys / "ops.key").stat().st_mode & 0o077 == 0
    assert ApproverRegistry.from_file(tmp_path / "registry.json").names == ("comms-lead", "mallory", "ops")


def test_approvals_registry_exports_the_public_keys_of_the_key_store(run, keys, tmp_path):
    out = json.loads(run("approvals", "registry").output)
    assert out == json.loads((tmp_path / "registry.json").read_text())


def test_approvals_list_json_shows_pending(run, tmp_path):
    db = str(tmp_path / "a.db")
    rid = _pending_request(db)
    out = json.loads(run("approvals", "list", "--db", db, "--json").output)
    assert [(r["id"], r["status"]) for r in out] == [(rid, "pending")]


def test_approvals_quorum_needs_two_approvers(run, keys, tmp_path):
    db = str(tmp_path / "a.db")
    rid = _pending_request(db)
    assert "pending (1/2" in run("approvals", "approve", rid, "--as", "comms-lead", "--db", db).output
    assert "approved (2/2" in run("approvals", "approve", rid, "--as", "ops", "--db", db).output


def test_approvals_approve_stores_a_vote_that_verifies(run, keys, tmp_path):
    db = str(tmp_path / "a.db")
    rid = _pending_request(db, quorum=1)
    run("approvals", "approve", rid, "--as", "ops", "--db", db)
    shown = json.loads(run("approvals", "show", rid, "--db", db, "--registry", str(tmp_path / "registry.json")).output)
    assert (shown["status"], shown["approvals"], shown["votes"][0]["approver"]) == ("approved", ["ops"], "ops")


@pytest.mark.parametrize("name,message", [("mallory", "not an approver"), ("security", "no key for approver 'security'")],
                         ids=["not-listed", "no-key"])
def test_approvals_approve_is_refused_for_an_unlisted_approver_or_a_missing_key(run, keys, tmp_path, name, message):
    db = str(tmp_path / "a.db")
    rid = _pending_request(db)
    result = run("approvals", "approve", rid, "--as", name, "--db", db)
    assert (result.exit_code, message in result.output) == (EXIT_ERROR, True)


def test_approvals_deny_is_final(run, keys, tmp_path):
    db = str(tmp_path / "a.db")
    rid = _pending_request(db)
    assert "denied" in run("approvals", "deny", rid, "--as", "ops", "--db", db).output
    assert run("approvals", "approve", rid, "--as", "comms-lead", "--db", db).exit_code == EXIT_ERROR


def test_approvals_show_unknown_id_is_an_error(run, tmp_path):
    result = run("approvals", "show", "apr_nope", "--db", str(tmp_path / "a.db"))
    assert result.exit_code == EXIT_ERROR and "no approval request" in result.output


def test_approvals_cli_reaches_requests_held_in_redis(run, keys, redis_server):
    """An approver votes from the CLI on a request a replica stored in Redis; the password never shows."""
    import time as _time

    from agt.runtime.approvals import new_request
    from agt.runtime.redis_state import RedisApprovals
    from approval_helpers import stored_call

    url = redis_server.unique_url().replace("redis://", "redis://default:not-shown@")
    req = new_request("alice", "send_email", ("email-approval",), ("ops",), 1, 300, stored_call("alice"), _time.time())
    RedisApprovals(url).create(req)
    listed = run("approvals", "list", "--db", url)
    assert req.id in listed.output and "not-shown" not in listed.output
    assert "approved (1/1" in run("approvals", "approve", req.id, "--as", "ops", "--db", url).output
    assert len(RedisApprovals(url).get(req.id).votes) == 1
