"""Where metrics and traces attach to a Governor: its gates, its engine call, its approval wait and its phases.

:func:`instrument` replaces a few bound methods on *one* Governor instance with wrapped ones: the gate methods
(timed per gate), the engine call, the approval wait, and, for tracing's spans, the public phases (``call``,
``begin``, ``finish``, ...). The class is never touched, so a Governor built without metrics or tracing runs
exactly the code it ran before. What happens inside the pipeline is reported by one-line hooks in the Governor
(``if self._observer is not None: ...``): ``decided`` where a decision's audit record is written (and where a
call is refused or held without one: an invalid action, an audit log that cannot record, a non-blocking approval),
``approval`` and ``resolved`` for an approval's life (opened, found approved, denied or expired, used up).

The wrapped names are listed here once, and :func:`instrument` refuses a Governor that lacks one: a gate
renamed in governor.py fails every metrics test loudly instead of silently dropping out of the figures.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Protocol

from agt.decision import Decision

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
"""The public surface every governed call goes through (``call`` runs ``begin`` then ``finish`` or ``fail``): tracing's spans."""

ADMITTED, DENIED, HELD = "admitted", "denied", "held"
"""A decision's outcome: the call was let through (its tool ran, or may); refused; waiting for an approval (non-blocking)."""
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
            method = getattr(governor, name)
            wrapped = o.wrap_gate(gate, method)
            if wrapped is not method:
                setattr(governor, name, wrapped)
        setattr(governor, ENGINE_METHOD, o.wrap_engine(engine, getattr(governor, ENGINE_METHOD)))
        for name in WAIT_METHODS:
            setattr(governor, name, o.wrap_wait(getattr(governor, name)))
    for name in PHASES:
        fn = original = getattr(governor, name)
        for o in observers:
            fn = o.wrap_phase(name, fn)
        if fn is not original:  # only tracing wraps the phases (its spans); metrics leave them as they are
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


def is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn)
