"""agt.runtime.breaker: circuit breakers driven by an injected clock."""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from agt.runtime.breaker import BreakerBoard, BreakerPolicy, BreakerState, CircuitBreaker


class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def breaker(clock: Clock, **policy) -> CircuitBreaker:
    defaults = dict(failures=3, error_rate=0.5, min_calls=10, window=60.0, reset_after=30.0)
    defaults.update(policy)
    return CircuitBreaker(BreakerPolicy(**defaults), clock=clock)


def fail(b: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        assert b.allow()
        b.record(False)


def open_breaker(clock: Clock) -> CircuitBreaker:
    b = breaker(clock, failures=3, reset_after=30.0)
    fail(b, 3)
    assert b.state is BreakerState.OPEN
    return b


def test_new_breaker_is_closed_and_allows():
    b = breaker(Clock())
    assert b.state is BreakerState.CLOSED
    assert b.allow() is True


def test_stays_closed_below_consecutive_failure_threshold():
    b = breaker(Clock(), failures=3)
    fail(b, 2)
    assert b.state is BreakerState.CLOSED


def test_opens_after_n_consecutive_failures():
    b = breaker(Clock(), failures=3)
    fail(b, 3)
    assert b.state is BreakerState.OPEN


def test_success_resets_the_consecutive_count():
    b = breaker(Clock(), failures=3, min_calls=100)
    fail(b, 2)
    b.record(True)
    fail(b, 2)
    assert b.state is BreakerState.CLOSED


def test_opens_on_error_rate_once_min_calls_reached():
    clock = Clock()
    b = breaker(clock, failures=100, error_rate=0.5, min_calls=10)
    for i in range(9):  # alternating: never two failures in a row, 4 of 9 failed
        b.record(i % 2 == 0)
    assert b.state is BreakerState.CLOSED
    b.record(False)  # 10 calls, 5 failed: rate 0.5
    assert b.state is BreakerState.OPEN


def test_stays_closed_below_min_calls_even_at_full_error_rate():
    b = breaker(Clock(), failures=100, error_rate=0.5, min_calls=10)
    fail(b, 9)
    assert b.state is BreakerState.CLOSED


def test_error_rate_only_counts_calls_inside_the_window():
    clock = Clock()
    b = breaker(clock, failures=100, error_rate=0.5, min_calls=4, window=10.0)
    b.record(False)
    b.record(False)
    clock.t = 20.0  # the two failures leave the window
    for ok in (True, True, True, False):
        b.record(ok)
    assert b.state is BreakerState.CLOSED


def test_open_breaker_refuses():
    clock = Clock()
    b = open_breaker(clock)
    clock.t = 29.9
    assert b.allow() is False


def test_half_open_after_reset_after():
    clock = Clock()
    b = open_breaker(clock)
    clock.t = 30.0
    assert b.state is BreakerState.HALF_OPEN


def test_half_open_lets_exactly_one_probe_through():
    clock = Clock()
    b = open_breaker(clock)
    clock.t = 30.0
    assert [b.allow() for _ in range(3)] == [True, False, False]


def test_probe_success_closes():
    clock = Clock()
    b = open_breaker(clock)
    clock.t = 30.0
    assert b.allow()
    b.record(True)
    assert b.state is BreakerState.CLOSED
    assert b.allow() and b.allow()


def test_probe_failure_reopens_for_another_reset_period():
    clock = Clock()
    b = open_breaker(clock)
    clock.t = 30.0
    assert b.allow()
    b.record(False)
    assert b.state is BreakerState.OPEN
    clock.t = 59.0
    assert b.allow() is False
    clock.t = 60.0
    assert b.state is BreakerState.HALF_OPEN


def test_board_gives_one_breaker_per_key():
    board = BreakerBoard(BreakerPolicy(failures=1), clock=Clock())
    assert board.get("tool:a") is board.get("tool:a")
    assert board.get("tool:a") is not board.get("tool:b")


def test_board_breakers_fail_independently():
    board = BreakerBoard(BreakerPolicy(failures=1), clock=Clock())
    board.get("tool:a").record(False)
    assert board.get("tool:a").state is BreakerState.OPEN
    assert board.get("tool:b").state is BreakerState.CLOSED


def test_board_breakers_use_the_board_policy_and_clock():
    clock = Clock()
    board = BreakerBoard(BreakerPolicy(failures=1, reset_after=5.0), clock=clock)
    board.get("k").record(False)
    clock.t = 5.0
    assert board.get("k").state is BreakerState.HALF_OPEN


def test_board_snapshot_lists_every_breaker_by_key():
    board = BreakerBoard(BreakerPolicy(failures=1), clock=Clock())
    board.pair("alice", "tool_a")
    board.get("tool:b").record(False)
    snap = dict(board.snapshot())
    assert sorted(snap) == ["agent:alice", "tool:b", "tool:tool_a"]
    assert snap["tool:b"].state is BreakerState.OPEN


def test_board_states_lists_every_breaker_in_its_state_now():
    board = BreakerBoard(BreakerPolicy(failures=1, reset_after=60))
    _, _, _, tool_breaker = board.pair("bot", "send")
    tool_breaker.record(False)
    assert board.states() == {"agent:bot": BreakerState.CLOSED, "tool:send": BreakerState.OPEN}


# --- the window as two deques of times: the same decisions as the (time, ok) pairs it replaced ------------------

class PairsBreaker:
    """The breaker as it was written before: one deque of (time, ok) pairs and a running failure count."""

    def __init__(self, policy: BreakerPolicy, clock: Clock) -> None:
        self.policy, self.clock = policy, clock
        self.state, self.consecutive, self.opened_at, self.probe_out = BreakerState.CLOSED, 0, 0.0, False
        self.calls: deque[tuple[float, bool]] = deque()
        self.failed = 0

    def tick(self) -> None:
        if self.state is BreakerState.OPEN and self.clock() - self.opened_at >= self.policy.reset_after:
            self.state, self.probe_out = BreakerState.HALF_OPEN, False

    def allow(self) -> bool:
        self.tick()
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN and not self.probe_out:
            self.probe_out = True
            return True
        return False

    def record(self, success: bool) -> None:
        now = self.clock()
        if self.state is BreakerState.HALF_OPEN:
            self.probe_out = False
            if success:
                self.state, self.consecutive, self.failed = BreakerState.CLOSED, 0, 0
                self.calls.clear()
            else:
                self.state, self.opened_at, self.consecutive = BreakerState.OPEN, now, 0
            return
        self.calls.append((now, success))
        self.failed += not success
        while self.calls and self.calls[0][0] <= now - self.policy.window:
            _, ok = self.calls.popleft()
            self.failed -= not ok
        self.consecutive = 0 if success else self.consecutive + 1
        if self.consecutive >= self.policy.failures or (
                len(self.calls) >= self.policy.min_calls and self.failed / len(self.calls) >= self.policy.error_rate):
            self.state, self.opened_at, self.consecutive = BreakerState.OPEN, now, 0


# Steps of whole seconds, the window's length among them, so calls land exactly on its edge and on reset_after.
_steps = st.lists(st.one_of(st.tuples(st.just("wait"), st.sampled_from([0, 1, 2, 4, 5])), st.tuples(st.just("allow"), st.none()),
                            st.tuples(st.just("record"), st.booleans())), max_size=120)


@settings(max_examples=500, deadline=None)
@given(_steps, st.integers(1, 8), st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.integers(1, 8))
def test_breaker_decides_as_the_pairs_window_did(steps, failures, error_rate, min_calls):
    policy = BreakerPolicy(failures=failures, error_rate=error_rate, min_calls=min_calls, window=5.0, reset_after=4.0)
    clock = Clock()
    b, ref = CircuitBreaker(policy, clock=clock), PairsBreaker(policy, clock)
    for op, arg in steps:
        if op == "wait":
            clock.t += arg
        elif op == "allow":
            assert b.allow() == ref.allow()
        else:
            b.record(arg)
            ref.record(arg)
        ref.tick()
        assert b.state is ref.state


def test_board_records_a_call_on_the_agent_and_the_tool_breaker():
    board = BreakerBoard(BreakerPolicy(failures=2), clock=Clock())
    board.record("alice", "shell", False)
    board.record("alice", "shell", False)
    assert board.get("agent:alice").state is BreakerState.OPEN
    assert board.get("tool:shell").state is BreakerState.OPEN
    assert board.get("tool:read_file").state is BreakerState.CLOSED
    board.record("alice", "read_file", True)  # an open breaker counts no call until it is half-open
    assert board.get("tool:read_file").state is BreakerState.CLOSED


# --- the short way for a success while quiet: the same state, field by field, as the long way it skips ---------------

class LongWayBreaker(CircuitBreaker):
    """The breaker as it was before the short way: every record runs the whole rule (the code of that version)."""

    def _record(self, success: bool, now: float) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._probe_out = False
            if success:
                self._state, self._consecutive = BreakerState.CLOSED, 0
                self._ok.clear()
                self._failed.clear()
            else:
                self._open(now)
            return
        ok, failed = self._ok, self._failed
        horizon = now - self.policy.window
        if success:
            ok.append(now)
            self._consecutive = 0
        else:
            failed.append(now)
            self._consecutive += 1
        while ok and ok[0] <= horizon:
            ok.popleft()
        while failed and failed[0] <= horizon:
            failed.popleft()
        policy = self.policy
        calls, failures = len(ok) + len(failed), len(failed)
        if self._consecutive >= policy.failures or (calls >= policy.min_calls and failures / calls >= policy.error_rate):
            self._open(now)


def _fields(b: CircuitBreaker) -> tuple:
    return b._state, b._consecutive, b._opened_at, b._probe_out, list(b._ok), list(b._failed)


def _outcome(fn):
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - both must fail alike (a rate rule at zero calls divides by zero)
        return type(exc)


# Odd policies too: thresholds at or below zero and NaN (where a success can open, or the rule divides by zero),
# windows of zero and below; clock steps that stand still, go back, or land on the window's edge.
_policies = st.builds(
    BreakerPolicy,
    failures=st.sampled_from([-1, 0, 1, 2, 3, 5]),
    error_rate=st.sampled_from([-0.5, 0.0, 0.2, 0.5, 1.0, 1.5, float("nan")]),
    min_calls=st.sampled_from([-1, 0, 1, 2, 4, 10]),
    window=st.sampled_from([-1.0, 0.0, 0.5, 3.0, 5.0, float("nan")]),
    reset_after=st.sampled_from([0.0, 2.0, 4.0]),
)
_quiet_steps = st.lists(st.one_of(
    st.tuples(st.just("wait"), st.sampled_from([0.0, 0.0, 0.25, 1.0, 3.0, 5.0, -1.0])),
    st.tuples(st.just("allow"), st.none()),
    st.tuples(st.just("would_allow"), st.none()),
    st.tuples(st.just("record"), st.sampled_from([True, True, True, False])),
), max_size=150)


@settings(max_examples=1000, deadline=None)
@given(_quiet_steps, _policies)
def test_short_way_leaves_every_field_as_the_long_way(steps, policy):
    clock = Clock(100.0)
    b, ref = CircuitBreaker(policy, clock=clock), LongWayBreaker(policy, clock=clock)
    for op, arg in steps:
        if op == "wait":
            clock.t += arg
        elif op == "record":
            assert _outcome(lambda: b.record(arg)) == _outcome(lambda: ref.record(arg))
        else:
            assert getattr(b, op)() == getattr(ref, op)()
        assert _fields(b) == _fields(ref)
        assert b.state is ref.state


@settings(max_examples=300, deadline=None)
@given(_quiet_steps, _policies)
def test_quiet_holds_exactly_when_a_success_can_change_only_the_window(steps, policy):
    clock = Clock(100.0)
    b = CircuitBreaker(policy, clock=clock)
    for op, arg in steps:
        if op == "wait":
            clock.t += arg
        elif op == "record":
            _outcome(lambda: b.record(arg))
        else:
            getattr(b, op)()
        thresholds_above_zero = policy.failures > 0 and policy.min_calls > 0 and policy.error_rate > 0
        assert b._quiet == (thresholds_above_zero and b._state is BreakerState.CLOSED and b._consecutive == 0
                            and not b._failed)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.5, 2.0, 5.0]), st.sampled_from(["a", "b"]),
                          st.sampled_from(["x", "y"]), st.sampled_from([True, True, False])), max_size=80), _policies)
def test_board_records_both_breakers_as_the_long_way(calls, policy):
    clock = Clock(100.0)
    board, refs = BreakerBoard(policy, clock=clock), {}
    for step, agent, tool, success in calls:
        clock.t += step
        got = _outcome(lambda: board.record(agent, tool, success))
        aref = refs.setdefault(f"agent:{agent}", LongWayBreaker(policy, clock=clock))
        tref = refs.setdefault(f"tool:{tool}", LongWayBreaker(policy, clock=clock))
        # The board records the agent, then the tool: an error in the first leaves the second untouched.
        expected = _outcome(lambda: aref._record(success, clock.t)) or _outcome(lambda: tref._record(success, clock.t))
        assert got == expected
        assert {k: _fields(board.get(k)) for k in refs} == {k: _fields(r) for k, r in refs.items()}
