"""Where metrics and traces attach to a Governor: its gates, its engine call, and its public phases.

:func:`instrument` replaces a few bound methods on *one* Governor instance with wrapped ones: the gate
methods (timed per gate), the engine call, the approval wait, and the public phases (``call``, ``begin``,
``finish``, ...) where each call's fate is known. The class is never touched, so a Governor built without
metrics or tracing runs exactly the code it ran before, at exactly its cost. The one fact not visible from
outside a method, an approval's life (opened, found approved, denied or expired, used up), is reported by
one-line hooks in the Governor (``self._observer.approval(...)`` and ``.resolved(...)``).

The wrapped names are listed here once, and :func:`instrument` refuses a Governor that lacks one: a gate
renamed in governor.py fails every metrics test loudly instead of silently dropping out of the figures.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Protocol

from agt.decision import Decision
from agt.errors import ApprovalRequired, GovernanceDenied

if TYPE_CHECKING:
    from agt.runtime.governor import Governor

IDENTITY_GATE = "identity"
"""The signed-envelope check: part of the trust gate in denials, timed on its own (signatures are slow)."""

GATE_METHODS: dict[str, str] = {
    "_identity_gate": IDENTITY_GATE,
    "_trust_gate": "trust",
    "_rate_gate": "rate",
    "decide": "policy",
    "_approval": "approval",
    "_reliability_gate": "reliability",
    "_check_output": "output",
    "_audit_decision": "audit",
}
"""Governor method → the gate it is. Each run of one is one observation of that gate. The audit gate is timed
where it costs: writing one decision record (its health check before the call is a lookup)."""
ENGINE_METHOD = "_decide_one"
"""One evaluation by the policy engine (a call naming several files is decided once per file)."""
WAIT_METHODS = ("_wait", "_await")
"""A blocking wait for an approval: seconds to hours, so timed apart from the gates."""
PHASES = ("call", "acall", "begin", "abegin", "finish", "fail", "abandon")
"""The public surface every governed call goes through; ``call`` runs ``begin`` then ``finish`` or ``fail``."""

ADMITTED, DENIED, HELD = "admitted", "denied", "held"
"""A decision's outcome: the tool may run; the call is refused; the call waits for an approval (non-blocking)."""
APPROVAL_EVENTS = ("opened", "approved", "denied", "expired", "consumed")


class Observer(Protocol):
    """What :func:`instrument` reports to: agt.runtime.metrics.GovernorMetrics, agt.runtime.tracing.GovernorTracing."""

    def bind(self, governor: "Governor") -> None: ...
    def wrap_gate(self, gate: str, fn: Callable[..., Any]) -> Callable[..., Any]: ...
    def wrap_engine(self, engine: str, fn: Callable[..., Any]) -> Callable[..., Any]: ...
    def wrap_wait(self, fn: Callable[..., Any]) -> Callable[..., Any]: ...
    def wrap_phase(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]: ...
    def decided(self, gate: str, decision: Decision, outcome: str) -> None: ...
    def approval(self, event: str, request_id: str, deadline: float | None = None) -> None: ...
    def resolved(self, status: str, request_id: str) -> None: ...


class _Both:
    """Metrics and tracing together: the Governor's one ``_observer`` reports to each."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def decided(self, gate: str, decision: Decision, outcome: str) -> None:
        for o in self.observers:
            o.decided(gate, decision, outcome)

    def approval(self, event: str, request_id: str, deadline: float | None = None) -> None:
        for o in self.observers:
            o.approval(event, request_id, deadline)

    def resolved(self, status: str, request_id: str) -> None:
        for o in self.observers:
            o.resolved(status, request_id)


def attach(governor: "Governor", metrics: Any, tracing: Any) -> tuple[Any, Observer | _Both]:
    """What ``Governor(metrics=..., tracing=...)`` does: build the observers asked for and instrument the
    Governor. ``metrics`` is True or a GovernorMetrics; ``tracing`` True (the global tracer provider), a
    TracerProvider, or a GovernorTracing. Returns the GovernorMetrics (or None) and the observer."""
    observers: list[Observer] = []
    built_metrics = None
    if metrics:
        from agt.runtime.metrics import GovernorMetrics

        if metrics is not True and not isinstance(metrics, GovernorMetrics):
            raise TypeError(f"metrics= takes True or a GovernorMetrics (GovernorMetrics(registry=...) for a registry "
                            f"of your own), not {type(metrics).__name__}")
        built_metrics = metrics if isinstance(metrics, GovernorMetrics) else GovernorMetrics()
        observers.append(built_metrics)
    if tracing:
        from agt.runtime.tracing import GovernorTracing

        if tracing is not True and not isinstance(tracing, GovernorTracing) and not hasattr(tracing, "get_tracer"):
            raise TypeError(f"tracing= takes True, a TracerProvider or a GovernorTracing, not {type(tracing).__name__}")
        observers.append(tracing if isinstance(tracing, GovernorTracing)
                         else GovernorTracing(None if tracing is True else tracing))
    return built_metrics, instrument(governor, *observers)


def instrument(governor: "Governor", *observers: Observer) -> Observer | _Both:
    """Wrap ``governor``'s gates, engine call, approval wait and phases for ``observers`` (in order, the last
    outermost); returns what the Governor keeps as ``_observer``."""
    names = [*GATE_METHODS, ENGINE_METHOD, *WAIT_METHODS, *PHASES]
    missing = [n for n in names if not callable(getattr(governor, n, None))]
    if missing:
        raise TypeError(f"cannot instrument {type(governor).__name__}: it has no {', '.join(missing)} "
                        "(agt/runtime/observe.py lists the Governor methods metrics and traces attach to)")
    if not hasattr(governor, "__dict__"):
        raise TypeError(f"cannot instrument {type(governor).__name__}: its instances have no __dict__ (__slots__) "
                        "to hold the wrapped methods")
    target = observers[0] if len(observers) == 1 else _Both(*observers)
    engine = str(getattr(governor.engine, "name", "") or "engine")
    idle = _idle_gates(governor)
    gates = {n: g for n, g in GATE_METHODS.items() if n not in idle}
    for o in observers:
        o.bind(governor)
        for name, gate in gates.items():
            setattr(governor, name, o.wrap_gate(gate, getattr(governor, name)))
        setattr(governor, ENGINE_METHOD, o.wrap_engine(engine, getattr(governor, ENGINE_METHOD)))
        for name in WAIT_METHODS:
            setattr(governor, name, o.wrap_wait(getattr(governor, name)))
    # The outcome wrappers sit inside the observers' phase wrappers, so a span is current when its outcome arrives.
    for name in PHASES:
        fn = _outcomes(name, getattr(governor, name), target)
        for o in observers:
            fn = o.wrap_phase(name, fn)
        setattr(governor, name, fn)
    return target


def _idle_gates(governor: "Governor") -> set[str]:
    """Gates this Governor's configuration leaves with nothing to do, left untimed (a clock costs more than they
    do): the identity gate without a verifier only checks that no envelope came; the rate gate without limits
    loops over none."""
    idle = set()
    if governor.identity is None:
        idle.add("_identity_gate")
    if not governor.rate_limits:
        idle.add("_rate_gate")
    return idle


def _outcomes(phase: str, fn: Callable[..., Any], observer: Observer | _Both) -> Callable[..., Any]:
    """Report each decision that admitted, refused or held a call, once, where the phase that made it returns."""
    if phase in ("call", "acall"):
        return fn  # call runs begin and finish, which report
    if phase == "begin":
        def begin(*args: Any, **kwargs: Any) -> Any:
            try:
                ticket = fn(*args, **kwargs)
            except (GovernanceDenied, ApprovalRequired) as exc:
                _refused(observer, exc)
                raise
            _admitted(observer, ticket)
            return ticket
        return begin
    if phase == "abegin":
        async def abegin(*args: Any, **kwargs: Any) -> Any:
            try:
                ticket = await fn(*args, **kwargs)
            except (GovernanceDenied, ApprovalRequired) as exc:
                _refused(observer, exc)
                raise
            _admitted(observer, ticket)
            return ticket
        return abegin
    if phase == "finish":
        def finish(ticket: Any, result: Any) -> Any:
            before = len(getattr(ticket, "warnings", ()))
            try:
                out = fn(ticket, result)
            except GovernanceDenied as exc:
                _refused(observer, exc)
                raise
            if len(ticket.warnings) > before:  # an output check the mode let through
                for gate, warned in ticket.warnings[before:]:
                    observer.decided(gate, warned, ADMITTED)
            return out
        return finish
    return fn  # fail and abandon decide nothing new


def _refused(observer: Observer | _Both, exc: GovernanceDenied | ApprovalRequired) -> None:
    if isinstance(exc, GovernanceDenied):
        observer.decided(exc.gate, exc.decision, DENIED)  # type: ignore[arg-type]
    else:
        observer.decided("approval", exc.decision, HELD)  # type: ignore[arg-type]


def _admitted(observer: Observer | _Both, ticket: Any) -> None:
    """Gates the mode let through first, then the policy decision that admitted the call (last, so a span's
    attributes end on it)."""
    if ticket.warnings:
        for gate, warned in ticket.warnings:
            observer.decided(gate, warned, ADMITTED)
    observer.decided("policy", ticket.decision, ADMITTED)


def is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn)
