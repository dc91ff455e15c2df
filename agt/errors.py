"""The exception hierarchy. Every message names what a user has to fix: a file, a line, a rule or a field."""

from __future__ import annotations

from dataclasses import dataclass


class AgtError(Exception):
    """Base class of every error agt raises on purpose."""


class ActionError(AgtError, ValueError):
    """An action document is malformed, or holds a value that not every engine can represent.

    ``field`` is the dotted path of the offending value, for example ``action.params.size``.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a policy file, located as precisely as the engine allows: ``file:line:column`` and
    the rule id. ``severity`` is ``error`` or ``warning``; ``code`` names the kind (``rego_type_error``,
    ``cedar_validation``, ``unknown_annotation``, ...)."""

    severity: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    rule: str | None = None
    code: str = ""

    def location(self) -> str:
        return ":".join(str(x) for x in (self.file, self.line, self.column) if x is not None)

    def __str__(self) -> str:
        where = self.location()
        rule = f"rule {self.rule!r}: " if self.rule else ""
        return f"{where + ': ' if where else ''}{self.severity}: {rule}{self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"severity": self.severity, "message": self.message, "file": self.file, "line": self.line,
                "column": self.column, "rule": self.rule, "code": self.code}


class PolicyLoadError(AgtError):
    """A policy cannot be loaded. Carries the location so a CLI can point at it; ``diagnostics`` holds every
    finding when there are several (Cedar schema validation reports them all), the first being the one the
    message and location describe."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        rule: str | None = None,
        diagnostics: tuple[Diagnostic, ...] = (),
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.rule = rule
        self.diagnostics = diagnostics
        super().__init__(self.location_prefix() + message)

    def location_prefix(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file if self.line is None else f"{self.file}:{self.line}")
        if self.rule:
            parts.append(f"rule {self.rule!r}")
        return (", ".join(parts) + ": ") if parts else ""


class ConditionSyntaxError(AgtError):
    """A rule condition does not parse. ``column`` is 1-based within the condition text."""

    def __init__(self, message: str, text: str, column: int) -> None:
        self.message = message
        self.text = text
        self.column = column
        super().__init__(f"{message} at column {column} in {text!r}")


class ConditionEvalError(AgtError):
    """A condition failed at evaluation time, for example ordering a string against a number."""


class UnknownEngineError(AgtError):
    """No engine is registered under the requested name."""


class GovernanceDenied(AgtError, PermissionError):
    """A governed call was blocked. ``decision`` says which rules; ``gate`` which stage blocked it."""

    def __init__(self, decision: "object", gate: str, message: str | None = None) -> None:
        self.decision = decision
        self.gate = gate
        ids = ", ".join(getattr(decision, "rule_ids", ()) or ())
        reasons = getattr(decision, "reasons", ())
        detail = message or "; ".join(f"{r.rule_id}: {r.message}" if r.message else r.rule_id for r in reasons)
        super().__init__(f"denied at the {gate} gate ({ids}): {detail}")

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(getattr(self.decision, "rule_ids", ()))


class ApprovalRequired(AgtError):
    """A governed call needs a human approval (non-blocking mode). Approve it, then call again with
    ``approval_id=request_id``, or wait on it."""

    def __init__(self, request_id: str, decision: "object") -> None:
        self.request_id = request_id
        self.decision = decision
        approvers = ", ".join(getattr(decision, "approvers", ()) or ())
        super().__init__(f"approval {request_id} required from {approvers or 'an approver'}")
