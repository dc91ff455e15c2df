"""Print benchmark figures: p50/p99 latency and throughput per engine and policy size.

    python -m bench [--quick] [--json] [--only SECTION]    (--help lists the sections: SECTIONS below)

The last thing printed is the issue-14 summary (bench/summary.py): every target, measured figure, ✓/✗.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

import tempfile
from pathlib import Path

from bench import audit, bundles, core, facts, metrics, opa, redis, runtime, serve, summary, throughput
from bench.stats import machine_reference_us


SECTIONS = ("core", "facts", "runtime", "metrics", "audit", "opa", "bundles", "serve", "throughput", "redis")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; ``--help`` prints it, and an unknown argument is an error, never a full run."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark agt: p50/p99 beside the floors they are compared with, the "
        "scaling tables, and the issue-14 summary (a full run takes a few minutes).")
    parser.add_argument("--quick", action="store_true", help="fewer samples and a 1,000-action fuzz (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of tables")
    parser.add_argument("--only", choices=SECTIONS, help="run one section (the summary needs a full run)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    as_json, quick, only = args.json, args.quick, args.only
    console = Console(stderr=True)
    figures = []
    extra: dict[str, float] = {}
    scaled: list[core.Scaled] = []
    rates: list[throughput.Throughput] = []
    reference_us = machine_reference_us()
    with console.status("benchmarking") as status:
        def progress(msg: str) -> None:
            status.update(f"benchmarking: {msg}")

        if only in (None, "core"):
            figures += core.startup(quick=quick, progress=progress)
            figures += core.run(quick=quick, progress=progress)
            scaled = core.scaling(quick=quick, progress=progress)
            extra.update(core.EXTRA)
        if only in (None, "facts"):
            figures += facts.run(quick=quick, progress=progress)
        if only in (None, "runtime"):
            with tempfile.TemporaryDirectory() as tmp:
                figures += runtime.run(quick=quick, progress=progress, tmp=Path(tmp))
        if only in (None, "metrics"):
            figures += metrics.run(quick=quick, progress=progress)
            extra.update(metrics.EXTRA)
        if only in (None, "audit"):
            figures += audit.run(quick=quick, progress=progress)
        if only in (None, "opa"):
            opa_figures, opa_extra = opa.run(quick=quick, progress=progress)
            figures += opa_figures
            extra.update(opa_extra)
        if only in (None, "bundles"):
            bundle_figures, bundle_extra = bundles.run(quick=quick, progress=progress)
            figures += bundle_figures
            extra.update(bundle_extra)
        if only in (None, "serve"):
            serve_figures, serve_extra = serve.run(quick=quick, progress=progress)
            figures += serve_figures
            extra.update(serve_extra)
        if only in (None, "throughput"):
            rates, rate_extra = throughput.run(quick=quick, progress=progress)
            extra.update(rate_extra)
        if only in (None, "redis"):
            redis_figures, redis_extra = redis.run(quick=quick, progress=progress)
            figures += redis_figures
            extra.update(redis_extra)
    targets = summary.rows(figures, extra, scaled)
    if as_json:
        print(json.dumps({"reference_us": reference_us, "figures": [asdict(f) for f in figures], "extra": extra,
                          "scaling": [{**asdict(r), "ratio": r.ratio} for r in scaled],
                          "throughput": [{**asdict(r), "exact": r.exact} for r in rates],
                          "summary": [{**asdict(r), "mark": r.mark} for r in targets]}, indent=2))
        return 0
    out = Console(width=max(Console().width, 120))
    out.print(f"machine-speed reference: sum(range(100)) = {reference_us:.2f} µs p50")
    table = Table(title=f"agt on {os.cpu_count()} cores, Python {platform.python_version()}")
    for col in ("benchmark", "p50 µs", "p99 µs", "mean µs", "per second", "samples", "ref µs"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for f in figures:
        table.add_row(*f.row())
    out.print(table)
    if scaled:
        out.print(core.scaling_table(scaled))
    opa.report(extra, out.print)
    serve.report(extra, out.print)
    if "naive_over_engine_p50" in extra:
        out.print(f"opa eval subprocess vs the opa engine (p50): {extra['naive_over_engine_p50']:.0f}× slower")
        rounds = ", ".join(f"{extra[k]:.1f}" for k in sorted(extra) if k.startswith("fuzz_seconds_round_"))
        out.print(f"differential fuzz: {int(extra['fuzz_actions']):,} actions × 3 engines in {extra['fuzz_seconds']:.1f} s, "
                  f"the median of rounds of {rounds} s (target ≤ 6 s at 10,000), "
                  f"{int(extra['fuzz_disagreements'])} disagreements"
                  + (f"; {floor}" if (floor := summary.fuzz_floor_note(extra)) else ""))
    if "receiver_events_per_s_accepted" in extra:
        out.print(f"decision-log receiver: {extra['receiver_events_per_s_accepted']:,.0f} events/s accepted (gzipped batches of 100), "
                  f"{extra['receiver_events_per_s_written']:,.0f} events/s written to the audit log")
    redis.report(extra, out.print)
    if rates:
        out.print(throughput.table(rates))
    if only is None:  # one section alone would leave most of the summary "not measured"
        out.print(summary.table(targets, reference_us))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
