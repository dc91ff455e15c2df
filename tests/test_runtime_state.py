"""agt.runtime.state: session counters and rate windows, in memory, in SQLite and in Redis (a real redis-server)."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agt.errors import AgtError
from agt.runtime.state import Counters, MemoryStore, RateLimit, SqliteStore


def open_store(kind: str, request, tmp_path):
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SqliteStore(tmp_path / "s.db")
    from agt.runtime.redis_state import RedisStore

    return RedisStore(request.getfixturevalue("redis_url"))


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    s = open_store(request.param, request, tmp_path)
    yield s
    s.close()


# --- counters arithmetic ---------------------------------------------------------------------------


def test_counters_of_unknown_task_are_zero(store):
    assert store.counters("nobody") == Counters(0, 0, 0)


def test_reserve_returns_counters_including_the_reservation(store):
    assert store.reserve("t", 1, 0) == Counters(0, 1, 0)
    assert store.reserve("t", 1, 1) == Counters(0, 2, 1)
    assert store.reserve("t", 3, 2) == Counters(0, 5, 3)
    assert store.counters("t") == Counters(0, 5, 3)


def test_release_undoes_a_reservation(store):
    store.reserve("t", 1, 1)
    store.reserve("t", 1, 0)
    store.release("t", 1, 0)
    assert store.counters("t") == Counters(0, 1, 1)
    store.release("t", 1, 1)
    assert store.counters("t") == Counters(0, 0, 0)


def test_add_tokens_accumulates_and_leaves_other_counters(store):
    store.reserve("t", 2, 1)
    assert store.add_tokens("t", 100) == Counters(100, 2, 1)
    assert store.add_tokens("t", 50) == Counters(150, 2, 1)
    assert store.counters("t") == Counters(150, 2, 1)


def test_tasks_have_separate_counters(store):
    store.reserve("a", 1, 0)
    store.add_tokens("b", 7)
    assert store.counters("a") == Counters(0, 1, 0)
    assert store.counters("b") == Counters(7, 0, 0)



OPS = st.lists(st.tuples(st.sampled_from(["reserve", "release", "add_tokens", "counters"]), st.sampled_from(["t", "u"]),
                         st.integers(0, 3), st.integers(0, 3)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(ops=OPS)
def test_memory_store_keeps_the_sums_of_what_it_was_given(ops):
    """Whatever mix of reservations, releases and tokens, on a task seen or not: each answer is the running
    sums, as Counters, and an answer already given never changes afterwards."""
    store, sums, answers = MemoryStore(), {}, []
    for op, task, a, b in ops:
        tokens, calls, files = sums.get(task, (0, 0, 0))
        if op == "reserve":
            sums[task] = (tokens, calls + a, files + b)
            answers.append((store.reserve(task, a, b), sums[task]))
        elif op == "release":
            sums[task] = (tokens, calls - a, files - b)
            assert store.release(task, a, b) is None
        elif op == "add_tokens":
            sums[task] = (tokens + a, calls, files)
            answers.append((store.add_tokens(task, a), sums[task]))
        else:
            answers.append((store.counters(task), sums.get(task, (0, 0, 0))))
        assert all(type(got) is Counters and tuple(got) == want for got, want in answers)

# --- RateLimit.parse -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "window"),
    [
        ("100/hour", 100, 3600.0),
        ("5/minute", 5, 60.0),
        ("10/30s", 10, 30.0),
        ("1/second", 1, 1.0),
        ("2/day", 2, 86400.0),
        ("7/hours", 7, 3600.0),
        (" 3 / 2 min ", 3, 120.0),
    ],
)
def test_rate_limit_parse_accepts(text, count, window):
    assert RateLimit.parse(text) == RateLimit(count, window)


@pytest.mark.parametrize("text", ["", "abc", "100", "100/", "/hour", "100/fortnight", "-1/hour", "1.5/hour", "100 per hour"])
def test_rate_limit_parse_rejects_with_agt_error(text):
    with pytest.raises(AgtError, match="rate limit"):
        RateLimit.parse(text)


@pytest.mark.parametrize("text", ["2/0s", "2/0 minutes", "0/hour", "0/0s", "1/" + "9" * 400 + "d"])
def test_rate_limit_parse_rejects_a_zero_window_or_count(text):
    with pytest.raises(AgtError, match="rate limit"):
        RateLimit.parse(text)


@pytest.mark.parametrize(("count", "window"), [(0, 60.0), (-1, 60.0), (1, 0.0), (1, -5.0), (1, float("nan")), (1, float("inf"))])
def test_rate_limit_refuses_a_limit_that_limits_nothing(count, window):
    with pytest.raises(AgtError, match="rate limit needs"):
        RateLimit(count, window)


# --- hit_rate sliding window -----------------------------------------------------------------------


def test_hit_rate_admits_up_to_the_limit(store):
    limit = RateLimit(3, 10.0)
    assert [store.hit_rate("k", limit, now=t) for t in (100.0, 101.0, 102.0)] == [(True, 1), (True, 2), (True, 3)]


def test_hit_rate_refuses_the_event_over_the_limit(store):
    limit = RateLimit(3, 10.0)
    for t in (100.0, 101.0, 102.0):
        store.hit_rate("k", limit, now=t)
    assert store.hit_rate("k", limit, now=103.0) == (False, 3)
    assert store.hit_rate("k", limit, now=109.9) == (False, 3)


def test_hit_rate_admits_again_once_the_oldest_event_leaves_the_window(store):
    limit = RateLimit(3, 10.0)
    for t in (100.0, 101.0, 102.0):
        store.hit_rate("k", limit, now=t)
    assert store.hit_rate("k", limit, now=110.0) == (True, 3)  # the event at 100 has left
    assert store.hit_rate("k", limit, now=110.5) == (False, 3)  # 101, 102, 110 are in the window
    assert store.hit_rate("k", limit, now=112.0) == (True, 2)  # 110 and 112


def test_hit_rate_refused_events_are_not_counted(store):
    limit = RateLimit(1, 10.0)
    assert store.hit_rate("k", limit, now=0.0) == (True, 1)
    for t in (1.0, 5.0, 9.0):  # refused attempts must not extend the window
        assert store.hit_rate("k", limit, now=t)[0] is False
    assert store.hit_rate("k", limit, now=10.0) == (True, 1)


def test_hit_rate_keys_are_independent(store):
    limit = RateLimit(1, 60.0)
    assert store.hit_rate("a", limit, now=0.0)[0] is True
    assert store.hit_rate("b", limit, now=0.0)[0] is True
    assert store.hit_rate("a", limit, now=1.0)[0] is False


# --- persistence (SQLite) --------------------------------------------------------------------------


def test_sqlite_counters_survive_reopen(tmp_path):
    path = tmp_path / "s.db"
    s = SqliteStore(path)
    s.reserve("t", 1, 1)
    s.reserve("t", 1, 0)
    s.add_tokens("t", 40)
    s.close()
    again = SqliteStore(path)
    try:
        assert again.counters("t") == Counters(40, 2, 1)
        assert again.reserve("t", 1, 0) == Counters(40, 3, 1)
    finally:
        again.close()


def test_sqlite_rate_events_survive_reopen(tmp_path):
    path = tmp_path / "s.db"
    limit = RateLimit(2, 60.0)
    s = SqliteStore(path)
    s.hit_rate("k", limit, now=0.0)
    s.hit_rate("k", limit, now=1.0)
    s.close()
    again = SqliteStore(path)
    try:
        assert again.hit_rate("k", limit, now=2.0) == (False, 2)
        assert again.hit_rate("k", limit, now=60.0) == (True, 2)
    finally:
        again.close()


# --- concurrency -----------------------------------------------------------------------------------


def _hammer(store, threads: int, per_thread: int) -> None:
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                store.reserve("shared", 1, 0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []


def test_memory_store_concurrent_reserves_lose_no_updates():
    store = MemoryStore()
    _hammer(store, 8, 1_000)
    assert store.counters("shared").tool_calls == 8_000


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_shared_store_concurrent_reserves_lose_no_updates(kind, request, tmp_path):
    store = open_store(kind, request, tmp_path)
    _hammer(store, 8, 200)
    assert store.counters("shared").tool_calls == 1_600
    store.close()


def _process_worker(where: str, n: int) -> None:
    from agt.runtime.backends import open_state

    state = open_state(where)
    for _ in range(n):
        state.store.reserve("shared", 1, 0)
    state.close()


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_shared_store_two_processes_reach_the_exact_total(kind, request, tmp_path):
    from agt.runtime.backends import open_state

    where = f"sqlite://{tmp_path}/s.db" if kind == "sqlite" else request.getfixturevalue("redis_url")
    open_state(where).close()  # create the schema before the processes race
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_worker, args=(where, 200)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    state = open_state(where)
    try:
        assert state.store.counters("shared").tool_calls == 400
    finally:
        state.close()
