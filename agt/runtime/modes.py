"""Enforcement modes, set per policy and overridable per agent.

* ``strict``: enforce every decision.
* ``permissive``: hard-deny only what a rule marked *critical* denied (and every engine error, which
  is always critical: fail closed); everything else, approvals included, runs and is recorded as a
  warning. For rolling a policy out without breaking agents on its non-critical rules.
* ``audit``: decide and record, never block.
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


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the runtime does with a decision under a mode."""

    effect: Effect
    """The effect enforced: allow lets the call run."""
    warning: bool = False
    """The decision was not allow but the mode let the call run."""


def apply_mode(decision: Decision, mode: Mode, critical_rules: Collection[str]) -> Verdict:
    if decision.effect is Effect.ALLOW:
        return Verdict(Effect.ALLOW)
    if mode is Mode.STRICT:
        return Verdict(decision.effect)
    if mode is Mode.AUDIT:
        return Verdict(Effect.ALLOW, warning=True)
    if decision.effect is Effect.DENY and (
        decision.is_engine_error or any(r in critical_rules for r in decision.rule_ids)
    ):
        return Verdict(Effect.DENY)
    return Verdict(Effect.ALLOW, warning=True)
