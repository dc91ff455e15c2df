"""open_state: one URL names where the runtime keeps counters, approvals and trust (memory, SQLite, Redis)."""

import pytest

from agt.errors import AgtError
from agt.runtime.approvals import MemoryApprovals, SqliteApprovals
from agt.runtime.backends import open_state
from agt.runtime.redis_state import RedisApprovals, RedisStore
from agt.runtime.redis_trust import RedisTrust
from agt.runtime.state import MemoryStore, SqliteStore


@pytest.mark.parametrize("url", [None, "", "memory", "memory://"])
def test_memory_is_the_default(url):
    state = open_state(url)
    assert isinstance(state.store, MemoryStore) and isinstance(state.approvals, MemoryApprovals)


def test_sqlite_url_opens_one_file_that_a_second_opening_shares(tmp_path):
    url = f"sqlite://{tmp_path}/nested/state.db"
    first = open_state(url)
    assert isinstance(first.store, SqliteStore) and isinstance(first.approvals, SqliteApprovals)
    first.store.reserve("task", 2, 0)
    second = open_state(url)
    assert second.store.counters("task").tool_calls == 2
    first.close()
    second.close()


@pytest.mark.parametrize("url", ["mysql://db/agt", "sqlite://", "sqlite:///tmp/dir/", "state.db", "redis:///0"])
def test_unknown_or_incomplete_url_names_it(url):
    with pytest.raises(AgtError, match="state URL"):
        open_state(url)


def test_open_state_opens_the_three_redis_stores_and_shows_the_url_redacted(redis_server):
    url = redis_server.unique_url().replace("redis://", "redis://default:unused@")
    state = open_state(url)
    try:
        assert isinstance(state.store, RedisStore) and isinstance(state.approvals, RedisApprovals)
        assert isinstance(state.trust.backend, RedisTrust)
        assert ":***@" in state.url and "unused" not in state.url
    finally:
        state.close()


def test_open_state_options_override_the_url_and_belong_to_redis_only(redis_server):
    state = open_state(redis_server.url, prefix="from-kwarg")
    state.store.reserve("t", 1, 0)
    assert redis_server.client().exists("from-kwarg:counters:t") == 1
    state.close()
    with pytest.raises(AgtError, match="apply to a Redis state URL only"):
        open_state("memory", prefix="x")
