"""Google ADK: a real ``google.adk.plugins.BasePlugin`` that governs every tool call of every agent a Runner runs.

    from agt.adapters.adk import GovernancePlugin
    runner = InMemoryRunner(agent=agent, plugins=[GovernancePlugin(governor)])

* ``before_tool_callback`` runs agt's gates. A refusal answers the call with ``{"error": <agt's reason>}``:
  returning a dict is ADK's documented way to stop the tool and hand that dict to the model as the tool's
  response (ADK's own confirmation gate answers with the same ``{"error": ...}`` shape). Nothing is raised
  through the agent loop.
* ``after_tool_callback`` closes the call (output check, audit); ``on_tool_error_callback`` records a tool
  that raised or was cancelled and leaves ADK's handling of it as it is.
* The call's ADK ``function_call_id`` is agt's ``call_id``, so a resumed call finds its approval request.
* Approvals: ``"wait"`` (default) holds the call until agt's approval store decides. ``"native"`` uses ADK's
  own tool-confirmation pause (``ToolContext.request_confirmation``): the run stops with an
  ``adk_request_confirmation`` call carrying agt's request id; answering it resumes the original call
  (same ``function_call_id``, so the same agt request), which then waits on agt's store if it has not
  decided yet. agt's store decides; an answer of "not confirmed" denies the call.
* Any error inside the plugin denies the call; the plugin never raises into the Runner.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from typing import Any

from agt.action import Agent
from agt.adapters import require
from agt.adapters._core import ADAPTER_GATE, ApprovalMode, Gates, Outcome, ToolGate, denial_text
from agt.decision import Decision, Effect, Reason
from agt.runtime.governor import Governor, Ticket

_plugins = require("google.adk.plugins", "adk")

__all__ = ["GovernancePlugin", "APPROVAL_PAYLOAD_KEY"]

APPROVAL_PAYLOAD_KEY = "agt_approval_id"
"""Key of agt's approval request id in the payload of the ``adk_request_confirmation`` call (native mode)."""

_log = logging.getLogger("agt.adapters.adk")


class GovernancePlugin(_plugins.BasePlugin):
    """Governs every tool call through ``governor``.

    ``agent_id``: the calling agent (an id or a registered :class:`agt.Agent`); ``None`` uses the name of
    the ADK agent making the call, so each agent of a multi-agent app is governed as itself.
    ``session``: agt's session; ``None`` uses the ADK session id.
    ``approvals``: ``"wait"`` or ``"native"`` (see the module docstring).
    """

    def __init__(self, governor: Governor, *, agent_id: Agent | str | None = None, session: str | None = None,
                 approvals: ApprovalMode = "wait", task: str | None = None, name: str = "agt_governance") -> None:
        super().__init__(name=name)
        # Validates governor / agent / approvals now, at construction, rather than on the first call.
        ToolGate(governor, agent=agent_id if agent_id is not None else "agent", session=session or "default",
                 task=task, approvals=approvals)
        self.governor, self.agent_id, self.session, self.approvals, self.task = governor, agent_id, session, approvals, task
        self._lock = threading.Lock()
        self._gates = Gates(governor, task=task)
        self._tickets: dict[tuple[str, str], tuple[ToolGate, Ticket, Any]] = {}

    # --- ADK's hooks -------------------------------------------------------------------------------
    async def before_tool_callback(self, *, tool: Any, tool_args: dict[str, Any], tool_context: Any) -> dict | None:
        name = _tool_name(tool)
        try:
            call_id = tool_context.function_call_id or None
            confirmation = getattr(tool_context, "tool_confirmation", None)
            resumed = self.approvals == "native" and confirmation is not None
            if resumed and not confirmation.confirmed:
                # The app answered ADK's pause with "no": the call does not run, whatever agt's store says.
                return self._refuse(self._gate(tool_context), name, "adapter-confirmation-rejected",
                                    "the call was rejected at ADK's tool confirmation")
            # A resumed call cannot pause twice (ADK's resume path emits no second confirmation request),
            # so once the app has said "resume", the call waits on agt's store for the request it opened.
            gate = self._gate(tool_context, "wait" if resumed else self.approvals)
            begun = await gate.abegin(name, tool_args, call_id=call_id)
            if isinstance(begun, Outcome):
                if begun.pending:
                    tool_context.request_confirmation(hint=begun.message,
                                                      payload={APPROVAL_PAYLOAD_KEY: begun.approval_id})
                    # As ADK's own confirmation gate does: the pause is not a result for the model to act on.
                    tool_context.actions.skip_summarization = True
                return {"error": begun.message}
            with self._lock:
                self._tickets[_key(tool_context)] = (gate, begun, _snapshot(tool_args))
            return None
        except BaseException as exc:  # noqa: BLE001 - the plugin fails closed and never raises into the Runner
            if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                raise
            return self._internal_error(name, exc)

    async def after_tool_callback(self, *, tool: Any, tool_args: dict[str, Any], tool_context: Any,
                                  result: Any) -> dict | None:
        name = _tool_name(tool)
        try:
            with self._lock:
                entry = self._tickets.pop(_key(tool_context), None)
            if entry is None:
                return None  # agt answered this call itself (a denial or a pending approval): nothing ran
            gate, ticket, approved_args = entry
            if _snapshot(tool_args) != approved_args:
                # A callback after this plugin (an agent's own before_tool_callback) rewrote the arguments
                # agt had allowed: the tool ran with arguments no policy saw, so its result is withheld.
                gate.fail(ticket, RuntimeError("the tool arguments changed after agt allowed the call"))
                return self._refuse(gate, name, "adapter-arguments-changed",
                                    "the tool arguments were changed after agt allowed the call; the result is withheld")
            outcome = gate.finish(ticket, result)
            if outcome.denied:
                return {"error": outcome.message}
            if outcome.result is result:
                return None
            return outcome.result if isinstance(outcome.result, dict) else {"result": outcome.result}
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                raise
            return self._internal_error(name, exc)

    async def on_tool_error_callback(self, *, tool: Any, tool_args: dict[str, Any], tool_context: Any,
                                     error: BaseException) -> dict | None:
        try:
            with self._lock:
                entry = self._tickets.pop(_key(tool_context), None)
            if entry is not None:
                gate, ticket, _ = entry
                if isinstance(error, asyncio.CancelledError):
                    gate.abandon(ticket, "the tool call was cancelled")
                else:
                    gate.fail(ticket, error)
        except Exception:  # noqa: BLE001 - the tool's own error is what ADK goes on to handle
            _log.exception("agt could not record the error of %s", _tool_name(tool))
        return None  # ADK handles the tool's error as it always does

    # --- helpers -----------------------------------------------------------------------------------
    def _gate(self, tool_context: Any, approvals: ApprovalMode | None = None) -> ToolGate:
        agent = self.agent_id if self.agent_id is not None else (tool_context.agent_name or "agent")
        session = self.session if self.session is not None else str(tool_context.session.id)
        approvals = approvals or self.approvals
        return self._gates.get(agent, session, approvals)

    def _internal_error(self, tool: str, exc: BaseException, rule: str = "adapter-error",
                        gate: ToolGate | None = None) -> dict:
        _log.error("agt failed closed on %s: %s: %s", tool, type(exc).__name__, exc)
        return self._refuse(gate, tool, rule, f"{type(exc).__name__}: {exc}")

    def _refuse(self, gate: ToolGate | None, tool: str, rule: str, why: str) -> dict:
        """A denial the Governor never decided (the adapter's own): audited, and answered as ADK's error dict."""
        decision = Decision(Effect.DENY, (Reason(rule, why),), engine="adapter")
        try:
            gate = gate or ToolGate(self.governor, agent=self.agent_id if self.agent_id is not None else "agent",
                                    session=self.session or "default")
            gate._audit_refusal(tool, decision)
        except Exception:  # noqa: BLE001 - denied either way
            _log.exception("agt could not audit the denial of %s", tool)
        return {"error": denial_text(tool, decision, ADAPTER_GATE)}


def _tool_name(tool: Any) -> str:
    try:
        return str(tool.name)
    except Exception:  # noqa: BLE001
        return "<unknown tool>"


def _key(tool_context: Any) -> tuple[str, str]:
    call_id = tool_context.function_call_id
    return (str(tool_context.invocation_id), str(call_id) if call_id else f"context-{id(tool_context)}")


def _snapshot(args: Any) -> Any:
    try:
        return copy.deepcopy(args)
    except Exception:  # noqa: BLE001 - compared by value only; an uncopyable value compares as itself
        return args
