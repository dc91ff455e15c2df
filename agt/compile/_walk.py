"""The shared walker of ``agt compile``: one YAML policy, loaded by the yaml engine's own loader, seen as the
rules each target writes, with the strategy's guards and the static types of the fields rules read.

Both targets (:mod:`agt.compile.rego`, :mod:`agt.compile.cedar`) walk the same plan, so they agree on which
rules exist, in which order, and which rule each one must yield to under a priority strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agt.conditions import ast
from agt.decision import Effect, RuleAction
from agt.engines.yaml import _LIMIT_IDS
from agt.engines.yaml_policy import Rule, YamlPolicy, _never

ADVISORY = (RuleAction.AUDIT, RuleAction.WARN)


class Unportable(Exception):
    """A construct one target cannot express; ``construct`` names it, the message says why."""

    def __init__(self, construct: str, reason: str) -> None:
        super().__init__(reason)
        self.construct = construct
        self.reason = reason


@dataclass(frozen=True)
class NotPortable:
    """A rule one target could not express: it is left out of that target, and the conformance suite marks every
    case the rule decides (matches, or errors on) as not portable to the engine."""

    engine: str
    rule: str
    file: str
    line: int | None
    construct: str
    reason: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def describe(self) -> str:
        return f"{self.where}: rule {self.rule!r} is not portable to {self.engine}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "rule": self.rule, "file": self.file, "line": self.line,
                "construct": self.construct, "reason": self.reason}


@dataclass(frozen=True)
class PlannedRule:
    rule: Rule
    order: int
    limit: bool
    """A governance limit or the no-applicable-policy rule: denies under every strategy."""
    yields_to: tuple[Rule, ...] = ()
    """The rules whose match suppresses this one (a priority strategy): it matches only if none of them does."""

    @property
    def effect(self) -> str:
        return {RuleAction.DENY: "deny", RuleAction.REQUIRE_APPROVAL: "approval", RuleAction.ALLOW: "allow"}[self.rule.action]


@dataclass(frozen=True)
class Plan:
    name: str
    default: Effect
    strategy: str
    rules: tuple[PlannedRule, ...]
    skipped: tuple[tuple[Rule, str], ...] = field(default=())
    """Rules no target writes, with why: advisory (audit, warn, log: notes, never deciding) or disabled."""
    sources: tuple[str, ...] = ()


def plan(policy: YamlPolicy) -> Plan:
    """The rules to write, in the policy's order, each with the rules it yields to under the policy's strategy
    (docs/agt-compatibility.md, "Conflict strategies": a rule matches only if no higher-priority rule matches)."""
    skipped: list[tuple[Rule, str]] = []
    deciding: list[tuple[int, Rule]] = []
    for order, rule in enumerate(policy.rules):
        if rule.evaluate is _never:
            skipped.append((rule, "disabled (enabled: false)"))
        elif rule.action in ADVISORY:
            skipped.append((rule, f"advisory ({rule.action.value}): recorded as a note by the yaml engine, never deciding"))
        else:
            deciding.append((order, rule))
    strategy = policy.conflict_strategy
    limits = [r for _, r in deciding if r.id in _LIMIT_IDS]

    def rank(item: tuple[int, Rule]) -> tuple[int, int, int]:
        order, rule = item
        return (-rule.specificity if strategy == "most_specific_wins" else 0, -rule.priority, order)

    planned: list[PlannedRule] = []
    for order, rule in deciding:
        if rule.id in _LIMIT_IDS or strategy == "deny_overrides":
            planned.append(PlannedRule(rule, order, rule.id in _LIMIT_IDS))
            continue
        others = [(o, r) for o, r in deciding if r.id not in _LIMIT_IDS and r.id != rule.id]
        if strategy == "allow_overrides":
            if rule.action is RuleAction.ALLOW:
                higher = [r for o, r in others if r.action is RuleAction.ALLOW and rank((o, r)) < rank((order, rule))]
            else:
                higher = [r for o, r in others if r.action is RuleAction.ALLOW or rank((o, r)) < rank((order, rule))]
        else:
            higher = [r for o, r in others if rank((o, r)) < rank((order, rule))]
        planned.append(PlannedRule(rule, order, False, tuple(limits) + tuple(higher)))
    return Plan(policy.name, policy.default, strategy, tuple(planned), tuple(skipped), policy.sources)


# --- static types of the action document's fields -----------------------------------------------------------------
# What agt's Action guarantees about a field when it is present (the schema validates every action before any
# engine sees it); a field not listed (params, attributes, AGT flat context) may hold anything.
STR, INT, BOOL, LIST_STR = "string", "long", "bool", "set<string>"

FIELD_TYPES: dict[tuple[str, ...], str] = {
    ("action", "tool"): STR, ("action", "kind"): STR, ("action", "type"): STR, ("action", "params_text"): STR,
    ("agent", "id"): STR, ("agent", "roles"): LIST_STR, ("agent", "trust_score"): INT,
    ("agent", "attributes", "workspace"): STR,
    ("resource", "type"): STR, ("resource", "id"): STR,
    ("context", "session_id"): STR, ("context", "task_id"): STR, ("context", "stage"): STR,
    ("context", "environment"): STR, ("context", "timestamp"): STR,
    ("context", "tokens_used"): INT, ("context", "tool_calls"): INT, ("context", "files_changed"): INT,
    ("action", "facts", "parse_error"): BOOL,
}
_SHELL_FACTS = {"params": LIST_STR, "parsed": BOOL, "programs": LIST_STR, "program_families": LIST_STR,
                "program_flags": LIST_STR, "program_args": LIST_STR, "redirects": LIST_STR, "recursive_deletes": LIST_STR,
                "deletes_system_path": BOOL, "writes_device": BOOL, "command_substitution": BOOL,
                "process_substitution": BOOL, "variable_expansion": BOOL, "eval": BOOL, "pipe_to_shell": BOOL,
                "parse_error": BOOL}
_SQL_FACTS = {"params": LIST_STR, "parsed": BOOL, "types": LIST_STR, "objects": LIST_STR, "without_where": LIST_STR,
              "parse_error": BOOL}
FIELD_TYPES.update({("action", "facts", "shell", k): t for k, t in _SHELL_FACTS.items()})
FIELD_TYPES.update({("action", "facts", "sql", k): t for k, t in _SQL_FACTS.items()})


def value_type(node: ast.Node) -> str | None:
    """The static type of a value node, None when it may be anything (or its type depends on the document)."""
    if isinstance(node, ast.Path):
        return FIELD_TYPES.get(node.parts)
    if isinstance(node, ast.Literal):
        return literal_type(node.value)
    if isinstance(node, ast.Concat):
        return STR if all(value_type(p) == STR for p in node.parts) else None
    if isinstance(node, ast.ListExpr):
        return "list"
    return None


def literal_type(value: Any) -> str | None:
    from decimal import Decimal

    if isinstance(value, bool):
        return BOOL
    if isinstance(value, str):
        return STR
    if isinstance(value, int):
        return INT
    if isinstance(value, Decimal):
        return "decimal"
    if value is None:
        return "null"
    return None


def is_number_type(t: str | None) -> bool:
    return t in (INT, "decimal")
