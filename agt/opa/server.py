"""A local OPA server that agt starts, watches, restarts, and stops.

It listens on a free loopback port or a unix socket (never OPA's default of every interface), loads the
given policy paths, and counts as ready once ``GET /health?bundles`` answers 200.
"""

from __future__ import annotations

import atexit
import os
import socket
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
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.unix_socket = unix_socket
        self.binary = binary or find_opa()
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="agt-opa-")
        self._lock = threading.Lock()
        self.socket_path = os.path.join(self._tmp.name, "opa.sock")
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

    # lifecycle ------------------------------------------------------------------------------------
    def start(self) -> "ManagedOpa":
        with self._lock:
            self._start_locked()
        atexit.register(self.stop)
        return self

    def _start_locked(self) -> None:
        if self.unix_socket:
            if os.path.exists(self.socket_path):
                os.unlink(self.socket_path)
        elif not self.port:
            # A restart keeps the port, so clients holding the URL reach the new process.
            self.port = free_port()
        cmd = [
            self.binary, "run", "--server", "--addr", self.addr, "--log-level", "error",
            "--skip-version-check", *self.extra_args, *self.paths,
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
