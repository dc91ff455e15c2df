"""Enforcement modes, set per policy and overridable per agent.

* ``strict``: enforce every decision.
* ``permissive``: hard-deny only what a rule marked *critical* denied; everything else, approvals
  included, runs and is recorded as a warning. For rolling a policy out without breaking agents on
  its non-critical rules.
* ``audit``: decide and record; policy denies and approvals run as warnings.

No mode relaxes what :func:`always_enforced` says: an engine error (fail closed), the kill switch, or
a failed identity or delegation check. Relaxing those would let a broken engine, a stopped agent or
an unknown caller through.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Collection

from agt.decision import Decision, Effect


class Mode(str, enum.Enum):
    STRICT = "strict"
    PERMISSIVE = "permissive"
    AUDIT = "audit"


ALWAYS_ENFORCED = frozenset({
    "kill-switch",
    "identity-required", "identity-invalid",
    "delegation-required", "delegation-invalid", "delegation-scope",
})
"""Runtime gate rules no mode relaxes: an operator stopped the agent, or nobody knows who is calling."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the runtime does with a decision under a mode."""

    effect: Effect
    """The effect enforced: allow lets the call run."""
    warning: bool = False
    """The decision was not allow but the mode let the call run."""


def always_enforced(decision: Decision) -> bool:
    """A deny every mode enforces: an engine error, or a runtime gate in :data:`ALWAYS_ENFORCED`."""
    return decision.effect is Effect.DENY and (
        decision.is_engine_error or (decision.engine == "runtime" and any(r in ALWAYS_ENFORCED for r in decision.rule_ids))
    )


_ALLOWED = Verdict(Effect.ALLOW)  # immutable: every allowed call shares it


def apply_mode(decision: Decision, mode: Mode, critical_rules: Collection[str]) -> Verdict:
    if decision.effect is Effect.ALLOW:
        return _ALLOWED
    if mode is Mode.STRICT or always_enforced(decision):
        return Verdict(decision.effect)
    if mode is Mode.PERMISSIVE and decision.effect is Effect.DENY and any(r in critical_rules for r in decision.rule_ids):
        return Verdict(Effect.DENY)
    return Verdict(Effect.ALLOW, warning=True)
