"""What metrics and traces add to a governed call (yaml engine, starter policy, memory store, audit in memory).

The same call on Governors built alike but for ``metrics=`` / ``tracing=``, measured in interleaved rounds so
load on the machine hits each alike; each figure is the median round's p50/p99. The overhead rows print
metrics on − metrics off (issue 15: a few µs at most) and the same for spans, and one scrape of the text format.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable

import agt
from agt.runtime import Governor
from bench.stats import Figures, measure

ROOT = Path(__file__).resolve().parents[1]
METRICS_OVERHEAD_US = 3.0  # issue 15: "on must cost a few µs at most"
EXTRA: dict[str, float] = {}


def _governor(**options) -> Governor:
    gov = Governor("yaml", str(ROOT / "policies" / "starter.yaml"), **options)
    gov.register_agent(agt.Agent("alice", roles=("developer",), trust_score=720, attributes={"workspace": "/ws/alice"}))
    return gov


def _tracer_provider():
    """An SDK provider exporting to memory in batches (what a deployment's BatchSpanProcessor does, minus the wire)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=1 << 16))
    return provider


def read_file(path: str) -> str:
    return "ok"


def run(quick: bool = False, progress: Callable[[str], None] = print) -> list[Figures]:
    samples, rounds = (2_000, 3) if quick else (10_000, 5)
    variants = {"off": _governor(), "metrics": _governor(metrics=True)}
    try:
        provider = _tracer_provider()
    except ImportError:
        provider = None  # the otel extra is not installed: no span rows
    else:
        variants["tracing"] = _governor(tracing=provider)
    counter = [0]
    results: dict[str, list[Figures]] = {name: [] for name in variants}
    for r in range(rounds):
        for name, gov in variants.items():
            progress(f"metrics: governed call, {name}, round {r + 1}/{rounds}")

            def one(gov: Governor = gov) -> None:
                counter[0] += 1  # a new task every 15 calls, so the 20-call budget never trips
                gov.call(read_file, ("/ws/alice/README.md",), tool="read_file", agent="alice",
                         session=f"bench-{counter[0] // 15}")

            results[name].append(measure(name, one, samples))
    labels = {"off": "metrics: governed call, metrics and tracing off",
              "metrics": "metrics: governed call, metrics=True",
              "tracing": "metrics: governed call, tracing=True (SDK, batch export to memory)"}
    figures = [_median(labels[name], rows) for name, rows in results.items()]
    off = figures[0]
    on = figures[1]
    EXTRA["metrics_overhead_p50_us"] = on.p50_us - off.p50_us
    figures.append(_note(f"metrics on − off: {on.p50_us - off.p50_us:+.1f} µs p50, {on.p99_us - off.p99_us:+.1f} µs p99 "
                         f"(target ≤ {METRICS_OVERHEAD_US:g} µs p50)"))
    if "tracing" in results:
        traced = figures[2]
        EXTRA["tracing_overhead_p50_us"] = traced.p50_us - off.p50_us
        figures.append(_note(f"tracing on − off: {traced.p50_us - off.p50_us:+.1f} µs p50 (one span per call)"))
    from agt.runtime.metrics import render

    figures.append(measure("metrics: one scrape of the text format (render)", lambda: render(variants["metrics"]),
                           200 if quick else 1_000, warmup=20))
    for gov in variants.values():
        gov.close()
    if provider is not None:
        provider.shutdown()
    return figures


def _median(name: str, rows: list[Figures]) -> Figures:
    """The round whose p50 is the median; its other figures with it."""
    ordered = sorted(rows, key=lambda f: f.p50_us)
    mid = ordered[len(ordered) // 2]
    return Figures(name, sum(f.samples for f in rows), mid.p50_us, mid.p99_us, mid.mean_us,
                   statistics.median(f.per_second for f in rows))


def _note(name: str) -> Figures:
    nan = float("nan")
    return Figures(name, 0, nan, nan, nan, nan)
