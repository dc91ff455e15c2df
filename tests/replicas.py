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
from dataclasses import dataclass
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


class Calls:
    """``threads`` threads that each wait for ``go``, then make ``attempts`` governed calls of ``read_doc`` on
    ``task`` through a ``call`` of their own (``make_call()``: Governor.call or RemoteGovernor.call), counting those that ran."""

    def __init__(self, go: threading.Event, threads: int, attempts: int, make_call: Callable[[], Callable[..., object]],
                 task: str) -> None:
        self.ran = 0
        self.errors: list[BaseException] = []
        lock = threading.Lock()

        def work() -> None:
            from agt.errors import GovernanceDenied

            call = make_call()
            go.wait()
            try:
                for _ in range(attempts):
                    try:
                        call(lambda: None, tool="read_doc", agent="worker", task=task)
                    except GovernanceDenied:
                        continue
                    with lock:
                        self.ran += 1
            except BaseException as exc:  # noqa: BLE001 - reported by result()
                self.errors.append(exc)

        self.workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
        for w in self.workers:
            w.start()

    def result(self, timeout: float, what: str) -> int:
        for w in self.workers:
            w.join(timeout)
        assert not any(w.is_alive() for w in self.workers), f"{what} did not finish"
        assert self.errors == [], self.errors
        return self.ran


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

    def start(self) -> None:
        from agt.runtime import Governor

        state = self.open_state()
        self._state = state
        self._gov = Governor("yaml", self.policy, store=state.store, approvals=state.approvals, trust=state.trust)
        self._calls = Calls(self.go, self.threads, self.attempts, lambda: self._gov.call, self.task)

    def result(self, timeout: float) -> int:
        try:
            return self._calls.result(timeout, "an in-process replica")
        finally:
            self._state.close()


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

    def start(self) -> None:
        from serve_helpers import agt_serve, free_port, healthy

        from agt.client import RemoteGovernor

        self.workdir.mkdir(parents=True, exist_ok=True)
        url = f"http://127.0.0.1:{free_port()}"
        self._service = agt_serve(self.workdir, "--state", self.state_url, "--addr", url[len("http://"):],
                                  "--insecure-no-auth", ready=healthy(url), policy=self.policy)
        self._service.__enter__()
        self._calls = Calls(self.go, self.threads, self.attempts,
                            lambda: RemoteGovernor(url, timeout=60).call, self.task)

    def result(self, timeout: float) -> int:
        try:
            return self._calls.result(timeout, "an agt serve replica's clients")
        finally:
            self._service.__exit__(None, None, None)


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
