"""Agent trust: a score from 0 to 1000 that moves with behaviour, tiers and rings derived from it, and a
kill switch. The score an action carries (``agent.trust_score``) comes from here, so policies can use it.

* Tiers: untrusted < 300 ≤ limited < 500 ≤ standard < 700 ≤ trusted < 900 ≤ privileged.
* Rings (what kinds of tools may run at all, before any policy):
  ring 0 (≥ 900) every kind; ring 1 (≥ 700) every kind but delegate; ring 2 (≥ 300) read, write,
  execute, network, message (no delete, no delegate); ring 3 (< 300) read and message only.
  Rings are a coarse floor; policies refine within them (the starter policy stops execute below 500).
* Signals: each denial costs ``demotion`` points; each compliant, allowed call earns ``promotion`` points.
* Decay: without positive signals, a score above the baseline drifts down toward it by ``decay_per_day``.
* Kill switch: one agent, or every agent at once, is blocked until the switch is released.

Where scores and the switch live is a :class:`TrustBackend`: :class:`MemoryTrust` (this process) or
:class:`agt.runtime.redis_trust.RedisTrust` (every replica sharing one Redis). The arithmetic is
:class:`TrustRules`, one definition; a backend applies it atomically (a lock here, a Lua script in Redis).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from agt.action import Kind

TIERS = ((900, "privileged"), (700, "trusted"), (500, "standard"), (300, "limited"), (0, "untrusted"))
RING_KINDS: dict[int, frozenset[Kind]] = {
    0: frozenset(Kind),
    1: frozenset(Kind) - {Kind.DELEGATE},
    2: frozenset({Kind.READ, Kind.WRITE, Kind.EXECUTE, Kind.NETWORK, Kind.MESSAGE}),
    3: frozenset({Kind.READ, Kind.MESSAGE}),
}


def tier(score: int) -> str:
    return next(name for floor, name in TIERS if score >= floor)


def ring(score: int) -> int:
    if score >= 900:
        return 0
    if score >= 700:
        return 1
    if score >= 300:
        return 2
    return 3


@dataclass(frozen=True, slots=True)
class TrustChange:
    """One change of an agent's trust state, for the audit trail."""

    agent_id: str
    old_score: int
    new_score: int
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class TrustRules:
    """How scores move. A score is stored with the time it last changed (``at``); decay counts from then."""

    initial: int = 500
    baseline: int = 500
    promotion: int = 2
    demotion: int = 25
    decay_per_day: float = 10.0
    # Idle time shorter than this (either way) decays no whole point: see _still_for.
    _still: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_still", _still_for(self.decay_per_day))

    def decayed(self, stored: tuple[float, float] | None, now: float) -> int:
        """The score now of an agent stored as ``(score, at)``, or the initial score of one never stored."""
        if stored is None:
            return int(self.initial)
        score, at = stored
        if abs(now - at) < self._still:  # less than a point either way: most reads, within hours of the last change
            return int(score)
        if score > self.baseline:
            idle_days = (now - at) / 86400
            # Whole points only: a score does not slip below a tier boundary a second after it is set.
            score = max(float(self.baseline), score - int(idle_days * self.decay_per_day))
        return int(score)


def _still_for(decay_per_day: float) -> float:
    """A bound on idle seconds below which ``int(idle / 86400 * decay_per_day)`` is 0: a quarter of the time one
    point takes, so float rounding (monotone in idle) cannot reach 1. NaN, which fails every comparison, where
    there is no such bound or the type is not a plain number (the arithmetic then runs, and raises as it did)."""
    if type(decay_per_day) not in (int, float):
        return float("nan")
    if decay_per_day == 0:
        return float("inf")
    return 86400 / (4 * abs(decay_per_day))


class TrustBackend(Protocol):
    """Where scores and the kill switch are kept. Every method is atomic on its own."""

    def known(self, agent_id: str) -> bool: ...

    def stored(self, agent_id: str) -> tuple[float, float] | None:
        """``(score, at)`` as stored, or None for an agent never stored."""
        ...

    def put(self, agent_id: str, score: int, rules: TrustRules, now: float) -> int:
        """Store ``score`` (already clamped); returns the decayed score it replaced."""
        ...

    def adjust(self, agent_id: str, delta: int, rules: TrustRules, now: float) -> tuple[int, int]:
        """Add ``delta`` to the decayed score, clamped to 0..1000; returns (old, new)."""
        ...

    def kill(self, agent_id: str | None) -> None: ...

    def revive(self, agent_id: str | None) -> None: ...

    def is_killed(self, agent_id: str) -> bool: ...

    def close(self) -> None: ...


class MemoryTrust:
    """Scores and the kill switch in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scores: dict[str, tuple[float, float]] = {}
        self._killed: set[str] = set()
        self._kill_all = False

    # Reads take no lock: each is one dict operation, atomic, and an entry is an immutable tuple replaced whole, so
    # a read sees the score before or after a concurrent write, never half of one. Writes read-modify-write: locked.
    def known(self, agent_id: str) -> bool:
        return agent_id in self._scores

    def stored(self, agent_id: str) -> tuple[float, float] | None:
        return self._scores.get(agent_id)

    def put(self, agent_id: str, score: int, rules: TrustRules, now: float) -> int:
        with self._lock:
            old = rules.decayed(self._scores.get(agent_id), now)
            self._scores[agent_id] = (float(score), now)
            return old

    def adjust(self, agent_id: str, delta: int, rules: TrustRules, now: float) -> tuple[int, int]:
        with self._lock:
            old = rules.decayed(self._scores.get(agent_id), now)
            new = max(0, min(1000, old + delta))
            self._scores[agent_id] = (float(new), now)
            return old, new

    def kill(self, agent_id: str | None) -> None:
        with self._lock:
            if agent_id is None:
                self._kill_all = True
            else:
                self._killed.add(agent_id)

    def revive(self, agent_id: str | None) -> None:
        with self._lock:
            if agent_id is None:
                self._kill_all = False
            else:
                self._killed.discard(agent_id)

    def is_killed(self, agent_id: str) -> bool:
        return self._kill_all or agent_id in self._killed

    def close(self) -> None:
        pass


class TrustManager:
    def __init__(
        self,
        *,
        initial: int = 500,
        baseline: int = 500,
        promotion: int = 2,
        demotion: int = 25,
        decay_per_day: float = 10.0,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[TrustChange], None] | None = None,
        backend: TrustBackend | None = None,
    ) -> None:
        self.rules = TrustRules(initial, baseline, promotion, demotion, decay_per_day)
        self.backend: TrustBackend = backend if backend is not None else MemoryTrust()
        self._clock = clock
        self._on_change = on_change

    # the rules, read-only: one TrustRules holds them --------------------------------------------------
    initial = property(lambda self: self.rules.initial)
    baseline = property(lambda self: self.rules.baseline)
    promotion = property(lambda self: self.rules.promotion)
    demotion = property(lambda self: self.rules.demotion)
    decay_per_day = property(lambda self: self.rules.decay_per_day)

    # scores -----------------------------------------------------------------------------------------
    def known(self, agent_id: str) -> bool:
        return self.backend.known(agent_id)

    def score(self, agent_id: str) -> int:
        return self.rules.decayed(self.backend.stored(agent_id), self._clock())

    def set_score(self, agent_id: str, score: int | None, reason: str = "set") -> None:
        """``None`` (an agent declared without a score) sets the manager's initial score."""
        if score is None:
            score = self.initial
        new, now = int(max(0, min(1000, score))), self._clock()
        old = self.backend.put(agent_id, new, self.rules, now)
        self._changed(agent_id, old, new, reason, now)

    def _changed(self, agent_id: str, old: int, new: int, reason: str, now: float) -> None:
        if self._on_change and new != old:
            self._on_change(TrustChange(agent_id, old, new, reason, now))

    def record_allowed(self, agent_id: str) -> int:
        now, rules = self._clock(), self.rules
        old, new = self.backend.adjust(agent_id, rules.promotion, rules, now)
        if new != old:
            self._changed(agent_id, old, new, "compliant call", now)
        return new

    def record_denied(self, agent_id: str) -> int:
        now, rules = self._clock(), self.rules
        old, new = self.backend.adjust(agent_id, -rules.demotion, rules, now)
        if new != old:
            self._changed(agent_id, old, new, "denied call", now)
        return new

    # kill switch ------------------------------------------------------------------------------------
    def kill(self, agent_id: str | None = None) -> None:
        """Block one agent, or every agent when ``agent_id`` is None."""
        self.backend.kill(agent_id)

    def revive(self, agent_id: str | None = None) -> None:
        self.backend.revive(agent_id)

    def is_killed(self, agent_id: str) -> bool:
        return self.backend.is_killed(agent_id)

    def close(self) -> None:
        self.backend.close()
