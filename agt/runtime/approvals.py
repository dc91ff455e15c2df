"""require_approval as a workflow: a pending request with approvers, a quorum and a deadline.

A request is approved once ``quorum`` distinct listed approvers approve it, denied as soon as one of them
denies it, and expired (which counts as a deny) when its deadline passes first. The SQLite store lets
another process (``agt approvals approve ID``) resolve a request a governed call is waiting on.
"""

from __future__ import annotations

import asyncio
import enum
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from agt import _json
from agt._sqlite import ThreadConnections, write_transaction
from agt.errors import AgtError


class ApprovalStatus(str, enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


class ApprovalError(AgtError):
    pass


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    agent_id: str
    tool: str
    rule_ids: tuple[str, ...]
    approvers: tuple[str, ...]
    quorum: int
    created_at: float
    expires_at: float
    action: dict = field(repr=False, compare=False, default_factory=dict)
    status: ApprovalStatus = ApprovalStatus.PENDING
    approvals: tuple[str, ...] = ()
    denied_by: str | None = None
    note: str = ""

    def current(self, now: float) -> "ApprovalRequest":
        """This request with expiry applied."""
        if self.status is ApprovalStatus.PENDING and now >= self.expires_at:
            return _replace(self, status=ApprovalStatus.EXPIRED)
        return self

    def to_dict(self) -> dict:
        return {
            "id": self.id, "agent_id": self.agent_id, "tool": self.tool, "rule_ids": list(self.rule_ids),
            "approvers": list(self.approvers), "quorum": self.quorum, "created_at": self.created_at,
            "expires_at": self.expires_at, "status": self.status.value, "approvals": list(self.approvals),
            "denied_by": self.denied_by, "note": self.note, "action": self.action,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ApprovalRequest":
        # Stored JSON is read with exact decimals (for the action's params); times are floats.
        return cls(
            id=d["id"], agent_id=d["agent_id"], tool=d["tool"], rule_ids=tuple(d["rule_ids"]),
            approvers=tuple(d["approvers"]), quorum=d["quorum"], created_at=float(d["created_at"]),
            expires_at=float(d["expires_at"]), action=d.get("action") or {}, status=ApprovalStatus(d["status"]),
            approvals=tuple(d["approvals"]), denied_by=d.get("denied_by"), note=d.get("note", ""),
        )


def _replace(req: ApprovalRequest, **changes: object) -> ApprovalRequest:
    from dataclasses import replace

    return replace(req, **changes)  # type: ignore[arg-type]


def _vote(req: ApprovalRequest, approver: str, approve: bool, note: str, now: float) -> ApprovalRequest:
    req = req.current(now)
    if req.status is not ApprovalStatus.PENDING:
        raise ApprovalError(f"request {req.id} is already {req.status.value}")
    if req.approvers and approver not in req.approvers:
        raise ApprovalError(f"{approver!r} is not an approver of {req.id}; approvers: {', '.join(req.approvers)}")
    if not approve:
        return _replace(req, status=ApprovalStatus.DENIED, denied_by=approver, note=note)
    approvals = tuple(sorted(set(req.approvals) | {approver}))
    status = ApprovalStatus.APPROVED if len(approvals) >= req.quorum else ApprovalStatus.PENDING
    return _replace(req, approvals=approvals, status=status, note=note or req.note)


class ApprovalStore(Protocol):
    def create(self, req: ApprovalRequest) -> None: ...

    def get(self, request_id: str) -> ApprovalRequest: ...

    def list(self, status: ApprovalStatus | None = None) -> list[ApprovalRequest]: ...

    def vote(self, request_id: str, approver: str, approve: bool, note: str = "") -> ApprovalRequest: ...


class MemoryApprovals:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Condition()
        self._items: dict[str, ApprovalRequest] = {}

    def create(self, req: ApprovalRequest) -> None:
        with self._lock:
            self._items[req.id] = req

    def get(self, request_id: str) -> ApprovalRequest:
        with self._lock:
            try:
                return self._items[request_id].current(self._clock())
            except KeyError:
                raise ApprovalError(f"no approval request {request_id!r}") from None

    def list(self, status: ApprovalStatus | None = None) -> list[ApprovalRequest]:
        with self._lock:
            now = self._clock()
            items = [r.current(now) for r in self._items.values()]
        return sorted((r for r in items if status is None or r.status is status), key=lambda r: r.created_at)

    def vote(self, request_id: str, approver: str, approve: bool, note: str = "") -> ApprovalRequest:
        with self._lock:
            req = self.get(request_id)
            req = _vote(req, approver, approve, note, self._clock())
            self._items[request_id] = req
            self._lock.notify_all()
            return req

    def wait_for_change(self, timeout: float) -> None:
        with self._lock:
            self._lock.wait(timeout)


class SqliteApprovals:
    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self._clock = clock
        self._connections = ThreadConnections(path)
        self._conn().execute(
            "CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, created_at REAL NOT NULL, body TEXT NOT NULL)"
        )

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def create(self, req: ApprovalRequest) -> None:
        self._conn().execute(
            "INSERT INTO approvals (id, created_at, body) VALUES (?, ?, ?)", (req.id, req.created_at, _json.dumps(req.to_dict()))
        )

    def get(self, request_id: str) -> ApprovalRequest:
        row = self._conn().execute("SELECT body FROM approvals WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise ApprovalError(f"no approval request {request_id!r} in {self.path}")
        return ApprovalRequest.from_dict(_json.loads(row[0])).current(self._clock())

    def list(self, status: ApprovalStatus | None = None) -> list[ApprovalRequest]:
        rows = self._conn().execute("SELECT body FROM approvals ORDER BY created_at").fetchall()
        now = self._clock()
        items = [ApprovalRequest.from_dict(_json.loads(b)).current(now) for (b,) in rows]
        return [r for r in items if status is None or r.status is status]

    def vote(self, request_id: str, approver: str, approve: bool, note: str = "") -> ApprovalRequest:
        with write_transaction(self._conn()) as db:
            req = _vote(self.get(request_id), approver, approve, note, self._clock())
            db.execute("UPDATE approvals SET body = ? WHERE id = ?", (_json.dumps(req.to_dict()), request_id))
        return req


def new_request(
    agent_id: str, tool: str, rule_ids: tuple[str, ...], approvers: tuple[str, ...], quorum: int, timeout: float,
    action: dict, now: float,
) -> ApprovalRequest:
    return ApprovalRequest(
        id="apr_" + uuid.uuid4().hex[:16], agent_id=agent_id, tool=tool, rule_ids=rule_ids, approvers=approvers,
        quorum=max(1, min(quorum, len(approvers)) if approvers else quorum), created_at=now, expires_at=now + timeout,
        action=action,
    )


def wait(store: ApprovalStore, request_id: str, poll: float = 0.05, clock: Callable[[], float] = time.time) -> ApprovalRequest:
    """Block until the request is resolved or expires."""
    while True:
        req = store.get(request_id)
        if req.status is not ApprovalStatus.PENDING:
            return req
        delay = max(0.0, min(poll, req.expires_at - clock()))
        if isinstance(store, MemoryApprovals):
            store.wait_for_change(delay or poll)
        else:
            time.sleep(delay or poll)


async def wait_async(store: ApprovalStore, request_id: str, poll: float = 0.05, clock: Callable[[], float] = time.time) -> ApprovalRequest:
    while True:
        req = store.get(request_id)
        if req.status is not ApprovalStatus.PENDING:
            return req
        await asyncio.sleep(max(0.001, min(poll, req.expires_at - clock())))
