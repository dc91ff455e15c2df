"""agt.runtime.approvals: signed votes, the tally (quorum, deny, eligibility, expiry, validity, use), waiting,
and the cross-process SQLite and Redis stores."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

import pytest

from agt.runtime.approvals import (
    ApprovalError, ApprovalRequest, ApprovalStatus, MemoryApprovals, SqliteApprovals, Terms, new_request, tally, wait,
    wait_async,
)
from approval_helpers import Approvers, stored_call

APPROVERS = Approvers("alice", "bob", "carol", "dave")


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "redis":
        from agt.runtime.redis_state import RedisApprovals

        s = RedisApprovals(request.getfixturevalue("redis_url"))
        yield s
        s.close()
        return
    yield MemoryApprovals() if request.param == "memory" else SqliteApprovals(tmp_path / "approvals.db")


def request_for(approvers=("alice", "bob", "carol"), quorum=1, timeout=60.0, now=None, agent="agent"):
    now = time.time() if now is None else now
    return new_request(agent, "send_email", ("email-approval",), tuple(approvers), quorum, timeout, stored_call(agent), now)


def created(store, **kw) -> ApprovalRequest:
    req = request_for(**kw)
    store.create(req)
    return req


def status(store, req, now=None, **kw) -> ApprovalStatus:
    return state(store, req, now, **kw).status


def state(store, req, now=None, **kw):
    stored = store.get(req.id)
    return tally(Terms.of(stored), stored.votes, APPROVERS.registry, time.time() if now is None else now,
                 consumed=stored.consumed_at is not None, **kw)


def vote(store, req, name, approve=True, **kw):
    return APPROVERS.vote(store, req.id, name, approve, **kw)


def signed_elsewhere(req, name, **changes):
    """A vote signed against a copy of ``req`` (with ``changes``): cast_vote's own refusals do not apply."""
    scratch = MemoryApprovals()
    scratch.create(replace(req, **changes))
    return APPROVERS.vote(scratch, req.id, name)


# --- voting ----------------------------------------------------------------------------------------


def test_new_request_is_pending(store):
    assert status(store, created(store)) is ApprovalStatus.PENDING


def test_quorum_of_two_stays_pending_after_one_approval(store):
    req = created(store, quorum=2)
    vote(store, req, "alice")
    assert status(store, req) is ApprovalStatus.PENDING


def test_quorum_of_two_is_approved_by_two_distinct_approvers(store):
    req = created(store, quorum=2)
    vote(store, req, "alice")
    vote(store, req, "bob")
    result = state(store, req)
    assert (result.status, result.approvals) == (ApprovalStatus.APPROVED, ("alice", "bob"))


def test_same_approver_twice_does_not_count_twice(store):
    req = created(store, quorum=2)
    vote(store, req, "alice")
    store.add_vote(req.id, signed_elsewhere(req, "alice"))  # a second signed vote
    result = state(store, req)
    assert (result.status, result.approvals) == (ApprovalStatus.PENDING, ("alice",))


def test_one_deny_denies(store):
    req = created(store, quorum=2)
    vote(store, req, "alice")
    vote(store, req, "bob", False, note="no")
    result = state(store, req)
    assert (result.status, result.denied_by, result.note) == (ApprovalStatus.DENIED, "bob", "no")


def test_a_deny_after_the_quorum_still_denies(store):
    req = created(store)
    vote(store, req, "alice")
    vote(store, req, "bob", False)
    assert status(store, req) is ApprovalStatus.DENIED


def test_cast_vote_refuses_a_non_listed_approver(store):
    req = created(store)
    with pytest.raises(ApprovalError, match="dave"):
        vote(store, req, "dave")
    assert store.get(req.id).votes == ()


def test_vote_by_a_non_listed_approver_is_ignored_by_the_tally(store):
    req = created(store)
    store.add_vote(req.id, signed_elsewhere(req, "dave", approvers=()))
    result = state(store, req)
    assert result.status is ApprovalStatus.PENDING
    assert "not an approver" in result.ignored[0]


def test_a_request_with_no_approvers_takes_any_registered_approver(store):
    req = created(store, approvers=())
    vote(store, req, "dave")
    assert status(store, req) is ApprovalStatus.APPROVED


def test_cast_vote_refuses_the_requesting_agent(store):
    keys = Approvers("agent")
    req = created(store, approvers=(), agent="agent")
    with pytest.raises(ApprovalError, match="own request"):
        keys.vote(store, req.id, "agent")


@pytest.mark.parametrize("approve_first", [True, False])
def test_cast_vote_refuses_a_request_that_is_over(store, approve_first):
    req = created(store)
    vote(store, req, "alice", approve_first)
    if approve_first:  # an approved request still takes a deny (revoking it before use), not another approval
        with pytest.raises(ApprovalError, match="already approved"):
            vote(store, req, "bob")
    else:
        with pytest.raises(ApprovalError, match="already denied"):
            vote(store, req, "bob")


def test_unknown_request_id_raises_approval_error(store):
    with pytest.raises(ApprovalError, match="apr_missing"):
        store.get("apr_missing")


def test_list_returns_every_request_oldest_first(store):
    a = created(store, now=time.time() - 5)
    b = created(store)
    assert [r.id for r in store.list()] == [a.id, b.id]


# --- expiry, validity and use ------------------------------------------------------------------------


def test_expiry_turns_pending_into_expired(store):
    req = created(store, timeout=60.0, now=1_000.0)
    assert status(store, req, now=1_059.9) is ApprovalStatus.PENDING
    assert status(store, req, now=1_060.0) is ApprovalStatus.EXPIRED


def test_cast_vote_refuses_an_expired_request(store):
    req = created(store, timeout=60.0, now=time.time() - 120)
    with pytest.raises(ApprovalError, match="expired"):
        vote(store, req, "alice")


def test_an_approval_ends_at_the_request_deadline(store):
    req = created(store, timeout=60.0)
    vote(store, req, "alice")
    assert status(store, req, now=req.expires_at - 0.1) is ApprovalStatus.APPROVED
    assert status(store, req, now=req.expires_at) is ApprovalStatus.EXPIRED


def test_an_approval_validity_window_starts_when_the_quorum_is_reached(store):
    req = created(store, timeout=600.0)
    cast = vote(store, req, "alice")
    result = state(store, req, now=cast.issued_at + 9.9, approval_validity=10.0)
    assert (result.status, result.valid_until) == (ApprovalStatus.APPROVED, cast.issued_at + 10.0)
    assert status(store, req, now=cast.issued_at + 10.0, approval_validity=10.0) is ApprovalStatus.EXPIRED


def test_a_vote_stops_counting_at_its_own_expiry(store):
    req = created(store, timeout=600.0)
    cast = vote(store, req, "alice", valid_for=5.0)
    result = state(store, req, now=cast.issued_at + 5.0)
    assert result.status is ApprovalStatus.PENDING
    assert "expired" in result.ignored[0]


def test_a_consumed_approval_is_consumed(store):
    req = created(store)
    vote(store, req, "alice")
    assert store.consume(req.id, time.time()) is True
    assert status(store, req) is ApprovalStatus.CONSUMED


def test_consume_twice_reports_the_second_as_already_used(store):
    req = created(store)
    store.consume(req.id, time.time())
    assert store.consume(req.id, time.time()) is False


# --- waiting ---------------------------------------------------------------------------------------


def _approve_later(store, req, approver: str = "alice", delay: float = 0.05) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        vote(store, req, approver)

    t = threading.Thread(target=run)
    t.start()
    return t


def resolver(store):
    return lambda stored: tally(Terms.of(stored), stored.votes, APPROVERS.registry, time.time())


def test_wait_returns_when_another_thread_approves(store):
    req = created(store, timeout=30.0)
    t = _approve_later(store, req)
    result = wait(store, req.id, resolver(store), req.expires_at, poll=0.01)
    t.join()
    assert result.status is ApprovalStatus.APPROVED


def test_wait_returns_expired_after_the_timeout(store):
    req = created(store, timeout=0.2)
    assert wait(store, req.id, resolver(store), req.expires_at, poll=0.02).status is ApprovalStatus.EXPIRED


def test_wait_returns_pending_when_told_to_stop(store):
    req = created(store, timeout=30.0)
    assert wait(store, req.id, resolver(store), req.expires_at, poll=0.01, stop=lambda: True).status is ApprovalStatus.PENDING


def test_wait_async_returns_when_approved(store):
    req = created(store, timeout=30.0)

    async def main():
        async def approve():
            await asyncio.sleep(0.05)
            vote(store, req, "alice")

        result, _ = await asyncio.gather(wait_async(store, req.id, resolver(store), req.expires_at, poll=0.01), approve())
        return result

    assert asyncio.run(main()).status is ApprovalStatus.APPROVED


def test_wait_async_returns_expired_after_the_timeout(store):
    req = created(store, timeout=0.2)
    assert asyncio.run(wait_async(store, req.id, resolver(store), req.expires_at, poll=0.02)).status is ApprovalStatus.EXPIRED


# --- shared stores (SQLite, Redis) across store objects ---------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def opener(request, tmp_path):
    """Opens store objects on one shared store, as `agt approvals approve ID` in another process would."""
    if request.param == "sqlite":
        path = tmp_path / "approvals.db"
        yield lambda: SqliteApprovals(path)
        return
    from agt.runtime.redis_state import RedisApprovals

    url, opened = request.getfixturevalue("redis_url"), []
    yield lambda: opened.append(RedisApprovals(url)) or opened[-1]
    for s in opened:
        s.close()


def test_shared_request_approved_through_a_second_store_object(opener):
    waiting_side = opener()
    req = created(waiting_side, timeout=30.0)
    vote(opener(), req, "alice")
    assert status(waiting_side, req) is ApprovalStatus.APPROVED


def test_shared_wait_sees_approval_from_a_second_store_object(opener):
    waiting_side = opener()
    req = created(waiting_side, timeout=30.0)
    t = _approve_later(opener(), req)
    result = wait(waiting_side, req.id, resolver(waiting_side), req.expires_at, poll=0.01)
    t.join()
    assert result.status is ApprovalStatus.APPROVED


def test_shared_request_round_trips_every_field(opener):
    req = created(opener(), quorum=2, now=1234.5)
    assert opener().get(req.id).to_dict() == req.to_dict()


def test_shared_use_is_seen_by_a_second_store_object(opener):
    req = created(opener())
    assert opener().consume(req.id, time.time()) is True
    assert opener().consume(req.id, time.time()) is False
    assert opener().get(req.id).consumed_at is not None


def test_shared_store_keeps_an_exact_decimal_param_of_the_action(opener):
    from decimal import Decimal

    req = new_request("alice", "refund", ("refund-approval",), ("finance",), 1, 10.0,
                      {"action": {"params": {"amount": Decimal("100.0000000000000000001")}}}, time.time())
    opener().create(req)
    assert opener().get(req.id).action["action"]["params"]["amount"] == Decimal("100.0000000000000000001")


def test_sqlite_malformed_stored_request_is_an_approval_error(tmp_path):
    store = SqliteApprovals(tmp_path / "approvals.db")
    req = created(store)
    store._conn().execute("UPDATE approvals SET body = ? WHERE id = ?", ('{"id": "x"}', req.id))  # noqa: SLF001
    with pytest.raises(ApprovalError, match="malformed"):
        store.get(req.id)


def test_sqlite_malformed_stored_vote_is_ignored_with_a_reason(tmp_path):
    store = SqliteApprovals(tmp_path / "approvals.db")
    req = created(store)
    store._conn().execute("INSERT INTO approval_votes (request_id, body) VALUES (?, ?)", (req.id, "not json"))  # noqa: SLF001
    result = state(store, req)
    assert result.status is ApprovalStatus.PENDING and "malformed" in result.ignored[0]


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


# --- votes signed elsewhere (the dashboard's browser) ------------------------------------------------


def _signed_doc(req, name, approve=True, **overrides):
    from agt.runtime.votes import sign_vote

    now = time.time()
    doc = sign_vote(APPROVERS.keys[name], request_id=req.id, digest=req.digest, agent_id=req.agent_id, approve=approve,
                    issued_at=now, expires_at=now + 600).to_dict()
    return {**doc, **overrides}


def test_submit_vote_adds_a_vote_that_verifies_and_it_counts(store):
    from agt.runtime.approvals import submit_vote

    req = created(store)
    submit_vote(store, req.id, _signed_doc(req, "alice"), APPROVERS.registry)
    assert status(store, req) is ApprovalStatus.APPROVED


def test_submit_vote_refuses_a_vote_whose_signature_does_not_verify(store):
    from agt.runtime.approvals import submit_vote

    req = created(store)
    with pytest.raises(ApprovalError, match="not signed by 'alice'"):
        submit_vote(store, req.id, _signed_doc(req, "alice", note="changed after signing"), APPROVERS.registry)
    assert store.get(req.id).votes == ()


def test_submit_vote_refuses_a_vote_for_another_request(store):
    from agt.runtime.approvals import submit_vote

    first, second = created(store), created(store)
    with pytest.raises(ApprovalError, match="for request"):
        submit_vote(store, second.id, _signed_doc(first, "alice"), APPROVERS.registry)


def test_submit_vote_refuses_what_cast_vote_refuses(store):
    from agt.runtime.approvals import submit_vote

    req = created(store, approvers=("alice",))
    with pytest.raises(ApprovalError, match="not an approver"):
        submit_vote(store, req.id, _signed_doc(req, "bob"), APPROVERS.registry)
    own = created(store, agent="alice")
    with pytest.raises(ApprovalError, match="cannot vote on its own request"):
        submit_vote(store, own.id, _signed_doc(own, "alice"), APPROVERS.registry)


def test_submit_vote_refuses_a_document_that_is_not_a_vote_naming_the_field(store):
    from agt.runtime.approvals import submit_vote

    req = created(store)
    with pytest.raises(ApprovalError, match="approve must be true or false"):
        submit_vote(store, req.id, {**_signed_doc(req, "alice"), "approve": "yes"}, APPROVERS.registry)


def test_submit_vote_without_a_registry_refuses_every_vote(store):
    from agt.runtime.approvals import submit_vote

    req = created(store)
    with pytest.raises(ApprovalError, match="not in the approver registry"):
        submit_vote(store, req.id, _signed_doc(req, "alice"), None)
