"""Redis-backed runtime state (issue 15, part 4): reserve and release per call, beside the floor, a raw redis-py
INCRBY round trip on the same connection pool. Also the kill-switch check (local view vs a Redis read) and a
whole governed call on Redis state.

Runs a throwaway redis-server (no persistence) on a free loopback port; without redis-server the section is
skipped with the reason (`make redis` installs it)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from bench.stats import Figures, measure

ROOT = Path(__file__).resolve().parents[1]


def _server(tmp: Path):
    sys.path.insert(0, str(ROOT / "tests"))  # one redis-server launcher, shared with the test suite
    from redis_server import RedisServer, find_redis_server

    binary = find_redis_server()
    return None if binary is None else RedisServer(binary, tmp).start()


def run(quick: bool = False, progress: Callable[[str], None] = print) -> tuple[list[Figures], dict[str, float]]:
    samples = 2_000 if quick else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        server = _server(Path(tmp))
        if server is None:
            progress("redis: redis-server not installed, skipped (`make redis`)")
            return [], {}
        try:
            return _measure(server, samples, progress)
        finally:
            server.stop(kill=False)


def _measure(server, samples: int, progress: Callable[[str], None]) -> tuple[list[Figures], dict[str, float]]:
    import agt
    from agt.runtime import Governor
    from agt.runtime.backends import open_state
    from agt.runtime.redis_trust import RedisTrust

    figures: list[Figures] = []
    state = open_state(server.url_with(prefix="bench"))
    client = state.store._redis  # noqa: SLF001 - the floor uses the very pool the store uses
    progress("redis: raw INCRBY round trip (the floor)")
    floor = measure("redis: raw redis-py INCRBY round trip (the floor)", lambda: client.incrby("bench:floor", 1), samples)
    figures.append(floor)

    progress("redis: reserve + release")
    store = state.store

    def reserve_release() -> None:
        store.reserve("bench-task", 1, 0)
        store.release("bench-task", 1, 0)

    pair = measure("redis: RedisStore reserve + release (two Lua scripts, once-markers)", reserve_release, samples)
    figures.append(pair)
    figures.append(measure("redis: RedisStore reserve alone", lambda: store.reserve("bench-reserve", 1, 0), samples))

    progress("redis: kill-switch check")
    trust = state.trust
    deadline = time.monotonic() + 10
    while not trust.backend.subscribed and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.01)
    figures.append(measure("redis: kill-switch check, pub/sub-fed view (fresh)", lambda: trust.is_killed("alice"), samples))
    reading = RedisTrust(server.url_with(prefix="bench", kill_staleness="0"))
    figures.append(measure("redis: kill-switch check, read from Redis (kill_staleness=0)",
                           lambda: reading.is_killed("alice"), samples))
    reading.close()

    progress("redis: governed call on Redis state")
    gov = Governor("yaml", str(ROOT / "policies" / "starter.yaml"), store=state.store, approvals=state.approvals,
                   trust=state.trust)
    gov.register_agent(agt.Agent("alice", roles=("developer",), trust_score=720, attributes={"workspace": "/ws/alice"}))
    counter = [0]

    def one() -> None:
        counter[0] += 1  # a new task every 15 calls, so the 20-call budget never trips
        gov.call(lambda path: "ok", ("/ws/alice/README.md",), tool="read_file", agent="alice", session=f"bench-{counter[0] // 15}")

    figures.append(measure("runtime: governed call, yaml engine, Redis state (counters, trust, kill switch)", one, samples // 4))
    state.close()
    extra = {"redis_reserve_release_p50_us": pair.p50_us, "redis_incrby_floor_p50_us": floor.p50_us,
             "redis_reserve_release_over_floor_p50": pair.p50_us / floor.p50_us}
    return figures, extra


def report(extra: dict[str, float], say: Callable[[str], None]) -> None:
    if "redis_reserve_release_over_floor_p50" in extra:
        say(f"redis reserve + release (2 round trips) vs one raw INCRBY round trip, p50: "
            f"{extra['redis_reserve_release_p50_us']:,.0f} µs vs {extra['redis_incrby_floor_p50_us']:,.0f} µs "
            f"({extra['redis_reserve_release_over_floor_p50']:.1f}× the floor; 2× is the two round trips alone)")
