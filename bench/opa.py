"""OPA engine figures, each beside the floor it is measured against in the same run.

* The floor: a raw standard-library ``http.client`` keep-alive POST of the same body (headers built once,
  reply read whole, nothing parsed) to the same managed OPA, over loopback TCP and over a unix socket.
* The engine: ``OpaEngine.evaluate`` (encode, POST, parse, validate, a Decision), and ``evaluate_many`` of 200
  (through ``data.agt.batch``) per decision, each as a ratio of the single decision.
* The naive baseline (one ``opa eval`` subprocess per decision) and the 10,000-action differential fuzz on
  yaml, cedar and opa (wall time, the median of three rounds, each on fresh engines with the parse caches emptied).
  Beside the fuzz's wall, its floor: the CPU this process spends (nearly all of it holding the one GIL: Python,
  and native code that keeps it, cedarpy and orjson, so no thread can overlap it), and the CPU the OPA server
  spends in its own process. The wall can go below neither this process's CPU nor all the CPU ÷ the cores.

Floor and engine alternate sample by sample (so a busy machine slows both alike), over three rounds; each
figure is the median of the rounds' p50s.
"""

from __future__ import annotations

import gc
import http.client
import math
import os
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import agt
from agt._normalize import _PATHS
from agt.conformance import load_suite, open_engines
from agt.conformance.fuzz import fuzz
from agt.engines.opa import OpaEngine, _encode
from agt.facts.shell import parse_shell
from agt.facts.sql import parse_sql
from agt.opa import find_opa
from bench.stats import (
    ROUNDS,
    Figures,
    cpu_seconds,
    measure,
    measure_batch,
    median_of,
    percentile,
    reference_us,
)

ROOT = Path(__file__).resolve().parents[1]


def _action() -> agt.Action:
    return agt.from_call(
        "write_file", {"path": "/ws/alice/notes.md", "content": "todo"},
        agent=agt.Agent("alice", roles=("developer",), trust_score=720, attributes={"workspace": "/ws/alice"}),
        context=agt.Context(session_id="s", tokens_used=1200, tool_calls=4, files_changed=1),
    )


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("opa")
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


def _raw_post(engine: OpaEngine, body: bytes) -> Callable[[], bytes]:
    """The floor: one keep-alive http.client connection, headers built once, the reply read whole."""
    server = engine.server
    assert server is not None
    if server.unix_socket:
        conn: http.client.HTTPConnection = _UnixHTTPConnection(server.socket_path)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {server.token}"}
    path = engine.decision_path

    def post() -> bytes:
        conn.request("POST", path, body, headers)
        reply = conn.getresponse()
        data = reply.read()
        assert reply.status == 200, data
        return data
    return post


def _interleaved(fns: dict[str, Callable[[], object]], samples: int, warmup: int = 200) -> dict[str, Figures]:
    """Time each of ``fns`` once per sample, in turn; GC paused while sampling."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    clock = time.perf_counter_ns
    times: dict[str, list[float]] = {k: [] for k in fns}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(samples):
            for k, fn in fns.items():
                t0 = clock()
                fn()
                times[k].append((clock() - t0) / 1000)
    finally:
        if gc_was_enabled:
            gc.enable()
    out = {}
    for k, ts in times.items():
        ts.sort()
        mean = sum(ts) / len(ts)
        out[k] = Figures(k, samples, percentile(ts, 0.5), percentile(ts, 0.99), mean, 1e6 / mean)
    return out


def run(quick: bool = False, progress: Callable[[str], None] = print) -> tuple[list[Figures], dict[str, float]]:
    samples = 300 if quick else 2_000
    figures: list[Figures] = []
    extra: dict[str, float] = {}
    action = _action()
    action.document
    body = _encode({"input": action.document})
    for unix in (False, True):
        label = "unix socket" if unix else "loopback TCP"
        key = "unix" if unix else "tcp"
        progress(f"opa {label}")
        engine = OpaEngine(ROOT / "rego", unix_socket=unix)
        try:
            assert engine.evaluate(action).effect is agt.Effect.ALLOW
            raw = _raw_post(engine, body)
            batch = [action] * 200
            assert all(d.effect is agt.Effect.ALLOW for d in engine.evaluate_many(batch))
            floors, singles, batches = [], [], []
            for _ in range(ROUNDS):
                pair = _interleaved({"floor": raw, "single": lambda: engine.evaluate(action)}, samples)
                floors.append(pair["floor"])
                singles.append(pair["single"])
                batches.append(measure_batch("batch", lambda: engine.evaluate_many(batch), 200, 5 if quick else 20))
            floor = median_of(floors, f"floor: raw http.client keep-alive POST, {label}")
            single = median_of(singles, f"opa engine, single decision, {label}")
            many = median_of(batches, f"opa engine, evaluate_many of 200, {label} (per decision)")
            figures += [floor, single, many]
            extra[f"opa_single_over_floor_{key}"] = single.p50_us / floor.p50_us
            extra[f"opa_batch_over_single_{key}"] = many.p50_us / single.p50_us
            extra[f"opa_batch_via_data_agt_batch_{key}"] = float(engine.batch_supported is True)
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

    suite = load_suite(ROOT / "conformance" / "starter.yaml")
    n = 1_000 if quick else 10_000
    walls, disagreements, references, cpus, opa_cpus = [], [], [], [], []
    for r in range(ROUNDS):
        progress(f"fuzz {n:,} actions on yaml, cedar, opa (round {r + 1} of {ROUNDS})")
        references.append(reference_us())
        fuzzed = _fuzz_round(suite, n)
        references.append(reference_us())
        walls.append(fuzzed.wall)
        disagreements.append(fuzzed.disagreements)
        cpus.append(fuzzed.cpu)
        opa_cpus.append(fuzzed.opa_cpu)
    extra["fuzz_seconds"] = statistics.median(walls)
    extra["fuzz_reference_us"] = statistics.median(references)
    extra.update({f"fuzz_seconds_round_{i + 1}": w for i, w in enumerate(walls)})
    cpu, cores = statistics.median(cpus), os.cpu_count() or 1
    # One round that could not read OPA's CPU leaves the median unknown: NaN does not sort.
    opa_cpu = float("nan") if any(math.isnan(c) for c in opa_cpus) else statistics.median(opa_cpus)
    extra["fuzz_cpu_seconds"] = cpu
    extra["fuzz_opa_cpu_seconds"] = opa_cpu
    extra["fuzz_floor_seconds"] = fuzz_floor(cpu, opa_cpu, cores)
    extra["fuzz_cores"] = cores
    nan = float("nan")
    for label, value in (("CPU of this process, one GIL", cpu), ("CPU of the OPA server", opa_cpu),
                         (f"floor: max(this, all ÷ {cores} cores)", extra["fuzz_floor_seconds"])):
        figures.append(Figures(f"  fuzz {label} (s, not µs)", ROUNDS, value, nan, value, nan))
    extra["fuzz_actions"] = n
    extra["fuzz_disagreements"] = max(disagreements)
    single = next(f for f in figures if f.name.startswith("opa engine, single decision, loopback"))
    naive_fig = figures[-1]
    extra["naive_over_engine_p50"] = naive_fig.p50_us / single.p50_us
    return figures, extra


def fuzz_floor(cpu: float, opa_cpu: float, cores: int) -> float:
    """The least wall time a fuzz that took ``cpu`` seconds of this process's CPU (serialised by the GIL) and
    ``opa_cpu`` of the OPA server's could take on ``cores`` cores, however well the two overlapped. NaN when the
    OPA server's CPU could not be read."""
    if math.isnan(opa_cpu):
        return float("nan")
    return max(cpu, (cpu + opa_cpu) / cores)


@dataclass(frozen=True)
class FuzzRound:
    wall: float
    disagreements: int
    cpu: float
    """This process's CPU seconds (every thread)."""
    opa_cpu: float
    """The managed OPA server's CPU seconds, NaN where it cannot be read."""


def _fuzz_round(suite, n: int) -> FuzzRound:
    """One timed fuzz of ``n`` actions (seed 2026) on fresh engines, with the parse caches emptied first, so every
    round starts as the first one did: a later round never finds the shell and SQL strings already parsed."""
    parse_shell.cache_clear()
    parse_sql.cache_clear()
    _PATHS.clear()
    engines = open_engines(suite, ("yaml", "cedar", "opa"))
    server = getattr(engines["opa"], "server", None)
    pid = server.pid if server is not None else None
    try:
        opa_start, cpu_start, start = cpu_seconds(pid), time.process_time(), time.perf_counter()
        result = fuzz(suite, engines, n, seed=2026)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        # A server restarted during the round is another process: its CPU from the start is unknown.
        opa_cpu = cpu_seconds(pid) - opa_start if server is not None and server.pid == pid else float("nan")
        return FuzzRound(wall, len(result.disagreements), cpu, opa_cpu)
    finally:
        for e in engines.values():
            e.close()


def report(extra: dict[str, float], out: Callable[[str], None]) -> None:
    """The OPA ratios, printed under the table by ``python -m bench``."""
    for key, label in (("tcp", "loopback TCP"), ("unix", "unix socket")):
        if f"opa_single_over_floor_{key}" in extra:
            via = "data.agt.batch" if extra.get(f"opa_batch_via_data_agt_batch_{key}") else "single calls"
            out(f"opa, {label}: single ÷ raw http.client keep-alive POST = {extra[f'opa_single_over_floor_{key}']:.2f}× "
                f"(target ≤ 1.10×); evaluate_many of 200 per decision ÷ single = "
                f"{extra[f'opa_batch_over_single_{key}']:.2f}× via {via} (target ≤ 0.25×)")
