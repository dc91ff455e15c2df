"""The tickets of calls begun over HTTP and not yet finished, failed or abandoned: a bounded map with expiry.

A remote ``begin`` leaves the Governor's :data:`~agt.runtime.governor.Ticket` here under a random id; the
client brings the id back with the outcome. The map is bounded (a client that begins and never comes back
cannot grow the server without limit) and every ticket expires: an expired ticket is abandoned through the
Governor, so its reservation is released and the audit records the call as admitted but not run. A full
map refuses new tickets (the caller denies); it never evicts a live one, whose tool may be running.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

from agt.runtime.governor import Governor, Ticket

_log = logging.getLogger("agt.serve")
DEFAULT_TTL = 600.0
DEFAULT_CAPACITY = 10_000


class TicketTableFull(Exception):
    """No room for another open call."""


@dataclass(frozen=True)
class Held:
    id: str
    ticket: Ticket
    expires_at: float


class TicketTable:
    def __init__(self, governor: Governor, *, ttl: float = DEFAULT_TTL, capacity: int = DEFAULT_CAPACITY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not ttl > 0 or capacity < 1:
            raise ValueError("a ticket table needs a positive ttl and capacity")
        self.governor, self.ttl, self.capacity, self._clock = governor, ttl, capacity, clock
        self._lock = threading.Lock()
        self._held: dict[str, Held] = {}  # insertion order is expiry order: every ticket gets the same ttl

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def put(self, ticket: Ticket) -> Held:
        """Hold ``ticket`` under a new id; TicketTableFull when ``capacity`` calls are open and none expired."""
        self.expire()
        with self._lock:
            if len(self._held) >= self.capacity:
                raise TicketTableFull(f"{self.capacity} calls are open (begun, not finished): finish or abandon some, "
                                      "or raise --max-tickets")
            held = Held("tkt_" + secrets.token_urlsafe(18), ticket, self._clock() + self.ttl)
            self._held[held.id] = held
            return held

    def take(self, ticket_id: str) -> Ticket | None:
        """Remove and return the ticket ``ticket_id`` names; None when unknown, already closed or expired."""
        self.expire()
        with self._lock:
            held = self._held.pop(ticket_id, None) if isinstance(ticket_id, str) else None
        return held.ticket if held is not None else None

    def expire(self) -> int:
        """Abandon every expired ticket through the Governor (release, audit "not run"); how many."""
        now = self._clock()
        expired: list[Held] = []
        with self._lock:
            for held in list(self._held.values()):
                if held.expires_at > now:
                    break
                expired.append(self._held.pop(held.id))
        for held in expired:
            self._abandon(held, f"ticket expired: no finish, fail or abandon within {self.ttl:g} s")
        return len(expired)

    def abandon_all(self, reason: str) -> None:
        """At shutdown: every open call is abandoned, so no reservation outlives the service."""
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for h in held:
            self._abandon(h, reason)

    def _abandon(self, held: Held, reason: str) -> None:
        try:
            self.governor.abandon(held.ticket, reason)
        except Exception:  # noqa: BLE001 - one failed record must not keep the others' reservations
            _log.exception("could not abandon ticket %s (%s)", held.id, reason)
