"""Circuit breakers: stop calling a tool (or letting an agent act) that keeps failing, then probe.

Closed: calls pass; failures are counted. Open: calls are refused until ``reset_after`` seconds pass.
Half-open: one probe call passes; success closes the breaker, failure opens it again. A breaker opens
after ``failures`` consecutive failures, or when at least ``min_calls`` calls in the last ``window``
seconds failed at a rate of ``error_rate`` or more.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable


class BreakerState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failures: int = 5
    error_rate: float = 0.5
    min_calls: int = 10
    window: float = 60.0
    reset_after: float = 30.0


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy = BreakerPolicy(), clock: Callable[[], float] = time.monotonic,
                 lock: threading.Lock | None = None) -> None:
        """``lock``: a lock shared with other breakers (a :class:`BreakerBoard` gives all of its one, so a call's
        agent and tool breakers record under one acquisition); by default the breaker's own."""
        self._policy = policy
        self._clock = clock
        self._lock = lock if lock is not None else threading.Lock()
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probe_out = False
        # The calls in the window, as the times of the successes and of the failures: the rule reads only how
        # many of each are in the window, so two deques of floats hold what a deque of (time, ok) pairs did.
        self._ok: deque[float] = deque()
        self._failed: deque[float] = deque()
        self._window = policy.window
        # With every threshold above zero, a success with no failure running and none in the window cannot open
        # the breaker (min_calls too: at zero calls the rate rule would divide by zero).
        self._quiet_possible = 0 < policy.failures and 0 < policy.min_calls and 0 < policy.error_rate
        # Closed, no failure running, none in the window, and _quiet_possible: a success then changes nothing
        # but the window of successes, and _record takes the short way. Kept true exactly when all of that holds.
        self._quiet = self._quiet_possible

    @property
    def policy(self) -> BreakerPolicy:
        """Fixed for the breaker's life: what __init__ derives from it stays true."""
        return self._policy

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._tick()
            return self._state

    def _tick(self) -> None:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._policy.reset_after:
            self._state = BreakerState.HALF_OPEN
            self._probe_out = False

    def would_allow(self) -> bool:
        """Would :meth:`allow` say yes? Takes no probe."""
        with self._lock:
            self._tick()
            return self._state is BreakerState.CLOSED or (self._state is BreakerState.HALF_OPEN and not self._probe_out)

    def allow(self) -> bool:
        """May a call go ahead? In half-open state only one probe at a time does."""
        with self._lock:
            self._tick()
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.HALF_OPEN and not self._probe_out:
                self._probe_out = True
                return True
            return False

    def record(self, success: bool) -> None:
        with self._lock:
            self._record(success, self._clock())

    def _record(self, success: bool, now: float) -> None:
        """:meth:`record` at ``now``, with the lock held."""
        if success and self._quiet:  # the common case: what the long way does when it cannot open
            ok = self._ok
            ok.append(now)
            horizon = now - self._window
            while ok and ok[0] <= horizon:
                ok.popleft()
            return
        if self._state is BreakerState.HALF_OPEN:
            self._probe_out = False
            if success:
                self._state, self._consecutive = BreakerState.CLOSED, 0
                self._ok.clear()
                self._failed.clear()
                self._quiet = self._quiet_possible
            else:
                self._open(now)
            return
        ok, failed = self._ok, self._failed
        horizon = now - self._window
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
        policy = self._policy
        calls, failures = len(ok) + len(failed), len(failed)
        if self._consecutive >= policy.failures or (calls >= policy.min_calls and failures / calls >= policy.error_rate):
            self._open(now)
        else:
            self._quiet = (self._quiet_possible and self._state is BreakerState.CLOSED and not self._consecutive
                           and not failed)

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._consecutive = 0
        self._quiet = False


class BreakerBoard:
    """One breaker per key (``agent:<id>``, ``tool:<name>``), created on first use."""

    def __init__(self, policy: BreakerPolicy = BreakerPolicy(), clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._record_lock = threading.Lock()  # every breaker's: one acquisition records a call on both of its breakers
        self._breakers: dict[str, CircuitBreaker] = {}
        self._pairs: dict[tuple[str, str], tuple[str, CircuitBreaker, str, CircuitBreaker]] = {}

    def pair(self, agent_id: str, tool: str) -> tuple[str, CircuitBreaker, str, CircuitBreaker]:
        """``agent:<id>`` and ``tool:<name>`` with their breakers, the keys built once per agent and tool.
        A breaker, once created, is the one :meth:`get` returns for its key for the board's life."""
        found = self._pairs.get((agent_id, tool))
        if found is None:
            akey, tkey = f"agent:{agent_id}", f"tool:{tool}"
            found = (akey, self.get(akey), tkey, self.get(tkey))
            if len(self._pairs) >= 4096:
                self._pairs.clear()  # bounded: a cleared pair is rebuilt from the same breakers
            self._pairs[(agent_id, tool)] = found
        return found

    def snapshot(self) -> list[tuple[str, CircuitBreaker]]:
        """Every breaker the board holds, by key (a copy: the board may grow while it is read)."""
        with self._lock:
            return list(self._breakers.items())

    def get(self, key: str) -> CircuitBreaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            with self._lock:
                breaker = self._breakers.setdefault(key, CircuitBreaker(self.policy, self._clock, self._record_lock))
        return breaker

    def record(self, agent_id: str, tool: str, success: bool) -> None:
        """A call by ``agent_id`` to ``tool`` ended: both breakers count it, under one lock and one clock read."""
        # pair()'s lookup, without the call when the pair is built already
        _, abreaker, _, tbreaker = self._pairs.get((agent_id, tool)) or self.pair(agent_id, tool)
        with self._record_lock:
            now = self._clock()
            abreaker._record(success, now)
            tbreaker._record(success, now)

    def states(self) -> dict[str, BreakerState]:
        """Every breaker created so far, by key, in its state now (for the operators' dashboard)."""
        return {key: breaker.state for key, breaker in sorted(self.snapshot())}
