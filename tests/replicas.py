"""Replicas for the scale-out tests: each runner is one replica (a Governor in this process, a Governor in
another OS process, an `agt serve` process driven over HTTP by RemoteGovernor clients) that makes governed calls against shared state.

A runner is started (``start``), waits until the test says go, and reports how many calls it let run
(``result``). Adding a kind of replica is adding a runner class.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

WORKER = Path(__file__).with_name("replica_worker.py")
ROOT = Path(__file__).resolve().parents[1]


class Runner(Protocol):
    def start(self) -> None:
        """Build the replica; returns once it is ready to make calls."""
        ...

    def result(self, timeout: float) -> int:
        """After go: how many calls ran."""
        ...


@dataclass
class InProcess:
    """A Governor in this process with ``threads`` threads. ``open_state`` gives its stores: a new connection
    per replica for SQLite and Redis, the same objects for memory (threads share one process's store)."""

    policy: str
    open_state: Callable[[], object]
    task: str
    go: threading.Event
    threads: int = 8
    attempts: int = 10
    _ran: int = 0
    _workers: list[threading.Thread] = field(default_factory=list)
    _errors: list[BaseException] = field(default_factory=list)

    def start(self) -> None:
        from agt.runtime import Governor

        state = self.open_state()
        self._state = state
        self._gov = Governor("yaml", self.policy, store=state.store, approvals=state.approvals, trust=state.trust)
        lock = threading.Lock()

        def work() -> None:
            from agt.errors import GovernanceDenied

            self.go.wait()
            try:
                for _ in range(self.attempts):
                    try:
                        self._gov.call(lambda: None, tool="read_doc", agent="worker", task=self.task)
                    except GovernanceDenied:
                        continue
                    with lock:
                        self._ran += 1
            except BaseException as exc:  # noqa: BLE001 - reported by result()
                self._errors.append(exc)

        self._workers = [threading.Thread(target=work, daemon=True) for _ in range(self.threads)]
        for w in self._workers:
            w.start()

    def result(self, timeout: float) -> int:
        for w in self._workers:
            w.join(timeout)
        assert not any(w.is_alive() for w in self._workers), "an in-process replica did not finish"
        assert self._errors == [], self._errors
        self._state.close()
        return self._ran


@dataclass
class Subprocess:
    """A Governor in another OS process (tests/replica_worker.py) with ``threads`` threads."""

    policy: str
    state_url: str
    task: str
    go_file: Path
    threads: int = 8
    attempts: int = 10

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(WORKER), "budget", "--policy", self.policy, "--state", self.state_url, "--task", self.task,
             "--threads", str(self.threads), "--attempts", str(self.attempts), "--go", str(self.go_file)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )
        line = self._proc.stdout.readline()  # blocks until the Governor is built (or the process dies)
        if json.loads(line or "{}").get("ready") is not True:
            raise AssertionError(f"replica process failed to start: {line!r} {self._proc.stderr.read()}")

    def result(self, timeout: float) -> int:
        out, err = self._proc.communicate(timeout=timeout)
        assert self._proc.returncode == 0, err
        return int(json.loads(out.strip().splitlines()[-1])["ran"])


@dataclass
class Served:
    """An `agt serve` process on the shared state, called by ``threads`` threads of RemoteGovernor clients."""

    policy: str
    state_url: str
    task: str
    go: threading.Event
    workdir: Path
    threads: int = 8
    attempts: int = 10
    _ran: int = 0
    _errors: list[BaseException] = field(default_factory=list)

    def start(self) -> None:
        import socket

        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._url = f"http://127.0.0.1:{port}"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "agt.cli", "serve", "--policy", self.policy, "--state", self.state_url,
             "--addr", f"127.0.0.1:{port}", "--insecure-no-auth", "--audit-log", str(self.workdir / "audit")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=self.workdir,
        )

        def up() -> bool:
            assert self._proc.poll() is None, f"agt serve exited: {self._proc.stderr.read()}"
            try:
                return httpx.get(self._url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        until(up, "agt serve to answer /health")
        lock = threading.Lock()

        def work() -> None:
            from agt.client import RemoteGovernor
            from agt.errors import GovernanceDenied

            client = RemoteGovernor(self._url, timeout=60)
            self.go.wait()
            try:
                for _ in range(self.attempts):
                    try:
                        client.call(lambda: None, tool="read_doc", agent="worker", task=self.task)
                    except GovernanceDenied:
                        continue
                    with lock:
                        self._ran += 1
            except BaseException as exc:  # noqa: BLE001 - reported by result()
                self._errors.append(exc)

        self._workers = [threading.Thread(target=work, daemon=True) for _ in range(self.threads)]
        for w in self._workers:
            w.start()

    def result(self, timeout: float) -> int:
        for w in self._workers:
            w.join(timeout)
        self._proc.terminate()
        self._proc.wait(30)
        assert not any(w.is_alive() for w in self._workers), "an agt serve replica's clients did not finish"
        assert self._errors == [], self._errors
        return self._ran


def until(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Wait for ``condition`` (polled), failing with ``what`` after a generous ``timeout``: an upper bound, not a speed."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def run_all(runners: list[Runner], go: Callable[[], None], timeout: float = 120.0) -> list[int]:
    """Start every runner, release them at once, and collect how many calls each let run."""
    for r in runners:
        r.start()
    go()
    return [r.result(timeout) for r in runners]
