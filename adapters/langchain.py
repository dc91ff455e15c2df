"""agt for LangChain 1.x agents and bare LangGraph tool nodes, through their native tool-call hook.

Three lines for a ``create_agent`` agent::

    from agt.adapters.langchain import GovernanceMiddleware
    governance = GovernanceMiddleware(governor, agent="support-bot")
    agent = create_agent(model, tools, middleware=[governance])

and for a hand-built LangGraph graph, ``governed_tool_node(tools, governor, agent=...)`` in place of
``ToolNode(tools)``.

Every tool call goes through ``wrap_tool_call`` / ``awrap_tool_call`` (the hook ``ToolNode`` itself calls):

* allowed: the tool runs (``handler(request)``), then agt's output check and audit see what it returned;
* denied: the tool does not run; the model reads a ``ToolMessage(status="error")`` carrying agt's denial
  text (gate, rule ids, reasons, do not retry). Nothing is raised: raising in this hook ends the whole run;
* needs approval: ``approvals="wait"`` (the default) blocks the call on agt's approval store (quorum,
  deadline, signed votes); ``approvals="interrupt"`` pauses the graph with ``langgraph.types.interrupt()``
  carrying agt's approval id (needs a checkpointer). LangGraph re-runs the hook on resume; the tool call's
  id finds the same approval request, and agt's store decides: the resume value is never an approval.

The policy decides on the arguments the tool will get: they must match the tool's own argument schema
(``tool.tool_call_schema``, the one the model was shown) strictly, and its defaults are filled in, before
agt decides (``adapters._schema``). LangChain validates with pydantic after this hook, and pydantic coerces
(``"true"`` → ``True``) and fills defaults; a coercible argument is refused here instead.

Any error inside governance denies the call (fails closed). A tool that raises is recorded and its
error re-raised, so the framework's own tool error handling (``handle_tool_errors``) applies as always.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterator, Literal, Mapping, Sequence


from agt.action import Agent
from agt.adapters import require
from agt.adapters._core import Gates, Outcome, ToolGate
from agt.runtime.governor import Governor

# The framework is imported here, when this adapter is imported (never by `import agt`); without it the
# ImportError names the extra to install.
EXTRA = "langchain"
_middleware = require("langchain.agents.middleware", EXTRA)
_messages = require("langchain_core.messages", EXTRA)
_types = require("langgraph.types", EXTRA)
_prebuilt = require("langgraph.prebuilt", EXTRA)
_errors = require("langgraph.errors", EXTRA)
ToolMessage, BaseMessage, Command = _messages.ToolMessage, _messages.BaseMessage, _types.Command

__all__ = ["APPROVAL_INTERRUPT", "GovernanceMiddleware", "LangChainGovernance", "governed_tool_node"]

APPROVAL_INTERRUPT = "agt_approval"  # the "type" of the value agt's interrupt() surfaces
Approvals = Literal["wait", "interrupt"]
_log = logging.getLogger("agt.adapters.langchain")


class LangChainGovernance:
    """The framework-neutral half: a ``wrap_tool_call`` / ``awrap_tool_call`` pair with ToolNode's signature.

    :class:`GovernanceMiddleware` and :func:`governed_tool_node` are both built on it; use it directly to
    hand the two callables to any ``ToolNode(wrap_tool_call=..., awrap_tool_call=...)``.
    """

    def __init__(self, governor: Governor, *, agent: Agent | str, session: str | None = None,
                 task: str | None = None, approvals: Approvals = "wait") -> None:
        if approvals not in ("wait", "interrupt"):
            raise ValueError(f"approvals must be 'wait' or 'interrupt', not {approvals!r}")
        if session is not None and (not isinstance(session, str) or not session):
            raise ValueError(f"session must be a non-empty string or None, not {session!r}")
        # Built once, so a bad governor or agent fails here and not at the first tool call.
        ToolGate(governor, agent=agent, session=session or "default", task=task)
        self.governor, self.agent, self.session, self.task, self.approvals = governor, agent, session, task, approvals
        self._gates = Gates(governor, task=task)

    # --- the hook ----------------------------------------------------------------------------------
    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        tool, args, call_id, session = _call_of(request)
        schema = _schema_of(request)
        gate = self._gate(session, call_id)
        ticket = gate.begin(tool, args, call_id=call_id, schema=schema)
        while isinstance(ticket, Outcome) and ticket.pending:
            if not _pause(ticket, call_id, args):  # raises GraphInterrupt until resumed; the resume value is not trusted
                return _refusal(ticket, call_id)
            ticket = gate.begin(tool, args, call_id=call_id, schema=schema)  # agt's store decides
        if isinstance(ticket, Outcome):
            return _refusal(ticket, call_id)
        try:
            result = handler(request)
        except BaseException as exc:
            gate.fail(ticket, exc)
            raise
        return _after(gate, ticket, result, call_id)

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        tool, args, call_id, session = _call_of(request)
        schema = _schema_of(request)
        gate = self._gate(session, call_id)
        ticket = await gate.abegin(tool, args, call_id=call_id, schema=schema)
        while isinstance(ticket, Outcome) and ticket.pending:
            if not _pause(ticket, call_id, args):  # raises GraphInterrupt until resumed; the resume value is not trusted
                return _refusal(ticket, call_id)
            ticket = await gate.abegin(tool, args, call_id=call_id, schema=schema)  # agt's store decides
        if isinstance(ticket, Outcome):
            return _refusal(ticket, call_id)
        try:
            result = await handler(request)
        except BaseException as exc:
            gate.fail(ticket, exc)
            raise
        return _after(gate, ticket, result, call_id)

    # --- helpers -----------------------------------------------------------------------------------
    def _gate(self, session: str | None, call_id: str | None) -> ToolGate:
        """The ToolGate for this call's session. ``interrupt`` mode needs the tool call's id to find its
        request again on resume; a call without one waits on agt's store instead (never a second request)."""
        session = self.session or session or "default"
        mode = "native" if self.approvals == "interrupt" and call_id else "wait"
        return self._gates.get(self.agent, session, mode)  # type: ignore[arg-type]


def _call_of(request: Any) -> tuple[str, Any, str | None, str | None]:
    """(tool name, arguments, tool call id, thread id) of a ToolCallRequest; anything unreadable is left for
    ToolGate to deny (an empty tool name, arguments it cannot read)."""
    call = getattr(request, "tool_call", None)
    call = call if isinstance(call, dict) else {}
    name = call.get("name")
    call_id = call.get("id")
    call_id = call_id if isinstance(call_id, str) and call_id else None
    thread = None
    try:
        config = getattr(getattr(request, "runtime", None), "config", None) or {}
        thread = (config.get("configurable") or {}).get("thread_id")
    except Exception:  # noqa: BLE001 - no thread id: the session falls back to "default"
        thread = None
    return (name if isinstance(name, str) else ""), call.get("args"), call_id, (str(thread) if thread else None)


def _schema_of(request: Any) -> Mapping[str, Any] | None:
    """The JSON Schema of the arguments the tool takes from the model: its ``tool_call_schema`` (the schema
    the model was shown, without the injected arguments — ``ToolRuntime``, ``InjectedState``,
    ``InjectedToolArg``, ``InjectedToolCallId`` — which ToolNode supplies after this hook and strips from
    the model's arguments). ``None`` only when the request has no tool (a name ToolNode does not know: it
    answers with its own error and nothing runs). A tool whose schema cannot be read is denied (fails closed).

    We do not hand the tool the arguments agt decided on (``request.override``): agt's params are normalized
    for the policy (exact decimals, lists for tuples), and pydantic treats an argument given explicitly
    differently from one left to its default. Strict matching already means pydantic has nothing to coerce,
    and the defaults agt fills in are the ones the schema declares, which pydantic fills in the same way."""
    tool = getattr(request, "tool", None)
    if tool is None:
        return None
    try:
        schema = tool.tool_call_schema
        if not isinstance(schema, Mapping):
            build = getattr(schema, "model_json_schema", None) or schema.schema  # pydantic v2, else v1
            schema = build()
        if not isinstance(schema, Mapping):
            raise TypeError(f"{type(schema).__name__} is not a JSON Schema object")
        return schema  # its defaults are filled in unchecked by the core, as pydantic does
    except Exception as exc:  # noqa: BLE001 - no schema, no call
        _log.exception("agt could not read the argument schema of %r", getattr(tool, "name", tool))
        return _Unreadable(exc)


class _Unreadable(Mapping):  # type: ignore[type-arg]
    """The schema of a tool whose schema could not be read: reading it raises, so ToolGate denies the call."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def _fail(self) -> Any:
        raise RuntimeError(f"the tool's argument schema cannot be read: {type(self.exc).__name__}: {self.exc}")

    def __getitem__(self, key: str) -> Any:
        return self._fail()

    def __iter__(self) -> Iterator[str]:
        return self._fail()

    def __len__(self) -> int:
        return self._fail()


def _pause(outcome: Outcome, call_id: str | None, args: Any) -> bool:
    """LangGraph's native pause, carrying agt's approval request: raises GraphInterrupt, and returns True
    only on a resume. False when the graph cannot pause here (the call then does not run)."""
    try:
        _interrupt(outcome, call_id, args)
    except _errors.GraphBubbleUp:
        raise
    except Exception:  # noqa: BLE001 - no pause, no run: the model reads that the call is held
        _log.exception("agt could not pause the graph for approval %s", outcome.approval_id)
        return False
    return True


def _interrupt(outcome: Outcome, call_id: str | None, args: Any) -> None:
    _types.interrupt({
        "type": APPROVAL_INTERRUPT,
        "approval_id": outcome.approval_id,
        "tool": outcome.tool,
        "tool_call_id": call_id,
        "args": args if isinstance(args, dict) else None,
        "rule_ids": list(outcome.rule_ids),
        "message": outcome.message,
        "how": f"decide it with `agt approvals approve {outcome.approval_id}` (or deny), then resume the thread "
               "with Command(resume=...): agt's approval store decides, not the resume value",
    })


def _refusal(outcome: Outcome, call_id: str | None) -> ToolMessage:
    """What the model reads instead of the tool's result."""
    return ToolMessage(content=outcome.message, tool_call_id=call_id or "", name=outcome.tool or None,
                                   status="error")


def _after(gate: ToolGate, ticket: Any, result: Any, call_id: str | None) -> Any:
    """The tool's result goes through agt's output check and audit. An error ToolMessage (the framework
    turned a tool error into one) is recorded as a failure and passed on as it is."""
    if isinstance(result, ToolMessage) and result.status == "error":
        gate.fail(ticket, ToolCallError(_text(result.content)))
        return result
    try:
        seen = _visible(result)
    except Exception:  # noqa: BLE001 - the output check then reads the result as it is
        seen = result
    outcome = gate.finish(ticket, seen)
    if outcome.denied:
        return _refusal(outcome, call_id)
    return result


class ToolCallError(RuntimeError):
    """A tool call the framework answered with an error ToolMessage instead of raising."""


def _visible(result: Any) -> Any:
    """What the model will read of a tool result, for the output check: a ToolMessage's content; the
    messages (or the update) a Command writes; anything else as it is."""
    if isinstance(result, BaseMessage):
        return result.content
    if isinstance(result, Command):
        update = result.update
        found = update.get("messages") if isinstance(update, dict) else update
        if isinstance(found, (list, tuple)):
            return [m.content if isinstance(m, BaseMessage) else m for m in found]
        return update
    return result


def _text(content: Any) -> str:
    return content if isinstance(content, str) else str(content)


class GovernanceMiddleware(_middleware.AgentMiddleware):  # type: ignore[misc, name-defined]
    """agt governance for ``langchain.agents.create_agent(model, tools, middleware=[...])``.

    Put it last in ``middleware=[...]`` (LangChain runs the first one outermost): then it sees exactly the
    arguments the tool will get, and every retry an outer middleware makes is governed again.

    ``agent``: a registered :class:`agt.Agent` or an agent id. ``session``: the agt session; by default each
    LangGraph thread (``config["configurable"]["thread_id"]``) is a session, else ``"default"``.
    ``approvals``: ``"wait"`` blocks on agt's approval store; ``"interrupt"`` pauses the graph with
    ``interrupt()`` (needs a checkpointer) and agt's store decides on resume.
    """

    def __init__(self, governor: Governor, *, agent: Agent | str, session: str | None = None,
                 task: str | None = None, approvals: Approvals = "wait") -> None:
        super().__init__()
        self.governance = LangChainGovernance(governor, agent=agent, session=session, task=task, approvals=approvals)

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        return self.governance.wrap_tool_call(request, handler)

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        return await self.governance.awrap_tool_call(request, handler)


def governed_tool_node(tools: Sequence[Any], governor: Governor, *, agent: Agent | str, session: str | None = None,
                       task: str | None = None, approvals: Approvals = "wait", **tool_node_options: Any) -> Any:
    """A LangGraph ``ToolNode(tools, ...)`` whose every call agt governs, for graphs built by hand.
    ``tool_node_options`` go to ``ToolNode`` (``name=``, ``handle_tool_errors=``, ``messages_key=`` ...)."""
    for taken in ("wrap_tool_call", "awrap_tool_call"):
        if taken in tool_node_options:
            raise TypeError(f"governed_tool_node sets {taken}; to combine it with your own wrapper, call "
                            "LangChainGovernance(...).wrap_tool_call from inside yours (innermost)")
    governance = LangChainGovernance(governor, agent=agent, session=session, task=task, approvals=approvals)
    return _prebuilt.ToolNode(tools, wrap_tool_call=governance.wrap_tool_call,
                              awrap_tool_call=governance.awrap_tool_call, **tool_node_options)
