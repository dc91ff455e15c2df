"""The condition AST: plain frozen values, produced by the parser and consumed by the compiler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

COMPARISON_OPERATORS = (
    "==", "!=", "<", "<=", ">", ">=", "in", "not in", "startswith", "endswith", "contains", "matches",
)


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class Path:
    """A field of the action document, already resolved through aliases (see resolve_alias)."""

    parts: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class FlatPath:
    """An AGT flat-context name that is not one of agt's fields: the first of ``candidates`` present in the
    document (``action.params.<name>``, then ``context.attributes.<name>``); missing when none is."""

    name: str
    candidates: tuple[tuple[str, ...], ...]

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Concat:
    parts: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: "Node"
    right: "Node"


@dataclass(frozen=True, slots=True)
class Not:
    operand: "Node"


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple["Node", ...]


Node = Union[Literal, Path, FlatPath, ListExpr, Concat, Compare, Not, And, Or]

MAX_DEPTH = 32
"""Levels a condition may nest (parentheses, lists, ``not``, structured lists). Far beyond any real rule;
the bound keeps parsing, compiling and evaluating a rule within Python's stack."""


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, (And, Or)):
        return node.operands
    if isinstance(node, Not):
        return (node.operand,)
    if isinstance(node, Compare):
        return (node.left, node.right)
    if isinstance(node, ListExpr):
        return node.items
    if isinstance(node, Concat):
        return node.parts
    return ()


def depth(node: Node) -> int:
    """How many levels ``node`` nests, counted without recursion (so any tree can be measured)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in children(n))
    return deepest


ROOTS = ("agent", "action", "resource", "context")

# Agent Governance Toolkit policies address a flat context; these names map onto agt's document.
ALIASES: dict[str, tuple[str, ...]] = {
    "tool_name": ("action", "tool"),
    "tool": ("action", "tool"),
    "kind": ("action", "kind"),
    "params": ("action", "params"),
    "args": ("action", "params"),
    "arguments": ("action", "params"),
    "params_text": ("action", "params_text"),
    "agent_id": ("agent", "id"),
    "trust_score": ("agent", "trust_score"),
    "roles": ("agent", "roles"),
    "session_id": ("context", "session_id"),
    "task_id": ("context", "task_id"),
    "stage": ("context", "stage"),
    "tokens_used": ("context", "tokens_used"),
    "tool_calls": ("context", "tool_calls"),
    "files_changed": ("context", "files_changed"),
    "environment": ("context", "environment"),
}
# AGT's own flat-context names for agt fields (docs/agt-compatibility.md, "Flat context").
ALIASES.update({
    "action": ("action", "type"),          # agent_os: the action's verb, a string
    "agent_did": ("agent", "id"),
    "token_count": ("context", "tokens_used"),
    "tool_call_count": ("context", "tool_calls"),
})
# Aliases that name a whole value: written with more segments (``tool.output.x``), the name is flat context.
_WHOLE_ONLY = frozenset({"tool", "action", "agent_did", "agent_id", "trust_score", "roles", "session_id", "task_id",
                         "stage", "tokens_used", "tool_calls", "files_changed", "environment", "token_count",
                         "tool_call_count", "kind", "tool_name", "params_text"})

# The fields of agt's action document, by root: a path that starts with one of these is agt's field.
DOCUMENT_FIELDS: dict[str, frozenset[str]] = {
    "agent": frozenset({"id", "roles", "trust_score", "attributes"}),
    "action": frozenset({"tool", "kind", "type", "params", "params_text", "facts"}),
    "resource": frozenset({"type", "id", "attributes"}),
    "context": frozenset({"session_id", "task_id", "stage", "tokens_used", "tool_calls", "files_changed",
                          "environment", "timestamp", "attributes"}),
}

DERIVED_FACETS = {
    "sql": "agt derives SQL facts itself: write action.facts.sql.types contains 'drop' (statement types, lower case)",
    "k8s": "agt derives no Kubernetes facets: have the caller put them in context.attributes "
           "and write context.attributes.k8s.verb",
}
"""AGT's protocol facets (``sql.*``, ``k8s.*``), which AGT's engine fills from the params before rules run. agt does
not: a rule on them would silently never match, so they are refused with what to write instead."""


class FieldError(ValueError):
    pass


# Aliases that need a sub-path: bare ``args`` is AGT's argument text (flat context), ``args.path`` is a param.
_PREFIX_ONLY = frozenset({"args", "arguments"})


def resolve_alias(parts: tuple[str, ...]) -> tuple[str, ...] | None:
    """Map a written field path onto one of agt's document fields; None when it names none (flat context)."""
    head, rest = parts[0], parts[1:]
    if head in ALIASES and not (rest and head in _WHOLE_ONLY) and not (not rest and head in _PREFIX_ONLY):
        return ALIASES[head] + rest
    if head in ROOTS:
        # agt's document, as written (a path under a root that names no field of it is simply missing).
        return parts
    return None


def resolve_field(parts: tuple[str, ...]) -> "Path | FlatPath":
    """A written field: agt's field when it names one, else AGT's flat context (params, then context.attributes).
    Raises FieldError for AGT's derived facets, which agt does not compute."""
    resolved = resolve_alias(parts)
    if resolved is not None:
        return Path(resolved)
    if parts[0] in DERIVED_FACETS:
        raise FieldError(f"{'.'.join(parts)!r} is one of AGT's derived {parts[0]} facets; {DERIVED_FACETS[parts[0]]}")
    return FlatPath(".".join(parts), (("action", "params", *parts), ("context", "attributes", *parts)))
