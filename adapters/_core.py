"""The shared core of agt's framework adapters. No framework is imported here.

One tool call goes in: a tool name, its arguments in whatever form the framework hands over (a dict, a
JSON string, a pydantic model, a dataclass), and optionally the framework's id for the call. One
:class:`Outcome` comes out:

* ``ran``: every gate allowed, the tool ran, ``result`` is what it returned;
* ``denied``: a gate refused; ``message`` is the text for the model (gate, rule ids, reasons, do not retry);
* ``pending``: a human approval is pending; ``approval_id`` names agt's request.

The adapters never raise through the framework's agent loop for a governance decision, and any error
inside governance itself becomes a denial: the adapter fails closed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Literal, Mapping

from agt import _json
from agt.action import Agent
from agt.decision import Decision, Effect, Reason
from agt.errors import ApprovalRequired, GovernanceDenied
from agt.runtime.audit import AuditRecord, new_decision_id
from agt.runtime.governor import Governor, Ticket

from ._schema import SchemaMismatch, conform

__all__ = ["ADAPTER_GATE", "ApprovalMode", "Gates", "Outcome", "ToolGate", "denial_text", "params_of", "pending_text"]

ADAPTER_GATE = "adapter"
ApprovalMode = Literal["wait", "native"]
_log = logging.getLogger("agt.adapters")


class ArgumentsError(ValueError):
    """The framework handed over arguments agt cannot read as a mapping of names to values."""


@dataclass(frozen=True)
class Outcome:
    """What became of one governed tool call."""

    status: Literal["ran", "denied", "pending"]
    tool: str
    result: Any = None
    message: str = ""
    gate: str = ""
    rule_ids: tuple[str, ...] = ()
    approval_id: str | None = None

    @property
    def ran(self) -> bool:
        return self.status == "ran"

    @property
    def denied(self) -> bool:
        return self.status == "denied"

    @property
    def pending(self) -> bool:
        return self.status == "pending"


def params_of(arguments: Any) -> dict[str, Any]:
    """The call's arguments as the action's params. Raises :class:`ArgumentsError` for anything that is
    not a mapping of names to values once read (the caller denies it)."""
    if arguments is None:
        return {}
    if isinstance(arguments, (str, bytes, bytearray)):
        text = bytes(arguments).decode("utf-8", "strict") if not isinstance(arguments, str) else arguments
        if not text.strip():
            return {}
        try:
            arguments = _json.loads(text)  # exact decimals, as everywhere else in agt
        except ValueError as exc:
            raise ArgumentsError(f"the tool arguments are not valid JSON: {exc}") from None
    elif hasattr(arguments, "model_dump") and callable(arguments.model_dump):
        arguments = arguments.model_dump()
    elif dataclasses.is_dataclass(arguments) and not isinstance(arguments, type):
        arguments = dataclasses.asdict(arguments)
    if not isinstance(arguments, Mapping):
        raise ArgumentsError(f"the tool arguments must be an object of names to values, not {type(arguments).__name__}")
    bad = [k for k in arguments if not isinstance(k, str)]
    if bad:
        raise ArgumentsError(f"the tool argument names must be strings, not {bad[0]!r}")
    return dict(arguments)


def denial_text(tool: str, decision: Any, gate: str) -> str:
    """What the model reads when agt refuses a call: which gate, which rules, why, and not to retry."""
    reasons = tuple(getattr(decision, "reasons", ()) or ())
    ids = ", ".join(r.rule_id for r in reasons) or "no rule id"
    why = "; ".join(f"{r.rule_id}: {r.message.rstrip('. ')}" if r.message else r.rule_id for r in reasons) or "no reason given"
    return (f"agt governance denied the call to {tool!r} at the {gate} gate (rules: {ids}). Reasons: {why}. "
            "This is a policy decision, not a tool error: do not retry this call or rephrase it to get around the rule; "
            "tell the user what was refused and why, or choose an action the policy allows.")


def pending_text(tool: str, approval_id: str, decision: Any) -> str:
    """What the model reads while a human has not yet decided."""
    approvers = ", ".join(getattr(decision, "approvers", ()) or ()) or "an approver"
    return (f"agt governance is holding the call to {tool!r} for a human approval (request {approval_id}, "
            f"from {approvers}). The tool has not run. Do not retry it now; the call resumes once the request is decided.")


class ToolGate:
    """Governs tool calls for one agent through one Governor; each framework adapter is a thin layer on it.

    ``agent`` is the calling agent: a registered :class:`agt.Agent`, or an id (an id the Governor has not
    seen gets its documented default trust, 500: ring 2, which may not run delete or delegate tools).
    ``approvals``: ``"wait"`` blocks the call on agt's approval store until the request is decided;
    ``"native"`` returns a pending outcome so the framework can pause natively; agt's store still decides,
    and a resumed call (same ``call_id``) finds its request instead of opening a new one.
    """

    def __init__(self, governor: Governor, *, agent: Agent | str = "agent", session: str = "default",
                 task: str | None = None, approvals: ApprovalMode = "wait") -> None:
        if not isinstance(governor, Governor):
            raise TypeError(f"governor must be an agt Governor, not {type(governor).__name__}")
        if approvals not in ("wait", "native"):
            raise ValueError(f"approvals must be 'wait' or 'native', not {approvals!r}")
        if isinstance(agent, Agent):
            governor.register_agent(agent)
        elif not isinstance(agent, str) or not agent:
            raise ValueError(f"agent must be an agt.Agent or a non-empty id, not {agent!r}")
        self.governor, self.agent, self.session, self.task, self.approvals = governor, agent, session, task, approvals

    @property
    def agent_id(self) -> str:
        return self.agent.id if isinstance(self.agent, Agent) else self.agent

    # --- before ------------------------------------------------------------------------------------
    def begin(self, tool: str, arguments: Any, *, call_id: str | None = None,
              schema: Mapping[str, Any] | None = None) -> Ticket | Outcome:
        """The gates before the tool: a Ticket when the tool may run now, else a denied or pending Outcome.

        ``schema`` is the tool's own JSON Schema for its arguments: they must match it strictly, and its
        defaults are filled in, so the policy decides what the tool will actually get (adapters._schema)."""
        try:
            params = conform(params_of(arguments), schema)
            return self.governor.begin(tool, params, call_id=call_id, wait=self.approvals == "wait", **self._who())
        except BaseException as exc:  # noqa: BLE001 - every failure to govern is a denial
            return self._refused(tool, exc)

    async def abegin(self, tool: str, arguments: Any, *, call_id: str | None = None,
                     schema: Mapping[str, Any] | None = None) -> Ticket | Outcome:
        try:
            params = conform(params_of(arguments), schema)
            return await self.governor.abegin(tool, params, call_id=call_id, wait=self.approvals == "wait", **self._who())
        except BaseException as exc:  # noqa: BLE001
            return self._refused(tool, exc)

    # --- after -------------------------------------------------------------------------------------
    def finish(self, ticket: Ticket, result: Any) -> Outcome:
        """The tool returned: the output check and the audit. A refused output becomes a denial."""
        tool = ticket.action.action.tool
        try:
            return Outcome("ran", tool, result=self.governor.finish(ticket, result))
        except BaseException as exc:  # noqa: BLE001
            return self._refused(tool, exc)

    def fail(self, ticket: Ticket, exc: BaseException) -> None:
        """The tool raised: recorded (breakers and audit); the framework handles the error as it always does."""
        try:
            self.governor.fail(ticket, exc)
        except Exception:  # noqa: BLE001 - the tool's own error is what the caller re-raises
            _log.exception("agt could not record the failure of %s", ticket.action.action.tool)

    def abandon(self, ticket: Ticket, reason: str) -> None:
        try:
            self.governor.abandon(ticket, reason)
        except Exception:  # noqa: BLE001
            _log.exception("agt could not record that %s did not run", ticket.action.action.tool)

    # --- both, for frameworks that let the adapter wrap the tool ------------------------------------
    def run(self, tool: str, arguments: Any, fn: Callable[[dict[str, Any]], Any], *, call_id: str | None = None,
            schema: Mapping[str, Any] | None = None) -> Outcome:
        """Govern and run ``fn(params)`` with the params the policy decided. A tool that raises is recorded and
        its error re-raised."""
        ticket = self.begin(tool, arguments, call_id=call_id, schema=schema)
        if isinstance(ticket, Outcome):
            return ticket
        try:
            result = fn(dict(ticket.action.action.params))
        except BaseException as exc:
            self.fail(ticket, exc)
            raise
        return self.finish(ticket, result)

    async def arun(self, tool: str, arguments: Any, fn: Callable[[dict[str, Any]], Awaitable[Any] | Any], *,
                   call_id: str | None = None, schema: Mapping[str, Any] | None = None) -> Outcome:
        ticket = await self.abegin(tool, arguments, call_id=call_id, schema=schema)
        if isinstance(ticket, Outcome):
            return ticket
        try:
            result = fn(dict(ticket.action.action.params))
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            self.fail(ticket, exc)
            raise
        return self.finish(ticket, result)

    # --- helpers -----------------------------------------------------------------------------------
    def _who(self) -> dict[str, Any]:
        return {"agent": self.agent, "session": self.session, "task": self.task}

    def _refused(self, tool: str, exc: BaseException) -> Outcome:
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError)):
            raise exc  # not a decision: the run itself is ending, and the framework must see it end
        if isinstance(exc, ApprovalRequired):
            return Outcome("pending", tool, message=pending_text(tool, exc.request_id, exc.decision),
                           gate="approval", rule_ids=tuple(getattr(exc.decision, "rule_ids", ())),
                           approval_id=exc.request_id)
        if isinstance(exc, GovernanceDenied):
            return Outcome("denied", tool, message=denial_text(tool, exc.decision, exc.gate), gate=exc.gate,
                           rule_ids=exc.rule_ids)
        readable = isinstance(exc, (ArgumentsError, SchemaMismatch))
        rule = "adapter-arguments" if readable else "adapter-error"
        cause = str(exc) if readable else f"{type(exc).__name__}: {exc}"
        decision = Decision(Effect.DENY, (Reason(rule, cause),), engine="adapter")
        if rule == "adapter-error":
            _log.exception("agt failed closed on %s", tool, exc_info=exc)
        self._audit_refusal(tool, decision)
        return Outcome("denied", tool, message=denial_text(tool, decision, ADAPTER_GATE), gate=ADAPTER_GATE,
                       rule_ids=(rule,))

    def _audit_refusal(self, tool: str, decision: Decision) -> None:
        """A denial the Governor never saw still goes to its audit log, if the log can take it."""
        try:
            self.governor.audit.write(AuditRecord(
                new_decision_id(), time.time_ns(), "decision", self.agent_id, ADAPTER_GATE,
                {"action": {"tool": tool}}, {**decision.to_dict(), "enforced": "deny"},  # type: ignore[arg-type]
                {"engine": "adapter"},
            ))
        except Exception:  # noqa: BLE001 - the call is denied either way
            _log.exception("agt could not audit the denial of %s", tool)


class Gates:
    """The ToolGates of one Governor by (agent, session, approval mode), for frameworks that say per call who is
    calling and in which session (ADK, PydanticAI, LangGraph threads, CrewAI roles). The most recently used
    ``limit`` are kept: session ids come from the run, and an unbounded map would grow with every one."""

    def __init__(self, governor: Governor, *, task: str | None = None, limit: int = 1024) -> None:
        self.governor, self.task, self.limit = governor, task, limit
        self._gates: OrderedDict[tuple[str, str, str], ToolGate] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, agent: Agent | str, session: str, approvals: ApprovalMode = "wait") -> ToolGate:
        key = (agent.id if isinstance(agent, Agent) else agent, session, approvals)
        with self._lock:
            gate = self._gates.get(key)
            if gate is None:
                gate = self._gates[key] = ToolGate(self.governor, agent=agent, session=session, task=self.task,
                                                   approvals=approvals)
                while len(self._gates) > self.limit:
                    self._gates.popitem(last=False)
            else:
                self._gates.move_to_end(key)
            return gate
