"""require_approval as a workflow: a request, signed votes on it, and a status only the runtime computes.

A store (memory, or SQLite so that ``agt approvals approve ID`` in another process can reach it) holds each
request and the signed votes cast on it. The store is untrusted: the governed agent can write to it. So it
holds no status. :func:`tally` computes one from the votes that verify against an
:class:`~agt.runtime.approvers.ApproverRegistry`, for terms (:class:`Terms`) the caller trusts:

* approved once ``quorum`` distinct eligible approvers approved, until the request's deadline or, with an
  ``approval_validity``, that many seconds after the quorum was reached (and never past a counted vote's own
  expiry);
* denied by one verified deny;
* expired when the deadline passes first;
* consumed once the call it approved ran: an approval is single-use.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from agt import _json
from agt._sqlite import ThreadConnections, write_transaction
from agt.errors import AgtError
from agt.identity import IdentityKeys
from agt.runtime.approvers import ApproverRegistry
from agt.runtime.votes import MalformedVoteError, SignedVote, VoteCheck, check_vote, sign_vote

MAX_VOTES = 256
"""Votes read per request; a flood of junk votes written into the store cannot make a tally slow."""
DEFAULT_VOTE_VALIDITY = 3600.0
"""How long a vote counts unless the approver says otherwise (``--valid-for``)."""
MAX_FUTURE_SKEW = 30.0


class ApprovalStatus(str, enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CONSUMED = "consumed"


class ApprovalError(AgtError):
    pass


@dataclass(frozen=True)
class ApprovalRequest:
    """A request as stored: what the Governor asked, and the raw vote envelopes cast on it. Nothing in here is
    evidence of approval by itself."""

    id: str
    agent_id: str
    tool: str
    rule_ids: tuple[str, ...]
    approvers: tuple[str, ...]
    quorum: int
    created_at: float
    expires_at: float
    action: dict = field(repr=False, compare=False, default_factory=dict)
    votes: tuple[Any, ...] = field(repr=False, default=())
    consumed_at: float | None = None

    @property
    def digest(self) -> str:
        digest = self.action.get("digest") if isinstance(self.action, dict) else None
        return digest if isinstance(digest, str) else ""

    def tampering(self) -> str | None:
        """Why the stored action is not the call this request was opened for, or None. The store is
        untrusted: an approver must never be shown one call and sign the digest of another."""
        document = self.action.get("document") if isinstance(self.action, dict) else None
        try:
            from agt.action import Action

            action = Action.from_dict(document)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - an unreadable document is as bad as an edited one
            return f"its stored action cannot be read ({type(exc).__name__}: {exc})"
        if action_digest(action) != self.digest:
            return "its stored action does not match the digest of the call it was opened for"
        if (action.agent.id, action.action.tool) != (self.agent_id, self.tool):
            return "its agent or tool differs from the stored action's"
        return None

    def to_dict(self) -> dict:
        return {
            "id": self.id, "agent_id": self.agent_id, "tool": self.tool, "rule_ids": list(self.rule_ids),
            "approvers": list(self.approvers), "quorum": self.quorum, "created_at": self.created_at,
            "expires_at": self.expires_at, "action": self.action,
        }

    @classmethod
    def from_dict(cls, d: Any, votes: tuple[Any, ...] = (), consumed_at: float | None = None) -> "ApprovalRequest":
        """Parse a stored request; anything malformed is an :class:`ApprovalError` (so it denies)."""
        try:
            req = cls(
                id=str(d["id"]), agent_id=str(d["agent_id"]), tool=str(d["tool"]), rule_ids=tuple(map(str, d["rule_ids"])),
                approvers=tuple(map(str, d["approvers"])), quorum=int(d["quorum"]), created_at=float(d["created_at"]),
                expires_at=float(d["expires_at"]), action=dict(d.get("action") or {}), votes=votes, consumed_at=consumed_at,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ApprovalError(f"malformed approval request in the store: {type(exc).__name__}: {exc}") from None
        return req


@dataclass(frozen=True)
class Terms:
    """What a tally trusts about a request. The Governor builds these from its own record and from the call
    being made, never from the store alone: approvers and quorum come from the policy and its configuration,
    the digest from the action, the deadline from when it created the request."""

    request_id: str
    agent_id: str
    digest: str
    approvers: tuple[str, ...]
    quorum: int
    deadline: float
    agent_did: str | None = None

    @classmethod
    def of(cls, req: ApprovalRequest, agent_did: str | None = None) -> "Terms":
        """Terms as the store states them: for display (``agt approvals list``), not for enforcement."""
        return cls(req.id, req.agent_id, req.digest, req.approvers, req.quorum, req.expires_at, agent_did)


@dataclass(frozen=True)
class Tally:
    status: ApprovalStatus
    approvals: tuple[str, ...] = ()
    denied_by: str | None = None
    approved_at: float | None = None
    valid_until: float | None = None
    ignored: tuple[str, ...] = ()
    note: str = ""

    def to_dict(self) -> dict:
        return {"status": self.status.value, "approvals": list(self.approvals), "denied_by": self.denied_by,
                "approved_at": self.approved_at, "valid_until": self.valid_until, "ignored": list(self.ignored),
                "note": self.note}


def eligible_approvers(listed: tuple[str, ...], registry: ApproverRegistry) -> tuple[str, ...]:
    """A rule's approvers, or, for a rule that names none, every approver configured on the Governor."""
    return listed if listed else registry.names


def effective_quorum(quorum: int, eligible: tuple[str, ...]) -> int:
    return max(1, min(quorum, len(eligible))) if eligible else max(1, quorum)


def tally(
    terms: Terms, votes: tuple[Any, ...], registry: ApproverRegistry | None, now: float, *,
    approval_validity: float | None = None, consumed: bool = False, max_future_skew: float = MAX_FUTURE_SKEW,
) -> Tally:
    """The status of a request, from the votes that verify. Without a registry, no vote verifies."""
    registry = registry or ApproverRegistry(source="<none>")
    eligible = eligible_approvers(terms.approvers, registry)
    ignored: list[str] = []
    if len(votes) > MAX_VOTES:
        ignored.append(f"{len(votes) - MAX_VOTES} votes beyond the first {MAX_VOTES} ignored")
    first_approval: dict[str, SignedVote] = {}
    for doc in votes[:MAX_VOTES]:
        check = verify_vote(terms, doc, registry, now, max_future_skew=max_future_skew, eligible=eligible)
        vote = check.vote
        if vote is None:
            ignored.append(str(check.problem))
        elif not vote.approve:
            return Tally(ApprovalStatus.DENIED, denied_by=vote.approver, ignored=tuple(ignored), note=vote.note)
        elif vote.approver not in first_approval or vote.issued_at < first_approval[vote.approver].issued_at:
            first_approval[vote.approver] = vote
    counted = sorted(first_approval.values(), key=lambda v: v.issued_at)
    approvals = tuple(sorted(first_approval))
    quorum = effective_quorum(terms.quorum, eligible)
    if len(counted) >= quorum:
        deciding = counted[:quorum]
        approved_at = deciding[-1].issued_at
        until = approved_at + approval_validity if approval_validity is not None else terms.deadline
        until = min([until, *(v.expires_at for v in deciding)])
        note = deciding[-1].note
        if consumed:
            return Tally(ApprovalStatus.CONSUMED, approvals, None, approved_at, until, tuple(ignored), note)
        status = ApprovalStatus.APPROVED if now < until else ApprovalStatus.EXPIRED
        return Tally(status, approvals, None, approved_at, until, tuple(ignored), note)
    status = ApprovalStatus.EXPIRED if now >= terms.deadline else ApprovalStatus.PENDING
    return Tally(status, approvals, ignored=tuple(ignored))


def verify_vote(
    terms: Terms, doc: object, registry: ApproverRegistry | None, now: float, *,
    max_future_skew: float = MAX_FUTURE_SKEW, eligible: tuple[str, ...] | None = None,
) -> VoteCheck:
    """Whether the vote envelope ``doc`` counts for a request held to ``terms`` (agt.runtime.votes.check_vote):
    what a tally asks of every stored vote, and what ``agt serve`` asks of a vote before it stores it."""
    registry = registry or ApproverRegistry(source="<none>")
    if eligible is None:
        eligible = eligible_approvers(terms.approvers, registry)
    return check_vote(doc, registry, request_id=terms.request_id, digest=terms.digest, agent_id=terms.agent_id,
                      agent_did=terms.agent_did, eligible=eligible, deadline=terms.deadline, now=now,
                      max_future_skew=max_future_skew)


class ApprovalStore(Protocol):
    def create(self, req: ApprovalRequest) -> None: ...

    def get(self, request_id: str) -> ApprovalRequest: ...

    def list(self) -> list[ApprovalRequest]: ...

    def add_vote(self, request_id: str, vote: SignedVote) -> None: ...

    def consume(self, request_id: str, at: float) -> bool:
        """Mark the request used; False if it already was."""
        ...


class MemoryApprovals:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._items: dict[str, ApprovalRequest] = {}

    def create(self, req: ApprovalRequest) -> None:
        with self._lock:
            self._items[req.id] = req

    def get(self, request_id: str) -> ApprovalRequest:
        with self._lock:
            try:
                return self._items[request_id]
            except KeyError:
                raise ApprovalError(f"no approval request {request_id!r}") from None

    def list(self) -> list[ApprovalRequest]:
        with self._lock:
            return sorted(self._items.values(), key=lambda r: r.created_at)

    def add_vote(self, request_id: str, vote: SignedVote) -> None:
        from dataclasses import replace

        with self._lock:
            req = self.get(request_id)
            self._items[request_id] = replace(req, votes=(*req.votes, vote.to_dict()))
            self._lock.notify_all()

    def consume(self, request_id: str, at: float) -> bool:
        from dataclasses import replace

        with self._lock:
            req = self.get(request_id)
            if req.consumed_at is not None:
                return False
            self._items[request_id] = replace(req, consumed_at=at)
            return True

    def wait_for_change(self, timeout: float) -> None:
        with self._lock:
            self._lock.wait(timeout)


class SqliteApprovals:
    """Requests, votes and uses in three tables; votes are appended, never rewritten."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._connections = ThreadConnections(path)
        db = self._conn()
        db.execute("CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, created_at REAL NOT NULL, body TEXT NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS approval_votes (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                   "request_id TEXT NOT NULL, body TEXT NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS approval_uses (request_id TEXT PRIMARY KEY, at REAL NOT NULL)")

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def create(self, req: ApprovalRequest) -> None:
        self._conn().execute(
            "INSERT INTO approvals (id, created_at, body) VALUES (?, ?, ?)", (req.id, req.created_at, _json.dumps(req.to_dict()))
        )

    def _load(self, body: str) -> ApprovalRequest:
        try:
            doc = _json.loads(body)  # exact decimals, for the action's params
        except (TypeError, ValueError, RecursionError) as exc:
            raise ApprovalError(f"malformed approval request in {self.path}: {exc}") from None
        request_id = doc.get("id") if isinstance(doc, dict) else None
        db = self._conn()
        votes = []
        for (text,) in db.execute("SELECT body FROM approval_votes WHERE request_id = ? ORDER BY seq LIMIT ?",
                                  (request_id, MAX_VOTES + 1)):
            try:
                votes.append(json.loads(text))
            except (TypeError, ValueError):
                votes.append(text)  # tally reports it as malformed
        used = db.execute("SELECT at FROM approval_uses WHERE request_id = ?", (request_id,)).fetchone()
        return ApprovalRequest.from_dict(doc, tuple(votes), used[0] if used else None)

    def get(self, request_id: str) -> ApprovalRequest:
        row = self._conn().execute("SELECT body FROM approvals WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise ApprovalError(f"no approval request {request_id!r} in {self.path}")
        return self._load(row[0])

    def list(self) -> list[ApprovalRequest]:
        rows = self._conn().execute("SELECT body FROM approvals ORDER BY created_at").fetchall()
        return [self._load(b) for (b,) in rows]

    def add_vote(self, request_id: str, vote: SignedVote) -> None:
        with write_transaction(self._conn()) as db:
            if db.execute("SELECT 1 FROM approvals WHERE id = ?", (request_id,)).fetchone() is None:
                raise ApprovalError(f"no approval request {request_id!r} in {self.path}")
            db.execute("INSERT INTO approval_votes (request_id, body) VALUES (?, ?)", (request_id, json.dumps(vote.to_dict())))

    def consume(self, request_id: str, at: float) -> bool:
        cur = self._conn().execute("INSERT OR IGNORE INTO approval_uses (request_id, at) VALUES (?, ?)", (request_id, at))
        return cur.rowcount == 1


def new_request(
    agent_id: str, tool: str, rule_ids: tuple[str, ...], approvers: tuple[str, ...], quorum: int, timeout: float,
    action: dict, now: float,
) -> ApprovalRequest:
    return ApprovalRequest(
        id="apr_" + uuid.uuid4().hex[:16], agent_id=agent_id, tool=tool, rule_ids=rule_ids, approvers=approvers,
        quorum=effective_quorum(quorum, approvers), created_at=now, expires_at=now + timeout, action=action,
    )


def action_digest(action: Any) -> str:
    """What a vote is bound to: the agent, the tool, the params and the resource of one call."""
    doc = {"agent": action.agent.id, "tool": action.action.tool, "params": dict(action.action.params),
           "resource": action.resource.to_dict() if action.resource else None}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def cast_vote(
    store: ApprovalStore, request_id: str, keys: IdentityKeys, approve: bool, *, note: str = "",
    valid_for: float = DEFAULT_VOTE_VALIDITY, registry: ApproverRegistry | None = None,
    resolve_agent: Callable[[str], str | None] | None = None, clock: Callable[[], float] = time.time,
) -> SignedVote:
    """Sign a vote on ``request_id`` with ``keys`` (the approver's own key) and add it to the store.

    Refuses, with an :class:`ApprovalError`, what the runtime would ignore anyway: a vote by the requesting
    agent (by name, or by key when ``resolve_agent`` gives the agent's did), by someone the request does not
    list, and a vote on a request that is over. ``registry`` (the public keys) lets it see votes already cast."""
    req = store.get(request_id)
    now = clock()
    if not valid_for > 0:
        raise ApprovalError("--valid-for must be a positive number of seconds")
    _refuse_unvotable(req, keys.agent_id, keys.did, approve, registry, resolve_agent, now)
    try:
        vote = sign_vote(keys, request_id=req.id, digest=req.digest, agent_id=req.agent_id, approve=approve,
                         issued_at=now, expires_at=now + valid_for, note=note)
    except ValueError as exc:
        raise ApprovalError(str(exc)) from None
    store.add_vote(req.id, vote)
    return vote


def submit_vote(
    store: ApprovalStore, request_id: str, doc: object, registry: ApproverRegistry | None, *,
    resolve_agent: Callable[[str], str | None] | None = None, clock: Callable[[], float] = time.time,
) -> SignedVote:
    """Add a vote the approver signed elsewhere (the dashboard: in the browser, with a key this process never
    holds). ``doc`` is the vote envelope (:meth:`SignedVote.to_dict`). It is refused, with an
    :class:`ApprovalError` naming why, unless it verifies now with :func:`check_vote` against ``registry`` for
    this request, and passes the refusals of :func:`cast_vote`. The Governor still tallies it itself."""
    try:
        vote = SignedVote.from_dict(doc)
    except MalformedVoteError as exc:
        raise ApprovalError(f"not a vote envelope: {exc}") from None
    req = store.get(request_id)
    now = clock()
    _refuse_unvotable(req, vote.approver, vote.did, vote.approve, registry, resolve_agent, now)
    registry = registry or ApproverRegistry(source="<none>")
    check = check_vote(vote.to_dict(), registry, request_id=req.id, digest=req.digest, agent_id=req.agent_id,
                       agent_did=resolve_agent(req.agent_id) if resolve_agent is not None else None,
                       eligible=eligible_approvers(req.approvers, registry), deadline=req.expires_at, now=now,
                       max_future_skew=MAX_FUTURE_SKEW)
    if check.vote is None:
        raise ApprovalError(str(check.problem))
    store.add_vote(req.id, check.vote)
    return check.vote


def _refuse_unvotable(
    req: ApprovalRequest, approver: str, did: str, approve: bool, registry: ApproverRegistry | None,
    resolve_agent: Callable[[str], str | None] | None, now: float,
) -> None:
    """What no vote by ``approver`` (key ``did``) on ``req`` may do, however it is signed."""
    if approver == req.agent_id or (resolve_agent is not None and resolve_agent(req.agent_id) == did):
        raise ApprovalError(f"{approver!r} is the agent that made request {req.id}; it cannot vote on its own request")
    if req.approvers and approver not in req.approvers:
        raise ApprovalError(f"{approver!r} is not an approver of {req.id}; approvers: {', '.join(req.approvers)}")
    state = tally(Terms.of(req), req.votes, registry, now, consumed=req.consumed_at is not None)
    over = state.status not in (ApprovalStatus.PENDING, ApprovalStatus.APPROVED) or (approve and state.status is ApprovalStatus.APPROVED)
    if over:
        raise ApprovalError(f"request {req.id} is already {state.status.value}")
    tampered = req.tampering()
    if tampered is not None:
        raise ApprovalError(f"request {req.id} was edited in the store: {tampered}; refusing to sign a vote on it")


def wait(
    store: ApprovalStore, request_id: str, resolve: Callable[[ApprovalRequest], Tally], deadline: float,
    poll: float = 0.05, clock: Callable[[], float] = time.time, stop: Callable[[], bool] = lambda: False,
) -> Tally:
    """Block until ``resolve`` (the caller's tally) says the request is no longer pending, or ``stop()``."""
    while True:
        state = resolve(store.get(request_id))
        if state.status is not ApprovalStatus.PENDING or stop():
            return state
        delay = max(0.0, min(poll, deadline - clock()))
        if isinstance(store, MemoryApprovals):
            store.wait_for_change(delay or poll)
        else:
            time.sleep(delay or poll)


async def wait_async(
    store: ApprovalStore, request_id: str, resolve: Callable[[ApprovalRequest], Tally], deadline: float,
    poll: float = 0.05, clock: Callable[[], float] = time.time, stop: Callable[[], bool] = lambda: False,
) -> Tally:
    while True:
        state = resolve(store.get(request_id))
        if state.status is not ApprovalStatus.PENDING or stop():
            return state
        await asyncio.sleep(max(0.001, min(poll, deadline - clock())))
