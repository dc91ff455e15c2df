"""The native engine: Agent Governance Toolkit YAML rules, evaluated in-process.

Rules are looked up through an index (by tool name, or another field a rule pins to literals), so a
decision only evaluates the rules that could match. Combining is :func:`agt.decision.combine`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from agt.action import Action
from agt.conditions import MISSING, index_keys
from agt.decision import Decision, RuleAction, RuleMatch, combine, fail_closed
from agt.engines import base
from agt.engines.yaml_policy import Rule, YamlPolicy, load_policy
from agt.errors import AgtError, ConditionEvalError


class _RuleIndex:
    """Rules grouped by a field they pin (``tool_name == 'x'``); everything else is always a candidate."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.always: list[Rule] = []
        self.by_field: dict[tuple[str, ...], dict[Any, list[Rule]]] = {}
        for rule in rules:
            key = index_keys(rule.condition)
            if key is None:
                self.always.append(rule)
                continue
            path, values = key
            table = self.by_field.setdefault(path, {})
            for v in values:
                table.setdefault(v, []).append(rule)
        self._fields = [(path, table) for path, table in self.by_field.items()]

    def candidates(self, doc: dict) -> list[Rule]:
        found = list(self.always)
        for path, table in self._fields:
            v: Any = doc
            for p in path:
                v = v.get(p, MISSING) if type(v) is dict else MISSING
            if v is not MISSING and type(v) is str:
                hit = table.get(v)
                if hit:
                    found.extend(hit)
        return found


class YamlEngine:
    name = "yaml"

    def __init__(self, policy: str | Path | YamlPolicy) -> None:
        self.policy = policy if isinstance(policy, YamlPolicy) else load_policy(policy)
        self._index = _RuleIndex(self.policy.rules)
        # The most common outcome, no rule matched, shares one immutable Decision.
        self._default_decision = combine((), self.policy.default, engine=self.name, revision=self.revision)

    @property
    def revision(self) -> str:
        return self.policy.revision

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
            matched = self.matches(action)
        except AgtError as exc:
            return fail_closed(f"condition error: {exc}", engine=self.name, revision=self.revision)
        except Exception as exc:  # noqa: BLE001 - any fault must still deny
            return fail_closed(f"{type(exc).__name__}: {exc}", engine=self.name, revision=self.revision)
        if not matched:
            return self._default_decision
        return combine(matched, self.policy.default, engine=self.name, revision=self.revision)

    def evaluate_many(self, actions: Iterable[Action]) -> list[Decision]:
        return [self.evaluate(a) for a in actions]

    def close(self) -> None:
        pass

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.policy.rules if r.id == rule_id), None)


def _factory(policy: str, **options: object) -> YamlEngine:
    if options:
        raise TypeError(f"the yaml engine takes no options, got {', '.join(options)}")
    return YamlEngine(policy)


base.register("yaml", _factory)

# Rule actions that decide, for documentation and the CLI.
DECIDING_ACTIONS = (RuleAction.DENY, RuleAction.REQUIRE_APPROVAL, RuleAction.ALLOW)
