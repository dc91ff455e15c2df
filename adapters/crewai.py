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
* CrewAI's hooks are process-global: one installation governs every crew and agent in the process.
  Installing again while one is active raises :class:`AlreadyInstalled` (governance is never doubled
  and never silently swapped for another policy); uninstall the first handle, or use it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from agt import _json
from agt.action import Agent
from agt.decision import Decision, Effect, Reason
from agt.runtime.governor import Governor, Ticket

from . import require
from ._core import ADAPTER_GATE, ApprovalMode, Gates, Outcome, ToolGate, denial_text

__all__ = ["AlreadyInstalled", "CrewAIGovernance", "install"]

_log = logging.getLogger("agt.adapters.crewai")
_FALLBACK_AGENT = "crewai-agent"  # a call whose CrewAI agent has no role (no agent in the hook context)
_BLOCKED_PREFIX = "Tool execution blocked by hook."  # CrewAI's text for a call a before-hook blocked
_MAX_OPEN = 10_000  # calls begun whose after-hook has not come (yet); beyond this the oldest are abandoned

_install_lock = threading.Lock()
_active: CrewAIGovernance | None = None


class AlreadyInstalled(RuntimeError):
    """agt governance is already installed in CrewAI's process-global hooks."""


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
        self._open: dict[int, tuple[Any, ToolGate, Ticket | Outcome]] = {}
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
        for _, gate, got in left:
            if isinstance(got, Ticket):
                gate.abandon(got, "agt governance was uninstalled before the tool call finished")

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
        try:
            tool, arguments = ctx.tool_name, ctx.tool_input
            gate = self._gate_for(getattr(ctx, "agent", None))
            call_id = _call_id(tool, arguments) if self.approvals == "native" else None
            got = gate.begin(tool, arguments, call_id=call_id)
            self._remember(arguments, gate, got)
        except BaseException as exc:  # noqa: BLE001 - CrewAI runs the tool on anything but HookAborted
            if gate is not None and isinstance(got, Ticket):  # admitted, then this adapter failed: it will not run
                gate.abandon(got, f"agt's CrewAI hook failed: {type(exc).__name__}")
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            got = self._internal_denial(ctx, exc)
            try:
                self._remember(getattr(ctx, "tool_input", None), None, got)
            except BaseException:  # noqa: BLE001 - blocked either way; the model reads CrewAI's generic text
                pass
            raise aborted(got.message, source="agt") from None
        if isinstance(got, Outcome):
            raise aborted(got.message, source="agt")
        return None

    def _after(self, ctx: Any) -> str | None:
        """CrewAI's after_tool_call hook. A returned string replaces what the model reads."""
        try:
            entry = self._take(ctx.tool_input)
            if entry is None:
                return None  # not a call agt saw: begun before install, or blocked by an earlier hook
            gate, got = entry
            if isinstance(got, Outcome):  # agt blocked it: the model reads agt's reason, not CrewAI's
                return _model_text(got)
            result = ctx.tool_result
            if isinstance(result, str) and result.startswith(_BLOCKED_PREFIX) and ctx.raw_tool_result == result:
                # A before-hook registered after agt's blocked a call agt had admitted: it never ran.
                gate.abandon(got, "blocked by another CrewAI before_tool_call hook")
                return None
            raw = ctx.raw_tool_result
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

    def _remember(self, arguments: Any, gate: ToolGate | None, got: Ticket | Outcome) -> None:
        stale: list[tuple[Any, ToolGate | None, Ticket | Outcome]] = []
        with self._lock:
            self._open[id(arguments)] = (arguments, gate, got)  # holding the dict keeps its id from being reused
            while len(self._open) > _MAX_OPEN:
                stale.append(self._open.pop(next(iter(self._open))))
        for _, old_gate, old in stale:
            if old_gate is not None and isinstance(old, Ticket):
                old_gate.abandon(old, "CrewAI never ran the after-hook for this call")

    def _take(self, arguments: Any) -> tuple[ToolGate, Ticket | Outcome] | None:
        with self._lock:
            entry = self._open.get(id(arguments))
            if entry is None or entry[0] is not arguments:
                return None
            del self._open[id(arguments)]
        return entry[1], entry[2]  # type: ignore[return-value]

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

