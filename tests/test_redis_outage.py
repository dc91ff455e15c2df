"""Redis going away mid-run: decisions deny naming the store, in every mode and on every path (counters, rate
windows, approvals, trust, the kill switch); nothing accepted is lost; calls succeed again once it returns.

Each test runs its own real redis-server, persistent as production should be (AOF, fsync on every write), stops
it with SIGKILL and restarts it on the same port and directory."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from redis_server import RedisServer
from replicas import until

from agt.errors import GovernanceDenied
from agt.runtime import Governor
from agt.runtime.backends import open_state
from agt.runtime.state import Counters

STARTER = "policies/starter.yaml"


@pytest.fixture
def server(redis_binary, tmp_path):
    s = RedisServer(redis_binary, tmp_path / "redis", persistent=True).start()
    yield s
    s.stop()


def restart(server: RedisServer) -> None:
    server.start()


def governor(root, url: str, **kw) -> tuple[Governor, object]:
    state = open_state(url)
    return Governor("yaml", str(root / STARTER), store=state.store, approvals=state.approvals, trust=state.trust, **kw), state


def read_doc(gov: Governor, task: str, agent: str = "a") -> None:
    gov.call(lambda: None, tool="read_doc", agent=agent, task=task)


def state_denial(call) -> GovernanceDenied:
    with pytest.raises(GovernanceDenied) as caught:
        call()
    return caught.value


def until_it_runs(call, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except GovernanceDenied:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("mode", ["strict", "permissive", "audit"])
def test_while_redis_is_down_calls_are_denied_naming_the_store_in_every_mode(root, server, mode):
    gov, state = governor(root, server.url_with(prefix="p", timeout="2"), mode=mode)
    try:
        read_doc(gov, "t")
        server.stop()
        denied = state_denial(lambda: read_doc(gov, "t"))
        assert denied.gate == "state" and denied.rule_ids == ("state-unavailable",)
        assert "state store unavailable: redis://127.0.0.1:" in str(denied)
    finally:
        state.close()


def test_calls_succeed_again_when_redis_returns_and_the_counters_hold_exactly_the_calls_that_ran(root, server):
    gov, state = governor(root, server.url_with(prefix="p", timeout="2"))
    try:
        for _ in range(3):
            read_doc(gov, "t")
        server.stop()
        for _ in range(3):
            state_denial(lambda: read_doc(gov, "t"))
        restart(server)
        until_it_runs(lambda: read_doc(gov, "t"))
        assert state.store.counters("t").tool_calls == 4
    finally:
        state.close()


def test_a_reservation_made_before_redis_died_is_released_when_it_returns(root, server):
    gov, state = governor(root, server.url_with(prefix="p", timeout="2"))
    try:
        ticket = gov.begin("read_doc", agent="a", task="t")  # counted: 1
        server.stop()
        gov.abandon(ticket, "the run ended")  # the release cannot reach Redis: it waits, and nothing raises
        assert len(state.store.deferred) == 1
        restart(server)
        assert state.store.reconcile() == 0
        assert state.store.counters("t") == Counters(0, 0, 0)
    finally:
        state.close()


def test_the_budget_holds_exactly_when_redis_dies_and_returns_under_load(root, server, tmp_path):
    budget = tmp_path / "budget.yaml"
    budget.write_text("apiVersion: governance.toolkit/v1\nname: b\ndefault_action: allow\nrules:\n"
                      '  - name: tool-call-budget\n    condition: "context.tool_calls > 100000"\n    action: deny\n')
    state = open_state(server.url_with(prefix="p", timeout="2"))
    gov = Governor("yaml", str(budget), store=state.store, approvals=state.approvals, trust=state.trust)
    ran, denied, stop, lock = [0], [0], threading.Event(), threading.Lock()

    def work() -> None:
        while not stop.is_set():
            try:
                read_doc(gov, "t")
                with lock:
                    ran[0] += 1
            except GovernanceDenied as exc:
                assert exc.rule_ids == ("state-unavailable",), exc
                with lock:
                    denied[0] += 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        until(lambda: ran[0] >= 50, "calls to run")
        server.stop()  # SIGKILL with calls in flight: some replies are lost after their script ran
        until(lambda: denied[0] >= 20, "calls to be denied")
        restart(server)
        before = ran[0]
        until(lambda: ran[0] >= before + 50, "calls to run again")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert state.store.reconcile() == 0
    assert state.store.counters("t").tool_calls == ran[0]  # every call that ran, and nothing else
    state.close()


def test_a_trust_signal_during_the_outage_is_applied_once_when_redis_returns(root, server):
    state = open_state(server.url_with(prefix="p", timeout="2"))
    try:
        state.trust.set_score("a", 500)
        server.stop()
        state.trust.record_denied("a")  # after a call was denied: no exception, the signal waits
        restart(server)
        assert state.trust.score("a") == 500 - state.trust.demotion
        assert state.trust.score("a") == 500 - state.trust.demotion  # applied once, not again
    finally:
        state.close()


def test_a_kill_switch_that_cannot_be_read_denies(root, server, redis_binary, tmp_path):
    from agt.runtime.redis_trust import RedisTrust
    from agt.runtime.trust import TrustManager

    dead = RedisServer(redis_binary, tmp_path / "dead")  # a port with nothing listening
    trust = TrustManager(backend=RedisTrust(dead.url_with(prefix="p", timeout="1")))
    gov = Governor("yaml", str(root / STARTER), trust=trust)  # counters in memory: only trust is away
    try:
        denied = state_denial(lambda: read_doc(gov, "t"))
        assert denied.gate == "state" and "reading the trust score" in str(denied)
        assert gov.store.counters("t") == Counters(0, 0, 0)  # nothing reserved for a call that did not run
    finally:
        trust.close()


def test_an_approval_store_that_cannot_be_reached_denies_naming_it(root, server, redis_binary, tmp_path):
    from agt.runtime.redis_state import RedisApprovals

    policy = tmp_path / "approve.yaml"
    policy.write_text("apiVersion: governance.toolkit/v1\nname: a\ndefault_action: allow\nrules:\n"
                      '  - name: email-approval\n    condition: "tool_name == \'send_email\'"\n    action: require_approval\n'
                      "    approvers: [alice]\n")
    from approval_helpers import Approvers

    dead = RedisServer(redis_binary, tmp_path / "dead")
    approvals = RedisApprovals(dead.url_with(prefix="p", timeout="1"))
    gov = Governor("yaml", str(policy), approvals=approvals, approvers=Approvers("alice").registry)
    try:
        denied = state_denial(lambda: gov.call(lambda: None, tool="send_email", agent="a", task="t"))
        assert denied.gate == "state" and "storing approval request" in str(denied)
        assert gov.store.counters("t") == Counters(0, 0, 0)
    finally:
        approvals.close()


def test_a_rate_window_that_cannot_be_counted_denies(root, server):
    state = open_state(server.url_with(prefix=f"p{uuid.uuid4().hex[:6]}", timeout="2"))
    gov = Governor("yaml", str(root / STARTER), store=state.store, approvals=state.approvals, trust=state.trust,
                   rate_limits={"agent:*": "100/minute"})
    try:
        read_doc(gov, "t")
        real = state.store._hit_rate  # noqa: SLF001 - only the rate window fails: a fault injected in one script

        def broken(*a, **kw):
            import redis

            raise redis.ConnectionError("injected")

        state.store._hit_rate = broken  # noqa: SLF001
        denied = state_denial(lambda: read_doc(gov, "t"))
        assert denied.gate == "state" and "counting rate window" in str(denied)
        state.store._hit_rate = real  # noqa: SLF001
        assert state.store.counters("t").tool_calls == 1  # the denied call's reservation was released
    finally:
        state.close()


def test_after_redis_restarts_empty_a_new_kill_still_reaches_every_replicas_view(redis_binary, tmp_path):
    from agt.runtime.redis_trust import RedisTrust

    server = RedisServer(redis_binary, tmp_path / "empty").start()  # no persistence: it comes back empty
    url = server.url_with(prefix="p", timeout="2")
    one, other = RedisTrust(url), RedisTrust(url)
    try:
        for _ in range(3):  # the switch's version climbs to 6
            one.kill("x")
            one.revive("x")
        until(lambda: other.subscribed and other.view.version >= 6, "the other replica to see version 6")
        server.stop()
        server.start()  # versions start again from 0
        until(lambda: other.subscribed, "the other replica to subscribe again")
        one.kill("z")  # version 1, below what the view held before the restart
        until(lambda: "z" in other.view.agents, "the new kill to reach the other replica's view")
    finally:
        one.close()
        other.close()
        server.stop()


def test_a_long_outages_backlog_of_releases_is_applied_exactly_when_redis_returns(server):
    from agt.runtime.redis_state import RedisStore

    store = RedisStore(server.url_with(prefix="p", timeout="2"))
    try:
        for _ in range(1200):
            store.reserve("t", 1, 0)
        server.stop()
        for _ in range(1200):
            store.release("t", 1, 0)  # nothing raises; every release waits
        assert len(store.deferred) == 1200
        restart(server)
        assert store.reconcile() == 0  # in pipelined batches
        assert store.counters("t") == Counters(0, 0, 0)
    finally:
        store.close()


def test_a_release_kept_longer_than_the_horizon_is_dropped_leaving_the_counter_high(server):
    from agt.runtime.redis_state import RedisStore

    store = RedisStore(server.url_with(prefix="p", timeout="2", horizon="0.5"))
    try:
        store.reserve("t", 1, 0)
        server.stop()
        store.release("t", 1, 0)
        deadline = store.deferred._items[0].deadline  # noqa: SLF001
        until(lambda: time.monotonic() > deadline, "the release to outlive its once-marker")
        restart(server)
        assert store.reconcile() == 0 and store.deferred.dropped == 1
        assert store.counters("t") == Counters(0, 1, 0)  # over-counted: denies sooner, never later
    finally:
        store.close()


def test_a_call_waiting_for_approval_when_redis_dies_is_denied_and_its_reservation_released(root, server, tmp_path):
    from approval_helpers import Approvers

    policy = tmp_path / "approve.yaml"
    policy.write_text("apiVersion: governance.toolkit/v1\nname: a\ndefault_action: allow\nrules:\n"
                      '  - name: email-approval\n    condition: "tool_name == \'send_email\'"\n    action: require_approval\n'
                      "    approvers: [alice]\n")
    state = open_state(server.url_with(prefix="p", timeout="2"))
    gov = Governor("yaml", str(policy), store=state.store, approvals=state.approvals, trust=state.trust,
                   approvers=Approvers("alice").registry, approval_timeout=120.0)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            gov.call(lambda: None, tool="send_email", agent="a", task="t")
        except BaseException as exc:  # noqa: BLE001 - inspected below
            outcome.append(exc)

    waiter = threading.Thread(target=call)
    try:
        waiter.start()
        until(lambda: len(state.approvals.list()) == 1, "the call to wait for its approval")
        server.stop()
        waiter.join(60)
        assert not waiter.is_alive()
        assert isinstance(outcome[0], GovernanceDenied) and outcome[0].rule_ids == ("state-unavailable",)
        restart(server)
        assert state.store.reconcile() == 0
        assert state.store.counters("t") == Counters(0, 0, 0)
    finally:
        state.close()
