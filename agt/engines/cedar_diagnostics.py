"""Locating Cedar findings in the policy text: which statement is ``policy3``, where in it the failing
attribute or entity is, and which annotations agt does not read.

cedarpy reports validation errors as text naming positional ids (``policy0``) without a span, once per Cedar
action the policy applies to. Here each error is named by the rule's ``@id``, pointed at the span it is about
(the attribute, action or entity type it names, else the condition, else the policy head), and repeats that
differ only in the action are folded into one finding listing the actions.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from agt.errors import Diagnostic

KNOWN_ANNOTATIONS = ("id", "message", "approval", "approvers", "critical")
"""The annotations agt's Cedar engine reads (agt.engines.cedar): the rule id, its message, the approval
marker and who approves, and the mark of a rule enforced even in permissive mode."""

_SKIP = re.compile(r'//[^\n]*|"(?:[^"\\]|\\.)*"', re.DOTALL)


def blank_comments(text: str) -> str:
    """The text with every ``//`` comment replaced by spaces (offsets kept), so searches never match inside one."""
    def repl(m: re.Match[str]) -> str:
        return m.group(0) if m.group(0).startswith('"') else " " * len(m.group(0))

    return _SKIP.sub(repl, text)


@dataclass(frozen=True)
class Statement:
    """One policy statement: ``text[start:end]``, from its first annotation to its ``;``."""

    start: int
    end: int


def statements(text: str) -> list[Statement]:
    """The policy statements in text order; the n-th is cedarpy's ``policy<n>`` for this text alone."""
    found: list[Statement] = []
    blank = blank_comments(text)
    pos = 0
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|;', blank, re.DOTALL):
        if m.group(0) == ";":
            lead = len(blank[pos:m.end()]) - len(blank[pos:m.end()].lstrip())
            found.append(Statement(pos + lead, m.end()))
            pos = m.end()
    return found


def line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _policy_index(policy_id: str) -> int | None:
    m = re.fullmatch(r"policy(\d+)", policy_id or "")
    return int(m.group(1)) if m else None


def _find(blank: str, stmt: Statement, pattern: str) -> int | None:
    m = re.compile(pattern).search(blank, stmt.start, stmt.end)
    return m.start() if m else None


def _head(blank: str, stmt: Statement) -> int:
    found = _find(blank, stmt, r"\b(?:permit|forbid)\b")
    return found if found is not None else stmt.start


_ACTION_SUFFIX = re.compile(r' for Action::"([^"]*)"')


def _span(blank: str, stmt: Statement, message: str) -> int:
    """Where in the statement the error is: what it names, else the condition, else the head."""
    m = re.search(r"attribute `([^`]+)`", message)
    if m:
        name = re.escape(m.group(1))
        found = _find(blank, stmt, rf'\.\s*{name}\b|\bhas\s+{name}\b|\[\s*"{name}"\s*\]')
        if found is not None:
            return found + (1 if blank[found] == "." else 0)
    m = re.search(r"unrecognized action `([^`]+)`", message)
    if m:
        found = _find(blank, stmt, re.escape(m.group(1)))
        if found is not None:
            return found
    m = re.search(r"(?:unrecognized|unknown) entity type `([^`]+)`", message)
    if m:
        found = _find(blank, stmt, rf"\b{re.escape(m.group(1))}\b")
        if found is not None:
            return found
    if "scope" in message:
        return _head(blank, stmt)
    found = _find(blank, stmt, r"\b(?:when|unless)\b")
    return found if found is not None else _head(blank, stmt)


def validation_diagnostics(
    text: str, file: str, errors: Iterable[Any], ids: Mapping[str, str], hint: Any = None
) -> list[Diagnostic]:
    """Every schema-validation error of one file's policies (cedarpy ``ValidationError``s of ``text`` validated
    alone), named by ``@id`` (``ids``: policy id -> @id), located, and with per-action repeats folded.
    ``hint(message)`` may return advice appended to a message."""
    blank = blank_comments(text)
    stmts = statements(text)
    grouped: dict[tuple[str, str], list[str]] = {}
    for err in errors:
        pid = str(getattr(err, "policy_id", "") or "")
        message = str(getattr(err, "error", err))
        message = re.sub(r"^for policy `[^`]*`, ", "", message)
        actions = _ACTION_SUFFIX.findall(message)
        key = (pid, _ACTION_SUFFIX.sub("", message))
        grouped.setdefault(key, [])
        grouped[key] += actions
    out = []
    for (pid, message), actions in grouped.items():
        if actions:
            message += f" (for action{'s' if len(actions) > 1 else ''} {', '.join(sorted(set(actions)))})"
        if hint is not None and (extra := hint(message)):
            message += extra
        idx = _policy_index(pid)
        line = col = None
        if idx is not None and idx < len(stmts):
            line, col = line_col(text, _span(blank, stmts[idx], message))
        out.append(Diagnostic("error", message, file, line, col, ids.get(pid) or pid or None, "cedar_validation"))
    return out


def annotation_diagnostics(text: str, file: str, est: Mapping[str, Any], severity: str = "warning") -> list[Diagnostic]:
    """An annotation agt does not read is most likely a typo, and a typo can change a decision: ``@aproval``
    makes an approval rule a hard deny. One finding per unknown annotation, at its ``@``."""
    blank = blank_comments(text)
    stmts = statements(text)
    out = []
    for pid, body in (est.get("staticPolicies") or {}).items():
        annotations = body.get("annotations") or {}
        idx = _policy_index(pid)
        for name in annotations:
            if name in KNOWN_ANNOTATIONS:
                continue
            close = difflib.get_close_matches(name, KNOWN_ANNOTATIONS, n=1)
            advice = f"did you mean @{close[0]}? " if close else ""
            message = (f"unknown annotation @{name}; {advice}agt reads only "
                       f"{', '.join('@' + a for a in KNOWN_ANNOTATIONS)}, so this one has no effect")
            if close and close[0] == "approval":
                message += " (without @approval the forbid is a hard deny)"
            line = col = None
            if idx is not None and idx < len(stmts):
                at = _find(blank, stmts[idx], rf"@{re.escape(name)}\b")
                if at is not None:
                    line, col = line_col(text, at)
            out.append(Diagnostic(severity, message, file, line, col, annotations.get("id") or pid, "unknown_annotation"))
    return out


def statement_line(text: str, policy_id: str) -> int | None:
    """The line a policy statement starts on, by its positional id."""
    idx = _policy_index(policy_id)
    stmts = statements(text)
    return line_col(text, stmts[idx].start)[0] if idx is not None and idx < len(stmts) else None
