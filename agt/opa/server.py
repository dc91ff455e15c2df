"""A local OPA server that agt starts, watches, restarts, and stops.

It listens on a free loopback port or a unix socket (never OPA's default of every interface), loads the
given policy paths, and counts as ready once ``GET /health?bundles`` answers 200.

Its API is closed to everyone but agt (docs/opa-fleet.md, "The managed OPA's control plane"): OPA runs with
``--authentication=token --authorization=basic`` and a ``system.authz`` policy that agt writes into a private
0700 directory. The policy allows only the decision query (POST to the decision path, with the token; and to
``data.agt.batch`` when the decision path is the default ``data.agt.decision``) and
``GET /health``; every policy and data write is refused, token or not. The token is random per start, lives
in this process (and, if asked, a 0600 file in the private directory), and never reaches OPA's command line or
any file OPA reads: the authz policy holds only its SHA-256.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import secrets
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

import httpx

from agt.errors import AgtError
from agt.opa.binary import find_opa


class OpaStartError(AgtError):
    pass


DECISION_PATH = "/v1/data/agt/decision"
BATCH_PATH = "/v1/data/agt/batch"
"""The agt library's batch entry point (rego/agt/batch.rego), open beside the default decision path."""

_AUTHZ_POLICY = """package system.authz

# Written by agt for the OPA it manages. Only agt's decision queries and the health check get through;
# policy and data writes are refused whoever asks. The bearer token itself is never stored here.

default allow := false

allow if {{
	input.method == "POST"
	input.path in {decision_paths}
	crypto.sha256(input.identity) == "{token_sha256}"
}}

allow if {{
	input.method == "GET"
	input.path == ["health"]
}}
"""


def authz_policy(token: str, decision_path: str = DECISION_PATH) -> str:
    """The ``system.authz`` module for a managed OPA that answers ``decision_path`` to holders of ``token``
    (and ``data.agt.batch`` beside the default ``data.agt.decision``)."""
    paths = [decision_path, BATCH_PATH] if decision_path == DECISION_PATH else [decision_path]
    segments = [[seg for seg in path.split("/") if seg] for path in paths]
    return _AUTHZ_POLICY.format(
        decision_paths=json.dumps(segments), token_sha256=hashlib.sha256(token.encode()).hexdigest()
    )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


def _control_plane_namespaces(binary: str, paths: Sequence[str]) -> list[str]:
    """The namespaces under ``data.system.authz`` (or ``package system`` itself, whose rules can name
    ``authz.allow``) that ``paths`` would define, found with OPA's own parser (``opa inspect``).

    A user module in ``package system.authz`` would be merged with agt's authorization policy: its
    ``allow if true`` then opens the API, and even a conflicting value makes OPA's authorizer fail open.
    """
    namespaces: dict[str, list[str]] = {}
    for path in paths:  # opa inspect takes one path at a time
        try:
            done = subprocess.run([binary, "inspect", "--format", "json", path], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OpaStartError(f"cannot inspect {path} with {binary}: {exc}") from None
        if done.returncode != 0:
            raise OpaStartError(f"opa inspect {path} failed: {done.stderr.decode('utf-8', 'replace').strip()}")
        for ns, files in (json.loads(done.stdout or b"{}").get("namespaces") or {}).items():
            namespaces.setdefault(ns, []).extend(files)
    return sorted(
        f"{ns} ({', '.join(files)})"
        for ns, files in namespaces.items()
        if ns == "data.system" or ns == "data.system.authz" or ns.startswith("data.system.authz.")
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ManagedOpa:
    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        unix_socket: bool = False,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        ready_timeout: float = 20.0,
        decision_path: str = DECISION_PATH,
        authorization: bool = True,
        token_file: bool = False,
    ) -> None:
        """``authorization=False`` runs OPA with its API open to anyone who can reach the address: only for
        an OPA nobody else can reach, or to load signed bundles with ``--verification-key`` (OPA then
        demands a signature on every bundle, agt's authorization policy included).

        ``token_file=True`` also writes the token to ``token_path`` (0600), for another process of agt's user.
        Off by default: a governed agent running as that same user could read the file too."""
        self.paths = [str(p) for p in paths]
        self.unix_socket = unix_socket
        self.binary = binary or find_opa()
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.decision_path = decision_path
        self.authorization = authorization
        self.token_file = token_file
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="agt-opa-")
        self._lock = threading.Lock()
        self.private_dir = Path(self._tmp.name)
        """Holds the socket, the token file and the authz policy; only this user can enter it (0700)."""
        self.socket_path = os.path.join(self._tmp.name, "opa.sock")
        self.token_path = self.private_dir / "token"
        self.token = ""
        """The bearer token of the running OPA; a new one on every (re)start."""
        self.port = 0
        self.log_path = Path(self._tmp.name) / "opa.log"

    # addressing -----------------------------------------------------------------------------------
    @property
    def addr(self) -> str:
        return f"unix://{self.socket_path}" if self.unix_socket else f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        # With a unix socket the host part is ignored; httpx routes through the socket transport.
        return "http://opa" if self.unix_socket else f"http://127.0.0.1:{self.port}"

    def transport(self) -> httpx.HTTPTransport | None:
        return httpx.HTTPTransport(uds=self.socket_path) if self.unix_socket else None

    @property
    def headers(self) -> dict[str, str]:
        """The credentials for a decision query to this OPA."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    # lifecycle ------------------------------------------------------------------------------------
    def start(self) -> "ManagedOpa":
        with self._lock:
            self._start_locked()
        atexit.register(self.stop)
        return self

    def _secure_locked(self) -> list[str]:
        """Check the private directory, refuse user Rego that reaches into ``system.authz``, and write a
        fresh token and the authz policy that accepts only it. Returns the arguments that load it."""
        if not self.authorization:
            return []
        if "--verification-key" in self.extra_args:
            raise OpaStartError("OPA verifies every local bundle against --verification-key, agt's authorization "
                                "policy too: serve signed bundles through a bundle service (--config-file), or "
                                "pass authorization=False for an OPA nobody else can reach")
        mode = stat.S_IMODE(os.stat(self.private_dir).st_mode)
        if mode != 0o700:
            raise OpaStartError(f"{self.private_dir} must be private (0700), it is {mode:04o}")
        overrides = _control_plane_namespaces(self.binary, self.paths)
        if overrides:
            raise OpaStartError(
                "the policy defines OPA's authorization namespace, which agt owns for the OPA it manages: "
                + "; ".join(overrides)
            )
        self.token = secrets.token_urlsafe(32)
        if self.token_file:
            _write_private(self.token_path, self.token)
        authz_dir = self.private_dir / "authz"
        authz_dir.mkdir(mode=0o700, exist_ok=True)
        _write_private(authz_dir / "authz.rego", authz_policy(self.token, self.decision_path))
        # Read only when OPA loads paths as bundles (--bundle): this one owns nothing but system.authz.
        _write_private(authz_dir / ".manifest", json.dumps({"roots": ["system/authz"], "rego_version": 1}))
        return ["--authentication=token", "--authorization=basic", str(authz_dir)]

    def _start_locked(self) -> None:
        authz_args = self._secure_locked()
        if self.unix_socket:
            if os.path.exists(self.socket_path):
                os.unlink(self.socket_path)
        elif not self.port:
            # A restart keeps the port, so clients holding the URL reach the new process.
            self.port = free_port()
        cmd = [
            self.binary, "run", "--server", "--addr", self.addr, "--log-level", "error",
            "--skip-version-check",
            *self.extra_args, *self.paths, *authz_args,
        ]
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise OpaStartError(f"cannot start {self.binary}: {exc}") from None
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(base_url=self.url, transport=self.transport(), timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    raise OpaStartError(f"opa exited with {self._proc.returncode}: {self.log_tail()}")
                try:
                    if client.get("/health", params={"bundles": ""}).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self._kill()
        raise OpaStartError(f"opa not healthy after {self.ready_timeout}s: {self.log_tail()}")

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ensure_running(self) -> bool:
        """Restart OPA if it died. Returns True when a restart happened."""
        with self._lock:
            if self.alive():
                return False
            self.restarts += 1
            self._start_locked()
            return True

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def stop(self) -> None:
        with self._lock:
            self._kill()
        atexit.unregister(self.stop)

    def log_tail(self, limit: int = 2000) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")[-limit:].strip() or "(no output)"
        except OSError:
            return "(no log)"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> "ManagedOpa":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
