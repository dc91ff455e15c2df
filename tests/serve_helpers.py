"""A real agt serve over a Governor on the starter policy, for the serve and client tests: in a thread (uvicorn), or as
an `agt serve` process."""

from __future__ import annotations

import contextlib
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from approval_helpers import Approvers  # noqa: E402

from agt.runtime.audit import MemoryAuditSink
from agt.runtime.governor import Governor
from agt.serve.app import create_app
from agt.serve.auth import Credentials
from agt.serve.server import Listen, running

ROOT = Path(__file__).resolve().parents[1]
STARTER = str(ROOT / "policies" / "starter.yaml")
AGENT_TOKEN = secrets.token_urlsafe(24)
OPERATOR_TOKEN = secrets.token_urlsafe(24)
CREDENTIALS = Credentials(AGENT_TOKEN.encode(), OPERATOR_TOKEN.encode())
APPROVERS = Approvers("comms-lead", "finance-lead")
AGT = [sys.executable, "-m", "agt.cli", "serve"]


def starter_governor(engine: str = "yaml", policy: str = STARTER, **options) -> Governor:
    options.setdefault("approvers", APPROVERS.registry)
    return Governor(engine, policy, audit=MemoryAuditSink(), blocking_approvals=False, **options)


@contextlib.contextmanager
def served(governor: Governor | None = None, *, credentials: Credentials = CREDENTIALS, listen: Listen | None = None,
           **app_options) -> Iterator[tuple[str, Governor]]:
    """(the service's URL, its Governor) while the block runs."""
    gov = governor or starter_governor()
    try:
        with running(create_app(gov, credentials=credentials, **app_options), listen or Listen(port=0)) as url:
            yield url, gov
    finally:
        gov.close()


def headers(token: str | None = AGENT_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def decisions(gov: Governor) -> list:
    return [r for r in gov.audit.records if r.kind == "decision"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token_file(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text(secrets.token_urlsafe(24) + "\n")
    return path


@contextlib.contextmanager
def agt_serve(tmp_path: Path, *args: str, ready: Callable[[], bool], policy: str = STARTER) -> Iterator[subprocess.Popen]:
    """`agt serve` as a process in ``tmp_path`` (its audit log there), until ``ready()``; SIGTERM when done."""
    proc = subprocess.Popen([*AGT, "--policy", policy, "--audit-log", str(tmp_path / "audit"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if proc.poll() is not None:
                raise AssertionError(f"agt serve exited {proc.returncode}: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise AssertionError("agt serve did not become ready")
            time.sleep(0.05)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def healthy(url: str, **client) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with httpx.Client(**client) as c:
                return c.get(url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return check
