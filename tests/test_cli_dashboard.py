"""`agt dashboard` as a user runs it: a real process serving the dashboard on TCP or a unix socket, and a
clear error (exit 1) for input it cannot use."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agt.audit import AuditLog
from agt.runtime.governor import Governor
from agt.resources import starter_policy

AGT = [sys.executable, "-m", "agt.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_with_records(tmp: Path) -> Path:
    log = tmp / "audit"
    gov = Governor("yaml", str(starter_policy("yaml")), audit=AuditLog(log, key_path=tmp / "keys" / "audit.key", durability="always"))
    gov.call(lambda path: "ok", kwargs={"path": "a.txt"}, tool="read_file", agent="support-bot")
    gov.close()
    return log


def _wait_for(client: httpx.Client, url: str, proc: subprocess.Popen) -> httpx.Response:
    deadline = time.monotonic() + 60  # an upper bound: returns as soon as the server answers
    while True:
        try:
            return client.get(url)
        except httpx.TransportError:
            if proc.poll() is not None:
                pytest.fail(f"agt dashboard exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
            if time.monotonic() > deadline:
                pytest.fail("agt dashboard did not answer")
            time.sleep(0.05)


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(30)


def test_agt_dashboard_serves_a_log_on_a_loopback_port(tmp_path: Path) -> None:
    log = _log_with_records(tmp_path)
    port = _free_port()
    proc = subprocess.Popen([*AGT, "dashboard", "--log", str(log), "--state", f"sqlite:///{tmp_path / 'state.db'}",
                             "--addr", f"127.0.0.1:{port}"], stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client() as client:
            page = _wait_for(client, f"http://127.0.0.1:{port}/", proc)
            records = client.get(f"http://127.0.0.1:{port}/api/records").json()
    finally:
        code = _stop(proc)
    assert page.status_code == 200
    assert [r["tool"] for r in records if r["kind"] == "decision"] == ["read_file"]
    # uvicorn shuts down cleanly, then re-raises the signal it caught, so the exit status is SIGTERM's.
    assert code in (0, -signal.SIGTERM)


def test_agt_dashboard_serves_on_a_unix_socket_in_a_private_directory(tmp_path: Path) -> None:
    log = _log_with_records(tmp_path)
    sock = tmp_path / "run" / "dashboard.sock"
    proc = subprocess.Popen([*AGT, "dashboard", "--log", str(log), "--unix", str(sock)], stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
            page = _wait_for(client, "http://localhost/audit", proc)
    finally:
        _stop(proc)
    assert page.status_code == 200
    assert oct(sock.parent.stat().st_mode & 0o777) == "0o700"


def test_agt_dashboard_refuses_a_socket_directory_others_can_enter(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    result = subprocess.run([*AGT, "dashboard", "--log", str(tmp_path), "--unix", str(shared / "d.sock")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "must be 0700" in result.stderr


def test_agt_dashboard_refuses_an_empty_operator_token_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("\n")
    result = subprocess.run([*AGT, "dashboard", "--log", str(tmp_path), "--operator-token-file", str(token)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "operator token file is empty" in result.stderr


def test_agt_dashboard_names_a_state_url_it_cannot_open(tmp_path: Path) -> None:
    result = subprocess.run([*AGT, "dashboard", "--log", str(tmp_path), "--state", "ftp://nowhere", "--json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "ftp://nowhere" in result.stdout
