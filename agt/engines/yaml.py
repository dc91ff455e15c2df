"""The native engine: Agent Governance Toolkit YAML rules, evaluated in-process.

Rules are looked up through an index (by tool name, or another field a rule pins to literals), so a
decision only evaluates the rules that could match. Combining is :func:`agt.decision.combine`.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path
from typing import Any, Iterable

from agt.action import Action
from agt.catalog import Catalog, resolve_catalog, with_catalog
from agt.conditions import MISSING, EqualityKey, LowerBoundKey, field_getter, index_key
from agt.decision import Decision, RuleAction, RuleMatch, combine, fail_closed
from agt.engines import base
from agt.engines.yaml_policy import GOVERNANCE_RULE_IDS, NO_APPLICABLE_POLICY_ID, Rule, YamlPolicy, load_policy

_ADVISORY = (RuleAction.AUDIT, RuleAction.WARN)
_LIMIT_IDS = frozenset((*GOVERNANCE_RULE_IDS.values(), NO_APPLICABLE_POLICY_ID))


def resolve(matches: list[RuleMatch], rules: dict[str, tuple[int, Rule]], strategy: str) -> list[RuleMatch]:
    """The matches that decide under ``strategy`` (then combined by :func:`agt.decision.combine`).

    * ``deny_overrides``: all of them (agt's contract: deny > approval > allow).
    * ``priority_first_match``: the deciding rule of highest priority, ties to the earlier rule (AGT's default).
    * ``most_specific_wins``: the same, ranking the document's scope (agent > organization > tenant > global) first.
    * ``allow_overrides``: the highest-priority allow if any matched, else the highest-priority deciding rule.

    Advisory matches (audit, warn, log) are kept as notes and never decide. The governance block's limits are not
    rules but limits, and an agent no document applies to is denied: these deny under every strategy.
    """
    if strategy == "deny_overrides":
        return matches
    advisory = [m for m in matches if m.action in _ADVISORY]
    limits = [m for m in matches if m.rule_id in _LIMIT_IDS]
    if limits:
        return limits + advisory
    deciding = [m for m in matches if m.action not in _ADVISORY]
    if not deciding:
        return advisory

    def rank(m: RuleMatch) -> tuple[int, int, int]:
        order, rule = rules[m.rule_id]
        return (-rule.specificity if strategy == "most_specific_wins" else 0, -rule.priority, order)

    if strategy == "allow_overrides" and any(m.action is RuleAction.ALLOW for m in deciding):
        deciding = [m for m in deciding if m.action is RuleAction.ALLOW]
    return [min(deciding, key=rank)] + advisory
from agt.errors import AgtError, ConditionEvalError


class _RuleIndex:
    """Rules looked up by a necessary condition instead of scanned (see conditions.index_key).

    Equality keys: a hash lookup on the field's value. Lower bounds: a bisect over the sorted bounds,
    so budget rules cost nothing until a counter nears them. The index only narrows the candidates;
    every candidate's whole condition is still evaluated.
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.always: list[Rule] = []
        equal: dict[tuple[str, ...], dict[Any, list[Rule]]] = {}
        bounded: dict[tuple[str, ...], list[tuple[int, int, Rule]]] = {}
        for order, rule in enumerate(rules):
            key = index_key(rule.condition)
            if isinstance(key, EqualityKey):
                table = equal.setdefault(key.path, {})
                for v in key.values:
                    table.setdefault(v, []).append(rule)
            elif isinstance(key, LowerBoundKey):
                bounded.setdefault(key.path, []).append((key.bound, order, rule))
            else:
                self.always.append(rule)
        self._equal = [(field_getter(path), table) for path, table in equal.items()]
        self._bounded = []
        for path, entries in bounded.items():
            entries.sort(key=lambda e: (e[0], e[1]))
            self._bounded.append((field_getter(path), [e[0] for e in entries], [e[2] for e in entries]))

    def candidates(self, doc: dict) -> list[Rule]:
        found = list(self.always)
        for get, table in self._equal:
            v = get(doc)
            if type(v) is str:
                hit = table.get(v)
                if hit:
                    found.extend(hit)
        for get, bounds, rules in self._bounded:
            v = get(doc)
            if type(v) is int:
                found.extend(rules[: bisect_right(bounds, v)])
            elif v is not MISSING:
                # Not an integer: let every rule's comparison run, so a type error still fails closed.
                found.extend(rules)
        return found


class YamlEngine:
    name = "yaml"

    def __init__(self, policy: str | Path | YamlPolicy, *, catalog: Catalog | str | Path | None = None) -> None:
        """``catalog``: the tool catalog checked before any rule; by default the catalog.yaml beside the policy."""
        self.policy = policy if isinstance(policy, YamlPolicy) else load_policy(policy)
        self.catalog = resolve_catalog(catalog, None if isinstance(policy, YamlPolicy) else policy)
        self._revision = with_catalog(self.policy.revision, self.catalog)
        self._index = _RuleIndex(self.policy.rules)
        self._by_id = {r.id: (i, r) for i, r in enumerate(self.policy.rules)}
        # The most common outcome, no rule matched, shares one immutable Decision.
        self._default_decision = combine((), self.policy.default, engine=self.name, revision=self.revision)

    @property
    def revision(self) -> str:
        return self._revision

    def matches(self, action: Action) -> list[RuleMatch]:
        """Every rule that matches, before combining. Raises on a condition that errors."""
        doc = action.document
        out: list[RuleMatch] = []
        for rule in self._index.candidates(doc):  # type: ignore[arg-type]
            try:
                hit = rule.evaluate(doc)
            except ConditionEvalError as exc:
                raise ConditionEvalError(f"rule {rule.id!r} ({rule.source}:{rule.line}): {exc}") from None
            if hit:
                out.append(RuleMatch(rule.id, rule.action, rule.message, rule.approvers))
        return out

    def evaluate(self, action: Action) -> Decision:
        try:
            # Inside the try: a value that is not an Action must deny here too, never raise.
            if self.catalog is not None and (denied := self.catalog.denial(action, self.name, self.revision)) is not None:
                return denied
            matched = self.matches(action)
        except AgtError as exc:
            return fail_closed(f"condition error: {exc}", engine=self.name, revision=self.revision)
        except Exception as exc:  # noqa: BLE001 - any fault must still deny
            return fail_closed(f"{type(exc).__name__}: {exc}", engine=self.name, revision=self.revision)
        if not matched:
            return self._default_decision
        matched = resolve(matched, self._by_id, self.policy.conflict_strategy)
        return combine(matched, self.policy.default, engine=self.name, revision=self.revision)

    def evaluate_many(self, actions: Iterable[Action]) -> list[Decision]:
        return [self.evaluate(a) for a in actions]

    def close(self) -> None:
        pass

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.policy.rules if r.id == rule_id), None)


def _factory(policy: str, *, catalog: Any = None, **options: object) -> YamlEngine:
    if options:
        raise TypeError(f"the yaml engine takes no options but catalog=, got {', '.join(options)}")
    return YamlEngine(policy, catalog=catalog)


base.register("yaml", _factory)
