"""What metrics and traces add to a governed call (yaml engine, starter policy, memory store, audit in memory).

The same call on Governors built alike but for ``metrics=`` / ``tracing=``, interleaved call by call so load on the
machine hits each alike. The overhead rows print the median of the paired differences (each call on, minus the call
off beside it; issue 15: a few µs at most), and one scrape of the text format.
"""

from __future__ import annotations

import gc
import statistics
import time
from pathlib import Path
from typing import Callable

import agt
from agt.runtime import Governor
from bench.stats import Figures, measure, percentile

ROOT = Path(__file__).resolve().parents[1]
METRICS_OVERHEAD_US = 5.0  # issue 15: "on must cost a few µs at most"
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
    samples = 3_000 if quick else 20_000
    variants = {"off": _governor(), "metrics": _governor(metrics=True)}
    try:
        provider = _tracer_provider()
    except ImportError:
        provider = None  # the otel extra is not installed: no span rows
    else:
        variants["tracing"] = _governor(tracing=provider)
    progress("metrics: governed call, metrics and tracing off / on, interleaved call by call")
    times = _interleaved(variants, samples)
    labels = {"off": "metrics: governed call, metrics and tracing off",
              "metrics": "metrics: governed call, metrics=True",
              "tracing": "metrics: governed call, tracing=True (SDK, batch export to memory)"}
    figures = [_figures(labels[name], ts) for name, ts in times.items()]
    for name, what in (("metrics", "metrics"), ("tracing", "tracing (one span per call)")):
        if name not in times:
            continue
        paired = statistics.median(b - a for a, b in zip(times["off"], times[name], strict=True))
        EXTRA[f"{name}_overhead_p50_us"] = paired
        target = f" (target: a few µs, ≤ {METRICS_OVERHEAD_US:g} µs)" if name == "metrics" else ""
        figures.append(_note(f"{what} on − off, median of paired calls: {paired:+.1f} µs{target}"))
    from agt.runtime.metrics import render

    figures.append(measure("metrics: one scrape of the text format (render)", lambda: render(variants["metrics"]),
                           200 if quick else 1_000, warmup=20))
    for gov in variants.values():
        gov.close()
    if provider is not None:
        provider.shutdown()
    return figures


def _interleaved(variants: dict[str, Governor], samples: int, warmup: int = 500) -> dict[str, list[float]]:
    """The same call on each Governor in turn, ``samples`` times, so load on a shared machine hits each alike; the
    order rotates so none always runs first. µs per call; GC paused while sampling, as bench.stats.measure does."""
    clock = time.perf_counter_ns
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(warmup + samples):
            task = f"bench-{i // 15}"  # a new task every 15 calls, so the 20-call budget never trips
            for k in range(len(names)):
                name = names[(i + k) % len(names)]
                gov = variants[name]
                t0 = clock()
                gov.call(read_file, ("/ws/alice/README.md",), tool="read_file", agent="alice", session=task)
                if i >= warmup:
                    times[name].append((clock() - t0) / 1000)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def _figures(name: str, times: list[float]) -> Figures:
    ordered = sorted(times)
    total_s = sum(times) / 1e6
    return Figures(name, len(times), percentile(ordered, 0.5), percentile(ordered, 0.99), sum(times) / len(times),
                   len(times) / total_s)


def _note(name: str) -> Figures:
    nan = float("nan")
    return Figures(name, 0, nan, nan, nan, nan)
