"""agt.audit.witness: checkpoints copied to a file or to an `agt bundle serve` receiver, the failure
of a witness (never blocking the log, always reported), and verify --witness over both kinds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agt.audit import AuditLog, load_public_key, records, verify_log
from agt.audit.witness import FileWitness, HttpWitness, WitnessError
from agt.bundle.server import BundleServer, BundleService, BundleSource
from agt.cli import cli


def event(i: int) -> dict:
    return {"decision_id": f"d{i}", "kind": "decision", "agent_id": "a", "result": {"effect": "allow"}}


def write(log_dir: Path, key: Path, n: int, **kwargs) -> AuditLog:
    log = AuditLog(log_dir, key_path=key, checkpoint_every=10, durability="none", **kwargs)
    for i in range(n):
        log.append(event(i))
    return log


def sizes(witness) -> list[int]:
    return [w.checkpoint["size"] for w in witness.checkpoints()]


def test_a_file_witness_receives_every_checkpoint(tmp_path):
    with write(tmp_path / "log", tmp_path / "k" / "a.key", 25, witness=tmp_path / "w.jsonl") as log:
        log.flush_witness()
    assert sizes(FileWitness(tmp_path / "w.jsonl")) == [0, 10, 20, 25]


def test_a_witness_file_inside_the_log_directory_is_refused(tmp_path):
    with pytest.raises(Exception, match="inside the log directory"):
        AuditLog(tmp_path / "log", key_path=tmp_path / "a.key", witness=tmp_path / "log" / "w.jsonl")


def test_an_unwritable_witness_does_not_stop_the_log(tmp_path):
    with write(tmp_path / "log", tmp_path / "a.key", 25, witness=tmp_path / "missing-dir" / "w.jsonl") as log:
        assert log.size == 25


def test_an_unwritable_witness_is_reported(tmp_path):
    with write(tmp_path / "log", tmp_path / "a.key", 5, witness=tmp_path / "missing-dir" / "w.jsonl") as log:
        assert "not witnessed" in (log.flush_witness() or "")


def test_checkpoints_that_missed_the_witness_reach_it_once_it_is_back(tmp_path):
    witness = tmp_path / "later" / "w.jsonl"
    with write(tmp_path / "log", tmp_path / "a.key", 15, witness=witness) as log:
        assert log.flush_witness() is not None
        witness.parent.mkdir()
        assert log.flush_witness() is None
    assert sizes(FileWitness(witness)) == [0, 10, 15]


def test_verify_reports_checkpoints_the_witness_lacks(tmp_path):
    write(tmp_path / "log", tmp_path / "a.key", 25, witness=tmp_path / "w.jsonl").close()
    lines = (tmp_path / "w.jsonl").read_text().splitlines()
    (tmp_path / "w.jsonl").write_text(lines[0] + "\n")
    report = verify_log(tmp_path / "log", load_public_key(tmp_path / "a.pub"), witness=tmp_path / "w.jsonl")
    assert report.ok and any("not in the witness" in w for w in report.warnings)


def test_strict_verify_fails_on_checkpoints_the_witness_lacks(tmp_path):
    write(tmp_path / "log", tmp_path / "a.key", 25, witness=tmp_path / "w.jsonl").close()
    (tmp_path / "w.jsonl").write_text("")
    assert not verify_log(tmp_path / "log", load_public_key(tmp_path / "a.pub"), strict=True, witness=tmp_path / "w.jsonl").ok


def test_verify_ignores_witness_entries_signed_with_another_key(tmp_path):
    write(tmp_path / "other", tmp_path / "b.key", 5, witness=tmp_path / "w.jsonl").close()
    write(tmp_path / "log", tmp_path / "a.key", 5, witness=tmp_path / "w.jsonl").close()
    report = verify_log(tmp_path / "log", load_public_key(tmp_path / "a.pub"), witness=tmp_path / "w.jsonl")
    assert (report.ok, report.witnessed) == (True, 2)


def test_an_unreadable_witness_is_a_problem(tmp_path):
    write(tmp_path / "log", tmp_path / "a.key", 5).close()
    report = verify_log(tmp_path / "log", load_public_key(tmp_path / "a.pub"), witness=tmp_path / "nope.jsonl")
    assert not report.ok and "cannot read the witness" in str(report.first_problem)


# --- the bundle server as a witness -------------------------------------------------------------------


@pytest.fixture
def server(tmp_path):
    rego = tmp_path / "rego"
    rego.mkdir()
    (rego / "p.rego").write_text("package agt.p\n\nx := 1\n")
    audit = AuditLog(tmp_path / "server-log", key_path=tmp_path / "server.key", durability="always")
    srv = BundleServer(BundleService([BundleSource("agt", [rego])], audit=audit, token="t0k")).start()
    yield srv
    srv.stop()
    audit.close()


def test_an_http_witness_keeps_checkpoints_in_the_servers_audit_log(tmp_path, server):
    with write(tmp_path / "log", tmp_path / "a.key", 15, witness=server.url, witness_token="t0k") as log:
        assert log.flush_witness() is None
    kept = [r["result"]["size"] for _, r, _ in records(tmp_path / "server-log") if r and r["kind"] == "audit_checkpoint"]
    assert kept == [0, 10, 15]


def test_an_http_witness_without_the_token_is_refused(server):
    with pytest.raises(WitnessError, match="401"):
        HttpWitness(server.url).send({"size": 0})


def test_verify_with_an_http_witness_detects_deleted_checkpoints(tmp_path, server):
    with write(tmp_path / "log", tmp_path / "a.key", 25, witness=server.url, witness_token="t0k") as log:
        log.flush_witness()
    lines = (tmp_path / "log" / "checkpoints.jsonl").read_text().splitlines()
    (tmp_path / "log" / "checkpoints.jsonl").write_text("".join(line + "\n" for line in lines[:2]))
    result = CliRunner().invoke(cli, ["audit", "verify", "--log", str(tmp_path / "log"), "--key", str(tmp_path / "a.pub"),
                                      "--witness", server.url, "--witness-token", "t0k", "--json"])
    report = json.loads(result.output)
    assert (result.exit_code, report["ok"], "missing from the log" in report["first_problem"]) == (1, False, True)
