"""The one-screen summary ``python -m bench`` prints last: every issue-14 target, its measured figure and ✓/✗.

It measures nothing. It reads what the other sections produced: the ``figures`` list (by name prefix),
the ``extra`` dict (by key) and the yaml scaling rows. A figure that is not there prints "not measured".

Keys a section can put in ``extra`` for rows no section measures yet (read here if present):

* ``cedar_single_over_raw``: cedar single decision (starter policy) ÷ raw cedarpy with preparsed handles;
* ``cedar_batch_over_single``: cedar batch of 100 per decision ÷ single (else computed from the two
  ``cedar starter policy`` figures of bench/core.py: batch of 100 ÷ single with new entities each call,
  the same actions);
* ``cli_help_seconds``, ``cli_eval_seconds``: wall time of ``agt --help`` and ``agt eval`` (yaml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

from bench.stats import ROUNDS, Figures

NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Row:
    workload: str
    measured: str  # the figure as printed, or NOT_MEASURED
    target: str
    met: bool | None  # None: not measured, or not comparable (say why in ``note``)
    note: str = ""

    @property
    def mark(self) -> str:
        return "-" if self.met is None else "✓" if self.met else "✗"


def _find(figures: Iterable[Figures], prefix: str) -> Figures | None:
    return next((f for f in figures if f.name.startswith(prefix)), None)


def _row(workload: str, value: float | None, target: float, fmt: Callable[[float], str], target_text: str,
         note: str = "") -> Row:
    if value is None or value != value:  # missing or NaN
        return Row(workload, NOT_MEASURED, target_text, None, note)
    return Row(workload, fmt(value), target_text, value <= target, note)


def _beside(value: float | None, reference: float | None) -> str:
    """How fast the machine ran while ``value`` was taken: the reference measured beside it (about 1.0 µs when the
    targets were set). Only a note: figures do not scale with it exactly, and ✓ and ✗ go by the figure as measured."""
    if value is None or reference is None or math.isnan(value) or math.isnan(reference):
        return ""
    return f"ref {reference:.2f} µs beside it"


def fuzz_floor_note(extra: dict[str, float]) -> str:
    """The fuzz's CPU floor (bench/opa.py), when it was measured: this process's CPU under its one GIL, the OPA
    server's, and the least wall the two allow on this machine's cores."""
    floor = extra.get("fuzz_floor_seconds")
    if floor is None or math.isnan(floor):
        return ""
    return (f"CPU: agt {extra['fuzz_cpu_seconds']:.1f} s (one GIL) + opa {extra['fuzz_opa_cpu_seconds']:.1f} s on "
            f"{int(extra['fuzz_cores'])} cores: floor {floor:.1f} s")


def _notes(*notes: str) -> str:
    """A row's notes, the empty ones left out."""
    return "; ".join(n for n in notes if n)


def _us(v: float) -> str:
    return f"{v:,.1f} µs"


def _x(v: float) -> str:
    return f"{v:.2f}×"


def rows(figures: list[Figures], extra: dict[str, float], scaled: list | None = None) -> list[Row]:
    scaled = scaled or []
    out: list[Row] = []
    f = _find(figures, "build Action (from_call + document)")
    out.append(_row("Action build (from_call + document) p50", f and f.p50_us, 12, _us, "≤ 12 µs",
                    _beside(f and f.p50_us, f and f.reference_us)))
    f = _find(figures, "runtime: governed call, yaml engine, memory store")
    out.append(_row("governed call, yaml, memory p50", f and f.p50_us, 30, _us, "≤ 30 µs",
                    _beside(f and f.p50_us, f and f.reference_us)))
    out.append(_row("governed call, yaml, memory p99", f and f.p99_us, 60, _us, "≤ 60 µs",
                    _beside(f and f.p99_us, f and f.reference_us)))

    def scaling(shape: str, n: int, match: bool):
        return next((r for r in scaled if r.shape == shape and r.rules == n and r.match is match), None)

    r = scaling("pattern", 1_000, False)
    out.append(_row("yaml 1k pattern, no match p99", r and r.figures.p99_us, 10, _us, "≤ 10 µs"))
    out.append(_row("yaml 1k pattern, p99 ÷ 10 rules", r and r.growth, 1.5, _x, "≤ 1.5×"))
    for match in (False, True):
        r = scaling("tool-keyed", 10_000, match)
        out.append(_row(f"yaml 10k tool-keyed, {'match' if match else 'no match'} p99",
                        r and r.figures.p99_us, 3, lambda v: f"{v:,.2f} µs", "≤ 3 µs"))

    out.append(_row("cedar single ÷ raw cedarpy", extra.get("cedar_single_over_raw"), 1.05, _x, "≤ 1.05×"))
    ratio, note = extra.get("cedar_batch_over_single"), ""
    if ratio is None:
        batch = _find(figures, "cedar starter policy, batch of 100 (per decision)")
        single = _find(figures, "cedar starter policy, single, new entities each call")
        if batch and single:
            ratio, note = batch.p50_us / single.p50_us, "÷ single, new entities"
    out.append(_row("cedar batch 100 ÷ single", ratio, 0.6, _x, "≤ 0.6×", note))

    for key, label in (("tcp", "TCP"), ("unix", "unix socket")):
        out.append(_row(f"opa single ÷ raw POST, {label}",
                        extra.get(f"opa_single_over_floor_{key}"), 1.10, _x, "≤ 1.10×"))
    for key, label in (("tcp", "TCP"), ("unix", "unix socket")):
        via = "" if extra.get(f"opa_batch_via_data_agt_batch_{key}", 1.0) else "not via data.agt.batch!"
        out.append(_row(f"opa batch 200 ÷ single, {label}",
                        extra.get(f"opa_batch_over_single_{key}"), 0.25, _x, "≤ 0.25×", via))

    if "fuzz_seconds" in extra:
        n = int(extra.get("fuzz_actions", 0))
        secs = extra["fuzz_seconds"]
        disagree = int(extra.get("fuzz_disagreements", 0))
        note = f"{disagree} disagreements" if disagree else ""
        if n == 10_000:
            beside = _beside(secs, extra.get("fuzz_reference_us"))
            out.append(Row("fuzz 10k × 3 engines, wall", f"{secs:.1f} s", "≤ 6 s", secs <= 6,
                           _notes(note, f"median of {ROUNDS} rounds", beside, fuzz_floor_note(extra))))
        else:  # --quick: a smaller fuzz, not comparable to the target
            out.append(Row("fuzz 10k × 3 engines, wall", f"{secs:.1f} s @ {n:,}", "≤ 6 s @ 10,000",
                           None, _notes(note, "--quick: not judged")))
    else:
        out.append(Row("fuzz 10k × 3 engines, wall", NOT_MEASURED, "≤ 6 s", None))

    sustained = [f for f in figures if f.name.startswith("audit sustained @")]
    if sustained:
        worst = max(sustained, key=lambda f: f.p50_us)
        size = worst.name.split("@", 1)[1].split("records")[0].strip()
        out.append(_row("audit sustained/record, worst", worst.p50_us, 80, _us, "≤ 80 µs",
                        _notes(f"@ {size} records", _beside(worst.p50_us, worst.reference_us))))
    else:
        out.append(Row("audit sustained/record, worst", NOT_MEASURED, "≤ 80 µs", None))
    f = _find(figures, "audit growth: per record")
    label = "audit growth, largest ÷ smallest"
    if f:
        span = f.name.split(": per record", 1)[1].split("(")[0].strip()  # "@ 1,000,000 ÷ @ 1,000"
        out.append(_row(label, f.p50_us, 1.2, _x, "≤ 1.2×", span))
    else:
        out.append(Row(label, NOT_MEASURED, "≤ 1.2×", None))
    f = _find(figures, "audit decision path: write(record)")
    out.append(_row("audit decision-path wait p99", f and f.p99_us, 15, _us, "≤ 15 µs", "back to back"))
    f = _find(figures, "audit decision path, ")
    out.append(_row("audit decision-path wait, paced p99", f and f.p99_us, 15, _us, "≤ 15 µs",
                    f.name.split(",", 1)[1].split("(")[0].strip() if f else ""))

    out.append(_row("`agt --help` wall", extra.get("cli_help_seconds"), 0.25, lambda v: f"{v:.2f} s", "≤ 0.25 s"))
    out.append(_row("`agt eval` (yaml) wall", extra.get("cli_eval_seconds"), 0.5, lambda v: f"{v:.2f} s", "≤ 0.5 s"))

    out.append(_row("agt serve sidecar (unix) one decision p50", extra.get("serve_sidecar_p50_us"), 250, _us, "≤ 250 µs",
                    "issue 15"))
    out.append(_row("agt serve sidecar (unix) one decision p99", extra.get("serve_sidecar_p99_us"), 500, _us, "≤ 500 µs",
                    "issue 15"))

    if "throughput_counters_exact" in extra:
        one = extra.get("throughput_threads_1_calls_per_s")
        at32 = extra.get("throughput_threads_32_ratio")
        two = extra.get("throughput_processes_2_ratio")
        measured = f"{one:,.0f}/s, 1 thread" if one else NOT_MEASURED
        note = ", ".join(x for x in (at32 and f"32 thr {at32:.2f}×", two and f"2 proc {two:.2f}×") if x)
        out.append(Row("throughput, counters exact", measured, "exact",
                       bool(extra["throughput_counters_exact"]), note))
    else:
        out.append(Row("throughput, counters exact", NOT_MEASURED, "exact", None))
    return out


def table(summary: list[Row], reference_us: float | None = None):
    from rich import box
    from rich.table import Table

    met = sum(r.met is True for r in summary)
    judged = sum(r.met is not None for r in summary)
    t = Table(title=f"issue 14 targets: {met} of {judged} met, {len(summary) - judged} not judged", box=box.SIMPLE_HEAD)
    if reference_us is not None:
        t.caption = f"machine-speed reference sum(range(100)) = {reference_us:.2f} µs p50 (about 1.0 when the issue was measured)"
    for col in ("workload", "measured", "target", "", "note"):
        t.add_column(col, justify="right" if col in ("measured", "target") else "left", no_wrap=col != "note")
    for r in summary:
        t.add_row(r.workload, r.measured, r.target, r.mark, r.note)
    return t
