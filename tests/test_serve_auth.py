"""agt.serve.auth and its enforcement: the agent token, the operator token, and what each may reach."""

from __future__ import annotations

import httpx
import pytest

from agt.serve.auth import MIN_TOKEN_LENGTH, AuthError, Credentials, Role, read_token_file
from serve_helpers import AGENT_TOKEN, OPERATOR_TOKEN, headers, served

AGENT, OPERATOR = b"a" * 20, b"o" * 20
ACTION = {"agent": {"id": "a"}, "action": {"tool": "read_file", "params": {"path": "/ws/a/x"}}}


def test_the_agent_token_grants_the_agent_role():
    assert Credentials(AGENT, OPERATOR).role("Bearer " + AGENT.decode()) is Role.AGENT


def test_the_operator_token_grants_the_operator_role():
    assert Credentials(AGENT, OPERATOR).role("Bearer " + OPERATOR.decode()) is Role.OPERATOR


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic " + "a" * 20, "Bearer " + "a" * 19, "Bearer x"])
def test_a_missing_or_wrong_token_grants_nothing(header):
    assert Credentials(AGENT, OPERATOR).role(header) is Role.NONE


def test_without_an_agent_token_every_caller_is_an_agent_and_none_an_operator():
    assert Credentials(None, OPERATOR).role(None) is Role.AGENT
    assert Credentials(None, None).role("Bearer " + "o" * 20) is Role.AGENT


def test_the_operator_token_must_differ_from_the_agent_token():
    with pytest.raises(AuthError, match="must differ"):
        Credentials(AGENT, AGENT)


def test_a_token_file_is_read_without_surrounding_whitespace(tmp_path):
    (tmp_path / "t").write_text("  " + "x" * 20 + "\n")
    assert read_token_file(tmp_path / "t") == b"x" * 20


@pytest.mark.parametrize("content, message", [("", "empty"), ("x" * (MIN_TOKEN_LENGTH - 1), "at least"), ("two words " + "x" * 20, "one word")])
def test_a_bad_token_file_is_refused_naming_it(tmp_path, content, message):
    (tmp_path / "t").write_text(content)
    with pytest.raises(AuthError, match=message) as info:
        read_token_file(tmp_path / "t")
    assert str(tmp_path / "t") in str(info.value)


def test_a_missing_token_file_is_refused_naming_it(tmp_path):
    with pytest.raises(AuthError, match="cannot read"):
        read_token_file(tmp_path / "missing")


# --- over HTTP -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def service():
    with served() as (url, gov):
        yield url, gov


def test_a_decision_without_a_token_is_401_and_decides_nothing(service):
    url, _ = service
    r = httpx.post(f"{url}/v1/data/agt/decision", json={"input": ACTION})
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized" and "result" not in r.json()
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_a_begin_with_a_wrong_token_is_401_and_counts_nothing(service):
    url, gov = service
    r = httpx.post(f"{url}/v1/agt/begin", json={"tool": "read_file", "task": "auth-wrong"}, headers=headers("x" * 32))
    assert r.status_code == 401
    assert gov.store.counters("auth-wrong").tool_calls == 0


@pytest.mark.parametrize("path, body", [("/v1/agt/kill", {"agent": "a"}), ("/v1/agt/revive", {})])
def test_the_agent_token_cannot_use_the_kill_switch(service, path, body):
    url, gov = service
    r = httpx.post(url + path, json=body, headers=headers(AGENT_TOKEN))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert not gov.trust.is_killed("a")


def test_the_agent_token_cannot_write_trust(service):
    url, gov = service
    r = httpx.put(f"{url}/v1/agt/trust/climber", json={"score": 1000}, headers=headers(AGENT_TOKEN))
    assert r.status_code == 403
    assert gov.trust.score("climber") == 500


def test_the_operator_token_kills_and_revives_an_agent(service):
    url, gov = service
    assert httpx.post(f"{url}/v1/agt/kill", json={"agent": "rogue"}, headers=headers(OPERATOR_TOKEN)).status_code == 200
    assert gov.trust.is_killed("rogue")
    assert httpx.post(f"{url}/v1/agt/revive", json={"agent": "rogue"}, headers=headers(OPERATOR_TOKEN)).status_code == 200
    assert not gov.trust.is_killed("rogue")


def test_health_answers_without_a_token(service):
    url, _ = service
    r = httpx.get(f"{url}/health")
    assert r.status_code == 200 and r.json() == {}


def test_operator_endpoints_are_closed_without_an_operator_token():
    with served(credentials=Credentials(AGENT_TOKEN.encode(), None)) as (url, gov):
        r = httpx.post(f"{url}/v1/agt/kill", json={}, headers=headers(AGENT_TOKEN))
        assert r.status_code == 403 and "without --operator-token-file" in r.json()["message"]
        assert not gov.trust.is_killed("anyone")
