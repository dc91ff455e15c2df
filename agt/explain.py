"""Why an engine decided what it did (``agt eval --explain``; docs/cli.md#explain).

:func:`explain` decides an action on each engine given and reports, per engine:

* what the engine receives: the normalized action document for YAML (field paths read from it), the Cedar
  request and entities (agt.engines.cedar_request; the context as sent, pruned to the attributes the policies
  read), OPA's ``input`` and the query it answers. An engine may offer ``explain_input(action) -> dict`` for
  this (optional; not part of the Engine protocol); without it the document itself is shown;
* the rules that matched, each with its id, effect and message, marked determining or not;
* the combining step that produced the decision (``deny rule block-x matched → deny (deny overrides)``).

How much an engine can tell about matching differs, and the report says which (``complete``):

* ``yaml`` lists every rule that matched, audit and warn rules included;
* ``cedar`` lists only the policies on the side that decided: Cedar's diagnostics name the satisfied forbids of a
  deny (approval forbids included) or the permits of an allow, never a permit that matched under a deny;
* ``opa`` lists the determining rules with their messages (the library's ``reasons``) and the ids of the other
  matching rules (its ``matched``), whose effect and message the library does not return (``effect: matched``);
  an entry point of your own (``--decision-path``) gives only the determining reason.

Plus, once, the normalized document every engine starts from: ``params_text``, the derived ``facts``, and every
exact decimal in it with its path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Mapping

from agt.action import Action
from agt.decision import DEFAULT_RULE_ID, Decision, Effect, RuleAction
from agt.engines.base import Engine

__all__ = ["EngineExplanation", "Explanation", "RuleHit", "combining_step", "explain", "explain_engine"]


@dataclass(frozen=True)
class RuleHit:
    """One rule that matched."""

    rule_id: str
    effect: str
    """allow, deny, require_approval, audit or warn; ``matched`` when the engine does not say."""
    message: str = ""
    approvers: tuple[str, ...] = ()
    determining: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.rule_id, "effect": self.effect, "message": self.message,
                               "determining": self.determining}
        if self.approvers:
            out["approvers"] = list(self.approvers)
        return out


@dataclass(frozen=True)
class EngineExplanation:
    engine: str
    revision: str
    receives: Mapping[str, Any]
    decision: Decision
    rules: tuple[RuleHit, ...]
    complete: bool
    """True when ``rules`` is every rule that matched; False when the engine names only the determining ones."""
    combining: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "revision": self.revision, "receives": _plain(self.receives),
            "matched_rules": [r.to_dict() for r in self.rules], "matched_rules_complete": self.complete,
            "combining": self.combining, "decision": self.decision.to_dict(),
        }


@dataclass(frozen=True)
class Explanation:
    document: Mapping[str, Any]
    """The normalized action document, as agt built it."""
    engines: tuple[EngineExplanation, ...] = field(default=())

    @property
    def params_text(self) -> str:
        return str(self.document.get("action", {}).get("params_text", ""))

    @property
    def facts(self) -> Mapping[str, Any]:
        return self.document.get("action", {}).get("facts", {})

    @property
    def decimals(self) -> list[tuple[str, Decimal]]:
        """Every exact decimal in the document, by dotted path."""
        found: list[tuple[str, Decimal]] = []
        _walk_decimals(self.document, "", found)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "document": _plain(self.document),
            "normalized": {
                "params_text": self.params_text,
                "facts": _plain(self.facts),
                "decimals": [{"path": p, "value": str(v)} for p, v in self.decimals],
            },
            "engines": [e.to_dict() for e in self.engines],
        }


def _plain(value: Any) -> Any:
    """A JSON-ready copy: mappings (read-only views included) as dicts, tuples as lists; decimals kept exact."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _walk_decimals(value: Any, path: str, out: list[tuple[str, Decimal]]) -> None:
    if isinstance(value, Decimal):
        out.append((path, value))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if k != "facts" or path != "action":  # facts repeat the params they were derived from
                _walk_decimals(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _walk_decimals(v, f"{path}[{i}]", out)


def _plural(ids: tuple[str, ...], word: str) -> str:
    return f"{word} rule{'s' if len(ids) > 1 else ''} {', '.join(ids)}"


def combining_step(decision: Decision) -> str:
    """The step of the combining rules (docs/decision-semantics.md) that gave ``decision``, in words."""
    ids = decision.rule_ids
    if decision.is_engine_error:
        cause = next((r.message for r in decision.reasons if r.message), "")
        return f"the engine could not decide ({cause}) → deny (fail closed)"
    if any(i.startswith("decision-path:") for i in ids) and len(ids) == 1:
        message = decision.reasons[0].message
        return f"{message} → {decision.effect.value} (the decision path's result)"
    if ids == (DEFAULT_RULE_ID,):
        return f"no deciding rule matched → {decision.effect.value} (the policy default)"
    if decision.effect is Effect.DENY:
        return f"{_plural(ids, 'deny')} matched → deny (deny overrides)"
    if decision.effect is Effect.REQUIRE_APPROVAL:
        who = f"; approvers: {', '.join(decision.approvers)}" if decision.approvers else ""
        return f"{_plural(ids, 'approval')} matched, no deny rule → require_approval{who}"
    return f"{_plural(ids, 'allow')} matched, no deny or approval rule → allow"


def _hits_from_decision(engine: Any, decision: Decision) -> list[RuleHit]:
    """Determining rules from the reasons (with the engine's own rule table when it has one), then the other
    matched ids without effect."""
    rules = getattr(engine, "rules", None)
    hits: list[RuleHit] = []
    if decision.is_engine_error:
        return hits
    for r in decision.reasons:
        if r.rule_id == DEFAULT_RULE_ID:
            continue
        rule = rules.get(r.rule_id) if isinstance(rules, Mapping) else None
        if rule is not None:
            hits.append(RuleHit(r.rule_id, rule.action.value, rule.message or r.message, tuple(rule.approvers), True))
        else:
            hits.append(RuleHit(r.rule_id, decision.effect.value, r.message,
                                decision.approvers if decision.effect is Effect.REQUIRE_APPROVAL else (), True))
    seen = {h.rule_id for h in hits}
    for rid in decision.matched:
        if rid not in seen and rid != DEFAULT_RULE_ID:
            rule = rules.get(rid) if isinstance(rules, Mapping) else None
            if rule is not None:
                hits.append(RuleHit(rid, rule.action.value, rule.message, tuple(rule.approvers), False))
            else:
                hits.append(RuleHit(rid, "matched", "", (), False))
    return hits


def _yaml_hits(engine: Any, action: Action, decision: Decision) -> list[RuleHit]:
    if decision.is_engine_error:
        return []
    determining = set(decision.rule_ids)
    hits = []
    for m in engine.matches(action):
        hits.append(RuleHit(m.rule_id, m.action.value, m.message, tuple(m.approvers),
                            m.rule_id in determining and m.action not in (RuleAction.AUDIT, RuleAction.WARN)))
    return hits


def explain_engine(engine: Engine, action: Action) -> EngineExplanation:
    """Decide ``action`` on ``engine`` and say why."""
    decision = engine.evaluate(action)
    receive = getattr(engine, "explain_input", None)
    try:
        receives: Mapping[str, Any] = receive(action) if callable(receive) else {"document": action.document}
    except Exception as exc:  # noqa: BLE001 - the explanation must not fail where the decision did not
        receives = {"error": f"{type(exc).__name__}: {exc}"}
    complete = False
    if engine.name == "yaml" and hasattr(engine, "matches"):
        try:
            hits = _yaml_hits(engine, action, decision)
            complete = True
        except Exception:  # noqa: BLE001 - a condition that errors: the decision already says so
            hits = _hits_from_decision(engine, decision)
    else:
        hits = _hits_from_decision(engine, decision)
        # The agt library's `matched` names every deciding rule that matched (an entry point of your own does not).
        complete = (engine.name == "opa" and getattr(engine, "decision_ref", "") == "data.agt.decision"
                    and not decision.is_engine_error)
    return EngineExplanation(engine.name, engine.revision, receives, decision, tuple(hits), complete,
                             combining_step(decision))


def explain(action: Action, engines: Mapping[str, Engine] | Iterable[Engine]) -> Explanation:
    """Decide ``action`` on every engine and explain each decision."""
    engine_list = list(engines.values()) if isinstance(engines, Mapping) else list(engines)
    return Explanation(action.document, tuple(explain_engine(e, action) for e in engine_list))
