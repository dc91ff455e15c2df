"""open_state: one URL names where the runtime keeps counters, approvals and trust."""

import pytest

from agt.errors import AgtError
from agt.runtime.approvals import MemoryApprovals, SqliteApprovals
from agt.runtime.backends import open_state
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


@pytest.mark.parametrize("url", ["mysql://db/agt", "sqlite://", "sqlite:///tmp/dir/", "state.db"])
def test_unknown_or_incomplete_url_names_it(url):
    with pytest.raises(AgtError, match="state URL"):
        open_state(url)
