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
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

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
    ) -> None:
        self.initial, self.baseline = initial, baseline
        self.promotion, self.demotion, self.decay_per_day = promotion, demotion, decay_per_day
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._scores: dict[str, float] = {}
        self._last_positive: dict[str, float] = {}
        self._killed: set[str] = set()
        self._kill_all = False

    # scores -----------------------------------------------------------------------------------------
    def known(self, agent_id: str) -> bool:
        with self._lock:
            return agent_id in self._scores

    def score(self, agent_id: str) -> int:
        with self._lock:
            return self._decayed(agent_id)

    def set_score(self, agent_id: str, score: int | None, reason: str = "set") -> None:
        """``None`` (an agent declared without a score) sets the manager's initial score."""
        if score is None:
            score = self.initial
        with self._lock:
            self._change(agent_id, float(max(0, min(1000, score))), reason)

    def _decayed(self, agent_id: str) -> int:
        score = self._scores.get(agent_id, float(self.initial))
        if score > self.baseline:
            idle_days = (self._clock() - self._last_positive.get(agent_id, self._clock())) / 86400
            # Whole points only: a score does not slip below a tier boundary a second after it is set.
            score = max(float(self.baseline), score - int(idle_days * self.decay_per_day))
        return int(score)

    def _change(self, agent_id: str, new: float, reason: str) -> None:
        old = self._decayed(agent_id)
        now = self._clock()
        self._scores[agent_id] = new
        self._last_positive[agent_id] = now
        if self._on_change and int(new) != old:
            self._on_change(TrustChange(agent_id, old, int(new), reason, now))

    def record_allowed(self, agent_id: str) -> int:
        with self._lock:
            new = min(1000.0, self._decayed(agent_id) + self.promotion)
            self._change(agent_id, new, "compliant call")
            return int(new)

    def record_denied(self, agent_id: str) -> int:
        with self._lock:
            new = max(0.0, self._decayed(agent_id) - self.demotion)
            self._change(agent_id, new, "denied call")
            return int(new)

    # kill switch ------------------------------------------------------------------------------------
    def kill(self, agent_id: str | None = None) -> None:
        """Block one agent, or every agent when ``agent_id`` is None."""
        with self._lock:
            if agent_id is None:
                self._kill_all = True
            else:
                self._killed.add(agent_id)

    def revive(self, agent_id: str | None = None) -> None:
        with self._lock:
            if agent_id is None:
                self._kill_all = False
            else:
                self._killed.discard(agent_id)

    def is_killed(self, agent_id: str) -> bool:
        return self._kill_all or agent_id in self._killed
