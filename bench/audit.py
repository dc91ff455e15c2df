"""What an audit append adds to each decision, under each durability policy, for both backends; what
the decision path waits for with batch durability; and the sustained cost per record as the log grows.

    python -m bench.audit [--quick]     # this part alone, each figure beside its target

How the scaling rows are measured (JSONL, batch durability, the default ``checkpoint_every=100``):
the log is grown to each size (1k, 10k, 100k, 1M records) by writing a prefix of small records
straight into the log's files: the same canonical form and hash chain the log writes, so the prefix
verifies, only without the per-record Python of AuditLog (1M records through AuditLog would take
minutes). AuditLog then opens it (replaying every record once: reported as "open") and the figure is
the wall time to enqueue ``n`` full decision records, have the writer thread mask, chain, write,
checkpoint (sign + fsync every 100) and fsync them, divided by ``n``: the median of three such rounds, one
after another on the open log (so the log grows by ``n`` a round; the next size is ten times larger).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import agt
from agt._canonical import canonical_json
from agt.audit import AuditLog
from agt.runtime.audit import AuditRecord, new_decision_id
from bench.stats import ROUNDS, Figures, measure, percentile, reference_us

GENESIS = "0" * 64
SIZES = (1_000, 10_000, 100_000, 1_000_000)
TARGET_SUSTAINED_US = 80.0
TARGET_GROWTH = 1.2
TARGET_WAIT_P99_US = 15.0


def _record(action: agt.Action) -> AuditRecord:
    return AuditRecord(
        new_decision_id(), time.time_ns(), "decision", action.agent.id, "policy", action.document,  # type: ignore[arg-type]
        {"effect": "allow", "reasons": [{"id": "default", "message": ""}], "enforced": "allow", "warning": False, "mode": "strict"},
        {"engine": "yaml", "revision": "sha256:0123456789abcdef"}, {"latency_us": 12.5},
    )


def machine_reference() -> Figures:
    """``sum(range(100))``: the yardstick every figure in ``make bench`` can be read against."""
    return measure("machine-speed reference: sum(range(100))", lambda: sum(range(100)), 20_000, warmup=1_000)


class _Prefix:
    """Grows a JSONL audit log with small chained records, written directly (see the module docstring)."""

    def __init__(self, directory: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.size = 0
        self.last_hash = GENESIS

    def _current(self) -> Path:
        files = sorted(self.dir.glob("audit-*.jsonl"))
        path = files[-1] if files else self.dir / "audit-000001.jsonl"
        if path.exists() and path.stat().st_size >= self.max_bytes:
            path = self.dir / f"audit-{int(path.stem.split('-')[1]) + 1:06d}.jsonl"
        return path

    def grow_to(self, size: int) -> None:
        while self.size < size:
            path = self._current()
            written = path.stat().st_size if path.exists() else 0
            out = []
            while self.size < size and written < self.max_bytes:
                body = {"decision_id": f"prefix-{self.size:09d}", "kind": "decision", "agent_id": "prefix",
                        "path": "policy", "result": {"effect": "allow"}, "seq": self.size, "prev_hash": self.last_hash}
                text = canonical_json(body)
                self.last_hash = hashlib.sha256(text).hexdigest()
                line = text[:-1] + f',"hash":"{self.last_hash}"}}\n'.encode()
                out.append(line)
                written += len(line)
                self.size += 1
            with open(path, "ab") as f:
                f.write(b"".join(out))
                f.flush()
                os.fsync(f.fileno())  # the measurement's first fsync must not pay for the prefix's writeback

    def follow(self, log: AuditLog) -> None:
        """Records the measurement appended through AuditLog become part of the prefix."""
        self.size, self.last_hash = log.size, log.last_hash


def sustained_at_sizes(action: agt.Action, tmp: Path, sizes: tuple[int, ...], n: int,
                       progress: Callable[[str], None]) -> list[Figures]:
    figures = []
    key = Ed25519PrivateKey.generate()
    prefix = _Prefix(tmp / "scaling")
    per_record: dict[int, float] = {}
    cpu_per_record: dict[int, float] = {}
    for size in sizes:
        progress(f"audit sustained: growing the log to {size:,} records")
        prefix.grow_to(size)
        t0 = time.perf_counter()
        log = AuditLog(prefix.dir, durability="batch", mask=["token"], signing_key=key)  # checkpoint_every=100
        opened = time.perf_counter() - t0
        progress(f"audit sustained at {size:,} records")
        rounds, cpus, references = [], [], []
        for _ in range(ROUNDS):  # one after another on the open log: the log grows by n a round
            records = [_record(action) for _ in range(n)]
            references.append(reference_us())
            start, cpu = time.perf_counter(), time.process_time()
            for r in records:
                log.write(r)
            log.flush()
            rounds.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            references.append(reference_us())
        took, cpu = statistics.median(rounds), statistics.median(cpus)
        prefix.follow(log)
        t0 = time.perf_counter()
        log.close()
        closed = time.perf_counter() - t0
        us = took / n * 1e6
        per_record[size] = us
        cpu_per_record[size] = cpu / n * 1e6
        figures.append(Figures(
            f"audit sustained @ {size:>9,} records, jsonl, batch, checkpoint/100, median of {ROUNDS} rounds of {n:,} "
            f"(target ≤ {TARGET_SUSTAINED_US:.0f} µs)", n * ROUNDS, us, float("nan"), us, n / took,
            statistics.median(references)))
        figures.append(Figures(f"  CPU of the process per record @ {size:,} (both threads; less sensitive to a busy machine)",
                               n, cpu / n * 1e6, float("nan"), cpu / n * 1e6, float("nan")))
        figures.append(Figures(f"  open @ {size:,}: replay every record once (ms, not µs)", 1, opened * 1e3, float("nan"),
                               opened * 1e3, float("nan")))
        figures.append(Figures(f"  close @ {size:,}: last checkpoint (ms, not µs)", 1, closed * 1e3, float("nan"),
                               closed * 1e3, float("nan")))
    first, last = sizes[0], sizes[-1]
    ratio = per_record[last] / per_record[first]
    figures.append(Figures(f"audit growth: per record @ {last:,} ÷ @ {first:,} (target ≤ {TARGET_GROWTH}×), ratio in p50 column",
                           n, ratio, float("nan"), ratio, float("nan")))
    cpu_ratio = cpu_per_record[last] / cpu_per_record[first]
    figures.append(Figures(f"audit growth, CPU per record @ {last:,} ÷ @ {first:,} (target ≤ {TARGET_GROWTH}×), ratio in p50 column",
                           n, cpu_ratio, float("nan"), cpu_ratio, float("nan")))
    return figures


def decision_path_wait(action: agt.Action, tmp: Path, samples: int) -> Figures:
    """What the governor's ``audit.write(record)`` costs the caller with batch durability: it only enqueues;
    the writer thread (running meanwhile, sharing the GIL) masks, chains, writes and fsyncs. The record
    is built beforehand, as the governor builds it whatever the sink."""
    log = AuditLog(tmp / "wait", durability="batch", mask=["token"], signing_key=Ed25519PrivateKey.generate())
    records = iter([_record(action) for _ in range(samples + 100)])
    try:
        return measure(f"audit decision path: write(record), jsonl, batch (target p99 ≤ {TARGET_WAIT_P99_US:.0f} µs)",
                       lambda: log.write(next(records)), samples, warmup=100)
    finally:
        log.close()


def decision_path_wait_paced(action: agt.Action, tmp: Path, samples: int, between_us: int = 30) -> Figures:
    """The same wait when calls come as a governor makes them: ``between_us`` of the caller's own Python
    between two writes (the rest of a governed call), so the writer thread runs meanwhile and competes for
    the GIL as it does in service. Only the write is timed."""
    log = AuditLog(tmp / "wait-paced", durability="batch", mask=["token"], signing_key=Ed25519PrivateKey.generate())
    records = [_record(action) for _ in range(samples)]
    clock = time.perf_counter_ns
    times: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        for r in records:
            end = clock() + between_us * 1000
            while clock() < end:
                pass
            t0 = clock()
            log.write(r)
            times.append((clock() - t0) / 1000)
        total_s = (clock() - start) / 1e9
    finally:
        if gc_was_enabled:
            gc.enable()
        log.close()
    times.sort()
    return Figures(f"audit decision path, {between_us} µs of other work between calls (target p99 ≤ {TARGET_WAIT_P99_US:.0f} µs)",
                   samples, percentile(times, 0.5), percentile(times, 0.99), sum(times) / len(times), samples / total_s)


def run(quick: bool = False, progress: Callable[[str], None] = print, sizes: tuple[int, ...] = SIZES) -> list[Figures]:
    samples = 2_000 if quick else 10_000
    action = agt.from_call("read_file", {"path": "/ws/alice/README.md", "token": "s3cret"},
                           agent=agt.Agent("alice", trust_score=720, attributes={"workspace": "/ws/alice"}))
    action.document
    figures = [machine_reference()]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("jsonl", "sqlite"):
            for durability in ("none", "batch", "always"):
                progress(f"audit append: {backend}, {durability}")
                where = Path(tmp) / f"{backend}-{durability}"
                log = AuditLog(where if backend == "jsonl" else where.with_suffix(".db"), durability=durability,
                               mask=["token"], signing_key=Ed25519PrivateKey.generate())
                n = samples if durability != "always" else max(200, samples // 10)
                label = "enqueue" if durability == "batch" else "append"
                figures.append(measure(f"audit {label}, {backend}, durability={durability}, record built per call",
                                       lambda: log.write(_record(action)), n, warmup=50))
                log.close()
        progress("audit decision path")
        figures.append(decision_path_wait(action, Path(tmp), samples))
        figures.append(decision_path_wait_paced(action, Path(tmp), samples // 2))
        figures += sustained_at_sizes(action, Path(tmp), sizes, 1_000 if quick else 3_000, progress)
    return figures


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    sizes = tuple(int(s) for s in argv[argv.index("--sizes") + 1].split(",")) if "--sizes" in argv else SIZES
    figures = run(quick=quick, progress=lambda m: print(m, file=sys.stderr, flush=True), sizes=sizes)
    if "--json" in argv:
        print(json.dumps([f.__dict__ for f in figures], indent=2))
        return 0
    print(f"{'benchmark':<100} {'p50 µs':>10} {'p99 µs':>10} {'mean µs':>10} {'per second':>12} {'samples':>8}")
    for f in figures:
        name, p50, p99, mean, per_s, n, _ = f.row()
        print(f"{name:<100} {p50:>10} {p99:>10} {mean:>10} {per_s:>12} {n:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
