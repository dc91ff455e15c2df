"""The dashboard's HTTP surface, served by a real uvicorn on a loopback port: each page, the event stream's
framing and filters, the JSON API, and every refusal (operator token, origin, Host, vote signatures)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from agt.errors import ApprovalRequired, GovernanceDenied
from agt.identity import IdentityKeys
from agt.runtime.votes import sign_vote
from tests.dashboard_helpers import AGENT, OPERATOR_TOKEN, XSS, Served, drop_table, make_workload, read_file, refund

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def workload(tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "signing").mkdir()
    w = make_workload(tmp_path, blocking=False)
    try:
        yield w
    finally:
        w.governor.close()


@pytest.fixture
def served(workload: Any) -> Iterator[Served]:
    with Served(workload.app()) as s:
        yield s


def _deny_one(gov: Any) -> None:
    with pytest.raises(GovernanceDenied):
        gov.call(drop_table, ("users",), agent=AGENT)


def _pending(gov: Any) -> str:
    with pytest.raises(ApprovalRequired) as info:
        gov.call(refund, kwargs={"amount": 250, "order_id": "o-1"}, agent=AGENT)
    return info.value.request_id


def _events(url: str, count: int, headers: dict | None = None, on_open: Any = None) -> list[dict]:
    """The first ``count`` record events of a stream (each frame parsed: id, event, data)."""
    frames: list[dict] = []
    with httpx.stream("GET", url, headers=headers or {}, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        if on_open is not None:
            on_open()
        frame: dict = {}
        for line in response.iter_lines():
            if line == "":
                if frame.get("event") == "record":
                    frames.append(frame)
                    if len(frames) == count:
                        return frames
                frame = {}
                continue
            field, _, value = line.partition(": ")
            frame[field] = json.loads(value) if field == "data" else value
    return frames


# --- pages -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/agents", f"/agents/{AGENT}", "/rules/block-destructive-db-tools", "/approvals", "/audit"])
def test_each_page_renders(workload: Any, served: Served, path: str) -> None:
    workload.governor.call(read_file, ("a.txt",), agent=AGENT)
    _deny_one(workload.governor)
    response = httpx.get(served.url + path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<nav>" in response.text


def test_every_answer_carries_a_script_policy_without_inline_script(served: Served) -> None:
    response = httpx.get(served.url + "/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_host_name_other_than_loopback_is_refused(served: Served) -> None:
    response = httpx.get(served.url + "/", headers={"Host": "attacker.example:8282"})
    assert response.status_code == 421
    assert "attacker.example" in response.text


def test_a_rule_id_from_the_url_is_escaped_in_the_page(served: Served) -> None:
    response = httpx.get(served.url + "/rules/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert response.status_code == 200
    assert "<script>alert(1)" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_params_the_agent_controls_are_escaped_in_server_rendered_pages(workload: Any, served: Served) -> None:
    with pytest.raises(ApprovalRequired):
        workload.governor.call(refund, kwargs={"amount": 250, "order_id": XSS}, agent=AGENT)
    page = httpx.get(served.url + "/approvals").text
    assert XSS not in page
    assert "&lt;img src=x onerror=window.__xss=1&gt;" in page


def test_the_rule_page_lists_the_conformance_cases_that_expect_the_rule(workload: Any) -> None:
    with Served(workload.app(suites=str(REPO / "conformance"))) as served:
        page = httpx.get(served.url + "/rules/refund-approval").text
        missing = httpx.get(served.url + "/rules/no-such-rule").text
    assert "refund at the limit plus 0.01" in page
    assert "it is not covered by the conformance suites" in missing


def test_the_agent_page_shows_budgets_against_the_policy_limits(workload: Any, served: Served) -> None:
    workload.governor.call(read_file, ("a.txt",), agent=AGENT)
    view = httpx.get(f"{served.url}/api/agents/{AGENT}").json()
    calls = next(b for b in view["budgets"] if b["counter"] == "tool_calls")
    assert (calls["used"], calls["limit"]) == (1, 20)
    assert view["trust"] == workload.governor.trust.score(AGENT)
    assert view["trust_history"][0][1] == 750
    assert dict(view["breakers"]) == {"agent:support-bot": "closed", "tool:read_file": "closed"}


# --- the event stream ----------------------------------------------------------------------------

def test_the_stream_frames_each_record_as_an_event_with_its_seq_as_id(workload: Any, served: Served) -> None:
    workload.governor.call(read_file, ("a.txt",), agent=AGENT)
    _deny_one(workload.governor)
    frames = _events(served.url + "/events?kind=decision", 2)
    assert [f["data"]["tool"] for f in frames] == ["read_file", "drop_table"]
    assert [int(f["id"]) for f in frames] == [f["data"]["seq"] for f in frames]
    assert frames[1]["data"]["rules"] == ["block-destructive-db-tools"]


def test_the_stream_sends_records_written_after_it_opened(workload: Any, served: Served) -> None:
    frames = _events(served.url + "/events?effect=deny", 1, on_open=lambda: _deny_one(workload.governor))
    assert frames[0]["data"]["tool"] == "drop_table"


@pytest.mark.parametrize("query, expected", [
    ("effect=deny", ["drop_table"]),
    ("tool=read_file", ["read_file"]),
    ("rule=block-destructive-db-tools", ["drop_table"]),
    ("agent=other-bot&kind=decision", ["read_file"]),
])
def test_the_stream_filters_by_agent_tool_effect_and_rule(workload: Any, served: Served, query: str, expected: list) -> None:
    gov = workload.governor
    gov.call(read_file, ("a.txt",), agent=AGENT)
    _deny_one(gov)
    gov.call(read_file, ("b.txt",), agent="other-bot")
    gov.call(read_file, ("c.txt",), agent=AGENT)  # the last record: the stream must have passed the others by then
    wanted = [r for r in httpx.get(f"{served.url}/api/records?{query}").json()]
    frames = _events(f"{served.url}/events?{query}", len(wanted))
    tools = [f["data"]["tool"] for f in frames]
    assert tools[: len(expected)] == expected
    assert all(f["data"]["seq"] for f in frames) and len(tools) == len(wanted)


def test_a_reconnecting_stream_resumes_after_its_last_event_id(workload: Any, served: Served) -> None:
    gov = workload.governor
    gov.call(read_file, ("a.txt",), agent=AGENT)
    first = _events(served.url + "/events?kind=decision", 1)[0]
    _deny_one(gov)
    resumed = _events(served.url + "/events?kind=decision", 1, headers={"Last-Event-ID": first["id"]})
    assert resumed[0]["data"]["tool"] == "drop_table"


def test_a_malformed_last_event_id_is_refused(served: Served) -> None:
    response = httpx.get(served.url + "/events", headers={"Last-Event-ID": "x"})
    assert response.status_code == 400


# --- the kill switch -------------------------------------------------------------------------------

def test_the_kill_switch_without_the_operator_token_is_refused(workload: Any, served: Served) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": OPERATOR_TOKEN}):
        response = httpx.post(f"{served.url}/api/agents/{AGENT}/kill", headers=headers)
        assert response.status_code == 401, headers
    assert not workload.governor.trust.is_killed(AGENT)


def test_the_kill_switch_with_the_operator_token_stops_and_releases_the_agent(workload: Any, served: Served) -> None:
    auth = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    response = httpx.post(f"{served.url}/api/agents/{AGENT}/kill", headers=auth)
    assert response.json() == {"ok": True, "agent": AGENT, "killed": True}
    with pytest.raises(GovernanceDenied, match="kill-switch"):
        workload.governor.call(read_file, ("a.txt",), agent=AGENT)
    assert httpx.post(f"{served.url}/api/agents/{AGENT}/revive", headers=auth).json()["killed"] is False
    assert workload.governor.call(read_file, ("a.txt",), agent=AGENT) == "contents of a.txt"


def test_the_kill_switch_from_another_origin_is_refused_even_with_the_token(workload: Any, served: Served) -> None:
    response = httpx.post(f"{served.url}/api/agents/{AGENT}/kill",
                          headers={"Authorization": f"Bearer {OPERATOR_TOKEN}", "Origin": "http://attacker.example"})
    assert response.status_code == 403
    assert not workload.governor.trust.is_killed(AGENT)


def test_without_an_operator_token_configured_the_kill_switch_is_off(workload: Any) -> None:
    from agt.serve.dashboard import DashboardConfig, dashboard_app

    with Served(dashboard_app(workload.source(), DashboardConfig(operator_token=None))) as served:
        response = httpx.post(f"{served.url}/api/agents/{AGENT}/kill", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert response.status_code == 403
    assert "no operator token" in response.json()["error"]


def test_an_unknown_agent_action_is_not_found(served: Served) -> None:
    response = httpx.post(f"{served.url}/api/agents/{AGENT}/delete", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert response.status_code == 404


# --- votes ------------------------------------------------------------------------------------------

def _vote(keys: IdentityKeys, req: Any, approve: bool = True, **overrides: Any) -> dict:
    now = float(int(time.time()))
    doc = sign_vote(keys, request_id=req.id, digest=req.digest, agent_id=req.agent_id, approve=approve,
                    issued_at=now, expires_at=now + 600).to_dict()
    return {**doc, **overrides}


def test_a_vote_signed_by_a_registered_approver_grants_the_request(workload: Any, served: Served) -> None:
    gov = workload.governor
    request_id = _pending(gov)
    response = httpx.post(f"{served.url}/api/approvals/{request_id}/vote", json=_vote(workload.approver, gov.approvals.get(request_id)))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "approved"
    result = gov.call(refund, kwargs={"amount": 250, "order_id": "o-1"}, agent=AGENT, approval_id=request_id)
    assert result == "refunded 250 on o-1"


def test_a_vote_whose_signature_does_not_verify_is_refused(workload: Any, served: Served) -> None:
    gov = workload.governor
    request_id = _pending(gov)
    forged = _vote(IdentityKeys.generate("finance-lead"), gov.approvals.get(request_id), did=workload.approver.did)
    response = httpx.post(f"{served.url}/api/approvals/{request_id}/vote", json=forged)
    assert response.status_code == 403
    assert "not signed by 'finance-lead'" in response.json()["error"]
    assert gov.approval_status(request_id).status.value == "pending"


def test_a_vote_by_someone_outside_the_registry_is_refused(workload: Any, served: Served) -> None:
    gov = workload.governor
    request_id = _pending(gov)
    response = httpx.post(f"{served.url}/api/approvals/{request_id}/vote",
                          json=_vote(IdentityKeys.generate("mallory"), gov.approvals.get(request_id)))
    assert response.status_code == 403
    assert "mallory" in response.json()["error"]


def test_a_vote_moved_to_another_request_is_refused(workload: Any, served: Served) -> None:
    gov = workload.governor
    first, second = _pending(gov), _pending(gov)
    response = httpx.post(f"{served.url}/api/approvals/{second}/vote", json=_vote(workload.approver, gov.approvals.get(first)))
    assert response.status_code == 403
    assert gov.approval_status(second).status.value == "pending"


def test_a_vote_that_is_not_a_vote_envelope_is_refused_naming_the_field(workload: Any, served: Served) -> None:
    request_id = _pending(workload.governor)
    response = httpx.post(f"{served.url}/api/approvals/{request_id}/vote", json={"type": "agt.approval-vote/v1"})
    assert response.status_code == 403
    assert "not a vote envelope: missing" in response.json()["error"]


def test_a_vote_sent_as_a_form_is_refused(workload: Any, served: Served) -> None:
    request_id = _pending(workload.governor)
    response = httpx.post(f"{served.url}/api/approvals/{request_id}/vote", data={"approve": "1"})
    assert response.status_code == 415


def test_a_vote_on_a_request_edited_in_the_store_is_refused(workload: Any, served: Served) -> None:
    from dataclasses import replace

    gov = workload.governor
    request_id = _pending(gov)
    req = gov.approvals.get(request_id)
    doc = json.loads(json.dumps(req.action["document"], default=str))
    doc["action"]["params"]["amount"] = 5
    gov.approvals._items[request_id] = replace(req, action={**req.action, "document": doc})  # noqa: SLF001 - the agent writes the store
    page = httpx.get(served.url + "/approvals").text
    assert "do not approve it" in page
    response = httpx.post(f"{served.url}/api/approvals/{request_id}/vote", json=_vote(workload.approver, req))
    assert response.status_code == 403
    assert "edited in the store" in response.json()["error"]


def test_the_approvers_endpoint_gives_each_registered_key_for_the_browser_to_match(workload: Any, served: Served) -> None:
    import base64

    approvers = httpx.get(served.url + "/api/approvers").json()["approvers"]
    assert [a["name"] for a in approvers] == ["finance-lead"]
    raw = base64.urlsafe_b64decode(approvers[0]["x"] + "=")
    assert raw == base64.b64decode(workload.approver.identity.public_key_b64)


# --- audit status -----------------------------------------------------------------------------------

def test_the_audit_page_reports_a_log_that_verifies(workload: Any, served: Served) -> None:
    for name in ("a", "b", "c", "d", "e", "f"):
        workload.governor.call(read_file, (name,), agent=AGENT)
    status = httpx.get(served.url + "/api/audit").json()
    assert status["ok"] is True, status
    assert status["last_checkpoint"]["size"] >= 5
    assert status["key"] == "the Governor's signing key"


def test_the_audit_page_names_an_edited_record(workload: Any, served: Served) -> None:
    workload.governor.call(read_file, ("a.txt",), agent=AGENT)
    workload.governor.call(read_file, ("b.txt",), agent=AGENT)
    log_file = next(workload.log.glob("audit-*.jsonl"))
    log_file.write_text(log_file.read_text().replace("a.txt", "z.txt"))
    status = httpx.get(served.url + "/api/audit").json()
    assert status["ok"] is False
    assert status["report"]["problems"]
    assert "FAILED" in httpx.get(served.url + "/audit").text


# --- the seam into agt serve, and nothing fetched from elsewhere ---------------------------------------

def test_mounted_under_a_prefix_every_link_and_the_stream_keep_the_prefix(workload: Any) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    workload.governor.call(read_file, ("a.txt",), agent=AGENT)
    outer = Starlette(routes=[Mount("/dashboard", app=workload.app())])
    with Served(outer) as served:
        page = httpx.get(served.url + "/dashboard/").text
        script = httpx.get(served.url + "/dashboard/static/dashboard.js")
        frames = _events(served.url + "/dashboard/events?kind=decision", 1)
    assert 'href="/dashboard/static/dashboard.css"' in page and 'data-base="/dashboard"' in page
    assert script.status_code == 200
    assert frames[0]["data"]["tool"] == "read_file"


@pytest.mark.parametrize("path", ["/", f"/agents/{AGENT}", "/approvals", "/audit"])
def test_pages_load_nothing_from_another_origin(workload: Any, served: Served, path: str) -> None:
    import re

    workload.governor.call(read_file, ("a.txt",), agent=AGENT)
    page = httpx.get(served.url + path).text
    targets = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert targets and all(t.startswith("/") and not t.startswith("//") for t in targets), targets


def test_the_audit_page_reports_the_witness_copies(tmp_path: Path) -> None:
    (tmp_path / "signing").mkdir()
    witness = tmp_path / "witness" / "checkpoints.jsonl"
    witness.parent.mkdir()
    w = make_workload(tmp_path, witness=witness)
    for name in ("a", "b", "c", "d", "e"):
        w.governor.call(read_file, (name,), agent=AGENT)
    assert w.governor.audit.flush_witness() is None
    with Served(w.app()) as served:
        status = httpx.get(served.url + "/api/audit").json()
    w.governor.close()
    assert status["ok"] is True, status["report"]["problems"]
    assert str(witness) in status["witness"] and "witnessed checkpoint(s) match the log" in status["witness"]
    assert status["report"]["witnessed"] >= 2
