"""agt serve figures (issue 15): a real ``agt serve`` process (yaml engine, starter policy), asked by RemoteEngine
and RemoteGovernor from this process.

* **Sidecar**, unix socket, one decision (``POST /v1/data/agt/decision``): p50 and p99, beside the targets
  (p50 ≤ 250 µs, p99 ≤ 500 µs); and its floor, ``GET /health`` through the same client, server and socket, so
  the transport's share of a decision is visible (what is left is parsing, validating and deciding).
* **Remote**, loopback TCP, one decision. The issue's remote shape allows 1–5 ms; loopback is its floor.
* **Runtime API**, unix socket: one ``begin`` + ``finish`` round trip (two requests, counters, audit).
* **Throughput** with 1, 4 and 16 concurrent clients over the unix socket: each client is its own process (so the
  clients do not share one GIL with each other), deciding for a fixed time; decisions/s is the total ÷ that time.

The action is what a sidecar client sends: the document RemoteEngine builds, without the derived fields
(params_text, facts) the service recomputes anyway (agt.serve.wire.action_input). Figures on a shared, loaded
machine read against the machine-speed reference printed first.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import agt
from bench.stats import Figures, measure

ROOT = Path(__file__).resolve().parents[1]
SIDECAR_P50_US, SIDECAR_P99_US = 250.0, 500.0
CLIENTS = (1, 4, 16)


def _action() -> agt.Action:
    return agt.from_call(
        "write_file", {"path": "/ws/alice/notes.md", "content": "todo"},
        agent=agt.Agent("alice", roles=("developer",), trust_score=720, attributes={"workspace": "/ws/alice"}),
        context=agt.Context(session_id="s", tokens_used=1200, tool_calls=4, files_changed=1),
    )


@contextmanager
def _agt_serve(tmp: Path, listen: list[str], token: str) -> Iterator[subprocess.Popen]:
    (tmp / "token").write_text(token)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agt.cli", "serve", "--policy", str(ROOT / "policies" / "starter.yaml"), *listen,
         "--token-file", str(tmp / "token"), "--audit-log", str(tmp / "audit")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(engine, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while engine.evaluate(_action()).is_engine_error:
        if proc.poll() is not None:
            raise RuntimeError(f"agt serve exited: {proc.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            raise RuntimeError("agt serve did not become ready")
        time.sleep(0.05)


def _decide_for(url: str, token: str, seconds: float, start_at: float, out: "multiprocessing.Queue[int]") -> None:
    from agt.client import RemoteEngine

    engine, action = RemoteEngine(url, token=token), _action()
    engine.evaluate(action)
    while time.time() < start_at:
        time.sleep(0.001)
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        if engine.evaluate(action).is_engine_error:
            raise RuntimeError("a throughput decision failed")
        n += 1
    out.put(n)


def _throughput(url: str, token: str, clients: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("fork")
    out: "multiprocessing.Queue[int]" = ctx.Queue()
    start_at = time.time() + 0.5 + 0.05 * clients
    procs = [ctx.Process(target=_decide_for, args=(url, token, seconds, start_at, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    counts = [out.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join(30)
    return sum(counts) / seconds


def run(quick: bool = False, progress: Callable[[str], None] = print) -> tuple[list[Figures], dict[str, float]]:
    from agt.client import RemoteEngine, RemoteGovernor

    samples = 1_000 if quick else 10_000
    seconds = 1.0 if quick else 3.0
    figures: list[Figures] = []
    extra: dict[str, float] = {}
    token = secrets.token_urlsafe(24)
    action = _action()
    with tempfile.TemporaryDirectory(prefix="agt-bench-serve-") as name:
        tmp = Path(name)
        sock = tmp / "run" / "agt.sock"
        progress("agt serve: sidecar over a unix socket")
        with _agt_serve(tmp, ["--unix", str(sock)], token) as proc:
            url = f"unix://{sock}"
            engine = RemoteEngine(url, token=token)
            _ready(engine, proc)
            f = measure("serve sidecar, unix socket: one decision (RemoteEngine)", lambda: engine.evaluate(action), samples)
            figures.append(f)
            extra.update(serve_sidecar_p50_us=f.p50_us, serve_sidecar_p99_us=f.p99_us)
            floor = measure("serve sidecar, unix socket: GET /health (the HTTP floor: same client, server, socket)",
                            lambda: engine._transport.request("GET", "/health"), samples)  # noqa: SLF001
            figures.append(floor)
            extra["serve_sidecar_floor_p50_us"] = floor.p50_us
            gov = RemoteGovernor(url, token=token)

            def round_trip() -> None:
                gov.finish(gov.begin("read_file", {"path": "/ws/alice/a.md"}, agent="alice", task=f"t{time.monotonic_ns()}"), "x")

            figures.append(measure("serve runtime API, unix socket: begin + finish", round_trip, samples // 5, warmup=50))
            for clients in CLIENTS:
                progress(f"agt serve: throughput, {clients} clients")
                extra[f"serve_throughput_{clients}_per_s"] = _throughput(url, token, clients, seconds)
            engine.close()
            gov.close()
        progress("agt serve: remote over loopback TCP")
        port = _free_port()
        with _agt_serve(tmp, ["--addr", f"127.0.0.1:{port}"], token) as proc:
            engine = RemoteEngine(f"http://127.0.0.1:{port}", token=token)
            _ready(engine, proc)
            f = measure("serve remote, loopback TCP: one decision (RemoteEngine)", lambda: engine.evaluate(action), samples)
            figures.append(f)
            extra.update(serve_tcp_p50_us=f.p50_us, serve_tcp_p99_us=f.p99_us)
            engine.close()
    return figures, extra


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report(extra: dict[str, float], out: Callable[[str], None]) -> None:
    """The serve figures beside their targets, printed under the table by ``python -m bench``."""
    if "serve_sidecar_p50_us" not in extra:
        return
    p50, p99 = extra["serve_sidecar_p50_us"], extra["serve_sidecar_p99_us"]
    out(f"agt serve sidecar (unix socket), one decision: p50 {p50:,.0f} µs (target ≤ {SIDECAR_P50_US:.0f} µs "
        f"{'✓' if p50 <= SIDECAR_P50_US else '✗'}), p99 {p99:,.0f} µs (target ≤ {SIDECAR_P99_US:.0f} µs "
        f"{'✓' if p99 <= SIDECAR_P99_US else '✗'})")
    if "serve_sidecar_floor_p50_us" in extra:
        floor = extra["serve_sidecar_floor_p50_us"]
        out(f"  of which the HTTP floor (GET /health, same client and socket): p50 {floor:,.0f} µs; "
            f"parsing, validating and deciding the action: {p50 - floor:,.0f} µs")
    if "serve_tcp_p50_us" in extra:
        out(f"agt serve remote (loopback TCP), one decision: p50 {extra['serve_tcp_p50_us']:,.0f} µs, "
            f"p99 {extra['serve_tcp_p99_us']:,.0f} µs (the remote shape's budget is 1–5 ms)")
    rates = [(c, extra.get(f"serve_throughput_{c}_per_s")) for c in CLIENTS]
    one = rates[0][1] or float("nan")
    out("agt serve throughput (unix socket, client processes): " + ", ".join(
        f"{c} client{'s' if c > 1 else ''} {r:,.0f}/s ({r / one:.2f}×)" for c, r in rates if r is not None)
        + f" on {os.cpu_count()} cores")
