"""OpenTelemetry spans of one Governor: one per governed call; with ``detailed``, one per phase and gate too.

Off unless asked for (``Governor(..., tracing=True)`` uses the global tracer provider; ``tracing=provider`` a
TracerProvider of your own; ``tracing=GovernorTracing(provider, detailed=True)`` adds the phase and gate spans). It
needs the ``otel`` extra (``pip install 'agt[otel]'``); without it, asking for tracing raises, and nothing
imports OpenTelemetry otherwise.

Spans (attributes: docs/metrics.md#traces):

* ``agt.call``: one :meth:`Governor.call` / ``acall``, the tool included, so the tool's own spans nest in it;
* ``agt.begin``, ``agt.finish``, ``agt.fail``, ``agt.abandon``: the phases, for hooks that use the two phases
  without ``call`` (roots, or children of the caller's span); inside a call only with ``detailed=True``;
* ``agt.gate.<gate>``: each gate run, with ``detailed=True``.

A span costs about 10-20 µs with the SDK, more than most gates take: hence one span per call by default.
A denial or a held call is an outcome, not an error: its span keeps status unset and says what happened in its
attributes. A tool that raises sets status ERROR on ``agt.call`` with the exception recorded.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import TYPE_CHECKING, Any, Callable, Iterator

from agt.decision import Decision
from agt.errors import AgtError, ApprovalRequired, GovernanceDenied
from agt.runtime.observe import is_async

if TYPE_CHECKING:
    from agt.runtime.governor import Governor

SPAN_NAMES = {"call": "agt.call", "acall": "agt.call", "begin": "agt.begin", "abegin": "agt.begin",
              "finish": "agt.finish", "fail": "agt.fail", "abandon": "agt.abandon"}

_UNCLAIMED: contextvars.ContextVar[Any] = contextvars.ContextVar("agt_call_span", default=None)
"""The ``agt.call`` span whose ``begin`` has not run yet: that begin claims it, so a governed call the tool makes
inside it cannot."""
_OWNER: contextvars.ContextVar[tuple[Any, Any] | None] = contextvars.ContextVar("agt_phase_spans", default=None)
"""While a phase runs: its span and its call's span (or None), where decisions and approval events go."""


def _agent_id(agent: Any) -> str:
    return str(getattr(agent, "id", agent))


def _call_attributes(args: tuple, kwargs: dict) -> dict[str, str]:
    fn = args[0] if args else kwargs.get("fn")
    tool = kwargs.get("tool") or getattr(fn, "__name__", "") or "?"
    return {"agt.tool": str(tool), "agt.agent": _agent_id(kwargs.get("agent", "agent"))}


def _begin_attributes(args: tuple, kwargs: dict) -> dict[str, str]:
    tool = args[0] if args else kwargs.get("tool", "?")
    return {"agt.tool": str(tool), "agt.agent": _agent_id(kwargs.get("agent", "agent"))}


def _ticket_attributes(args: tuple, kwargs: dict) -> dict[str, str]:
    ticket = args[0] if args else kwargs.get("ticket")
    action = getattr(ticket, "action", None)
    if action is None:
        return {}
    return {"agt.tool": action.action.tool, "agt.agent": action.agent.id}


class GovernorTracing:
    """Spans for one Governor, from ``tracer_provider`` (the global one when None)."""

    def __init__(self, tracer_provider: Any = None, *, detailed: bool = False) -> None:
        try:
            from opentelemetry import trace
        except ImportError as exc:
            raise AgtError(f"tracing needs OpenTelemetry, which is not installed ({exc}): pip install 'agt[otel]'") from None
        from agt import __version__

        self._tracer = trace.get_tracer("agt", __version__, tracer_provider)
        self.detailed = detailed
        self._calls: dict[int, Any] = {}  # id(ticket) → the agt.call span its begin claimed, until finish/fail/abandon

    # --- the Observer protocol (agt.runtime.observe) -----------------------------------------------
    def bind(self, governor: "Governor") -> None:
        pass

    def wrap_gate(self, gate: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        if not self.detailed:
            return fn
        if is_async(fn):  # no gate is async today; refuse rather than span the creation of a coroutine
            raise TypeError(f"gate {gate} is async: agt.runtime.tracing cannot span it")
        name, tracer = f"agt.gate.{gate}", self._tracer

        @functools.wraps(fn)
        def traced(*args: Any, **kwargs: Any) -> Any:
            with tracer.start_as_current_span(name, record_exception=False, set_status_on_exception=False):
                return fn(*args, **kwargs)
        return traced

    def wrap_engine(self, engine: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn  # inside agt.gate.policy

    def wrap_wait(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn  # inside agt.gate.approval's caller, agt.begin; the approval events mark it

    def wrap_phase(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        name = SPAN_NAMES[phase]
        if phase in ("call", "acall"):
            return self._call_span(name, fn)
        attributes = _begin_attributes if phase in ("begin", "abegin") else _ticket_attributes
        claims = phase in ("begin", "abegin")
        scope, calls = self._scope, self._calls

        def enter(args: tuple, kwargs: dict) -> Any:
            """The agt.call span this phase belongs to, if any."""
            if claims:
                call_span = _UNCLAIMED.get()
                if call_span is not None:
                    _UNCLAIMED.set(None)
                return call_span
            ticket = args[0] if args else kwargs.get("ticket")
            return calls.pop(id(ticket), None)

        if is_async(fn):
            @functools.wraps(fn)
            async def traced_async(*args: Any, **kwargs: Any) -> Any:
                call_span = enter(args, kwargs)
                with scope(name, attributes(args, kwargs), _OWNER, call_span):
                    out = await fn(*args, **kwargs)
                if claims and call_span is not None:
                    calls[id(out)] = call_span
                return out
            return traced_async

        @functools.wraps(fn)
        def traced(*args: Any, **kwargs: Any) -> Any:
            call_span = enter(args, kwargs)
            with scope(name, attributes(args, kwargs), _OWNER, call_span):
                out = fn(*args, **kwargs)
            if claims and call_span is not None:
                calls[id(out)] = call_span
            return out
        return traced

    def decided(self, gate: str, decision: Decision, outcome: str) -> None:
        owner = _OWNER.get()
        if owner is None:
            return
        attributes = {"agt.gate": gate, "agt.engine": decision.engine, "agt.effect": decision.effect.value,
                      "agt.outcome": outcome, "agt.rule_ids": list(decision.rule_ids)}
        owner[0].add_event("agt.decision", attributes)
        for span in owner:
            if span is not None:
                span.set_attributes(attributes)

    def approval(self, event: str, request_id: str, deadline: float | None = None) -> None:
        self._event(event, request_id)

    def resolved(self, status: str, request_id: str) -> None:
        if status in ("approved", "denied", "expired"):
            self._event(status, request_id)

    # --- helpers -------------------------------------------------------------------------------------
    def _event(self, event: str, request_id: str) -> None:
        owner = _OWNER.get()
        if owner is not None:
            owner[0].add_event("agt.approval", {"agt.approval.event": event, "agt.approval.request_id": request_id})
            for span in owner:
                if span is not None:
                    span.set_attribute("agt.approval.request_id", request_id)

    @contextlib.contextmanager
    def _scope(self, name: str, attributes: dict[str, str], var: contextvars.ContextVar, call_span: Any) -> Iterator[Any]:
        """A span, current while the block runs, with ``var`` set for it: :data:`_OWNER` to (the span, its call's
        span) for a phase, :data:`_UNCLAIMED` to the span for a call. A denial or a held call ends it as it is; any
        other exception is recorded on it as an error."""
        if var is _OWNER and call_span is not None and not self.detailed:
            token = var.set((call_span, None))  # a phase inside a call: the call's span is its span
            try:
                yield call_span
            finally:
                var.reset(token)
            return
        with self._tracer.start_as_current_span(name, attributes=attributes, record_exception=False,
                                                set_status_on_exception=False) as span:
            token = var.set((span, call_span) if var is _OWNER else span)
            try:
                yield span
            except (GovernanceDenied, ApprovalRequired):
                raise
            except BaseException as exc:
                _failed(span, exc)
                raise
            finally:
                var.reset(token)

    def _call_span(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        scope = self._scope
        if is_async(fn):
            @functools.wraps(fn)
            async def traced_call_async(*args: Any, **kwargs: Any) -> Any:
                with scope(name, _call_attributes(args, kwargs), _UNCLAIMED, None):
                    return await fn(*args, **kwargs)
            return traced_call_async

        @functools.wraps(fn)
        def traced_call(*args: Any, **kwargs: Any) -> Any:
            with scope(name, _call_attributes(args, kwargs), _UNCLAIMED, None):
                return fn(*args, **kwargs)
        return traced_call


def _failed(span: Any, exc: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
