"""agt for the OpenAI Agents SDK (``openai-agents`` 0.24): every function tool of an agent, governed.

    from agt.adapters.openai_agents import govern_agent
    agent = govern_agent(agent, governor, agent_id="support-bot")
    result = await Runner.run(agent, "...")

:func:`govern_agent` returns a clone of the agent (the user's agent and its tools are left as they were)
whose every :class:`agents.FunctionTool` runs through agt: the SDK's own hook, ``FunctionTool.on_invoke_tool
(ctx, input_json)``, is wrapped, so the policy sees exactly the JSON string of arguments the tool is about to
parse (checked against the tool's own JSON Schema), and the call id is the SDK's ``ToolContext.tool_call_id``. A refused call never raises through the
agent loop: the tool's output is agt's denial text (gate, rule ids, reasons, "do not retry"), which the
model reads as the tool's result; the tool's body does not run. Any error inside governance is a denial.

Approvals:

* ``approvals="wait"`` (default): the call waits, without blocking the event loop, on agt's approval store
  (quorum, deadline, signed votes: ``agt approvals approve ID --as NAME``), then runs or is denied.
* ``approvals="native"``: the SDK's own pause. Each governed tool's ``needs_approval`` asks agt (without
  waiting): a call agt holds for approval interrupts the run (``result.interruptions``); agt's request id is
  :func:`approval_request` ``(item)``. The human votes in agt, the application calls ``state.approve(item)``
  and ``Runner.run(agent, state)``. agt's store still decides: the resumed call (same call id) finds its one
  request, and runs only if agt's votes approve it; an SDK-side ``state.approve()`` alone runs nothing.
  A decision ``needs_approval`` took is kept for the invocation that follows, so it is taken once; it is
  kept per (run, tool, call id), and abandoned when the SDK does not invoke it (a tool guardrail rejected the
  call, the run ended).

Arguments are checked strictly against each tool's own ``params_json_schema`` (defaults filled in) before
the policy decides, so the policy decides what the tool receives, not what the SDK's pydantic model would
coerce the model's arguments to.

What is not governed, and what this module does about it (``ungoverned=``):

* hosted tools (``WebSearchTool``, ``FileSearchTool``, ``CodeInterpreterTool``, ``HostedMCPTool``,
  ``ImageGenerationTool``, ...) run on OpenAI's servers, and local non-function tools (``ComputerTool``,
  ``ShellTool``, ``LocalShellTool``, ``ApplyPatchTool``, ``CustomTool``) have no ``on_invoke_tool(ctx, json)``;
* ``mcp_servers``: their tools are listed at run time, not in ``agent.tools``.

By default (``ungoverned="refuse"``) an agent with any of these is refused with a :class:`TypeError` naming
them, because a governed agent with an ungoverned shell is not governed. ``ungoverned="allow"`` leaves them as
they are (logged); put MCP servers behind ``agt mcp proxy`` instead. Handoffs are left alone: the agent a
handoff goes to runs its own tools, so govern it too (``govern_agent(other, ...)``) before handing off to it.
An agent used as a tool (``other.as_tool()``) is a function tool: the call to it is governed, the tools
inside it only if ``other`` was governed.
"""

from __future__ import annotations

import copy
import inspect
import logging
import threading
import weakref
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Literal

from agt.action import Agent as AgtAgent
from agt.runtime.governor import Governor, Ticket

from . import require
from ._core import ApprovalMode, Outcome, ToolGate, params_of
from ._schema import conform

__all__ = ["govern_agent", "govern_tool", "approval_request", "ToolFailed"]

_log = logging.getLogger("agt.adapters.openai_agents")
_GOVERNED = "__agt_governed__"
# The SDK marks a ToolContext when its default failure formatter turned the tool's exception into the
# tool's output (agents/tool.py, 0.24). Read, never written: without it such a call is audited as a result.
_SDK_HANDLED_FAILURE = "_function_tool_default_failure_handled"


def _sdk() -> Any:
    return require("agents", "openai-agents")


class ToolFailed(RuntimeError):
    """What agt records when the tool raised and the SDK handed the model its error text instead."""


def _not_approved_text(tool: str, request_id: str) -> str:
    return (f"agt governance has not approved the call to {tool!r}: request {request_id} is still pending in agt's "
            "approval store, and an approval given only in the agent SDK does not count. The tool has not run. "
            "Do not retry it; tell the user that the request needs a decision (agt approvals approve/deny "
            f"{request_id}).")


# Bounds on what a model can make this adapter remember (finding: unbounded agent-driven state).
_HELD_CAP = 256        # decisions needs_approval took, waiting for their invocation, across all runs
_REQUESTS_CAP = 1024   # native pauses whose agt request id approval_request() can still name


def _run_of(ctx: Any) -> Any:
    """What identifies one run of the SDK's loop: its ``Usage``. The SDK creates it with the run's context
    and hands the same object to every ToolContext and hook context derived from it (by reference); a
    resumed RunState carries a copy, i.e. another run. None when the context has none."""
    usage = getattr(ctx, "usage", None)
    try:
        weakref.ref(usage)
    except TypeError:
        return None
    return usage


def _schema_of(tool: Any) -> dict[str, Any] | None:
    """The JSON Schema agt checks this tool's arguments against: the tool's own ``params_json_schema``.

    The SDK's strict mode (the default) lists every property in ``required`` and strips ``default: null``,
    while the tool's pydantic model still accepts the argument missing and gives it None. So, for a strict
    tool, a property that accepts null and has no default left gets ``default: None`` back: the policy then
    decides on None, which is what the tool receives (or, if the field really had no default, the SDK's own
    validation refuses the call and the tool does not run)."""
    schema = getattr(tool, "params_json_schema", None)
    if not isinstance(schema, dict):
        return None
    if not getattr(tool, "strict_json_schema", False):
        return schema
    schema = copy.deepcopy(schema)
    for prop in (schema.get("properties") or {}).values():
        if isinstance(prop, dict) and "default" not in prop and _accepts_null(prop):
            prop["default"] = None
    return schema


def _accepts_null(prop: dict[str, Any]) -> bool:
    kind = prop.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(isinstance(alt, dict) and _accepts_null(alt) for alt in prop.get("anyOf") or ())


class _Governance:
    """The state one governed agent shares across its tools: the gate, each tool's schema, and (native mode)
    the decisions ``needs_approval`` took, held until the SDK invokes the tool.

    A held decision is keyed by (run, tool, call id) and is good only for the invocation it was taken for:
    the same run, the same tool, the same arguments. One the SDK never invokes (a tool input guardrail
    rejected the call, the run ended) is abandoned — its admission released — when the run's next model
    call starts or the agent ends (:class:`_Hooks`), when the run is garbage collected, or when more than
    ``_HELD_CAP`` are held."""

    def __init__(self, gate: ToolGate) -> None:
        self.gate = gate
        self.schemas: dict[str, dict[str, Any] | None] = {}
        self.held: OrderedDict[tuple[int, str, str], Ticket | Outcome] = OrderedDict()
        self.requests: OrderedDict[tuple[str, str], str] = OrderedDict()  # (tool, call id) -> agt request id
        self._runs: dict[int, Any] = {}  # id(run) -> its weakref.finalize
        self._lock = threading.RLock()

    # --- native mode: the SDK's needs_approval -----------------------------------------------------
    def needs_approval(self, tool: str, theirs: Any) -> Callable[..., Awaitable[bool]]:
        async def needs_approval(run_context: Any, params: dict[str, Any], call_id: str) -> bool:
            run = _run_of(run_context)
            key = (id(run), tool, call_id) if run is not None and call_id else None
            with self._lock:
                held = self.held.get(key) if key else None
            if held is None:
                held = await self.gate.abegin(tool, params, call_id=call_id, schema=self.schemas.get(tool))
                if isinstance(held, Outcome) and held.pending:
                    self._remember_request(tool, call_id, held.approval_id or "")
                    return True  # the SDK pauses; agt's request waits for its votes
                if key is None:  # nothing to bind it to: the invocation decides again
                    if isinstance(held, Ticket):
                        self.gate.abandon(held, "no run to hold the decision for; decided again when it runs")
                    return False
                self._hold(run, key, held)
            if isinstance(held, Outcome):
                return False  # denied: no human needs to approve it; the invocation hands over the denial
            # agt allows it now; the tool's own needs_approval (if any) may still want the SDK's pause.
            try:
                if isinstance(theirs, bool):
                    pause = theirs
                else:
                    answer = theirs(run_context, params, call_id)
                    pause = bool(await answer if inspect.isawaitable(answer) else answer)
            except BaseException:
                self._drop(key, "the tool's own needs_approval raised")
                raise
            if pause:
                # A human will take their time (or reject it in the SDK, which agt never sees): the
                # invocation after the pause decides afresh, as agt does after any wait.
                self._drop(key, "the SDK paused the call for its own approval; decided again when it runs")
            return pause

        setattr(needs_approval, _GOVERNED, True)
        return needs_approval

    def _hold(self, run: Any, key: tuple[int, str, str], decision: Ticket | Outcome) -> None:
        evicted: list[Ticket | Outcome] = []
        with self._lock:
            if key[0] not in self._runs:
                self._runs[key[0]] = weakref.finalize(run, self.end_run, key[0], "the run ended before the SDK invoked it")
            stale = self.held.pop(key, None)
            if stale is not None:
                evicted.append(stale)
            self.held[key] = decision
            while len(self.held) > _HELD_CAP:
                evicted.append(self.held.popitem(last=False)[1])
        for old in evicted:
            if isinstance(old, Ticket):
                self.gate.abandon(old, "held too long: the SDK did not invoke it")

    def _drop(self, key: tuple[int, str, str] | None, reason: str) -> None:
        with self._lock:
            held = self.held.pop(key, None) if key else None
        if isinstance(held, Ticket):
            self.gate.abandon(held, reason)

    def end_run(self, run_id: int, reason: str) -> None:
        """Abandon every decision held for run ``run_id``: the SDK will not invoke those calls now."""
        with self._lock:
            keys = [k for k in list(self.held) if k[0] == run_id]
            left = [self.held.pop(k) for k in keys]
        for held in left:
            if isinstance(held, Ticket):
                self.gate.abandon(held, reason)

    def end_turn(self, ctx: Any, reason: str) -> None:
        run = _run_of(ctx)
        if run is not None:
            self.end_run(id(run), reason)

    def _remember_request(self, tool: str, call_id: str, request_id: str) -> None:
        with self._lock:
            self.requests.pop((tool, call_id), None)
            self.requests[(tool, call_id)] = request_id
            while len(self.requests) > _REQUESTS_CAP:
                self.requests.popitem(last=False)

    def request_for(self, tool: str | None, call_id: str) -> str | None:
        with self._lock:
            if tool is not None:
                return self.requests.get((tool, call_id)) or None
            return next((r for (_, c), r in reversed(self.requests.items()) if c == call_id and r), None)

    # --- every call: the SDK's on_invoke_tool ------------------------------------------------------
    async def invoke(self, tool: str, inner: Callable[[Any, str], Awaitable[Any]], ctx: Any, input_json: str) -> Any:
        try:
            call_id = getattr(ctx, "tool_call_id", None) or None
            ticket = await self._ticket(tool, input_json, call_id, _run_of(ctx))
            if call_id:
                with self._lock:
                    self.requests.pop((tool, call_id), None)  # the SDK will not pause this call again
        except Exception as exc:  # noqa: BLE001 - ToolGate does not raise; this adapter fails closed if it does
            ticket = self.gate._refused(tool, exc)
        if isinstance(ticket, Outcome):
            if ticket.pending:
                return _not_approved_text(tool, ticket.approval_id or "?")
            return ticket.message
        try:
            result = await inner(ctx, input_json)
        except BaseException as exc:
            self.gate.fail(ticket, exc)
            raise
        if getattr(ctx, _SDK_HANDLED_FAILURE, False) is True:
            self.gate.fail(ticket, ToolFailed(f"the tool raised; the SDK told the model: {result}"))
            return result
        outcome = self.gate.finish(ticket, result)
        return outcome.result if outcome.ran else outcome.message

    async def _ticket(self, tool: str, input_json: str, call_id: str | None, run: Any) -> Ticket | Outcome:
        schema = self.schemas.get(tool)
        held = None
        if call_id and run is not None:
            with self._lock:
                held = self.held.pop((id(run), tool, call_id), None)
        if isinstance(held, Ticket):
            try:  # the same tool, and the arguments the tool will get, exactly
                same = (held.action.action.tool == tool
                        and conform(params_of(input_json), schema) == dict(held.action.action.params))
            except Exception:  # noqa: BLE001 - unreadable now: decide again, which denies it
                same = False
            if same:
                return held
            # needs_approval saw the SDK's float-parsed dict; the exact string says otherwise: decide again.
            self.gate.abandon(held, "the arguments differ from those needs_approval decided")
        elif isinstance(held, Outcome) and held.tool == tool:
            return held
        return await self.gate.abegin(tool, input_json, call_id=call_id, schema=schema)


def _hooks(governance: _Governance, theirs: Any) -> Any:
    """The agent's hooks: the user's, called as before, and agt's end of a turn (see :class:`_Governance`)."""
    sdk = _sdk()

    class _Hooks(sdk.AgentHooks):  # type: ignore[misc, name-defined]
        async def _theirs(self, name: str, *args: Any) -> None:
            method = getattr(theirs, name, None) if theirs is not None else None
            if method is not None:
                answer = method(*args)
                if inspect.isawaitable(answer):
                    await answer

        async def on_start(self, context, agent):  # noqa: ANN001, ANN201
            await self._theirs("on_start", context, agent)

        async def on_end(self, context, agent, output):  # noqa: ANN001, ANN201
            governance.end_turn(context, "the agent ended before the SDK invoked it")
            await self._theirs("on_end", context, agent, output)

        async def on_handoff(self, context, agent, source):  # noqa: ANN001, ANN201
            await self._theirs("on_handoff", context, agent, source)

        async def on_tool_start(self, context, agent, tool):  # noqa: ANN001, ANN201
            await self._theirs("on_tool_start", context, agent, tool)

        async def on_tool_end(self, context, agent, tool, result):  # noqa: ANN001, ANN201
            await self._theirs("on_tool_end", context, agent, tool, result)

        async def on_llm_start(self, context, agent, system_prompt, input_items):  # noqa: ANN001, ANN201
            governance.end_turn(context, "the turn ended without the SDK invoking it (e.g. a tool guardrail rejected it)")
            await self._theirs("on_llm_start", context, agent, system_prompt, input_items)

        async def on_llm_end(self, context, agent, response):  # noqa: ANN001, ANN201
            await self._theirs("on_llm_end", context, agent, response)

    return _Hooks()


def govern_tool(tool: Any, governance: _Governance) -> Any:
    """A governed copy of one ``FunctionTool`` (the original is not changed)."""
    sdk = _sdk()
    if not isinstance(tool, sdk.FunctionTool):
        raise TypeError(f"only a FunctionTool can be governed this way, not {type(tool).__name__}")
    if getattr(tool.on_invoke_tool, _GOVERNED, False):
        raise ValueError(f"tool {tool.name!r} is already governed by agt: govern the original agent once")
    governed = copy.copy(tool)  # FunctionTool.__copy__ rebinds the SDK's failure handling to the copy
    inner, name = governed.on_invoke_tool, tool.name

    # Unannotated on purpose: the SDK passes a narrower context to a wrapper that declares RunContextWrapper.
    async def on_invoke_tool(ctx, input_json):  # noqa: ANN001, ANN202
        return await governance.invoke(name, inner, ctx, input_json)

    setattr(on_invoke_tool, _GOVERNED, True)
    governed.on_invoke_tool = on_invoke_tool
    governance.schemas[name] = _schema_of(governed)
    if governance.gate.approvals == "native":
        governed.needs_approval = governance.needs_approval(name, tool.needs_approval)
    return governed


def govern_agent(agent: Any, governor: Governor, *, agent_id: AgtAgent | str, session: str | None = None,
                 task: str | None = None, approvals: ApprovalMode = "wait",
                 ungoverned: Literal["refuse", "allow"] = "refuse") -> Any:
    """A clone of ``agent`` whose every function tool is governed by ``governor`` as agent ``agent_id``
    (an id, or a registered :class:`agt.Agent` with its trust score).

    ``session`` (default ``"default"``) scopes approvals by call id and the Governor's counters; ``task``
    defaults to the session. ``approvals`` is ``"wait"`` or ``"native"`` (see the module docstring).
    ``ungoverned``: what to do with tools agt cannot govern here (hosted and non-function tools, MCP servers):
    ``"refuse"`` (default) raises :class:`TypeError` naming them; ``"allow"`` leaves them ungoverned."""
    sdk = _sdk()
    if not isinstance(agent, sdk.Agent):
        raise TypeError(f"govern_agent needs an agents.Agent, not {type(agent).__name__}")
    if ungoverned not in ("refuse", "allow"):
        raise ValueError(f"ungoverned must be 'refuse' or 'allow', not {ungoverned!r}")
    gate = ToolGate(governor, agent=agent_id, session=session or "default", task=task, approvals=approvals)
    governance = _Governance(gate)
    tools, left = [], []
    for tool in agent.tools:
        if isinstance(tool, sdk.FunctionTool):
            tools.append(govern_tool(tool, governance))
        else:
            tools.append(tool)
            left.append(f"{getattr(tool, 'name', '?')} ({type(tool).__name__})")
    left += [f"{getattr(s, 'name', '?')} (MCP server)" for s in getattr(agent, "mcp_servers", None) or ()]
    if left and ungoverned == "refuse":
        raise TypeError(
            f"agt cannot govern these tools of agent {agent.name!r}: {', '.join(left)}. Hosted and non-function tools "
            "have no on_invoke_tool to wrap, and MCP servers list their tools at run time. Remove them, put MCP servers "
            "behind `agt mcp proxy`, or pass ungoverned='allow' to leave them ungoverned knowingly.")
    for what in left:
        _log.warning("agt leaves %s of agent %r ungoverned (ungoverned='allow')", what, agent.name)
    clone = agent.clone(tools=tools, hooks=_hooks(governance, agent.hooks) if approvals == "native" else agent.hooks)
    clone._agt_governance = governance  # type: ignore[attr-defined] - read by approval_request()
    return clone


def approval_request(item: Any, agent: Any = None) -> str | None:
    """agt's approval request id for one of ``result.interruptions`` (native mode), or None if agt did not
    open it (the tool's own ``needs_approval`` paused it, or the item is another agent's)."""
    governance = getattr(agent if agent is not None else getattr(item, "agent", None), "_agt_governance", None)
    raw = getattr(item, "raw_item", None)
    call_id = getattr(raw, "call_id", None) if not isinstance(raw, dict) else raw.get("call_id")
    if governance is None or not call_id:
        return None
    tool = getattr(item, "tool_name", None)
    return governance.request_for(tool if isinstance(tool, str) else None, call_id)
