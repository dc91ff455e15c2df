"""PydanticAI: a capability whose ``wrap_tool_execute`` governs every tool call an ``Agent`` makes.

    from agt.adapters.pydantic_ai import GovernanceCapability
    agent = Agent(model, tools=[...], capabilities=[GovernanceCapability(governor, agent_id="billing-bot")])

* ``wrap_tool_execute`` wraps the complete execution of a validated call (agt sees the arguments after
  PydanticAI validated them): agt's gates, then the tool, then agt's output check and audit.
* A refusal raises ``pydantic_ai.exceptions.ToolFailed(<agt's reason>)``: PydanticAI turns it into a
  failed tool result that the model reads, without ending the run, without the retry instructions
  ``ModelRetry`` would add and without using the tool's retry budget. That is PydanticAI's own "terminal
  tool failure the model should see but not retry"; ``ModelRetry`` would invite the model to try again,
  and any other exception would abort the run.
* The call's ``tool_call_id`` is agt's ``call_id``; ``session`` defaults to the PydanticAI
  ``conversation_id``, which a run resumed from ``message_history`` keeps, so a resumed call finds its
  approval request.
* Approvals: ``"wait"`` (default) holds the call until agt's approval store decides. ``"native"`` defers
  the call with PydanticAI's own ``ApprovalRequired`` (human-in-the-loop tool approval): the run ends
  with ``DeferredToolRequests`` (the agent needs ``output_type=[..., DeferredToolRequests]``) whose
  ``metadata[tool_call_id]`` carries agt's request id; resuming with ``DeferredToolResults`` re-enters
  this hook with the same call id, and the call runs only once agt's store has approved (a resumed call
  agt has not decided yet waits for it).
* Any error inside the capability denies the call.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from agt.action import Agent
from agt.adapters import require
from agt.adapters._core import ADAPTER_GATE, ApprovalMode, Gates, Outcome, ToolGate, denial_text
from agt.decision import Decision, Effect, Reason
from agt.runtime.governor import Governor

_caps = require("pydantic_ai.capabilities", "pydantic-ai")
_exc = require("pydantic_ai.exceptions", "pydantic-ai")

__all__ = ["GovernanceCapability", "APPROVAL_METADATA_KEY"]

APPROVAL_METADATA_KEY = "agt_approval_id"
"""Key of agt's request id in ``DeferredToolRequests.metadata[tool_call_id]`` (native approvals)."""

_log = logging.getLogger("agt.adapters.pydantic_ai")

# Raised from inside the tool's own lifecycle: control flow that PydanticAI handles itself.
_NOT_RUN = (_exc.CallDeferred, _exc.ApprovalRequired, _exc.SkipToolExecution)


class GovernanceCapability(_caps.AbstractCapability):
    """Governs every tool call of the agent it is given to.

    ``agent_id``: the calling agent (an id or a registered :class:`agt.Agent`); ``None`` uses the
    PydanticAI agent's ``name``, or ``"agent"``. ``session``: agt's session; ``None`` uses the run's
    ``conversation_id``. ``approvals``: ``"wait"`` or ``"native"`` (see the module docstring).
    """

    def __init__(self, governor: Governor, *, agent_id: Agent | str | None = None, session: str | None = None,
                 approvals: ApprovalMode = "wait", task: str | None = None) -> None:
        ToolGate(governor, agent=agent_id if agent_id is not None else "agent", session=session or "default",
                 task=task, approvals=approvals)  # validates the arguments now, not on the first call
        self.governor, self.agent_id, self.session, self.approvals, self.task = governor, agent_id, session, approvals, task
        self._lock = threading.Lock()
        self._gates = Gates(governor, task=task)

    async def wrap_tool_execute(self, ctx: Any, *, call: Any, tool_def: Any, args: dict[str, Any], handler: Any) -> Any:
        name = str(getattr(call, "tool_name", None) or "<unknown tool>")
        try:
            # A call resumed with an approval cannot be deferred a second time for the same reason, so it
            # waits on agt's store for the request it opened.
            approvals = "wait" if getattr(ctx, "tool_call_approved", False) else self.approvals
            gate = self._gate(ctx, approvals)
            begun = await gate.abegin(name, args, call_id=getattr(call, "tool_call_id", None) or None)
        except BaseException as exc:  # noqa: BLE001 - the capability fails closed
            if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                raise
            raise _exc.ToolFailed(self._refuse(name, "adapter-error", f"{type(exc).__name__}: {exc}")) from None
        if isinstance(begun, Outcome):
            if begun.pending:
                raise _exc.ApprovalRequired(metadata={APPROVAL_METADATA_KEY: begun.approval_id, "message": begun.message})
            raise _exc.ToolFailed(begun.message)

        try:
            result = await handler(args)
        except _NOT_RUN:
            gate.abandon(begun, "the tool's own lifecycle deferred or skipped the call")
            raise
        except asyncio.CancelledError:
            gate.abandon(begun, "the tool call was cancelled")
            raise
        except BaseException as exc:  # the tool (or a hook inside its lifecycle) failed: recorded, then as before
            gate.fail(begun, exc)
            raise
        outcome = gate.finish(begun, result)
        if outcome.denied:
            raise _exc.ToolFailed(outcome.message)
        return outcome.result

    def _gate(self, ctx: Any, approvals: ApprovalMode) -> ToolGate:
        agent = self.agent_id
        if agent is None:
            agent = getattr(getattr(ctx, "agent", None), "name", None) or "agent"
        session = self.session if self.session is not None else str(getattr(ctx, "conversation_id", None) or "default")
        return self._gates.get(agent, session, approvals)

    def _refuse(self, tool: str, rule: str, why: str) -> str:
        """A denial the Governor never decided (the adapter's own): audited; returns the model's text."""
        _log.error("agt failed closed on %s: %s", tool, why)
        decision = Decision(Effect.DENY, (Reason(rule, why),), engine="adapter")
        try:
            ToolGate(self.governor, agent=self.agent_id if self.agent_id is not None else "agent",
                     session=self.session or "default")._audit_refusal(tool, decision)
        except Exception:  # noqa: BLE001 - denied either way
            _log.exception("agt could not audit the denial of %s", tool)
        return denial_text(tool, decision, ADAPTER_GATE)
