"""agt governance for CrewAI, through CrewAI's own before/after tool-call hooks.

    from agt.adapters.crewai import install
    governance = install(governor)          # every tool call of every crew in this process is governed
    crew.kickoff()
    governance.uninstall()                  # or: with install(governor): crew.kickoff()

How it maps onto CrewAI 1.15 (``crewai.hooks``):

* ``register_before_tool_call_hook`` runs :meth:`ToolGate.begin <agt.adapters._core.ToolGate.begin>` before
  the tool. A call agt refuses is blocked by raising :class:`crewai.hooks.HookAborted`, the one exception
  CrewAI does not swallow. **Any other exception in a hook is swallowed and the tool runs** (fail-open),
  so every step of the hook is wrapped: an error inside agt, or inside this adapter, blocks the call.
* CrewAI then hands the model a generic "Tool execution blocked by hook" text, and runs the after-hooks
  on the blocked call too. ``register_after_tool_call_hook`` replaces that text with agt's reason
  (``Outcome.message``: the gate, the rule ids, the reasons, do not retry).
* For a call that ran, the after-hook runs :meth:`ToolGate.finish` with the tool's result (output check,
  audit). A result the output check refuses is replaced, before the model reads it, by agt's denial.
* Before and after get two different context objects; what they share is the ``tool_input`` dict, so
  the ticket for a call is kept under that dict's identity (thread-safe: CrewAI may run tools in
  parallel threads) and the dict itself is held until the after-hook, so its id cannot be reused.
* The tool's own argument schema (``tool.args_schema``, the pydantic model CrewAI validates with) goes to
  :meth:`ToolGate.begin` as its JSON Schema: the arguments must match it strictly, so ``"true"`` is not
  taken for ``true``, and its defaults are filled in; those defaults are written back into the call's
  ``tool_input`` dict, so the tool gets what the policy decided on.
* CrewAI's ReAct loop (``ToolUsage``) **retries a tool that raises** inside one before/after pair: up to
  3 ``use()`` attempts, each invoking the tool twice, all on one decision. So the admitted call gets one
  *grant* on the tool's callable (``CrewStructuredTool.func``, which every ``invoke``/``ainvoke`` calls):
  the first invocation uses it, every later one is refused without running (:class:`ToolRerunRefused`).
  A retry is the model's to make, as a new call that is decided again.
* A tool that raised is recorded with :meth:`ToolGate.fail` (breakers, ``tool_error`` in the audit), not
  as a result: known exactly from the grant in the ReAct loop, and from CrewAI's ``Error executing tool:``
  result in the native tool-call loop. A call CrewAI refused to run (the tool's usage limit) is recorded
  as not run; any other text CrewAI hands back is a result, and goes through the output check.
* CrewAI's hooks are process-global: one installation governs every crew and agent in the process.
  Installing again while one is active raises :class:`AlreadyInstalled` (governance is never doubled
  and never silently swapped for another policy); uninstall the first handle, or use it.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import re
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

from agt import _json
from agt.action import Agent
from agt.decision import Decision, Effect, Reason
from agt.runtime.governor import Governor, Ticket

from . import require
from ._schema import with_defaults
from ._core import ADAPTER_GATE, ApprovalMode, Gates, Outcome, ToolGate, denial_text

__all__ = ["AlreadyInstalled", "CrewAIGovernance", "ToolRerunRefused", "install"]

_log = logging.getLogger("agt.adapters.crewai")
_FALLBACK_AGENT = "crewai-agent"  # a call whose CrewAI agent has no role (no agent in the hook context)
_BLOCKED_PREFIX = "Tool execution blocked by hook."  # CrewAI's text for a call a before-hook blocked
_MAX_OPEN = 10_000  # calls begun whose after-hook has not come (yet); beyond this the oldest are abandoned

_install_lock = threading.Lock()
_active: CrewAIGovernance | None = None


class AlreadyInstalled(RuntimeError):
    """agt governance is already installed in CrewAI's process-global hooks."""


class ToolRerunRefused(RuntimeError):
    """Raised (inside CrewAI, in place of the tool) for an invocation no governed call admitted: CrewAI's
    own retry of a tool that raised, or a call that did not pass the before-hook. The tool did not run."""


class _CrewAIToolError(RuntimeError):
    """The error CrewAI's native tool-call loop reported (as text) for a tool that raised."""


class _Call:
    """One call between the before- and the after-hook."""

    __slots__ = ("arguments", "gate", "got", "slot", "ran", "error")

    def __init__(self, arguments: Any, gate: ToolGate | None, got: Ticket | Outcome) -> None:
        self.arguments, self.gate, self.got = arguments, gate, got
        self.slot: _Slot | None = None
        self.ran = False  # the tool's body was invoked under this call's grant
        self.error: BaseException | None = None  # ... and raised this


class _Slot:
    """The guard on one CrewAI tool's callable: an invocation runs the body only on an open grant, and each
    admitted call grants exactly one. While no agt installation is active the guard lets calls through."""

    def __init__(self, tool_name: str, original: Any) -> None:
        self.tool_name, self.original = tool_name, original
        self.owner: CrewAIGovernance | None = None
        self.grants: list[_Call] = []
        self.lock = threading.Lock()
        self.last_error: BaseException | None = None
        if inspect.iscoroutinefunction(original):
            async def guarded(*args: Any, **kwargs: Any) -> Any:
                call = self._claim()
                if call is None:
                    return await original(*args, **kwargs)
                try:
                    return await original(*args, **kwargs)
                except BaseException as exc:
                    self._raised(call, exc)
                    raise
        else:
            def guarded(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                call = self._claim()
                if call is None:
                    return original(*args, **kwargs)
                try:
                    return original(*args, **kwargs)
                except BaseException as exc:
                    self._raised(call, exc)
                    raise
        functools.update_wrapper(guarded, original)
        guarded._agt_slot = self  # type: ignore[attr-defined]
        self.guarded = guarded

    def _claim(self) -> _Call | None:
        """The grant this invocation runs on; None: no agt installation is active (run ungoverned, as CrewAI
        would). Raises ToolRerunRefused when governance is active and no grant is open."""
        with self.lock:
            owner = self.owner
            if owner is None or not owner.active:
                return None
            if self.grants:
                call = self.grants.pop(0)
                call.ran = True
                return call
            first = self.last_error
        if first is not None:
            raise ToolRerunRefused(
                f"agt did not run {self.tool_name!r} again: it already ran once for this governed call and raised "
                f"{type(first).__name__}: {first}. CrewAI's automatic retry is not a new decision; make a new call "
                "if it should be tried again.")
        raise ToolRerunRefused(f"agt did not run {self.tool_name!r}: no governed call admitted this invocation")

    def _raised(self, call: _Call, exc: BaseException) -> None:
        call.error = exc
        with self.lock:
            self.last_error = exc

    def grant(self, owner: CrewAIGovernance, call: _Call) -> None:
        with self.lock:
            self.owner = owner
            self.grants.append(call)
            self.last_error = None
        call.slot = self

    def release(self, call: _Call) -> None:
        """The call's after-hook came: its grant, if unused, is withdrawn."""
        with self.lock:
            if call in self.grants:
                self.grants.remove(call)
            if not self.grants:
                self.last_error = None


_slots_lock = threading.Lock()


def _slot_for(tool: Any, name: str) -> _Slot | None:
    """The guard on ``tool``'s callable (a ``CrewStructuredTool``: ``invoke``/``ainvoke`` call ``tool.func``),
    installed once per tool object. None for an object that has no such callable (CrewAI gave no tool)."""
    if tool is None:
        return None
    func = getattr(tool, "func", None)
    if not callable(func):
        return None
    with _slots_lock:
        func = tool.func
        slot = getattr(func, "_agt_slot", None)
        if isinstance(slot, _Slot):
            return slot
        slot = _Slot(name, func)
        tool.func = slot.guarded
        if tool.func is not slot.guarded:
            raise TypeError(f"agt could not guard the callable of CrewAI tool {name!r}")
        return slot


def _hooks() -> Any:
    return require("crewai.hooks", "crewai")


def install(governor: Governor, *, agent_id: Agent | str | None = None, session: str | None = None,
            approvals: ApprovalMode = "wait") -> CrewAIGovernance:
    """Govern every CrewAI tool call in this process with ``governor``; returns the handle.

    ``agent_id``: the calling agent for agt (an id, or a registered :class:`agt.Agent`). Without it each
    call is governed as the CrewAI agent's ``role`` (so a policy can tell a crew's agents apart).
    ``session``: agt's session id for these calls (default ``"default"``).
    ``approvals``: ``"wait"`` (default) holds the tool call until agt's approval store decides;
    ``"native"`` blocks it at once with the pending request's id in what the model reads, and the same
    call made again (same tool, same arguments, same agent and session) finds that request instead of
    opening another, and runs once it is approved.

    Raises :class:`AlreadyInstalled` while another installation is active.
    """
    global _active
    handle = CrewAIGovernance(governor, agent_id=agent_id, session=session, approvals=approvals)
    with _install_lock:
        if _active is not None and _active.active:
            raise AlreadyInstalled("agt governance is already installed in CrewAI's process-global tool hooks; "
                                   "call uninstall() on the installed handle first (installing twice would govern "
                                   "every call twice)")
        stale = _active
    if stale is not None:  # its hooks were cleared from CrewAI's lists: remove what is left of it
        stale.uninstall()
    with _install_lock:
        if _active is not None:
            raise AlreadyInstalled("agt governance was installed by another thread meanwhile")
        handle._register()
        _active = handle
    return handle


class CrewAIGovernance:
    """The installed hook pair. ``uninstall()`` removes it; also a context manager."""

    def __init__(self, governor: Governor, *, agent_id: Agent | str | None = None, session: str | None = None,
                 approvals: ApprovalMode = "wait") -> None:
        self.hooks = _hooks()
        self.governor = governor
        self.session = session or "default"
        self.approvals = approvals
        self._fixed = ToolGate(governor, agent=agent_id, session=self.session, approvals=approvals) \
            if agent_id is not None else None
        if self._fixed is None:  # check the arguments now, not at the first tool call
            ToolGate(governor, agent=_FALLBACK_AGENT, session=self.session, approvals=approvals)
        self._gates = Gates(governor)
        self._open: dict[int, _Call] = {}
        self._lock = threading.Lock()
        self._registered = False

    # --- lifecycle ---------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Both hooks are in CrewAI's global lists (``crewai.hooks.clear_all_tool_call_hooks`` removes them)."""
        return (self._registered and self._before in self.hooks.get_before_tool_call_hooks()
                and self._after in self.hooks.get_after_tool_call_hooks())

    def _register(self) -> None:
        self.hooks.register_before_tool_call_hook(self._before)
        self.hooks.register_after_tool_call_hook(self._after)
        self._registered = True

    def uninstall(self) -> None:
        """Remove both hooks; calls begun and not finished are recorded as not run. Idempotent."""
        global _active
        with _install_lock:
            self.hooks.unregister_before_tool_call_hook(self._before)
            self.hooks.unregister_after_tool_call_hook(self._after)
            self._registered = False
            if _active is self:
                _active = None
        with self._lock:
            left, self._open = list(self._open.values()), {}
        for call in left:
            if call.slot is not None:
                call.slot.release(call)
            if call.gate is not None and isinstance(call.got, Ticket):
                call.gate.abandon(call.got, "agt governance was uninstalled before the tool call finished")

    def __enter__(self) -> CrewAIGovernance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # --- the hooks ---------------------------------------------------------------------------------
    def _before(self, ctx: Any) -> None:
        """CrewAI's before_tool_call hook. Allows by returning None; blocks by raising ``HookAborted``."""
        aborted = self.hooks.HookAborted
        gate: ToolGate | None = None
        got: Ticket | Outcome | None = None
        call: _Call | None = None
        try:
            tool, arguments = ctx.tool_name, ctx.tool_input
            crew_tool = getattr(ctx, "tool", None)
            gate = self._gate_for(getattr(ctx, "agent", None))
            call_id = _call_id(tool, arguments) if self.approvals == "native" else None
            schema = _schema_of(crew_tool)
            got = gate.begin(tool, arguments, call_id=call_id, schema=schema)
            call = _Call(arguments, gate, got)
            if isinstance(got, Ticket):
                if isinstance(arguments, MutableMapping):  # CrewAI's own dict, the one it passes to the tool
                    arguments.update(with_defaults(arguments, schema))  # what the tool gets = what was decided
                slot = _slot_for(crew_tool, tool)
                if slot is not None:
                    slot.grant(self, call)
            self._remember(call)
        except BaseException as exc:  # noqa: BLE001 - CrewAI runs the tool on anything but HookAborted
            if call is not None and call.slot is not None:  # its grant must not admit a later invocation
                call.slot.release(call)
            if gate is not None and isinstance(got, Ticket):  # admitted, then this adapter failed: it will not run
                gate.abandon(got, f"agt's CrewAI hook failed: {type(exc).__name__}")
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            got = self._internal_denial(ctx, exc)
            try:
                self._remember(_Call(getattr(ctx, "tool_input", None), None, got))
            except BaseException:  # noqa: BLE001 - blocked either way; the model reads CrewAI's generic text
                pass
            raise aborted(got.message, source="agt") from None
        if isinstance(got, Outcome):
            raise aborted(got.message, source="agt")
        return None

    def _after(self, ctx: Any) -> str | None:
        """CrewAI's after_tool_call hook. A returned string replaces what the model reads."""
        try:
            call = self._take(ctx.tool_input)
            if call is None:
                return None  # not a call agt saw: begun before install, or blocked by an earlier hook
            if call.slot is not None:
                call.slot.release(call)
            gate, got = call.gate, call.got
            if isinstance(got, Outcome) or gate is None:  # agt blocked it: the model reads agt's reason, not CrewAI's
                return _model_text(got) if isinstance(got, Outcome) else None
            result, raw = ctx.tool_result, ctx.raw_tool_result
            if isinstance(result, str) and result.startswith(_BLOCKED_PREFIX) and raw == result:
                # A before-hook registered after agt's blocked a call agt had admitted: it never ran.
                gate.abandon(got, "blocked by another CrewAI before_tool_call hook")
                return None
            if call.error is not None:  # the ReAct loop: the body ran once under this call's grant, and raised
                gate.fail(got, call.error)
                return _raised_text(got.action.action.tool, call.error)
            if not call.ran:
                error = _native_error(result, raw)
                if error is not None:  # the native tool-call loop: the tool raised; CrewAI hands over its text
                    gate.fail(got, _CrewAIToolError(error))
                    return None
                not_run = _not_run(result, got.action.action.tool, getattr(ctx, "tool", None))
                if not_run is not None:
                    gate.abandon(got, f"CrewAI did not run the tool: {not_run}")
                    return None
            outcome = gate.finish(got, raw if raw is not None else result)
            return _model_text(outcome) if not outcome.ran else None
        except BaseException as exc:  # noqa: BLE001 - a hook error here would hand the model the unchecked result
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            _log.exception("agt failed closed after %s", getattr(ctx, "tool_name", "?"))
            return self._internal_denial(ctx, exc).message

    # --- helpers -----------------------------------------------------------------------------------
    def _gate_for(self, crew_agent: Any) -> ToolGate:
        if self._fixed is not None:
            return self._fixed
        role = getattr(crew_agent, "role", None)
        agent = role.strip() if isinstance(role, str) and role.strip() else _FALLBACK_AGENT
        return self._gates.get(agent, self.session, self.approvals)

    def _remember(self, call: _Call) -> None:
        stale: list[_Call] = []
        with self._lock:
            self._open[id(call.arguments)] = call  # holding the dict keeps its id from being reused
            while len(self._open) > _MAX_OPEN:
                stale.append(self._open.pop(next(iter(self._open))))
        for old in stale:
            if old.slot is not None:
                old.slot.release(old)
            if old.gate is not None and isinstance(old.got, Ticket):
                old.gate.abandon(old.got, "CrewAI never ran the after-hook for this call")

    def _take(self, arguments: Any) -> _Call | None:
        with self._lock:
            call = self._open.get(id(arguments))
            if call is None or call.arguments is not arguments:
                return None
            del self._open[id(arguments)]
        return call

    def _internal_denial(self, ctx: Any, exc: BaseException) -> Outcome:
        """A failure inside this adapter: denied, logged, and audited like any adapter-error denial."""
        tool = getattr(ctx, "tool_name", None)
        name = tool if isinstance(tool, str) and tool else "?"
        try:
            return self._gate_for(getattr(ctx, "agent", None))._refused(name, exc)
        except BaseException:  # noqa: BLE001 - even the audit failed: still a denial
            _log.exception("agt could not audit its own failure on %s", name)
            decision = Decision(Effect.DENY, (Reason("adapter-error", f"{type(exc).__name__}: {exc}"),), engine="adapter")
            return Outcome("denied", name, message=denial_text(name, decision, ADAPTER_GATE), gate=ADAPTER_GATE,
                           rule_ids=("adapter-error",))


def _call_id(tool: str, arguments: Any) -> str:
    """The idempotency key for a call CrewAI gives no id to: the tool and its arguments."""
    try:
        text = _json.dumps({"tool": tool, "arguments": arguments}, sort_keys=True)
    except (TypeError, ValueError):
        text = f"{tool}\x00{arguments!r}"
    return "crewai:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _model_text(outcome: Outcome) -> str:
    if outcome.pending:
        return (f"{outcome.message} When the request is approved, make the same call again with the same "
                "arguments and it will run.")
    return outcome.message



def _schema_of(tool: Any) -> dict[str, Any] | None:
    """The JSON Schema of the arguments CrewAI validates the call with (``tool.args_schema``, a pydantic
    model), or None when CrewAI handed no tool (then CrewAI has nothing to run either)."""
    if tool is None:
        return None
    model = getattr(tool, "args_schema", None)
    if model is None:
        return None
    schema = model.model_json_schema()
    if not isinstance(schema, Mapping):
        raise TypeError(f"the args_schema of CrewAI tool {getattr(tool, 'name', '?')!r} gave no JSON Schema object")
    return dict(schema)


_NATIVE_ERROR = "Error executing tool: "  # CrewAI's native tool-call loop, for a tool that raised
_USAGE_LIMIT = re.compile(r"^Tool '([^']*)' has reached its (?:usage limit of \d+ times|maximum usage limit) "
                          r"and cannot be used anymore\.$")


def _native_error(result: Any, raw: Any) -> str | None:
    """CrewAI's native loop reports a tool that raised as ``Error executing tool: <error>`` (result and raw
    result the same text). A tool could return such a text itself; it is then recorded as failed, which only
    trips breakers sooner (its text reaches the model as any tool error's does)."""
    if isinstance(result, str) and result == raw and result.startswith(_NATIVE_ERROR):
        return result[len(_NATIVE_ERROR):]
    return None


def _not_run(result: Any, tool_name: str, tool: Any) -> str | None:
    """CrewAI's own text for a call it refused to run (the tool's usage limit), checked against the tool's
    state and name so a result that merely reads like it is still a result (and goes through the output
    check); None for anything else."""
    if not isinstance(result, str):
        return None
    text = result.strip()
    if text == "Tool not found":
        return text
    match = _USAGE_LIMIT.match(text)
    limit, used = getattr(tool, "max_usage_count", None), getattr(tool, "current_usage_count", None)
    if match and match.group(1) == tool_name and isinstance(limit, int) and isinstance(used, int) and used >= limit:
        return text
    return None


def _raised_text(tool: str, exc: BaseException) -> str:
    return (f"The tool {tool!r} failed: {type(exc).__name__}: {exc}. It ran once for this call; agt did not let "
            "CrewAI run it again on the same decision. If it should be tried again, make the call again (it is "
            "decided again), or tell the user it failed.")
