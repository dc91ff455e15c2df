"""Which OPA rule answers a decision, and how its result becomes an agt decision (docs/rego-library.md#decision-path).

``decision_path`` names the rule: ``data.agt.decision`` (the default, the agt library's entry point) or any
existing entry point of yours, written as a Rego reference (``data.authz.allow``) or as OPA's REST path
(``/v1/data/authz/allow``). Its result is read by shape:

* **the agt decision object** ``{"effect", "reasons", "approvers"?, "matched"?}``, as ``data.agt.decision`` gives;
* **a boolean**: ``true`` is allow with the reason ``decision-path:true``, ``false`` is deny with the reason
  ``decision-path:false`` (each message names the path);
* **the bridge object**: an object with a boolean ``allow`` (or ``allowed``, as Kubernetes admission reviews say),
  an optional ``deny`` list (non-empty means deny, whatever ``allow`` says: deny overrides) and optional
  ``reasons`` (a list of strings or ``{"id", "message"}`` objects; ``reason`` or ``message``, a string, is one reason).
  String reasons carry the rule id ``decision-path:true`` / ``decision-path:false``.

The boolean and bridge shapes are read only at a path you chose: at ``data.agt.decision`` anything but the
decision object means the library is broken, and denies.

Anything else (a number, a string, a list, an object with neither ``effect`` nor a boolean ``allow``) is a
fail-closed deny naming the shape it got. A bare list, such as conftest's ``deny`` set, is refused on purpose:
an empty list cannot be told from the wrong rule; wrap it as ``{"allow": count(deny) == 0, "deny": deny}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agt.decision import Effect, Reason
from agt.errors import AgtError

__all__ = [
    "DEFAULT_DECISION_REF", "DecisionPathError", "Interpreted", "decision_ref", "decision_url_path", "interpret",
    "ALLOW_ID", "DENY_ID",
]

DEFAULT_DECISION_REF = "data.agt.decision"
ALLOW_ID = "decision-path:true"
DENY_ID = "decision-path:false"
_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_EFFECTS = {e.value: e for e in Effect}


class DecisionPathError(AgtError, ValueError):
    """A decision path that is neither a Rego reference under ``data`` nor an OPA ``/v1/data/...`` path."""


def _segments(path: str) -> list[str]:
    raw = path.strip()
    if raw.startswith("/v1/data/") or raw == "/v1/data":
        segs = [s for s in raw[len("/v1/data"):].split("/") if s]
    elif raw == "data" or raw.startswith("data."):
        segs = raw.split(".")[1:]
    else:
        raise DecisionPathError(
            f"decision path {path!r}: write a Rego reference under data (data.authz.allow) or an OPA path "
            "(/v1/data/authz/allow)"
        )
    if not segs:
        raise DecisionPathError(f"decision path {path!r} names all of data; name one rule (data.authz.allow)")
    bad = [s for s in segs if not _SEGMENT.match(s)]
    if bad:
        raise DecisionPathError(f"decision path {path!r}: {bad[0]!r} is not a plain Rego name")
    return segs


def decision_url_path(path: str) -> str:
    """``data.authz.allow`` or ``/v1/data/authz/allow`` as the REST path OPA answers: ``/v1/data/authz/allow``."""
    return "/v1/data/" + "/".join(_segments(path))


def decision_ref(path: str) -> str:
    """The same path as a Rego reference: ``data.authz.allow``."""
    return "data." + ".".join(_segments(path))


@dataclass(frozen=True)
class Interpreted:
    effect: Effect
    reasons: tuple[Reason, ...]
    approvers: tuple[str, ...] = ()
    matched: tuple[str, ...] = ()
    shape: str = "agt decision"
    """Which shape the result had: "agt decision", "boolean" or "bridge object"."""


def _shape_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        keys = sorted(map(str, value))
        return "an object with keys " + (", ".join(keys[:8]) + (", …" if len(keys) > 8 else "") if keys else "(none)")
    return type(value).__name__


_EXPECTED = ("expected the agt decision object {effect, reasons}, a boolean, or an object with a boolean allow "
             "(docs/rego-library.md#decision-path)")


def interpret(result: Any, ref: str = DEFAULT_DECISION_REF) -> Interpreted | str:
    """The decision ``result`` (the value of OPA's ``result`` key) stands for, or a string saying what is
    wrong with its shape (the caller turns that into a fail-closed deny).

    At the default path, ``data.agt.decision``, only the agt decision object is accepted: the library always
    gives one, so any other shape there means something is broken, not a bridge."""
    if ref == DEFAULT_DECISION_REF and not (isinstance(result, dict) and "effect" in result):
        return f"result of {ref} has the wrong shape: {_shape_name(result)}; expected the agt decision object {{effect, reasons}}"
    if isinstance(result, bool):
        if result:
            return Interpreted(Effect.ALLOW, (Reason(ALLOW_ID, f"{ref} is true"),), matched=(ALLOW_ID,), shape="boolean")
        return Interpreted(Effect.DENY, (Reason(DENY_ID, f"{ref} is false"),), matched=(DENY_ID,), shape="boolean")
    if not isinstance(result, dict):
        return f"result of {ref} has the wrong shape: {_shape_name(result)}; {_EXPECTED}"
    if "effect" in result:
        return _agt_decision(result)
    if "allow" in result or "allowed" in result:
        return _bridge(result, ref)
    return f"result of {ref} has the wrong shape: {_shape_name(result)}; {_EXPECTED}"


def _agt_decision(result: dict) -> Interpreted | str:
    effect_raw = result.get("effect")
    effect = _EFFECTS.get(effect_raw) if isinstance(effect_raw, str) else None
    if effect is None:
        return f"result has the wrong shape: effect {effect_raw!r}"
    reasons_raw = result.get("reasons")
    if not isinstance(reasons_raw, list) or not reasons_raw or not all(
        isinstance(r, dict) and isinstance(r.get("id"), str) and isinstance(r.get("message", ""), str)
        for r in reasons_raw
    ):
        return "result has the wrong shape: reasons must be a non-empty list of {id, message}"
    approvers = result.get("approvers", [])
    if not isinstance(approvers, list) or not all(isinstance(a, str) for a in approvers):
        return "result has the wrong shape: approvers must be a list of strings"
    matched = result.get("matched", [])
    if not isinstance(matched, list) or not all(isinstance(m, str) for m in matched):
        return "result has the wrong shape: matched must be a list of strings"
    by_id: dict[str, str] = {}
    for r in reasons_raw:
        by_id.setdefault(r["id"], r.get("message", ""))
    return Interpreted(
        effect,
        tuple(Reason(i, by_id[i]) for i in sorted(by_id)),
        tuple(sorted(set(approvers))) if effect is Effect.REQUIRE_APPROVAL else (),
        tuple(sorted(set(matched))),
    )


def _reason_list(raw: Any, default_id: str, field: str) -> list[Reason] | str:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        return f"{field} must be a list of strings or {{id, message}} objects, got {_shape_name(raw)}"
    out: list[Reason] = []
    for item in raw:
        if isinstance(item, str):
            out.append(Reason(default_id, item))
        elif isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("message", ""), str):
            out.append(Reason(item["id"], item.get("message", "")))
        else:
            return f"{field} must be a list of strings or {{id, message}} objects, got an item that is {_shape_name(item)}"
    return out


def _bridge(result: dict, ref: str) -> Interpreted | str:
    flags = [result[k] for k in ("allow", "allowed") if k in result]
    if not all(isinstance(f, bool) for f in flags):
        return f"result of {ref} has the wrong shape: allow must be a boolean, got {_shape_name(flags[0])}"
    if len(set(flags)) > 1:
        return f"result of {ref} has the wrong shape: allow and allowed disagree"
    denies = _reason_list(result.get("deny"), DENY_ID, "deny")
    if isinstance(denies, str):
        return f"result of {ref} has the wrong shape: {denies}"
    allowed = flags[0] and not denies
    default_id = ALLOW_ID if allowed else DENY_ID
    reasons: list[Reason] | str = []
    for key in ("reasons", "reason", "message"):
        if key in result:
            reasons = _reason_list(result[key], default_id, key)
            break
    if isinstance(reasons, str):
        return f"result of {ref} has the wrong shape: {reasons}"
    chosen = denies or reasons or [Reason(default_id, f"{ref}.{'allow' if 'allow' in result else 'allowed'} is "
                                                      f"{'true' if flags[0] else 'false'}")]
    by_id: dict[str, list[str]] = {}
    for r in chosen:
        by_id.setdefault(r.rule_id, [])
        if r.message and r.message not in by_id[r.rule_id]:
            by_id[r.rule_id].append(r.message)
    merged = tuple(Reason(i, "; ".join(by_id[i])) for i in sorted(by_id))
    return Interpreted(Effect.ALLOW if allowed else Effect.DENY, merged, matched=tuple(sorted(by_id)),
                       shape="bridge object")
