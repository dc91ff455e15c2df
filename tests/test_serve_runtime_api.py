"""agt.serve.runtime_api through a real agt serve (uvicorn in a thread): the two phases, signed votes, the kill
switch and trust, driven with RemoteGovernor and with raw HTTP. The Governor behind it is inspected directly:
its counters and audit records are the proof that the remote call ran the in-process code."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from agt.errors import ApprovalRequired, GovernanceDenied
from agt.client import RemoteError, RemoteGovernor
from agt.identity import IdentityKeys
from agt.runtime.approvals import ApprovalError, ApprovalStatus
from agt.runtime.votes import sign_vote
from serve_helpers import APPROVERS, AGENT_TOKEN, OPERATOR_TOKEN, decisions, headers, served, starter_governor

READ = ("read_file", {"path": "/ws/alice/a.md"})


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def service():
    with served() as (url, gov):
        yield url, gov


@pytest.fixture()
def remote(service):
    url, _ = service
    client = RemoteGovernor(url, token=AGENT_TOKEN, operator_token=OPERATOR_TOKEN, blocking_approvals=False)
    yield client
    client.close()


# --- the two phases ------------------------------------------------------------------------------------
def test_begin_admits_an_allowed_call_and_reserves_it(service, remote):
    _, gov = service
    ticket = remote.begin(*READ, agent="alice", task="t-reserve")
    assert ticket.id.startswith("tkt_") and ticket.decision.allowed
    assert gov.store.counters("t-reserve").tool_calls == 1


def test_finish_writes_the_policy_record_as_the_in_process_governor_does(service, remote):
    _, gov = service
    before = len(decisions(gov))
    ticket = remote.begin(*READ, agent="alice", task="t-finish")
    assert remote.finish(ticket, "contents") == "contents"
    record = decisions(gov)[before]
    assert (record.path, record.agent_id, record.result["enforced"]) == ("policy", "alice", "allow")


def test_a_denied_begin_raises_with_the_rule_and_counts_nothing(service, remote):
    _, gov = service
    with pytest.raises(GovernanceDenied) as info:
        remote.begin("run_shell", {"command": "rm -rf /"}, agent="alice", task="t-deny")
    assert info.value.rule_ids == ("block-recursive-delete",) and info.value.gate == "policy"
    assert gov.store.counters("t-deny").tool_calls == 0


def test_fail_records_the_tool_error(service, remote):
    _, gov = service
    ticket = remote.begin(*READ, agent="alice", task="t-fail")
    remote.fail(ticket, ValueError("disk on fire"))
    assert decisions(gov)[-1].result["tool_error"] == "RemoteToolError: ValueError: disk on fire"


def test_abandon_gives_the_call_back_to_the_budget(service, remote):
    _, gov = service
    ticket = remote.begin(*READ, agent="alice", task="t-abandon")
    remote.abandon(ticket, "the framework skipped it")
    assert gov.store.counters("t-abandon").tool_calls == 0
    assert decisions(gov)[-1].result["tool_error"] == "not run: the framework skipped it"


def test_a_ticket_closes_once(service, remote):
    url, _ = service
    ticket = remote.begin(*READ, agent="alice")
    remote.finish(ticket, "x")
    with pytest.raises(ValueError, match="already finished"):
        remote.finish(ticket, "x")
    r = httpx.post(f"{url}/v1/agt/finish", json={"ticket": ticket.id, "result": "x"}, headers=headers())
    assert r.status_code == 404 and r.json()["code"] == "resource_not_found"


def test_call_runs_the_tool_only_when_admitted(remote):
    ran = []
    assert remote.call(lambda path: ran.append(path) or "ok", kwargs={"path": "/ws/alice/a.md"}, tool="read_file",
                       agent="alice") == "ok"
    with pytest.raises(GovernanceDenied):
        remote.call(lambda command: ran.append(command), kwargs={"command": "rm -rf /"}, tool="run_shell", agent="alice")
    assert ran == ["/ws/alice/a.md"]


def test_acall_runs_an_async_tool(remote):
    async def read_file(path: str) -> str:
        return path.upper()

    assert asyncio.run(remote.acall(read_file, kwargs={"path": "/ws/alice/a"}, agent="alice")) == "/WS/ALICE/A"


def test_the_output_check_refuses_a_result_and_the_client_raises():
    with served(starter_governor(output_limit=8)) as (url, _):
        client = RemoteGovernor(url, token=AGENT_TOKEN)
        ticket = client.begin(*READ, agent="alice")
        with pytest.raises(GovernanceDenied) as info:
            client.finish(ticket, "x" * 100)
        assert info.value.gate == "output" and info.value.rule_ids == ("output-too-large",)


@pytest.mark.parametrize("body, message", [
    ({}, "tool is required"),
    ({"tool": 5}, "tool must be a string"),
    ({"tool": "read_file", "agent": {"id": "a", "roles": ["admin"], "trust_score": 1000}}, "agent must be a string"),
    ({"tool": "read_file", "roles": ["admin"]}, "unknown field 'roles'"),
    ({"tool": "read_file", "params": [1]}, "params must be an object"),
    ({"tool": "read_file", "resource": {"type": "file"}}, "id is required"),
    ({"tool": "read_file", "resource": {"type": "", "id": "x"}}, "resource: "),
])
def test_a_malformed_begin_is_400_naming_the_field(service, body, message):
    url, _ = service
    r = httpx.post(f"{url}/v1/agt/begin", json=body, headers=headers())
    assert r.status_code == 400 and message in r.json()["message"]


# --- tickets ----------------------------------------------------------------------------------------------
def test_an_expired_ticket_releases_its_reservation_and_is_audited_as_not_run():
    with served(ticket_ttl=0.2, sweep_every=0.02) as (url, gov):
        client = RemoteGovernor(url, token=AGENT_TOKEN)
        ticket = client.begin(*READ, agent="alice", task="t-expire")
        assert gov.store.counters("t-expire").tool_calls == 1
        wait_until(lambda: gov.store.counters("t-expire").tool_calls == 0)
        assert decisions(gov)[-1].result["tool_error"].startswith("not run: ticket expired")
        with pytest.raises(GovernanceDenied, match="no open call with ticket"):
            client.finish(ticket, "late")


def test_a_full_ticket_table_denies_and_releases_the_call():
    with served(max_tickets=1) as (url, gov):
        client = RemoteGovernor(url, token=AGENT_TOKEN)
        client.begin(*READ, agent="alice", task="t-full")
        with pytest.raises(GovernanceDenied, match="calls are open"):
            client.begin(*READ, agent="alice", task="t-full")
        assert gov.store.counters("t-full").tool_calls == 1


def test_stopping_the_service_abandons_open_tickets():
    gov = starter_governor()
    with served(gov) as (url, _):
        RemoteGovernor(url, token=AGENT_TOKEN).begin(*READ, agent="alice", task="t-stop")
    assert gov.store.counters("t-stop").tool_calls == 0
    assert "agt serve stopped" in decisions(gov)[-1].result["tool_error"]


# --- approvals with signed votes -----------------------------------------------------------------------------
EMAIL = ("send_email", {"to": "cfo@example.com"})


def test_a_signed_vote_lets_the_resumed_call_run_exactly_once(service, remote):
    _, gov = service
    with pytest.raises(ApprovalRequired) as info:
        remote.begin(*EMAIL, agent="mailer", call_id="c-1")
    request_id = info.value.request_id
    assert remote.approval_status(request_id).status is ApprovalStatus.PENDING
    answer = remote.vote(request_id, APPROVERS.keys["comms-lead"], True)
    assert answer["status"] == "approved"
    ticket = remote.begin(*EMAIL, agent="mailer", call_id="c-1")
    remote.finish(ticket, "sent")
    with pytest.raises(GovernanceDenied, match="already used|consumed"):
        remote.begin(*EMAIL, agent="mailer", approval_id=request_id)
    ran = [r for r in decisions(gov) if r.agent_id == "mailer" and r.path == "policy" and "tool_error" not in r.result]
    assert len(ran) == 1  # the one call that ran; the pending and the reused approval never did


def test_a_blocking_client_waits_for_the_vote_and_runs(service):
    url, _ = service
    client = RemoteGovernor(url, token=AGENT_TOKEN, approval_poll=0.02, approval_timeout=20)
    voter = RemoteGovernor(url, token=AGENT_TOKEN)

    def vote_when_pending() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pending = [r for r in voter.approvals() if r["agent_id"] == "waiter"]
            if pending:
                voter.vote(pending[0]["id"], APPROVERS.keys["comms-lead"], True)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=vote_when_pending)
    thread.start()
    ticket = client.begin(*EMAIL, agent="waiter", call_id="w-1")
    thread.join()
    assert ticket.decision.effect.value == "require_approval"
    client.finish(ticket, "sent")


def test_an_async_blocking_client_awaits_the_vote(service):
    url, _ = service
    client = RemoteGovernor(url, token=AGENT_TOKEN, approval_poll=0.02, approval_timeout=20)

    async def scenario():
        task = asyncio.ensure_future(client.abegin(*EMAIL, agent="async-waiter", call_id="aw-1"))
        while True:
            pending = [r for r in await asyncio.to_thread(client.approvals) if r["agent_id"] == "async-waiter"]
            if pending:
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(client.vote, pending[0]["id"], APPROVERS.keys["comms-lead"], True)
        return await asyncio.wait_for(task, 20)

    ticket = asyncio.run(scenario())
    client.finish(ticket, "sent")


def test_a_blocking_client_whose_wait_runs_out_raises_approval_required(service):
    url, gov = service
    client = RemoteGovernor(url, token=AGENT_TOKEN, approval_poll=0.02, approval_timeout=0.2)
    with pytest.raises(ApprovalRequired) as info:
        client.begin(*EMAIL, agent="impatient", call_id="i-1")
    assert gov.approval_status(info.value.request_id).status is ApprovalStatus.PENDING


def test_a_deny_vote_denies_the_resumed_call(service, remote):
    with pytest.raises(ApprovalRequired) as info:
        remote.begin(*EMAIL, agent="mailer2", call_id="d-1")
    remote.vote(info.value.request_id, APPROVERS.keys["comms-lead"], False, note="no")
    with pytest.raises(GovernanceDenied) as denied:
        remote.begin(*EMAIL, agent="mailer2", call_id="d-1")
    assert denied.value.rule_ids == ("approval-denied",)


def _pending(remote, agent: str) -> str:
    with pytest.raises(ApprovalRequired) as info:
        remote.begin(*EMAIL, agent=agent)
    return info.value.request_id


def _raw_vote(url: str, request_id: str, doc: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/agt/approvals/{request_id}/votes", json={"vote": doc}, headers=headers())


def test_a_vote_signed_by_a_key_outside_the_registry_is_refused_and_not_stored(service, remote):
    url, gov = service
    request_id = _pending(remote, "forger")
    req = gov.approvals.get(request_id)
    impostor = IdentityKeys.generate("comms-lead")  # the right name, not the registered key
    vote = sign_vote(impostor, request_id=req.id, digest=req.digest, agent_id=req.agent_id, approve=True,
                     issued_at=time.time(), expires_at=time.time() + 60)
    r = _raw_vote(url, request_id, vote.to_dict())
    assert r.status_code == 403 and "not signed by 'comms-lead'" in r.json()["message"]
    assert gov.approvals.get(request_id).votes == ()


def test_the_agent_token_alone_cannot_vote(service, remote):
    url, gov = service
    request_id = _pending(remote, "selfish")
    req = gov.approvals.get(request_id)
    unsigned = {"type": "agt.approval-vote/v1", "request_id": req.id, "digest": req.digest, "agent_id": req.agent_id,
                "approve": True, "approver": "comms-lead", "did": APPROVERS.keys["comms-lead"].did,
                "issued_at": time.time(), "expires_at": time.time() + 60, "note": "", "signature": "A" * 86}
    r = _raw_vote(url, request_id, unsigned)
    assert r.status_code == 403
    assert gov.approval_status(request_id).status is ApprovalStatus.PENDING


def test_a_vote_for_another_request_is_refused(service, remote):
    url, gov = service
    first, second = _pending(remote, "two-a"), _pending(remote, "two-b")
    req = gov.approvals.get(first)
    vote = sign_vote(APPROVERS.keys["comms-lead"], request_id=req.id, digest=req.digest, agent_id=req.agent_id,
                     approve=True, issued_at=time.time(), expires_at=time.time() + 60)
    r = _raw_vote(url, second, vote.to_dict())
    assert r.status_code == 403 and "for request" in r.json()["message"]


def test_an_approver_the_rule_does_not_name_cannot_vote(service, remote):
    url, gov = service
    request_id = _pending(remote, "wrong-approver")
    with pytest.raises(ApprovalError, match="not an approver"):
        remote.vote(request_id, APPROVERS.keys["finance-lead"], True)  # refused before signing, client side
    req = gov.approvals.get(request_id)
    vote = sign_vote(APPROVERS.keys["finance-lead"], request_id=req.id, digest=req.digest, agent_id=req.agent_id,
                     approve=True, issued_at=time.time(), expires_at=time.time() + 60)
    r = _raw_vote(url, request_id, vote.to_dict())  # and by the service, for a client that skips the check
    assert r.status_code == 403 and "not an approver" in r.json()["message"]


def test_an_unknown_request_is_404(service):
    url, _ = service
    r = httpx.get(f"{url}/v1/agt/approvals/apr_nope", headers=headers())
    assert r.status_code == 404


def test_approvals_lists_pending_requests_with_their_verified_status(service, remote):
    request_id = _pending(remote, "lister")
    listed = {r["id"]: r for r in remote.approvals()}
    assert listed[request_id]["status"] == "pending" and listed[request_id]["tool"] == "send_email"
    shown = remote.approval(request_id)
    assert shown["tampered"] is None and shown["votes"] == []


# --- kill switch and trust ---------------------------------------------------------------------------------
def test_a_killed_agent_is_denied_until_revived(remote):
    remote.kill("doomed")
    with pytest.raises(GovernanceDenied) as info:
        remote.begin(*READ, agent="doomed")
    assert info.value.rule_ids == ("kill-switch",)
    remote.revive("doomed")
    remote.finish(remote.begin(*READ, agent="doomed"), "ok")


def test_the_kill_switch_for_all_stops_every_agent(remote):
    remote.kill()
    try:
        with pytest.raises(GovernanceDenied, match="kill"):
            remote.begin(*READ, agent="anyone")
    finally:
        remote.revive()


def test_trust_is_read_with_the_agent_token_and_written_with_the_operators(remote):
    assert remote.trust("newcomer")["ring"] == 2
    assert remote.set_trust("newcomer", 950)["score"] == 950
    assert remote.trust_score("newcomer") == 950


def test_kill_without_the_operator_token_is_refused(service):
    url, gov = service
    client = RemoteGovernor(url, token=AGENT_TOKEN)
    with pytest.raises(RemoteError, match="operator token"):
        client.kill("x")
    assert not gov.trust.is_killed("x")


# --- a dependency that fails --------------------------------------------------------------------------------
class UnreachableStore:
    """A state store whose backend is gone (Redis down, say): every operation raises. A fault injected, nothing more."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("state store unreachable")

        return fail

    def close(self) -> None:
        pass


def test_a_state_store_that_fails_denies_naming_the_cause():
    with served(starter_governor(store=UnreachableStore())) as (url, _):
        client = RemoteGovernor(url, token=AGENT_TOKEN)
        with pytest.raises(GovernanceDenied) as info:
            client.begin(*READ, agent="alice")
        assert info.value.gate == "runtime" and "state store unreachable" in str(info.value)


def test_concurrent_begins_through_the_service_admit_exactly_the_budget(service):
    """The starter policy allows 20 tool calls per task: 8 clients racing 40 begins on one task get exactly 20."""
    url, gov = service
    admitted, denied = [], []

    def client() -> None:
        remote = RemoteGovernor(url, token=AGENT_TOKEN)
        for _ in range(5):
            try:
                admitted.append(remote.begin(*READ, agent="racer", task="t-race"))
            except GovernanceDenied as exc:
                denied.append(exc.rule_ids)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 20 and gov.store.counters("t-race").tool_calls == 20
    assert len(denied) == 20 and all(ids == ("tool-call-limit",) for ids in denied)
