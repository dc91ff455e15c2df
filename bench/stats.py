"""Latency sampling and percentiles shared by every benchmark."""

from __future__ import annotations

import gc
import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Figures:
    name: str
    samples: int
    p50_us: float
    p99_us: float
    mean_us: float
    per_second: float
    reference_us: float = float("nan")
    """The machine-speed reference measured beside this figure, NaN when none was: in bursts between its samples
    (``measure(with_reference=True)``), or taken before and after each round of a wall time. This VM's speed moves
    within seconds, so the reference a run prints first can be far from the one that held while a figure was taken."""

    def row(self) -> list[str]:
        p99 = "-" if self.p99_us != self.p99_us else f"{self.p99_us:,.1f}"  # NaN: not a latency figure
        reference = "-" if self.reference_us != self.reference_us else f"{self.reference_us:.2f}"
        return [self.name, f"{self.p50_us:,.1f}", p99, f"{self.mean_us:,.1f}", f"{self.per_second:,.0f}", str(self.samples),
                reference]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


REFERENCE_EVERY, REFERENCE_BURST = 1_000, 500


def measure(name: str, fn: Callable[[], object], samples: int, warmup: int = 200, *,
            with_reference: bool = False) -> Figures:
    """Time ``fn`` once per sample. GC is paused while sampling so figures show the code, not the collector.

    ``with_reference``: time a burst of machine-speed references (``sum(range(100))``, :data:`REFERENCE_BURST` of them)
    before every :data:`REFERENCE_EVERY` samples, so the two see the machine in the same state (this VM's speed can halve
    and recover within seconds); their p50 is ``reference_us``. Bursts, not one reference per sample: a lone
    ``sum(range(100))`` after a large call runs cold and reads slower than the reference the run prints first."""
    for _ in range(warmup):
        fn()
    clock = time.perf_counter_ns
    times: list[float] = []
    references: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        for i in range(samples):
            if with_reference and i % REFERENCE_EVERY == 0:
                for _ in range(REFERENCE_BURST):
                    t0 = clock()
                    sum(range(100))
                    references.append((clock() - t0) / 1000)
            t0 = clock()
            fn()
            times.append((clock() - t0) / 1000)
        total_s = (clock() - start) / 1e9 - sum(references) / 1e6
    finally:
        if gc_was_enabled:
            gc.enable()
    times.sort()
    references.sort()
    return Figures(name, samples, percentile(times, 0.50), percentile(times, 0.99), sum(times) / len(times), samples / total_s,
                   percentile(references, 0.50))


ROUNDS = 3
"""How many times a target figure is measured: it is the median round, as issue 14 measured its figures (the median
p50 of three repetitions), so one slow stretch of a busy VM moves one round, not the figure."""


def median_of(rounds: list[Figures], name: str) -> Figures:
    """The round with the median p50, beside the medians of the rounds' p99, mean, rate and reference; samples summed."""
    mid = sorted(rounds, key=lambda f: f.p50_us)[len(rounds) // 2]
    return Figures(name, sum(f.samples for f in rounds), mid.p50_us, statistics.median(f.p99_us for f in rounds),
                   statistics.median(f.mean_us for f in rounds), statistics.median(f.per_second for f in rounds),
                   statistics.median(f.reference_us for f in rounds))


def measure_rounds(name: str, fn: Callable[[], object], samples: int, rounds: int = ROUNDS) -> Figures:
    """:func:`measure` ``rounds`` times (``samples`` each, with reference bursts between them), reported by
    :func:`median_of`."""
    return median_of([measure(name, fn, samples, with_reference=True) for _ in range(rounds)], name)


def reference_us() -> float:
    """A short machine-speed reference (:func:`machine_reference_us`, 5,000 samples) to take beside a figure that
    cannot be interleaved with one (a wall time)."""
    return machine_reference_us(5_000)


def measure_batch(name: str, fn: Callable[[], object], batch_size: int, rounds: int) -> Figures:
    """Time ``rounds`` calls that each decide ``batch_size`` actions; report per-decision figures."""
    fn()
    per_decision: list[float] = []
    start = time.perf_counter_ns()
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        fn()
        per_decision.append((time.perf_counter_ns() - t0) / 1000 / batch_size)
    total_s = (time.perf_counter_ns() - start) / 1e9
    per_decision.sort()
    return Figures(
        name, rounds * batch_size, percentile(per_decision, 0.5), percentile(per_decision, 0.99),
        sum(per_decision) / len(per_decision), rounds * batch_size / total_s,
    )


def machine_reference_us(samples: int = 20_000) -> float:
    """The machine-speed reference every run prints first: ``sum(range(100))``, p50 in µs (about 1.0 when issue 14
    was measured), so figures from different machines or loads can be read against each other."""
    return measure("sum(range(100))", lambda: sum(range(100)), samples).p50_us


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU seconds process ``pid`` has used, all its threads (Linux ``/proc/<pid>/stat``); NaN when
    there is no such process or no ``/proc`` to read it from. For a process agt starts (OPA), whose CPU
    ``time.process_time`` does not count."""
    if pid is None:
        return float("nan")
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return float("nan")
    # The command name (field 2) is in parentheses and may hold spaces: split after its closing one.
    fields = stat[stat.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
