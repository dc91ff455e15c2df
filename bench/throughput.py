"""Governed-call throughput under concurrency (issue 14, "Scaling tables in make bench").

    python -m bench --only throughput [--quick] [--json]

* **Threads** (1, 2, 4, 8, 32): one shared Governor (yaml engine, starter policy, MemoryStore,
  MemoryAuditSink). ``calls`` governed calls in all, handed out from one shared counter; calls/s is
  ``calls`` ÷ the wall time from the moment every thread is released to the moment the last one ends.
  p50/p99 are per call, over every call of every thread (a call's time includes waiting for the GIL).
* **Processes** (1 and 2): each process builds its own Governor on one shared SqliteStore file and
  makes ``calls`` governed calls; calls/s is the total ÷ the span from the first start to the last end.

The issue states no target for throughput: each row prints its figure and its ratio to the 1-worker row
of the same table (≥ 1 scales; under the GIL, threads are expected near 1×).

**Exactness** (a property agt promises, checked on every row, not timed): tasks are shared between
workers (threads take the next call number from one counter; processes walk the same task names), so
concurrent reservations land on the same counters. Afterwards the store must hold exactly the number
of calls made for every task, in total and per task, every call must have been allowed, and (threads)
the memory audit must hold one record per call. Each task receives at most 15 calls, under the starter
policy's 20-call limit, so a lost or doubled update shows as a wrong count, never as a denial.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from bench.stats import percentile

ROOT = Path(__file__).resolve().parents[1]
THREADS = (1, 2, 4, 8, 32)
PROCESSES = (1, 2)
CALLS_PER_TASK = 15  # below the starter policy's tool-call-limit (> 20 is denied)


@dataclass(frozen=True)
class Throughput:
    """One row: ``workers`` threads or processes making ``calls`` governed calls in ``seconds``."""

    kind: str  # "threads" (memory store) or "processes" (shared SQLite store)
    workers: int
    calls: int
    seconds: float
    p50_us: float
    p99_us: float
    per_second: float
    baseline_ratio: float  # per_second ÷ the 1-worker row of the same kind
    counted: int  # tool_calls summed over the run's tasks, read from the store afterwards
    tasks_wrong: int  # tasks whose counter is not the number of calls made for them
    denied: int  # calls that did not run
    audited: int | None  # records in the memory audit (threads); None for processes

    @property
    def exact(self) -> bool:
        return (self.counted == self.calls and self.tasks_wrong == 0 and self.denied == 0
                and (self.audited is None or self.audited == self.calls))


def _governor(store=None):
    import agt
    from agt.runtime import Governor

    gov = Governor("yaml", str(ROOT / "policies" / "starter.yaml"), store=store)
    gov.register_agent(agt.Agent("alice", roles=("developer",), trust_score=720, attributes={"workspace": "/ws/alice"}))
    return gov


def _read_file(path: str) -> str:
    return "ok"


def _warm(gov, n: int = 200) -> None:
    for i in range(n):  # warm-up tasks are outside the counted ones, and this process's own (the store may be shared)
        gov.call(_read_file, ("/ws/alice/README.md",), tool="read_file", agent="alice",
                 session=f"warm-{os.getpid()}-{i // CALLS_PER_TASK}")


def _expected(calls: int, per_task: int) -> dict[int, int]:
    """Task number → the calls it must have received, for ``calls`` calls dealt ``per_task`` to a task."""
    out = {k: per_task for k in range(calls // per_task)}
    if calls % per_task:
        out[calls // per_task] = calls % per_task
    return out


def _check(store, prefix: str, expected: dict[int, int]) -> tuple[int, int]:
    counted = wrong = 0
    for k, want in expected.items():
        got = store.counters(f"{prefix}-{k}").tool_calls
        counted += got
        wrong += got != want
    return counted, wrong


def threads_row(workers: int, calls: int) -> Throughput:
    from agt.errors import GovernanceDenied

    gov = _governor()
    _warm(gov)
    warm_records = len(gov.audit.records)
    prefix = f"t{workers}"
    numbers = itertools.count()  # next() on it is atomic under the GIL: every call number is dealt once
    barrier = threading.Barrier(workers + 1)
    per_thread: list[list[float]] = [[] for _ in range(workers)]
    denied = [0] * workers
    clock = time.perf_counter_ns

    def work(w: int) -> None:
        times, call = per_thread[w], gov.call
        barrier.wait()
        while (k := next(numbers)) < calls:
            t0 = clock()
            try:
                call(_read_file, ("/ws/alice/README.md",), tool="read_file", agent="alice",
                     session=f"{prefix}-{k // CALLS_PER_TASK}")
            except GovernanceDenied:
                denied[w] += 1
            times.append((clock() - t0) / 1000)

    pool = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(workers)]
    for t in pool:
        t.start()
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as in every other figure: the code, not the collector
    try:
        barrier.wait()
        start = clock()
        for t in pool:
            t.join()
        seconds = (clock() - start) / 1e9
    finally:
        if gc_was_enabled:
            gc.enable()
    times = sorted(itertools.chain.from_iterable(per_thread))
    counted, wrong = _check(gov.store, prefix, _expected(calls, CALLS_PER_TASK))
    audited = len(gov.audit.records) - warm_records
    gov.close()
    return Throughput("threads", workers, calls, seconds, percentile(times, 0.5), percentile(times, 0.99),
                      calls / seconds, float("nan"), counted, wrong, sum(denied), audited)


def _process_worker(db: str, calls: int, per_task: int) -> None:
    """One process of the SQLite row, run as ``python -m bench.throughput --worker DB CALLS PER_TASK``.
    It says ``ready`` on stdout, waits for a line on stdin (the start barrier), then prints its result as
    JSON. Task ``k // per_task`` for call ``k``: every process walks the same task names, so the processes
    contend on the same counters."""
    from agt.errors import GovernanceDenied
    from agt.runtime import SqliteStore

    gov = _governor(SqliteStore(db))
    _warm(gov, 50)
    times: list[float] = []
    denied = 0
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.monotonic_ns()  # CLOCK_MONOTONIC: one clock for every process on the machine
    for k in range(calls):
        t0 = clock()
        try:
            gov.call(_read_file, ("/ws/alice/README.md",), tool="read_file", agent="alice", session=f"p-{k // per_task}")
        except GovernanceDenied:
            denied += 1
        times.append((clock() - t0) / 1000)
    end = time.monotonic_ns()
    gc.enable()
    gov.close()
    print(json.dumps({"start": start, "end": end, "times": times, "denied": denied}), flush=True)


def processes_row(workers: int, calls_each: int, tmp: Path) -> Throughput:
    from agt.runtime import SqliteStore

    db = str(tmp / f"throughput-{workers}.db")
    SqliteStore(db).close()  # the schema and WAL mode, before the workers race for them
    per_task = max(1, CALLS_PER_TASK // workers)  # from each process; a task gets per_task × workers calls
    cmd = [sys.executable, "-m", "bench.throughput", "--worker", db, str(calls_each), str(per_task)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(workers)]
    try:
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(f"throughput worker failed to start (exit {p.wait()})")
        for p in procs:  # the barrier: every worker is built and warm before any starts
            p.stdin.write("go\n")
            p.stdin.flush()
        out = []
        for p in procs:
            line = p.stdout.readline()
            if p.wait(timeout=600) != 0 or not line:
                raise RuntimeError(f"throughput worker exited with {p.returncode}")
            out.append(json.loads(line))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    seconds = (max(o["end"] for o in out) - min(o["start"] for o in out)) / 1e9
    times = sorted(itertools.chain.from_iterable(o["times"] for o in out))
    calls = workers * calls_each
    expected = {k: n * workers for k, n in _expected(calls_each, per_task).items()}
    store = SqliteStore(db)
    try:
        counted, wrong = _check(store, "p", expected)
    finally:
        store.close()
    return Throughput("processes", workers, calls, seconds, percentile(times, 0.5), percentile(times, 0.99),
                      calls / seconds, float("nan"), counted, wrong, sum(o["denied"] for o in out), None)


def _with_ratios(rows: list[Throughput]) -> list[Throughput]:
    base = {r.kind: r.per_second for r in rows if r.workers == 1}
    return [Throughput(**{**asdict(r), "baseline_ratio": r.per_second / base[r.kind] if r.kind in base else float("nan")})
            for r in rows]


def run(quick: bool = False, progress: Callable[[str], None] = print) -> tuple[list[Throughput], dict[str, float]]:
    calls = 3_000 if quick else 20_000
    calls_each = 500 if quick else 4_000
    rows: list[Throughput] = []
    for n in THREADS:
        progress(f"throughput: {n} thread{'s' if n > 1 else ''}, shared Governor, memory store")
        rows.append(threads_row(n, calls))
    with tempfile.TemporaryDirectory() as tmp:
        for n in PROCESSES:
            progress(f"throughput: {n} process{'es' if n > 1 else ''}, shared SQLite store")
            rows.append(processes_row(n, calls_each, Path(tmp)))
    rows = _with_ratios(rows)
    extra: dict[str, float] = {}
    for r in rows:
        key = f"throughput_{r.kind}_{r.workers}"
        extra[f"{key}_calls_per_s"] = r.per_second
        extra[f"{key}_p50_us"] = r.p50_us
        extra[f"{key}_p99_us"] = r.p99_us
        extra[f"{key}_ratio"] = r.baseline_ratio
        extra[f"{key}_exact"] = float(r.exact)
    extra["throughput_counters_exact"] = float(all(r.exact for r in rows))
    return rows, extra


def table(rows: list[Throughput]):
    from rich.table import Table

    t = Table(title="governed-call throughput (yaml engine, starter policy; issue 14 states no target: "
                    "ratio = calls/s ÷ the 1-worker row)")
    for col in ("workers", "store", "calls", "calls/s", "÷ 1 worker", "p50 µs/call", "p99 µs/call", "counters exact"):
        t.add_column(col, justify="left" if col in ("workers", "store") else "right")
    for r in rows:
        store = "memory, one Governor" if r.kind == "threads" else "SQLite file, a Governor each"
        check = "✓" if r.exact else (f"✗ counted {r.counted:,}, {r.tasks_wrong} tasks wrong, {r.denied} denied"
                                     + ("" if r.audited is None else f", {r.audited:,} audited"))
        noun = ("thread" if r.kind == "threads" else "process") + ("" if r.workers == 1 else "s" if r.kind == "threads" else "es")
        t.add_row(f"{r.workers} {noun}",
                  store, f"{r.calls:,}", f"{r.per_second:,.0f}", f"{r.baseline_ratio:.2f}×",
                  f"{r.p50_us:,.1f}", f"{r.p99_us:,.1f}", check)
    return t


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _process_worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("run `python -m bench --only throughput`; this module's own entry point is the --worker process")
