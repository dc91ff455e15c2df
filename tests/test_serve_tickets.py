"""agt.serve.tickets: the bounded map of open calls, with expiry through the Governor (a controlled clock)."""

from __future__ import annotations

import pytest

from agt.serve.tickets import TicketTable, TicketTableFull
from serve_helpers import decisions, starter_governor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def table():
    gov = starter_governor()
    clock = Clock()
    yield TicketTable(gov, ttl=10, capacity=2, clock=clock), gov, clock
    gov.close()


def begin(gov, task: str = "t"):
    return gov.begin("read_file", {"path": "/ws/a/x"}, agent="a", task=task)


def test_a_held_ticket_is_taken_once(table):
    tickets, gov, _ = table
    held = tickets.put(begin(gov))
    assert tickets.take(held.id) is held.ticket
    assert tickets.take(held.id) is None


def test_an_unknown_id_takes_nothing(table):
    tickets, _, _ = table
    assert tickets.take("tkt_nope") is None and tickets.take(5) is None  # type: ignore[arg-type]


def test_ids_are_unguessable_and_distinct(table):
    tickets, gov, _ = table
    a, b = tickets.put(begin(gov)), tickets.put(begin(gov))
    assert a.id != b.id and len(a.id) >= 24


def test_an_expired_ticket_is_abandoned_and_released(table):
    tickets, gov, clock = table
    held = tickets.put(begin(gov, "exp"))
    clock.now += 11
    assert tickets.expire() == 1
    assert gov.store.counters("exp").tool_calls == 0
    assert decisions(gov)[-1].result["tool_error"] == "not run: ticket expired: no finish, fail or abandon within 10 s"
    assert tickets.take(held.id) is None


def test_a_live_ticket_does_not_expire(table):
    tickets, gov, clock = table
    held = tickets.put(begin(gov))
    clock.now += 9
    assert tickets.expire() == 0 and tickets.take(held.id) is held.ticket


def test_a_full_table_refuses_and_never_evicts_a_live_ticket(table):
    tickets, gov, _ = table
    first = tickets.put(begin(gov))
    tickets.put(begin(gov))
    with pytest.raises(TicketTableFull):
        tickets.put(begin(gov))
    assert tickets.take(first.id) is first.ticket


def test_room_made_by_expiry_is_used(table):
    tickets, gov, clock = table
    tickets.put(begin(gov))
    tickets.put(begin(gov))
    clock.now += 11
    assert tickets.put(begin(gov)).id and len(tickets) == 1


def test_abandon_all_releases_every_open_call(table):
    tickets, gov, _ = table
    tickets.put(begin(gov, "all"))
    tickets.put(begin(gov, "all"))
    tickets.abandon_all("stopping")
    assert len(tickets) == 0 and gov.store.counters("all").tool_calls == 0
