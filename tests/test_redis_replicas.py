"""Many replicas, one state: exact budgets across processes, and the kill switch reaching every replica.

Replicas are runners (tests/replicas.py): Governors in this process and Governors in other OS processes,
on a real redis-server (and, for the budget, on SQLite and in memory too)."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from replicas import ROOT, WORKER, InProcess, Served, Subprocess, run_all, until

from agt.runtime import Governor
from agt.runtime.backends import open_state

BUDGET = 20


def budget_policy(tmp_path: Path) -> str:
    path = tmp_path / "budget.yaml"
    path.write_text("apiVersion: governance.toolkit/v1\nname: budget\ndefault_action: allow\nrules:\n"
                    f'  - name: tool-call-budget\n    condition: "context.tool_calls > {BUDGET}"\n    action: deny\n')
    return str(path)


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_exactly_the_budgeted_number_of_calls_runs_across_replicas(kind, request, tmp_path):
    policy, task, go = budget_policy(tmp_path), f"task-{uuid.uuid4().hex[:8]}", threading.Event()
    go_file = tmp_path / "go"
    if kind == "memory":
        shared = open_state("memory")  # one process: four Governors on one store, 8 threads each
        runners = [InProcess(policy, lambda: shared, task, go) for _ in range(4)]
    else:
        url = f"sqlite://{tmp_path}/state.db" if kind == "sqlite" else request.getfixturevalue("redis_url")
        open_state(url).close()  # the schema exists before the replicas race
        # Two agt serve processes, two Governors in other processes and two in this one: six replicas, 8 threads each.
        runners = [Served(policy, url, task, go, tmp_path / "serve-1"), Served(policy, url, task, go, tmp_path / "serve-2"),
                   Subprocess(policy, url, task, go_file), Subprocess(policy, url, task, go_file),
                   InProcess(policy, lambda: open_state(url), task, go), InProcess(policy, lambda: open_state(url), task, go)]

    def release() -> None:
        go_file.touch()
        go.set()

    ran = run_all(runners, release)
    assert sum(ran) == BUDGET, f"calls run per replica: {ran}"
    assert len(ran) == len(runners) and sum(r.threads * r.attempts for r in runners) > 10 * BUDGET  # heavily oversubscribed


class Watcher:
    """A replica in another process calling a tool in a loop, reporting each call (tests/replica_worker.py)."""

    def __init__(self, policy: str, url: str, agent: str, stop: Path) -> None:
        self.stop = stop
        self.lines: queue.Queue[dict] = queue.Queue()
        self.proc = subprocess.Popen([sys.executable, str(WORKER), "watch", "--policy", policy, "--state", url,
                                      "--agent", agent, "--stop", str(stop)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        threading.Thread(target=self._read, daemon=True).start()
        self.seen: list[dict] = []

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def wait_for(self, predicate, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                assert self.proc.poll() is None, self.proc.stderr.read()
                continue
            self.seen.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"no such call within {timeout:g} s; last lines: {self.seen[-5:]}")

    def close(self) -> None:
        self.stop.touch()
        self.proc.communicate(timeout=30)


def test_a_kill_set_through_one_replica_stops_calls_on_another_process_within_one_second(redis_url, tmp_path):
    policy = str(ROOT / "policies" / "starter.yaml")
    watcher = Watcher(policy, redis_url, "agent-7", tmp_path / "stop")
    state = open_state(redis_url)
    try:
        watcher.wait_for(lambda line: line["ok"])  # the other replica is up and running calls
        here = Governor("yaml", policy, store=state.store, approvals=state.approvals, trust=state.trust)
        here.kill("agent-7")
        killed_at = time.time()  # the kill is set (in Redis, published) once kill() returns
        denied = watcher.wait_for(lambda line: "kill-switch" in line["rules"])
        # Every call the other replica began more than 1 s after the kill was denied; none of them ran.
        late_runs = [line for line in watcher.seen if line["ok"] and line["start"] > killed_at + 1.0]
        assert late_runs == []
        watcher.wait_for(lambda line: line["start"] > killed_at + 1.0)  # and it went on deciding (denying) after that
        assert not any(line["ok"] and line["start"] > killed_at + 1.0 for line in watcher.seen)
        here.revive("agent-7")
        watcher.wait_for(lambda line: line["ok"] and line["start"] > denied["start"])  # released everywhere too
    finally:
        watcher.close()
        state.close()


def test_a_kill_reaches_another_replicas_local_view_by_pubsub(redis_url):
    from agt.runtime.redis_trust import RedisTrust

    one, other = RedisTrust(redis_url), RedisTrust(redis_url)
    try:
        until(lambda: other.subscribed, "the second replica to subscribe")
        one.kill("a")
        until(lambda: "a" in other.view.agents, "the kill to reach the other replica's view")
        one.kill(None)
        until(lambda: other.view.all, "the global kill to reach the other replica's view")
        one.revive(None)
        one.revive("a")
        until(lambda: not other.view.all and not other.view.agents, "the revive to reach the other replica's view")
    finally:
        one.close()
        other.close()


def test_after_the_subscription_drops_decisions_read_the_switch_from_redis_and_it_resubscribes(redis_url, redis_server):
    from agt.runtime.redis_trust import RedisTrust

    one, other = RedisTrust(redis_url), RedisTrust(redis_url)
    admin = redis_server.client()
    try:
        until(lambda: other.subscribed, "the second replica to subscribe")
        admin.client_kill_filter(_type="pubsub")  # every subscription on the server drops
        until(lambda: not other.subscribed, "the dropped subscription to make the view stale")
        one.kill("b")
        assert other.is_killed("b") is True  # whatever the view holds, the decision sees the kill
        until(lambda: other.subscribed and "b" in other.view.agents, "the replica to subscribe again and reload")
    finally:
        admin.close()
        one.close()
        other.close()


def test_with_no_staleness_allowed_every_decision_reads_redis(redis_server):
    from agt.runtime.redis_trust import RedisTrust

    url = redis_server.unique_url(kill_staleness="0")
    one, other = RedisTrust(url), RedisTrust(url)
    try:
        assert other.subscribed is False  # no listener: never a cached answer
        one.kill("c")
        assert other.is_killed("c") is True
        one.revive("c")
        assert other.is_killed("c") is False
    finally:
        one.close()
        other.close()
