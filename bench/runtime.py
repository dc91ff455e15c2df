"""The whole governed-call pipeline with the yaml engine: what govern() adds to each tool call.

Measured as the time of a governed call minus nothing: the tool itself returns at once, so the figure
is the overhead (trust gate, counters, Action, engine, mode, breakers, output check, audit record).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import agt
from agt.runtime import Governor, SqliteStore, govern
from bench.stats import ROUNDS, Figures, measure, measure_rounds

ROOT = Path(__file__).resolve().parents[1]
GOVERNED_CALL_P50_US, GOVERNED_CALL_P99_US = 30.0, 60.0  # issue 14


def run(quick: bool = False, progress: Callable[[str], None] = print, tmp: Path | None = None) -> list[Figures]:
    samples = 2_000 if quick else 20_000
    figures = []

    def make(store=None) -> Governor:
        gov = Governor("yaml", str(ROOT / "policies" / "starter.yaml"), store=store)
        gov.register_agent(agt.Agent("alice", roles=("developer",), trust_score=720, attributes={"workspace": "/ws/alice"}))
        return gov

    def read_file(path: str) -> str:
        return "ok"

    progress("runtime: govern() overhead, memory store")
    gov = make()
    counter = [0]

    def one() -> None:
        # A new task every 15 calls, so the 20-call budget never trips.
        counter[0] += 1
        gov.call(read_file, ("/ws/alice/README.md",), tool="read_file", agent="alice", session=f"bench-{counter[0] // 15}")

    figures.append(measure_rounds(f"runtime: governed call, yaml engine, memory store, audit in memory; target p50 ≤ "
                                  f"{GOVERNED_CALL_P50_US:g} µs, p99 ≤ {GOVERNED_CALL_P99_US:g} µs (median of "
                                  f"{ROUNDS} rounds)", one, samples))
    tool = govern(read_file, governor=gov, agent="alice", session="bench-decorated")

    def decorated() -> None:
        tool("/ws/alice/README.md")
        gov.store.release("bench-decorated", 1, 0)

    figures.append(measure("runtime: through the @govern wrapper (positional arg bound to its name)", decorated, samples))
    figures.append(measure("baseline: the same tool called directly", lambda: read_file("/ws/alice/README.md"), samples))

    from agt.adapters._core import ToolGate

    gate = ToolGate(gov, agent="alice", session="bench-adapter")
    schema = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}

    def adapter(arguments: str, **kw) -> None:
        gate.run("read_file", arguments, lambda p: read_file(**p), **kw)
        gov.store.release("bench-adapter", 1, 0)

    progress("runtime: the adapters' shared core")
    figures.append(measure("adapters: ToolGate.run, JSON-string arguments (what every adapter adds)",
                           lambda: adapter('{"path": "/ws/alice/README.md"}'), samples))
    figures.append(measure("adapters: ToolGate.run, arguments checked against the tool's JSON Schema",
                           lambda: adapter('{"path": "/ws/alice/README.md"}', schema=schema), samples))
    if tmp is not None:
        progress("runtime: sqlite store")
        sgov = make(SqliteStore(tmp / "bench-state.db"))
        def one_sqlite() -> None:
            counter[0] += 1
            sgov.call(read_file, ("/ws/alice/README.md",), tool="read_file", agent="alice", session=f"bench-{counter[0] // 15}")

        figures.append(measure("runtime: governed call, yaml engine, SQLite store", one_sqlite, samples // 4))
        sgov.close()
    gov.close()
    return figures
