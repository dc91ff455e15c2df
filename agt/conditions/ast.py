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


Node = Union[Literal, Path, ListExpr, Concat, Compare, Not, And, Or]

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
# AGT calls an action's kind its "type".
FIELD_ALIASES: dict[tuple[str, str], tuple[str, ...]] = {("action", "type"): ("action", "kind")}


def resolve_alias(parts: tuple[str, ...]) -> tuple[str, ...] | None:
    """Map a written field path onto the action document; None when its root is unknown."""
    head, rest = parts[0], parts[1:]
    if head in ALIASES:
        parts = ALIASES[head] + rest
    elif head not in ROOTS:
        return None
    if len(parts) >= 2 and (parts[0], parts[1]) in FIELD_ALIASES:
        parts = FIELD_ALIASES[(parts[0], parts[1])] + parts[2:]
    return parts
