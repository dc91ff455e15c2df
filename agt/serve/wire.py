"""The JSON a decision travels as between agt serve and its clients, both ways (no web framework imported here:
the clients use it too).

A runtime-API decision is the OPA-shaped decision (:func:`opa_result`: effect, reasons, approvers, matched)
plus ``engine``, ``revision`` and ``notes``. Reading one back goes through the same shape
check the OPA engine applies to OPA's answers (agt.opa.decision_path.interpret), so a malformed answer is a
fail-closed deny naming what is wrong, never a decision."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agt.decision import Decision, Reason, fail_closed
from agt.opa.decision_path import interpret

DERIVED_ACTION_FIELDS = frozenset({"params_text", "facts"})
"""What agt derives from an action's params: the schema says a supplied value is ignored and recomputed."""


def action_input(document: Mapping[str, Any]) -> dict[str, Any]:
    """An action document as a client sends it to agt serve: without the fields the service derives again from
    the params anyway (:data:`DERIVED_ACTION_FIELDS`), about half the bytes of a plain action's document, so
    half the JSON to write and for the service to read and validate."""
    op = document["action"]
    return {**document, "action": {k: v for k, v in op.items() if k not in DERIVED_ACTION_FIELDS}}


def opa_result(decision: Decision) -> dict[str, Any]:
    """A decision as the agt Rego library's ``data.agt.decision`` writes it: the same four keys, always."""
    return {
        "effect": decision.effect.value,
        "reasons": [{"id": r.rule_id, "message": r.message} for r in decision.reasons],
        "approvers": list(decision.approvers),
        "matched": list(decision.matched),
    }


def decision_doc(decision: Decision) -> dict[str, Any]:
    """:func:`opa_result` and what the runtime API adds: ``notes``, ``engine``, ``revision`` (as Decision.to_dict
    writes them, when set)."""
    extra = {k: v for k, v in decision.to_dict().items() if k in ("notes", "engine", "revision")}
    return {**opa_result(decision), **extra}


def read_decision(doc: Any, *, engine: str = "remote", revision: str = "") -> Decision:
    """The decision ``doc`` holds, or a fail-closed deny (engine ``engine``) saying why it holds none."""
    got = interpret(doc)
    if isinstance(got, str):
        return fail_closed(f"{engine}: {got}", engine=engine, revision=revision)
    notes: tuple[Reason, ...] = ()
    raw_notes = doc.get("notes") if isinstance(doc, dict) else None
    if isinstance(raw_notes, list):
        notes = tuple(Reason(str(n.get("id", "")), str(n.get("message", ""))) for n in raw_notes if isinstance(n, dict))
    named = doc.get("engine") if isinstance(doc.get("engine"), str) else engine
    rev = doc.get("revision") if isinstance(doc.get("revision"), str) else revision
    return Decision(got.effect, got.reasons, approvers=got.approvers, notes=notes, matched=got.matched,
                    engine=named, revision=rev)
