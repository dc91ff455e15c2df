"""Prometheus metrics of one Governor: decisions, gate and engine latency, the audit backlog, approvals, breakers.

``Governor(..., metrics=True)`` (or ``metrics=GovernorMetrics(registry=...)``) turns them on; without it nothing
here is imported, prometheus_client included. The metrics live in the GovernorMetrics' own
``CollectorRegistry``, never in prometheus_client's global one, so two Governors in one process never collide.
:func:`render` gives the text format for a ``/metrics`` endpoint, :func:`asgi_app` an ASGI app serving it.
Names, labels and example queries: docs/metrics.md.

Cost on the governed call. prometheus_client's own Counter and Histogram take a lock per increment (0.4 µs
for a counter, 0.7-1 µs for a histogram here), and a call makes about ten observations. So the counts are
kept per thread instead (:class:`_Tallies`): a thread only ever writes its own lists and dict, which needs no
lock, and the registry sums every thread's counts when it is collected (a scrape, :meth:`GovernorMetrics.value`).
A scrape therefore sees, exactly, every observation made before it. The label values of a decision are worked
out once per distinct decision shape and cached. The audit backlog, pending approvals and breaker states are
read live at collection time, never pushed per call.

Bounded labels. ``gate``, ``effect``, ``outcome`` and ``event`` come from fixed sets. ``rule`` is a rule id from
the policy (finite), or a runtime gate's rule with everything after its first ``:`` dropped
(``circuit-open:tool:<name>`` → ``circuit-open``, since agents choose tool names); past ``max_rules`` distinct
ids (an OPA server answering with ids of its own) the rest count as ``other``, and ``engine`` likewise past 16.
``agt_breaker_state`` shows at most ``max_breaker_series`` breakers, open and half-open ones first.
"""

from __future__ import annotations

import bisect
import functools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

from agt.decision import Decision
from agt.errors import AgtError
from agt.runtime.audit import sink_health
from agt.runtime.breaker import BreakerState
from agt.runtime.observe import APPROVAL_EVENTS, GATE_METHODS, is_async

if TYPE_CHECKING:
    from agt.runtime.governor import Governor

LATENCY_BUCKETS = (
    2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5,
)
"""Seconds: a yaml decision takes microseconds, an OPA round trip or a SQLite write milliseconds."""
WAIT_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
"""Seconds a blocking call waited for a human."""
BREAKER_STATES = {BreakerState.CLOSED: 0, BreakerState.OPEN: 1, BreakerState.HALF_OPEN: 2}
"""``agt_breaker_state``'s value for each state."""
OTHER = "other"
_CACHE_LIMIT = 4096
_log = logging.getLogger("agt.metrics")

DECISIONS, RULES, APPROVALS = "agt_decisions", "agt_decision_rules", "agt_approval_events"
GATE_SECONDS, ENGINE_SECONDS, WAIT_SECONDS = ("agt_gate_duration_seconds", "agt_engine_duration_seconds",
                                              "agt_approval_wait_seconds")
_HELP = {
    DECISIONS: "Decisions that admitted, refused or held a governed call.",
    RULES: "Rule ids among those decisions' reasons, one count per rule.",
    APPROVALS: "Approval requests opened, found approved, denied or expired by a call, and used up.",
    GATE_SECONDS: "Time one run of a gate took.",
    ENGINE_SECONDS: "Time one policy engine evaluation took.",
    WAIT_SECONDS: "Time a blocking call waited for its approval.",
}
_LABELS = {DECISIONS: ("gate", "engine", "effect", "outcome"), RULES: ("gate", "engine", "effect", "rule"),
           APPROVALS: ("event",)}


class _Bounded:
    """Label values from a set that ought to be finite: the first ``limit`` distinct ones, then :data:`OTHER`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
        return value


class _Tally:
    """One thread's counts: a row per histogram series (its bucket counts, the +Inf one included, then the sum
    of what it observed, last), and the counters by (metric, label values)."""

    __slots__ = ("rows", "counts")

    def __init__(self, sizes: list[int]) -> None:
        self.rows: list[list[float]] = [[0] * (n + 1) + [0.0] for n in sizes]
        self.counts: dict[int, int] = {}  # counter key id (GovernorMetrics._key_id) → count

    def add(self, other: "_Tally") -> None:
        for mine, theirs in zip(self.rows, other.rows, strict=True):
            for i, n in enumerate(theirs):
                mine[i] += n
        for key, n in other.counts.copy().items():  # dict.copy is atomic; the owner may be adding keys
            self.counts[key] = self.counts.get(key, 0) + n


class _Tallies:
    """Counts kept per thread, summed when read. The histogram series are fixed before the first count."""

    def __init__(self) -> None:
        self.series: list[tuple[str, tuple[str, ...], tuple[float, ...]]] = []  # (metric, label values, bounds)
        self.local = threading.local()
        self._lock = threading.Lock()
        self._threads: list[tuple[threading.Thread, _Tally]] = []
        self._finished: _Tally | None = None  # counts of threads that ended, folded in when read

    def add_series(self, metric: str, labels: tuple[str, ...], bounds: tuple[float, ...]) -> int:
        if self._finished is not None or self._threads:
            raise RuntimeError("histogram series are fixed once counting started")
        self.series.append((metric, labels, bounds))
        return len(self.series) - 1

    def mine(self) -> _Tally:
        tally = getattr(self.local, "tally", None)
        if tally is None:
            tally = self.local.tally = _Tally([len(b) for _, _, b in self.series])
            with self._lock:
                if len(self._threads) >= 64:
                    self._fold_finished()  # a thread per request, never scraped: keep the list short anyway
                self._threads.append((threading.current_thread(), tally))
        return tally

    def total(self) -> _Tally:
        out = _Tally([len(b) for _, _, b in self.series])
        with self._lock:
            self._fold_finished()
            if self._finished is not None:
                out.add(self._finished)
            for _, tally in self._threads:
                out.add(tally)
        return out

    def _fold_finished(self) -> None:
        """Move the counts of threads that ended into one tally for good (they can write no more); lock held."""
        alive = []
        for thread, tally in self._threads:
            if thread.is_alive():
                alive.append((thread, tally))
            else:
                self._finished = self._finished or _Tally([len(b) for _, _, b in self.series])
                self._finished.add(tally)
        self._threads = alive


class GovernorMetrics:
    """The metrics of one Governor, in ``registry`` (a new ``CollectorRegistry`` unless one is given; a
    registry holds the metrics of one Governor, since their names are fixed)."""

    def __init__(self, registry: Any = None, *, max_rules: int = 1000, max_breaker_series: int = 1000) -> None:
        try:
            from prometheus_client import CollectorRegistry
        except ImportError as exc:  # a dependency of agt itself, so only a broken install lands here
            raise AgtError(f"metrics need prometheus-client ({exc}): pip install prometheus-client") from exc
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_breaker_series = max_breaker_series
        self._tallies = _Tallies()
        self._gate_series = {gate: self._tallies.add_series(GATE_SECONDS, (gate,), LATENCY_BUCKETS)
                             for gate in GATE_METHODS.values()}
        self._wait_series = self._tallies.add_series(WAIT_SECONDS, (), WAIT_BUCKETS)
        # Counter keys (metric, label values...) are numbered once: a thread then counts by a small int, whose hash
        # is itself, not by a tuple of five strings hashed on every call.
        self._key_ids: dict[tuple, int] = {}
        self._key_names: list[tuple] = []
        self._key_lock = threading.Lock()
        self._keys: dict[tuple, tuple[int, ...]] = {}  # a decision's shape → the counter key ids it adds one to
        self._seen: dict[tuple[int, str, str], tuple[Decision, tuple[int, ...]]] = {}  # the same, by Decision object
        self._rule_label = _Bounded(max_rules)
        self._engine_label = _Bounded(16)
        self._approval_ids = {event: self._key_id((APPROVALS, event)) for event in APPROVAL_EVENTS}
        self._open: dict[str, float] = {}  # approval requests this Governor opened, awaiting a vote or their use → deadline
        self._governor: Governor | None = None
        try:
            self.registry.register(_Collector(self))
        except ValueError as exc:
            raise ValueError(f"this registry already holds agt's metrics ({exc}): give each Governor a registry "
                             "of its own") from None

    # --- the Observer protocol (agt.runtime.observe) -----------------------------------------------
    def bind(self, governor: "Governor") -> None:
        if self._governor is not None:
            raise ValueError("these GovernorMetrics already belong to a Governor: build one per Governor")
        self._governor = governor

    def wrap_gate(self, gate: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._timed(self._gate_series[gate], fn)

    def wrap_engine(self, engine: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._timed(self._tallies.add_series(ENGINE_SECONDS, (self._engine_label(engine),), LATENCY_BUCKETS), fn)

    def wrap_wait(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._timed(self._wait_series, fn)

    def wrap_phase(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn  # outcomes arrive through decided()

    def decided(self, gate: str, decision: Decision, outcome: str) -> None:
        # Engines hand out the same Decision object for the same matches (the yaml engine memoizes them), so
        # the object itself is the first key; the entry holds it, so its id cannot be reused while cached.
        ident = (id(decision), gate, outcome)
        seen = self._seen.get(ident)
        if seen is not None and seen[0] is decision:
            keys = seen[1]
        else:
            keys = self._counter_keys(gate, decision, outcome)
            if len(self._seen) >= _CACHE_LIMIT:
                self._seen.clear()
            self._seen[ident] = (decision, keys)
        try:
            counts = self._tallies.local.tally.counts
        except AttributeError:  # this thread's first count
            counts = self._tallies.mine().counts
        for key in keys:
            counts[key] = counts.get(key, 0) + 1

    def approval(self, event: str, request_id: str, deadline: float | None = None) -> None:
        """``opened`` (with the request's deadline) or ``consumed``."""
        if event == "opened" and deadline is not None:
            self._open[request_id] = deadline
        elif event == "consumed":
            self._open.pop(request_id, None)
        self._count_approval(event)

    def resolved(self, status: str, request_id: str) -> None:
        """A call found its request ``approved``, ``denied`` or ``expired`` (pending and consumed count elsewhere)."""
        if status in ("denied", "expired"):
            self._open.pop(request_id, None)
        elif status != "approved":
            return
        self._count_approval(status)

    # --- reading -------------------------------------------------------------------------------------
    def value(self, name: str, **labels: str) -> float | None:
        """One sample as a scrape would show it now: ``value("agt_decisions_total", gate="policy", ...)``."""
        return self.registry.get_sample_value(name, labels)

    def pending_approvals(self) -> int:
        now = time.time()
        for rid, deadline in list(self._open.items()):
            if deadline <= now:
                self._open.pop(rid, None)
        return len(self._open)

    # --- helpers -------------------------------------------------------------------------------------
    def _count_approval(self, event: str) -> None:
        counts = self._tallies.mine().counts
        key = self._approval_ids[event]
        counts[key] = counts.get(key, 0) + 1

    def _key_id(self, key: tuple) -> int:
        found = self._key_ids.get(key)
        if found is None:
            with self._key_lock:
                found = self._key_ids.get(key)
                if found is None:
                    found = self._key_ids[key] = len(self._key_names)
                    self._key_names.append(key)
        return found

    def _timed(self, series: int, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, timed into histogram ``series``. bisect_left puts a time equal to a bound in that bound's bucket, as
        ``le`` says. The normal return records inline, without try/finally (measurably cheaper on the hot path);
        a raise records through :func:`record` and goes on."""
        tallies, clock, where = self._tallies, time.perf_counter, bisect.bisect_left
        local, bounds = tallies.local, tallies.series[series][2]

        def record(seconds: float) -> None:
            row = tallies.mine().rows[series]
            row[where(bounds, seconds)] += 1
            row[-1] += seconds

        if is_async(fn):
            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                t0 = clock()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    record(clock() - t0)
            return timed_async

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                out = fn(*args, **kwargs)
            except BaseException:
                record(clock() - t0)
                raise
            seconds = clock() - t0
            try:
                row = local.tally.rows[series]
            except AttributeError:  # this thread's first count
                row = tallies.mine().rows[series]
            row[where(bounds, seconds)] += 1
            row[-1] += seconds
            return out
        return timed

    def _counter_keys(self, gate: str, decision: Decision, outcome: str) -> tuple[int, ...]:
        """The counter keys (metric, label values) a decision of this shape adds one to, worked out once, by id.
        There are at most as many as bounded label values allow, so the numbering stays small."""
        shape = (gate, decision.engine, decision.effect, outcome, decision.rule_ids)
        found = self._keys.get(shape)
        if found is not None:
            return found
        _, engine, effect, _, rule_ids = shape
        engine_label, effect_label = self._engine_label(engine or OTHER), effect.value
        keys = [(DECISIONS, gate, engine_label, effect_label, outcome)]
        for rule in rule_ids:
            label = rule.partition(":")[0] if engine == "runtime" else self._rule_label(rule)
            keys.append((RULES, gate, engine_label, effect_label, label))
        if len(self._keys) >= _CACHE_LIMIT:
            self._keys.clear()  # shapes hold raw rule ids (runtime ones name agents and tools): rebuilt on demand
        self._keys[shape] = out = tuple(self._key_id(k) for k in keys)
        return out

    def families(self) -> Iterator[Any]:
        """Every metric family as collected now (what a scrape shows)."""
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        total = self._tallies.total()
        counters = {name: CounterMetricFamily(name, _HELP[name], labels=_LABELS[name]) for name in _LABELS}
        for key_id in self._approval_ids.values():
            total.counts.setdefault(key_id, 0)  # every approval event is exported from the start, at 0
        names = self._key_names
        for key, n in sorted((names[i], n) for i, n in total.counts.items()):
            counters[key[0]].add_metric(key[1:], n)
        yield from counters.values()
        histograms: dict[str, Any] = {}
        for i, (name, labels, bounds) in enumerate(self._tallies.series):
            if name not in histograms:
                histograms[name] = HistogramMetricFamily(name, _HELP[name], labels=("gate",) if name == GATE_SECONDS
                                                         else ("engine",) if name == ENGINE_SECONDS else None)
            cumulative, running = [], 0
            row = total.rows[i]
            for bound, n in zip((*map(_le, bounds), "+Inf"), row[:-1], strict=True):
                running += n
                cumulative.append((bound, running))
            histograms[name].add_metric(labels, cumulative, sum_value=row[-1])
        yield from histograms.values()
        yield from self._live()

    def _live(self) -> Iterator[Any]:
        """The gauges read at collection time from the Governor's audit sink, approvals and breakers."""
        from prometheus_client.core import GaugeMetricFamily

        gov = self._governor
        if gov is None:
            return
        backlog = getattr(gov.audit, "backlog", None)
        if callable(backlog):
            try:
                depth, lag = backlog()
            except Exception as exc:  # noqa: BLE001 - a scrape reports what it can; the audit gate denies on its own
                _log.warning("audit backlog unreadable: %s: %s", type(exc).__name__, exc)
            else:
                yield GaugeMetricFamily("agt_audit_queue_depth", "Audit records queued for the batch writer.", value=depth)
                yield GaugeMetricFamily("agt_audit_writer_lag_seconds",
                                        "How long the oldest queued audit record has waited.", value=lag)
        yield GaugeMetricFamily("agt_audit_up", "1 while the audit sink can record; 0 while calls are denied "
                                "because it cannot.", value=0 if sink_health(gov.audit) else 1)
        yield GaugeMetricFamily("agt_approvals_pending", "Approval requests this Governor opened that await a "
                                "vote or their call, before their deadline.", value=self.pending_approvals())
        states = GaugeMetricFamily("agt_breaker_state", "Circuit breaker per key: 0 closed, 1 open, 2 half-open.",
                                   labels=("key",))
        counts = GaugeMetricFamily("agt_breakers", "Circuit breakers by state.", labels=("state",))
        read = [(key, b.state) for key, b in gov.breakers.snapshot()]
        read.sort(key=lambda kv: (kv[1] is BreakerState.CLOSED, kv[0]))
        for key, state in read[: self.max_breaker_series]:
            states.add_metric((key,), BREAKER_STATES[state])
        for state in BreakerState:
            counts.add_metric((state.value,), sum(1 for _, s in read if s is state))
        yield states
        yield counts


def _le(bound: float) -> str:
    from prometheus_client.utils import floatToGoString

    return floatToGoString(bound)


class _Collector:
    """What the registry holds: the GovernorMetrics' families, collected when the registry is."""

    def __init__(self, metrics: GovernorMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        names = [*_LABELS, GATE_SECONDS, ENGINE_SECONDS, WAIT_SECONDS, "agt_audit_queue_depth",
                 "agt_audit_writer_lag_seconds", "agt_audit_up", "agt_approvals_pending", "agt_breaker_state", "agt_breakers"]
        return [GaugeMetricFamily(name, "") for name in names]  # names only: the registry checks them for clashes

    def collect(self) -> Iterator[Any]:
        return self._metrics.families()


def _metrics_of(source: "Governor | GovernorMetrics") -> GovernorMetrics:
    if isinstance(source, GovernorMetrics):
        return source
    metrics = getattr(source, "metrics", None)
    if not isinstance(metrics, GovernorMetrics):
        raise ValueError("this Governor has no metrics: build it with Governor(..., metrics=True)")
    return metrics


def render(source: "Governor | GovernorMetrics") -> tuple[bytes, str]:
    """The Prometheus text format of ``source``'s registry, and its content type (for a ``/metrics`` response)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(_metrics_of(source).registry), CONTENT_TYPE_LATEST


def asgi_app(source: "Governor | GovernorMetrics") -> Any:
    """An ASGI app serving ``source``'s metrics (prometheus_client's, so it negotiates OpenMetrics and gzip)."""
    from prometheus_client import make_asgi_app

    return make_asgi_app(_metrics_of(source).registry)
