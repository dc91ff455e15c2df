"""What an audit append adds to each decision, under each durability policy, for both backends."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import agt
from agt.audit import AuditLog
from agt.runtime.audit import AuditRecord, new_decision_id
from bench.stats import Figures, measure


def _record(action: agt.Action) -> AuditRecord:
    import time

    return AuditRecord(
        new_decision_id(), time.time_ns(), "decision", action.agent.id, "policy", action.document,  # type: ignore[arg-type]
        {"effect": "allow", "reasons": [{"id": "default", "message": ""}], "enforced": "allow", "warning": False, "mode": "strict"},
        {"engine": "yaml", "revision": "sha256:0123456789abcdef"}, {"latency_us": 12.5},
    )


def run(quick: bool = False, progress: Callable[[str], None] = print) -> list[Figures]:
    samples = 2_000 if quick else 10_000
    action = agt.from_call("read_file", {"path": "/ws/alice/README.md", "token": "s3cret"},
                           agent=agt.Agent("alice", trust_score=720, attributes={"workspace": "/ws/alice"}))
    action.document
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("jsonl", "sqlite"):
            for durability in ("none", "batch", "always"):
                progress(f"audit append: {backend}, {durability}")
                where = Path(tmp) / f"{backend}-{durability}"
                log = AuditLog(where if backend == "jsonl" else where.with_suffix(".db"), durability=durability,
                               mask=["token"], checkpoint_every=1000, signing_key=Ed25519PrivateKey.generate())
                n = samples if durability != "always" else max(200, samples // 10)
                label = "decision path" if durability == "batch" else "append"
                figures.append(measure(f"audit {label}, {backend}, durability={durability}", lambda: log.write(_record(action)), n, warmup=50))
                if durability == "batch":
                    # The queue hides the writer's work from the decision path, not from the CPU:
                    # time enqueueing n records and waiting until all are written and synced.
                    start = time.perf_counter()
                    for _ in range(n):
                        log.write(_record(action))
                    log.flush()
                    took = time.perf_counter() - start
                    figures.append(Figures(f"audit sustained, {backend}, batch: append + write + fsync", n,
                                           took / n * 1e6, float("nan"), took / n * 1e6, n / took))
                log.close()
    return figures
