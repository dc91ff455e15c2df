"""Attacks on the audit writer: inputs that stop it, and faults that would let tools run unaudited.

The agent controls tool errors, tool results, its own id and params, and what it can POST to a bundle
server on loopback. None of it may stop the writer, drop a record, or let a tool run while nothing can
be recorded. Faults are injected (a backend that fails, a closed log); the log, the Governor, the
bundle server and the `agt bundle serve` process are real.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import httpx
import pytest

from agt.audit import AuditLog, load_public_key, records, verify_log
from agt.bundle.server import MAX_STATUS_BYTES, MAX_STATUS_INSTANCES, BundleServer, BundleService, BundleSource
from agt.errors import AgtError, GovernanceDenied
from agt.runtime import Governor

ROOT = Path(__file__).resolve().parents[2]
STARTER = str(ROOT / "policies" / "starter.yaml")
LONE = "\ud800"


@pytest.fixture
def keys(tmp_path) -> Path:
    return tmp_path / "operator"


@pytest.fixture
def batch_log(tmp_path, keys):
    log = AuditLog(tmp_path / "log", key_path=keys / "audit.key", durability="batch")
    yield log
    log.close()


def stored(log: AuditLog) -> list[dict]:
    log.flush()
    return [rec for _, rec, _ in records(log.backend) if rec]


def read_doc(name: str) -> str:
    return f"contents of {name}"


# --- text that UTF-8 cannot encode -------------------------------------------------------------------


def test_a_lone_surrogate_in_a_tool_error_does_not_stop_the_writer(batch_log):
    gov = Governor("yaml", STARTER, audit=batch_log)

    def failing(name: str) -> str:
        raise ValueError(LONE)

    with pytest.raises(ValueError):
        gov.call(failing, kwargs={"name": "a.txt"}, tool="read_doc", agent="agent-1")
    gov.call(read_doc, kwargs={"name": "b.txt"}, tool="read_doc", agent="agent-1")
    assert [r["result"].get("tool_error") for r in stored(batch_log) if r["kind"] == "decision"] == ["ValueError: \\ud800", None]


def test_a_lone_surrogate_in_the_agent_id_is_denied_and_recorded_escaped(batch_log):
    gov = Governor("yaml", STARTER, audit=batch_log)
    with pytest.raises(GovernanceDenied, match="surrogate"):
        gov.call(read_doc, kwargs={"name": "x.txt"}, tool="read_doc", agent=f"agent{LONE}")
    assert [r["agent_id"] for r in stored(batch_log) if r["kind"] == "decision"] == ["agent\\ud800"]


def test_a_lone_surrogate_in_params_is_denied_and_the_denial_recorded(batch_log):
    gov = Governor("yaml", STARTER, audit=batch_log)
    with pytest.raises(GovernanceDenied, match="surrogate"):
        gov.call(read_doc, kwargs={"name": f"x{LONE}.txt"}, tool="read_doc", agent="agent-1")
    assert [r["result"]["effect"] for r in stored(batch_log) if r["kind"] == "decision"] == ["deny"]


def test_a_log_with_escaped_records_verifies(batch_log, keys):
    batch_log.append({"decision_id": "d", "agent_id": LONE, "result": {LONE: [LONE]}})
    batch_log.checkpoint()
    report = verify_log(batch_log.backend.dir, load_public_key(keys / "audit.pub"), strict=True)
    assert report.ok, report.first_problem


@pytest.fixture
def served(tmp_path, keys):
    rego = tmp_path / "rego"
    rego.mkdir()
    (rego / "p.rego").write_text("package agt.p\n\nx := 1\n")
    audit = AuditLog(tmp_path / "server-log", key_path=keys / "server.key", durability="batch")
    server = BundleServer(BundleService([BundleSource("agt", [rego])], audit=audit, token="t0k")).start()
    client = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer t0k"}, timeout=30)
    yield client
    client.close()
    server.stop()
    audit.close()


def opa_event(i: int, agent: str = "a") -> dict:
    return {"decision_id": f"opa-{i}", "path": "agt/decision", "input": {"agent": {"id": agent}},
            "result": {"effect": "allow"}, "timestamp": "2026-11-23T08:00:00Z"}


def test_a_lone_surrogate_in_an_opa_decision_event_does_not_stop_the_receiver(served):
    first = served.post("/logs", content=json.dumps([opa_event(1, agent=LONE)]))
    later = [served.post("/logs", content=json.dumps([opa_event(i)])).status_code for i in range(2, 5)]
    assert (first.status_code, later) == (200, [200, 200, 200])


# --- bad bodies for the receiver ---------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/logs", "/status"])
def test_a_deeply_nested_body_gets_400_not_a_dropped_connection(served, route):
    r = served.post(route, content=b"[" * 100_000 + b"]" * 100_000)
    assert r.status_code == 400 and "nested" in r.json()["message"]


def test_a_deeply_nested_gzipped_body_gets_400(served):
    r = served.post("/logs", content=gzip.compress(b"[" * 100_000 + b"]" * 100_000), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400


def test_an_oversized_status_report_gets_413(served):
    r = served.post("/status", content=json.dumps({"labels": {"id": "x"}, "pad": "x" * MAX_STATUS_BYTES}))
    assert r.status_code == 413


def test_status_keeps_a_bounded_number_of_instances(served):
    for i in range(MAX_STATUS_INSTANCES + 5):
        assert served.post("/status", content=json.dumps({"labels": {"id": f"i{i}"}})).status_code == 200
    kept = served.get("/status").json()
    assert (len(kept), "i0" in kept, f"i{MAX_STATUS_INSTANCES + 4}" in kept) == (MAX_STATUS_INSTANCES, False, True)


# --- a writer that cannot write: the tool must not run -----------------------------------------------


def broken_backend(log: AuditLog):
    return mock.patch.object(log.backend, "append_many", side_effect=OSError(28, "No space left on device"))  # append too


def test_a_stopped_writer_denies_the_next_call_before_its_tool_runs(batch_log):
    gov = Governor("yaml", STARTER, audit=batch_log)
    ran = []
    with broken_backend(batch_log):
        batch_log.append({"decision_id": "lost"})
        with pytest.raises(AgtError, match="No space left"):
            batch_log.flush()  # returns once the writer has met the fault, and reports it
    with pytest.raises(GovernanceDenied) as denied:
        gov.call(lambda name: ran.append(name), kwargs={"name": "a.txt"}, tool="read_doc", agent="agent-1")
    assert (ran, denied.value.rule_ids, "No space left" in str(denied.value)) == ([], ("audit-unavailable",), True)


def test_a_closed_log_denies_the_call_before_its_tool_runs(tmp_path, keys):
    log = AuditLog(tmp_path / "log", key_path=keys / "audit.key", durability="always")
    gov = Governor("yaml", STARTER, audit=log)
    log.close()
    ran = []
    with pytest.raises(GovernanceDenied, match="audit-unavailable"):
        gov.call(lambda name: ran.append(name), kwargs={"name": "a.txt"}, tool="read_doc", agent="agent-1")
    assert ran == []


def test_a_failed_write_denies_every_later_call_before_its_tool_runs(tmp_path, keys):
    log = AuditLog(tmp_path / "log", key_path=keys / "audit.key", durability="always")
    gov = Governor("yaml", STARTER, audit=log)
    with broken_backend(log), pytest.raises(OSError):
        gov.call(read_doc, kwargs={"name": "a.txt"}, tool="read_doc", agent="agent-1")
    ran = []
    with pytest.raises(GovernanceDenied, match="audit-unavailable"):
        gov.call(lambda name: ran.append(name), kwargs={"name": "b.txt"}, tool="read_doc", agent="agent-1")
    assert ran == []
    log.close()


def test_the_audit_fault_is_logged(batch_log, caplog):
    gov = Governor("yaml", STARTER, audit=batch_log)
    batch_log.close()
    with pytest.raises(GovernanceDenied):
        gov.call(read_doc, kwargs={"name": "a.txt"}, tool="read_doc", agent="agent-1")
    assert any("audit log cannot record" in r.getMessage() for r in caplog.records)


# --- tool outcomes without a text form ---------------------------------------------------------------


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_a_result_whose_str_raises_is_audited_and_returned(batch_log):
    gov = Governor("yaml", STARTER, audit=batch_log)
    result = Unprintable()
    assert gov.call(lambda name: result, kwargs={"name": "a.txt"}, tool="read_doc", agent="agent-1") is result
    assert [r["result"]["effect"] for r in stored(batch_log) if r["kind"] == "decision"] == ["allow"]


def test_a_result_an_output_engine_cannot_read_is_denied_and_audited(batch_log, tmp_path):
    """The agent hides its output from the output check behind a __str__ that raises."""
    from agt.engines.yaml import YamlEngine

    out_policy = tmp_path / "output.yaml"
    out_policy.write_text("apiVersion: governance.toolkit/v1\nname: out\ndefault_action: allow\nrules:\n"
                          "  - {name: no-keys, action: deny, condition: \"params_text contains 'BEGIN'\"}\n")
    gov = Governor("yaml", STARTER, audit=batch_log, output_engine=YamlEngine(str(out_policy)))
    with pytest.raises(GovernanceDenied, match="output cannot be checked"):
        gov.call(lambda name: Unprintable(), kwargs={"name": "a.txt"}, tool="read_doc", agent="agent-1")
    assert [(r["path"], r["result"]["effect"]) for r in stored(batch_log) if r["kind"] == "decision"] == [("output", "deny")]


def test_a_tool_error_whose_str_raises_is_audited_and_reraised(batch_log):
    gov = Governor("yaml", STARTER, audit=batch_log)

    def failing(name: str) -> str:
        raise UnprintableError()

    with pytest.raises(UnprintableError):
        gov.call(failing, kwargs={"name": "a.txt"}, tool="read_doc", agent="agent-1")
    assert [r["result"].get("tool_error") for r in stored(batch_log) if r["kind"] == "decision"] == [
        "UnprintableError: <UnprintableError: str() raised RuntimeError>"]


# --- agt bundle serve, stopped by a service manager --------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_bundle_serve_closes_the_log_with_a_final_checkpoint_on_a_stop_signal(tmp_path, keys, sig):
    rego = tmp_path / "rego"
    rego.mkdir()
    (rego / "p.rego").write_text("package agt.p\n\nx := 1\n")
    port = free_port()
    log_dir = tmp_path / "log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agt.cli", "bundle", "serve", "--bundle", f"agt={rego}", "--log", str(log_dir),
         "--audit-key", str(keys / "audit.key"), "--port", str(port), "--token", "t0k"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "Bearer t0k"}, timeout=30) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    client.get("/status")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise AssertionError(f"agt bundle serve did not start: {proc.stderr.read().decode() if proc.poll() is not None else ''}")
                    time.sleep(0.2)
            for i in range(7):  # 7 records, far fewer than checkpoint_every: only the close can cover them
                assert client.post("/logs", content=json.dumps([opa_event(i)])).status_code == 200
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr.decode()
    report = verify_log(log_dir, load_public_key(keys / "audit.pub"), strict=True)
    assert (report.ok, report.records, report.covered) == (True, 7, 7), report.first_problem
