"""agt.runtime.approvals: quorum, deny, approver lists, expiry, waiting, and the cross-process SQLite store."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from agt.runtime.approvals import (
    ApprovalError, ApprovalStatus, MemoryApprovals, SqliteApprovals, new_request, wait, wait_async,
)


class Clock:
    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request, tmp_path):
    def make(clock=time.time):
        if request.param == "memory":
            return MemoryApprovals(clock=clock)
        return SqliteApprovals(tmp_path / "approvals.db", clock=clock)

    return make


def request_for(approvers=("alice", "bob", "carol"), quorum=1, timeout=60.0, now=None):
    now = time.time() if now is None else now
    return new_request("agent", "send_email", ("email-approval",), tuple(approvers), quorum, timeout, {"digest": "x"}, now)


def created(store, **kw):
    req = request_for(**kw)
    store.create(req)
    return req


# --- voting ----------------------------------------------------------------------------------------


def test_new_request_is_pending(make_store):
    store = make_store()
    req = created(store)
    assert store.get(req.id).status is ApprovalStatus.PENDING


def test_quorum_of_two_stays_pending_after_one_approval(make_store):
    store = make_store()
    req = created(store, quorum=2)
    assert store.vote(req.id, "alice", True).status is ApprovalStatus.PENDING


def test_quorum_of_two_is_approved_by_two_distinct_approvers(make_store):
    store = make_store()
    req = created(store, quorum=2)
    store.vote(req.id, "alice", True)
    result = store.vote(req.id, "bob", True)
    assert result.status is ApprovalStatus.APPROVED
    assert result.approvals == ("alice", "bob")
    assert store.get(req.id).status is ApprovalStatus.APPROVED


def test_same_approver_twice_does_not_count_twice(make_store):
    store = make_store()
    req = created(store, quorum=2)
    store.vote(req.id, "alice", True)
    result = store.vote(req.id, "alice", True)
    assert result.status is ApprovalStatus.PENDING
    assert result.approvals == ("alice",)


def test_one_deny_denies(make_store):
    store = make_store()
    req = created(store, quorum=2)
    store.vote(req.id, "alice", True)
    result = store.vote(req.id, "bob", False, note="no")
    assert result.status is ApprovalStatus.DENIED
    assert result.denied_by == "bob"
    assert store.get(req.id).status is ApprovalStatus.DENIED


def test_non_listed_approver_is_refused(make_store):
    store = make_store()
    req = created(store)
    with pytest.raises(ApprovalError, match="mallory"):
        store.vote(req.id, "mallory", True)
    assert store.get(req.id).status is ApprovalStatus.PENDING


@pytest.mark.parametrize("approve_first", [True, False])
def test_voting_on_resolved_request_is_refused(make_store, approve_first):
    store = make_store()
    req = created(store)
    store.vote(req.id, "alice", approve_first)
    with pytest.raises(ApprovalError, match="already"):
        store.vote(req.id, "bob", True)


def test_unknown_request_id_raises_approval_error(make_store):
    with pytest.raises(ApprovalError, match="apr_missing"):
        make_store().get("apr_missing")


def test_list_filters_by_status(make_store):
    store = make_store()
    a = created(store)
    b = created(store)
    store.vote(a.id, "alice", True)
    assert [r.id for r in store.list(ApprovalStatus.PENDING)] == [b.id]
    assert [r.id for r in store.list(ApprovalStatus.APPROVED)] == [a.id]


# --- expiry ----------------------------------------------------------------------------------------


def test_expiry_turns_pending_into_expired(make_store):
    clock = Clock(1_000.0)
    store = make_store(clock)
    req = created(store, timeout=60.0, now=1_000.0)
    clock.t = 1_059.9
    assert store.get(req.id).status is ApprovalStatus.PENDING
    clock.t = 1_060.0
    assert store.get(req.id).status is ApprovalStatus.EXPIRED


def test_voting_on_expired_request_is_refused(make_store):
    clock = Clock(1_000.0)
    store = make_store(clock)
    req = created(store, timeout=60.0, now=1_000.0)
    clock.t = 2_000.0
    with pytest.raises(ApprovalError, match="expired"):
        store.vote(req.id, "alice", True)


def test_expiry_does_not_change_a_resolved_request(make_store):
    clock = Clock(1_000.0)
    store = make_store(clock)
    req = created(store, timeout=60.0, now=1_000.0)
    store.vote(req.id, "alice", True)
    clock.t = 5_000.0
    assert store.get(req.id).status is ApprovalStatus.APPROVED


# --- waiting ---------------------------------------------------------------------------------------


def _approve_later(store, request_id: str, approver: str = "alice", delay: float = 0.05) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        store.vote(request_id, approver, True)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_wait_returns_when_another_thread_approves(make_store):
    store = make_store()
    req = created(store, timeout=10.0)
    t = _approve_later(store, req.id)
    result = wait(store, req.id, poll=0.01)
    t.join()
    assert result.status is ApprovalStatus.APPROVED


def test_wait_returns_expired_after_the_timeout(make_store):
    store = make_store()
    req = created(store, timeout=0.2)
    assert wait(store, req.id, poll=0.02).status is ApprovalStatus.EXPIRED


def test_wait_async_returns_when_approved(make_store):
    store = make_store()
    req = created(store, timeout=10.0)

    async def main():
        async def approve():
            await asyncio.sleep(0.05)
            store.vote(req.id, "alice", True)

        result, _ = await asyncio.gather(wait_async(store, req.id, poll=0.01), approve())
        return result

    assert asyncio.run(main()).status is ApprovalStatus.APPROVED


def test_wait_async_returns_expired_after_the_timeout(make_store):
    store = make_store()
    req = created(store, timeout=0.2)
    assert asyncio.run(wait_async(store, req.id, poll=0.02)).status is ApprovalStatus.EXPIRED


# --- SQLite across store objects -------------------------------------------------------------------


def test_sqlite_request_approved_through_a_second_store_object(tmp_path):
    path = tmp_path / "approvals.db"
    waiting_side = SqliteApprovals(path)
    req = request_for(timeout=10.0)
    waiting_side.create(req)
    cli_side = SqliteApprovals(path)  # as `agt approvals approve ID` in another process would
    assert cli_side.get(req.id).status is ApprovalStatus.PENDING
    cli_side.vote(req.id, "alice", True)
    assert waiting_side.get(req.id).status is ApprovalStatus.APPROVED


def test_sqlite_wait_sees_approval_from_a_second_store_object(tmp_path):
    path = tmp_path / "approvals.db"
    waiting_side = SqliteApprovals(path)
    req = request_for(timeout=10.0)
    waiting_side.create(req)
    t = _approve_later(SqliteApprovals(path), req.id)
    result = wait(waiting_side, req.id, poll=0.01)
    t.join()
    assert result.status is ApprovalStatus.APPROVED


def test_sqlite_request_round_trips_every_field(tmp_path):
    store = SqliteApprovals(tmp_path / "approvals.db")
    req = request_for(quorum=2, now=1234.5)
    store.create(req)
    back = SqliteApprovals(tmp_path / "approvals.db", clock=lambda: 1234.5).get(req.id)
    assert back.to_dict() == req.to_dict()


def test_new_request_quorum_is_capped_at_the_number_of_approvers():
    assert request_for(approvers=("alice", "bob"), quorum=5).quorum == 2


def test_new_request_quorum_is_at_least_one():
    assert request_for(quorum=0).quorum == 1


def test_sqlite_keeps_an_exact_decimal_param_of_the_action(tmp_path):
    from decimal import Decimal

    store = SqliteApprovals(tmp_path / "approvals.db")
    req = new_request("alice", "refund", ("refund-approval",), ("finance",), 1, 10.0,
                      {"action": {"params": {"amount": Decimal("100.0000000000000000001")}}}, time.time())
    store.create(req)
    assert store.get(req.id).action["action"]["params"]["amount"] == Decimal("100.0000000000000000001")
