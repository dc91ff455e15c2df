"""The dashboard over an audit log and a state URL on disk (LogSource), as `agt dashboard` runs it beside a
Governor in another process: the same pages from the files alone, and an honest answer for what files cannot
give (breakers, a kill switch that is not shared)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from agt.audit import AuditLog
from agt.errors import ApprovalRequired, GovernanceDenied
from agt.resources import starter_policy
from agt.runtime.approvals import SqliteApprovals
from agt.runtime.approvers import ApproverRegistry
from agt.runtime.governor import Governor
from agt.runtime.state import SqliteStore
from agt.runtime.votes import sign_vote
from agt.engines import create_engine
from agt.serve.dashboard import DashboardConfig, LogSource, Unavailable, dashboard_app
from agt.identity import IdentityKeys
from tests.dashboard_helpers import AGENT, OPERATOR_TOKEN, Served, drop_table, read_file, refund


class Deployment:
    """A Governor writing a log and a SQLite state file, and the files' paths for the dashboard."""

    def __init__(self, tmp: Path) -> None:
        self.approver = IdentityKeys.generate("finance-lead")
        self.registry_file = ApproverRegistry.from_mapping({"finance-lead": self.approver.did}).save(tmp / "approvers.json")
        self.log = tmp / "audit"
        self.key = tmp / "keys" / "audit.key"
        self.state = tmp / "state.db"
        self.governor = Governor("yaml", str(starter_policy("yaml")), audit=AuditLog(self.log, key_path=self.key, durability="always"),
                                 store=SqliteStore(self.state), approvals=SqliteApprovals(self.state),
                                 approvers=str(self.registry_file), blocking_approvals=False)

    def source(self) -> LogSource:
        return LogSource(self.log, f"sqlite:///{self.state}", approvers=self.registry_file,
                         audit_public_key=self.key.with_suffix(".pub"),
                         policy_engine=create_engine("yaml", str(starter_policy("yaml"))))


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path)
    try:
        yield d
    finally:
        d.governor.close()


@pytest.fixture
def served(deployment: Deployment) -> Iterator[Served]:
    source = deployment.source()
    try:
        with Served(dashboard_app(source, DashboardConfig(operator_token=OPERATOR_TOKEN))) as s:
            yield s
    finally:
        source.close()


def test_the_log_source_reads_the_records_the_governor_wrote(deployment: Deployment, served: Served) -> None:
    deployment.governor.call(read_file, ("a.txt",), agent=AGENT)
    with pytest.raises(GovernanceDenied):
        deployment.governor.call(drop_table, ("users",), agent=AGENT)
    records = httpx.get(served.url + "/api/records?kind=decision").json()
    assert [(r["tool"], r["effect"]) for r in records] == [("read_file", "allow"), ("drop_table", "deny")]


def test_the_log_source_shows_trust_from_the_log_and_counters_from_the_store(deployment: Deployment, served: Served) -> None:
    deployment.governor.call(read_file, ("a.txt",), agent=AGENT)
    view = httpx.get(f"{served.url}/api/agents/{AGENT}").json()
    assert view["trust"] == deployment.governor.trust.score(AGENT)
    assert {b["counter"]: (b["used"], b["limit"]) for b in view["budgets"]}["tool_calls"] == (1, 20)


def test_the_log_source_says_breakers_live_in_the_governors_process(deployment: Deployment, served: Served) -> None:
    deployment.governor.call(read_file, ("a.txt",), agent=AGENT)
    view = httpx.get(f"{served.url}/api/agents/{AGENT}").json()
    assert "live in the Governor's process" in view["breakers"]


def test_the_kill_switch_over_a_sqlite_state_is_refused_naming_why(deployment: Deployment, served: Served) -> None:
    response = httpx.post(f"{served.url}/api/agents/{AGENT}/kill", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert response.status_code == 409
    assert "only a Redis state URL shares it" in response.json()["error"]
    with pytest.raises(Unavailable):
        deployment.source().set_killed(AGENT, True)


def test_a_vote_through_the_log_source_reaches_the_governor_through_the_store(deployment: Deployment, served: Served) -> None:
    gov = deployment.governor
    with pytest.raises(ApprovalRequired) as info:
        gov.call(refund, kwargs={"amount": 250, "order_id": "o-1"}, agent=AGENT)
    req = gov.approvals.get(info.value.request_id)
    assert [p["id"] for p in httpx.get(served.url + "/api/approvals").json()] == [req.id]
    now = float(int(time.time()))
    vote = sign_vote(deployment.approver, request_id=req.id, digest=req.digest, agent_id=req.agent_id, approve=True,
                     issued_at=now, expires_at=now + 600).to_dict()
    response = httpx.post(f"{served.url}/api/approvals/{req.id}/vote", json=vote)
    assert response.json()["status"] == "approved", response.text
    assert gov.call(refund, kwargs={"amount": 250, "order_id": "o-1"}, agent=AGENT, approval_id=req.id) == "refunded 250 on o-1"


def test_the_log_source_verifies_strictly_against_the_given_public_key(deployment: Deployment, served: Served) -> None:
    deployment.governor.call(read_file, ("a.txt",), agent=AGENT)
    deployment.governor.audit.checkpoint()
    status = httpx.get(served.url + "/api/audit").json()
    assert status["ok"] is True, status
    assert status["report"]["strict"] is True
    assert status["key"].endswith("audit.pub")


def test_without_a_state_url_the_approvals_page_says_what_is_missing(deployment: Deployment) -> None:
    source = LogSource(deployment.log)
    with Served(dashboard_app(source)) as served:
        page = httpx.get(served.url + "/approvals").text
    source.close()
    assert "no approvals store" in page


def test_a_log_that_does_not_exist_yet_is_reported_not_crashed_on(tmp_path: Path) -> None:
    source = LogSource(tmp_path / "nothing-here")
    with Served(dashboard_app(source)) as served:
        assert httpx.get(served.url + "/").status_code == 200
        status = httpx.get(served.url + "/api/audit").json()
    source.close()
    assert status["ok"] is False and "no audit log" in status["error"]


def test_a_bad_state_url_is_an_error_naming_it(tmp_path: Path) -> None:
    from agt.errors import AgtError

    with pytest.raises(AgtError, match="ftp://x"):
        LogSource(tmp_path / "audit", "ftp://x")


