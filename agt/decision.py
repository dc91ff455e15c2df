"""The decision contract, implemented once: effects, reasons, and the combining algorithm.

Every engine reports which rules *matched*; :func:`combine` turns those matches into a
:class:`Decision` with the same precedence everywhere (see docs/decision-semantics.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable

DEFAULT_RULE_ID = "default"
"""The reason reported when no rule matched and the policy default decided."""

ENGINE_ERROR_ID = "engine_error"
"""The reason reported on every fail-closed deny."""


class Effect(str, enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    REQUIRE_APPROVAL = "require_approval"

    def __str__(self) -> str:
        return self.value


class RuleAction(str, enum.Enum):
    """What a matching rule asks for. ``audit`` and ``warn`` annotate a decision but never decide it."""

    ALLOW = "allow"
    DENY = "deny"
    REQUIRE_APPROVAL = "require_approval"
    AUDIT = "audit"
    WARN = "warn"


@dataclass(frozen=True, slots=True)
class Reason:
    rule_id: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """One rule that matched an action, as an engine reports it before combining."""

    rule_id: str
    action: RuleAction
    message: str = ""
    approvers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    effect: Effect
    reasons: tuple[Reason, ...]
    approvers: tuple[str, ...] = ()
    notes: tuple[Reason, ...] = ()
    """Matched ``audit``/``warn`` rules: recorded, never deciding, not part of engine parity."""
    matched: tuple[str, ...] = ()
    """Every deciding rule that matched, determining or not: for rule coverage, not for parity.
    Engines report what they can see (Cedar only reports the policies on the winning side)."""
    engine: str = ""
    revision: str = ""

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.rule_id for r in self.reasons)

    @property
    def parity_key(self) -> tuple[Effect, tuple[str, ...], tuple[str, ...]]:
        """What engines must agree on: effect, reason ids and approvers (messages and notes aside)."""
        return (self.effect, self.rule_ids, self.approvers)

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW

    @property
    def is_engine_error(self) -> bool:
        return any(r.rule_id == ENGINE_ERROR_ID for r in self.reasons)

    def to_dict(self) -> dict:
        out: dict = {
            "effect": self.effect._value_,  # a plain attribute: .value is a descriptor call, on every record
            "reasons": [{"id": r.rule_id, "message": r.message} for r in self.reasons],
        }
        if self.approvers:
            out["approvers"] = list(self.approvers)
        if self.notes:
            out["notes"] = [{"id": r.rule_id, "message": r.message} for r in self.notes]
        if self.engine:
            out["engine"] = self.engine
        if self.revision:
            out["revision"] = self.revision
        return out


def _reasons(matches: Iterable[RuleMatch]) -> tuple[Reason, ...]:
    # Reasons are a set; sorting by id makes them byte-identical across engines.
    by_id: dict[str, str] = {}
    for m in matches:
        by_id.setdefault(m.rule_id, m.message)
    return tuple(Reason(rule_id, by_id[rule_id]) for rule_id in sorted(by_id))


def combine(
    matches: Iterable[RuleMatch],
    default: Effect = Effect.DENY,
    *,
    default_message: str = "",
    engine: str = "",
    revision: str = "",
) -> Decision:
    """Apply the combining rules: deny > require_approval > allow > policy default (deny unless stated)."""
    if default is Effect.REQUIRE_APPROVAL:
        raise ValueError("a policy default must be allow or deny")
    matches = tuple(matches)
    matched = tuple(sorted({m.rule_id for m in matches if m.action not in (RuleAction.AUDIT, RuleAction.WARN)}))
    notes = _reasons(m for m in matches if m.action in (RuleAction.AUDIT, RuleAction.WARN))
    denies = [m for m in matches if m.action is RuleAction.DENY]
    if denies:
        return Decision(Effect.DENY, _reasons(denies), notes=notes, matched=matched, engine=engine, revision=revision)
    approvals = [m for m in matches if m.action is RuleAction.REQUIRE_APPROVAL]
    if approvals:
        approvers = tuple(sorted({a for m in approvals for a in m.approvers}))
        return Decision(
            Effect.REQUIRE_APPROVAL,
            _reasons(approvals),
            approvers=approvers,
            notes=notes,
            matched=matched,
            engine=engine,
            revision=revision,
        )
    allows = [m for m in matches if m.action is RuleAction.ALLOW]
    if allows:
        return Decision(Effect.ALLOW, _reasons(allows), notes=notes, matched=matched, engine=engine, revision=revision)
    return Decision(
        default,
        (Reason(DEFAULT_RULE_ID, default_message or f"no rule matched; policy default is {default.value}"),),
        notes=notes,
        engine=engine,
        revision=revision,
    )


def fail_closed(cause: str, *, engine: str = "", revision: str = "") -> Decision:
    """The one way an engine reports that it could not decide: deny, naming the cause."""
    return Decision(Effect.DENY, (Reason(ENGINE_ERROR_ID, cause),), engine=engine, revision=revision)


_STRICTNESS = {Effect.DENY: 0, Effect.REQUIRE_APPROVAL: 1, Effect.ALLOW: 2}


def strictest(decisions: Iterable[Decision]) -> Decision:
    """One decision for a call decided several times (once per file it names): the strictest effect
    under the combining rules, with the reasons and approvers of every decision that reached it."""
    decisions = tuple(decisions)
    effect = min((d.effect for d in decisions), key=_STRICTNESS.__getitem__)
    winners = [d for d in decisions if d.effect is effect]
    reasons: dict[str, Reason] = {}
    for d in winners:
        for r in d.reasons:
            reasons.setdefault(r.rule_id, r)
    first = winners[0]
    return Decision(
        effect, tuple(reasons[k] for k in sorted(reasons)),
        approvers=tuple(sorted({a for d in winners for a in d.approvers})),
        notes=first.notes, matched=tuple(sorted({m for d in decisions for m in d.matched})),
        engine=first.engine, revision=first.revision,
    )
