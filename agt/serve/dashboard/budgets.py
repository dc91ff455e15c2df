"""Budget limits a policy sets, read from its rules, so the dashboard can put the counters beside them.

The runtime writes ``context.tokens_used``, ``context.tool_calls`` and ``context.files_changed`` into every action;
a budget is a plain rule comparing one of them with a number (``context.tool_calls > 20``), or an AGT
governance limit (``max_tool_calls_per_task``). Only YAML policies are read this way: a Cedar or Rego policy's
limits are not shown (the counters still are).
"""

from __future__ import annotations

from typing import Any

from agt.conditions.ast import Compare, Literal, Path, children

COUNTERS = ("tokens_used", "tool_calls", "files_changed")
_GOVERNANCE = {"tokens_used": "max_tokens_per_task", "tool_calls": "max_tool_calls_per_task",
               "files_changed": "max_files_changed"}


def _compared(node: Any, found: dict[str, int]) -> None:
    if isinstance(node, Compare) and isinstance(node.left, Path) and isinstance(node.right, Literal):
        parts, value = node.left.parts, node.right.value
        if (len(parts) == 2 and parts[0] == "context" and parts[1] in COUNTERS and isinstance(value, int)
                and not isinstance(value, bool) and node.op in (">", ">=")):
            limit = value if node.op == ">" else value - 1  # the most calls that still pass
            found[parts[1]] = min(found.get(parts[1], limit), limit)
    for child in children(node):
        _compared(child, found)


def budget_limits(engine: Any) -> dict[str, int]:
    """Counter name → the most a task may use, from a YAML engine's deny rules (empty for other engines)."""
    policy = getattr(engine, "policy", None)
    found: dict[str, int] = {}
    for rule in getattr(policy, "rules", ()) or ():
        if getattr(getattr(rule, "action", None), "value", "") == "deny" and getattr(rule, "enabled", True):
            _compared(getattr(rule, "condition", None), found)
    governance = getattr(policy, "governance", None)
    for counter, name in _GOVERNANCE.items():
        limit = getattr(governance, name, None)
        if isinstance(limit, int) and not isinstance(limit, bool):
            found[counter] = min(found.get(counter, limit), limit)
    return found
