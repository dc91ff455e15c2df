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
    def __init__(self, policy: BreakerPolicy = BreakerPolicy(), clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probe_out = False
        self._calls: deque[tuple[float, bool]] = deque()
        self._failed_in_window = 0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._tick()
            return self._state

    def _tick(self) -> None:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.policy.reset_after:
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
            now = self._clock()
            if self._state is BreakerState.HALF_OPEN:
                self._probe_out = False
                if success:
                    self._state, self._consecutive = BreakerState.CLOSED, 0
                    self._calls.clear()
                    self._failed_in_window = 0
                else:
                    self._open(now)
                return
            self._calls.append((now, success))
            self._failed_in_window += not success
            while self._calls and self._calls[0][0] <= now - self.policy.window:
                _, ok = self._calls.popleft()
                self._failed_in_window -= not ok
            self._consecutive = 0 if success else self._consecutive + 1
            failed = self._failed_in_window
            too_many = self._consecutive >= self.policy.failures
            too_often = len(self._calls) >= self.policy.min_calls and failed / len(self._calls) >= self.policy.error_rate
            if too_many or too_often:
                self._open(now)

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._consecutive = 0


class BreakerBoard:
    """One breaker per key (``agent:<id>``, ``tool:<name>``), created on first use."""

    def __init__(self, policy: BreakerPolicy = BreakerPolicy(), clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
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
                breaker = self._breakers.setdefault(key, CircuitBreaker(self.policy, self._clock))
        return breaker

    def states(self) -> dict[str, BreakerState]:
        """Every breaker created so far, by key, in its state now (for the operators' dashboard)."""
        return {key: breaker.state for key, breaker in sorted(self.snapshot())}
