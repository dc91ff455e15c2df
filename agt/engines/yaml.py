"""The native engine: Agent Governance Toolkit YAML rules, evaluated in-process.

Rules are looked up through an index (by tool name, or another field a rule pins to literals), so a
decision only evaluates the rules that could match. Combining is :func:`agt.decision.combine`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from agt.action import Action
from agt.catalog import Catalog, resolve_catalog, with_catalog
from agt.conditions.prefilter import Prefilter
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
    """Rules looked up by a necessary condition instead of scanned (see agt.conditions.prefilter).

    Equality on a field is a hash lookup; every substring and pattern rule on a field is one RE2 set run once;
    integer lower bounds are a bisect, so budget rules cost nothing until a counter nears them. The index only
    narrows the candidates, kept in policy order: every candidate's whole condition is still evaluated.
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self._prefilter = Prefilter([r.condition for r in self.rules])
        self.always = [self.rules[k] for k in self._prefilter.always]
        self.positions = self._prefilter.candidates
        """The positions (ascending: policy order) of the rules that could be true, or raise, for a document."""

    def candidates(self, doc: dict) -> list[Rule]:
        rules = self.rules
        return [rules[k] for k in self._prefilter.candidates(doc)]


_DECIDED_CAP = 4096
"""Decisions kept per engine, one per distinct set of matching rules (see YamlEngine.evaluate)."""


class YamlEngine:
    name = "yaml"

    def __init__(self, policy: str | Path | YamlPolicy, *, catalog: Catalog | str | Path | None = None) -> None:
        """``catalog``: the tool catalog checked before any rule; by default the catalog.yaml beside the policy."""
        self.policy = policy if isinstance(policy, YamlPolicy) else load_policy(policy)
        self.catalog = resolve_catalog(catalog, None if isinstance(policy, YamlPolicy) else policy)
        self._revision = with_catalog(self.policy.revision, self.catalog)
        self._index = _RuleIndex(self.policy.rules)
        self._positions = self._index.positions
        self._by_id = {r.id: (i, r) for i, r in enumerate(self.policy.rules)}
        # What a rule reports when it matches never varies: one immutable RuleMatch per rule.
        self._match_of = tuple(RuleMatch(r.id, r.action, r.message, r.approvers) for r in self.policy.rules)
        # A decision is a function of which rules matched and nothing else (combine reads the matches, the policy's
        # default and strategy, the engine and revision, all fixed here): one immutable Decision per set of matches.
        self._decided: dict[tuple[int, ...], Decision] = {}
        # The most common outcome, no rule matched, shares one immutable Decision.
        self._default_decision = combine((), self.policy.default, engine=self.name, revision=self.revision)

    @property
    def revision(self) -> str:
        return self._revision

    def _hits(self, doc: dict) -> tuple[int, ...]:
        """The positions of the rules that match ``doc``. Raises on a condition that errors (the first, in policy order)."""
        positions = self._positions(doc)
        if not positions:
            return ()
        rules = self._index.rules
        hits: list[int] = []
        for k in positions:
            rule = rules[k]
            try:
                hit = rule.evaluate(doc)
            except ConditionEvalError as exc:
                raise ConditionEvalError(f"rule {rule.id!r} ({rule.source}:{rule.line}): {exc}") from None
            if hit:
                hits.append(k)
        return tuple(hits)

    def matches(self, action: Action) -> list[RuleMatch]:
        """Every rule that matches, before combining. Raises on a condition that errors."""
        match_of = self._match_of
        return [match_of[k] for k in self._hits(action.document)]  # type: ignore[arg-type]

    def evaluate(self, action: Action) -> Decision:
        try:
            # Inside the try: a value that is not an Action must deny here too, never raise.
            if self.catalog is not None and (denied := self.catalog.denial(action, self.name, self._revision)) is not None:
                return denied
            hits = self._hits(action.document)
        except AgtError as exc:
            return fail_closed(f"condition error: {exc}", engine=self.name, revision=self._revision)
        except Exception as exc:  # noqa: BLE001 - any fault must still deny
            return fail_closed(f"{type(exc).__name__}: {exc}", engine=self.name, revision=self._revision)
        if not hits:
            return self._default_decision
        decided = self._decided.get(hits)
        if decided is None:
            match_of = self._match_of
            matched = resolve([match_of[k] for k in hits], self._by_id, self.policy.conflict_strategy)
            decided = combine(matched, self.policy.default, engine=self.name, revision=self.revision)
            if len(self._decided) < _DECIDED_CAP:
                self._decided[hits] = decided
        return decided

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
