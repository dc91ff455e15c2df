"""OPA engine figures: per-decision latency over loopback TCP and a unix socket, the naive
one-`opa eval`-per-decision baseline, evaluate_many throughput, and a 10,000-action differential fuzz."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable

import agt
from agt.conformance import load_suite, open_engines
from agt.conformance.fuzz import fuzz
from agt.engines.opa import OpaEngine
from agt.opa import find_opa
from bench.stats import Figures, measure, measure_batch

ROOT = Path(__file__).resolve().parents[1]


def _action() -> agt.Action:
    return agt.from_call(
        "write_file", {"path": "/ws/alice/notes.md", "content": "todo"},
        agent=agt.Agent("alice", roles=("developer",), trust_score=720, attributes={"workspace": "/ws/alice"}),
        context=agt.Context(session_id="s", tokens_used=1200, tool_calls=4, files_changed=1),
    )


def run(quick: bool = False, progress: Callable[[str], None] = print) -> tuple[list[Figures], dict[str, float]]:
    samples = 500 if quick else 5_000
    figures: list[Figures] = []
    extra: dict[str, float] = {}
    action = _action()
    action.document
    for unix in (False, True):
        label = "unix socket" if unix else "loopback TCP"
        progress(f"opa {label}")
        engine = OpaEngine(ROOT / "rego", unix_socket=unix)
        try:
            assert engine.evaluate(action).effect is agt.Effect.ALLOW
            figures.append(measure(f"opa engine, single decision, {label}", lambda: engine.evaluate(action), samples))
            batch = [action] * 200
            figures.append(measure_batch(f"opa engine, evaluate_many of 200, {label} (per decision)",
                                         lambda: engine.evaluate_many(batch), 200, 10 if quick else 40))
        finally:
            engine.close()

    progress("opa eval subprocess per decision")
    opa = find_opa()
    doc = action.to_json().encode()

    def naive() -> None:
        out = subprocess.run([opa, "eval", "-d", str(ROOT / "rego"), "-I", "--format", "raw", "data.agt.decision.effect"],
                             input=doc, capture_output=True, check=True)
        assert out.stdout.strip() == b"allow", out
    figures.append(measure("naive: one `opa eval` subprocess per decision", naive, 10 if quick else 40, warmup=2))

    progress("fuzz 10,000 actions on yaml, cedar, opa")
    suite = load_suite(ROOT / "conformance" / "starter.yaml")
    engines = open_engines(suite, ("yaml", "cedar", "opa"))
    n = 1_000 if quick else 10_000
    try:
        start = time.perf_counter()
        result = fuzz(suite, engines, n, seed=2026)
        extra["fuzz_seconds"] = time.perf_counter() - start
        extra["fuzz_actions"] = n
        extra["fuzz_disagreements"] = len(result.disagreements)
    finally:
        for e in engines.values():
            e.close()
    single = next(f for f in figures if f.name.startswith("opa engine, single decision, loopback"))
    naive_fig = figures[-1]
    extra["naive_over_engine_p50"] = naive_fig.p50_us / single.p50_us
    return figures, extra
