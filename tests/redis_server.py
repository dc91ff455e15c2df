"""A real redis-server for tests: started on a free loopback port, ready when it answers PING, stopped at the end.

tests/conftest.py makes a session-wide one available as the ``redis_server`` fixture; a test that must stop
and restart its server (an outage) starts its own :class:`RedisServer`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path


def find_redis_server() -> str | None:
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One redis-server process. ``persistent`` keeps every acknowledged write on disk (AOF, fsync always),
    so a restart on the same ``directory`` and port comes back with the data, as a production Redis would."""

    def __init__(self, binary: str, directory: Path, *, port: int | None = None, persistent: bool = False,
                 password: str | None = None, unix_socket: Path | None = None) -> None:
        self.binary, self.directory, self.persistent, self.password = binary, Path(directory), persistent, password
        self.unix_socket = unix_socket
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def url_with(self, **query: str) -> str:
        from urllib.parse import urlencode

        return f"{self.url}?{urlencode(query)}"

    def unique_url(self, **query: str) -> str:
        """A URL with a prefix of its own: tests share one server without seeing each other's keys."""
        return self.url_with(prefix=f"t{uuid.uuid4().hex[:12]}", **query)

    def start(self, timeout: float = 30.0) -> "RedisServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--save", "", "--daemonize", "no", "--logfile", str(self.directory / "redis.log")]
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        if self.unix_socket is not None:
            args += ["--unixsocket", str(self.unix_socket), "--unixsocketperm", "700"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self._answers_ping():
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:] if (self.directory / "redis.log").exists() else ""
                raise RuntimeError(f"redis-server on port {self.port} exited with {self.process.returncode}: {log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING within {timeout:g} s")
            time.sleep(0.02)
        return self

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                if self.password:
                    s.sendall(f"AUTH {self.password}\r\n".encode())
                    if not s.recv(64).startswith(b"+OK"):
                        return False
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, kill: bool = True) -> None:
        """SIGKILL by default: an outage, with whatever was in flight."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(30)
        self.process = None

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=10)


def require_redis_server() -> str:
    """The redis-server binary, or the reason there is none (as pytest.skip locally, pytest.fail in CI)."""
    import pytest

    binary = find_redis_server()
    if binary is None:
        reason = "redis-server not installed (`make redis` installs Debian's redis-server package)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Redis tests: {reason}")
        pytest.skip(reason)
    return binary
