"""Attacks on the OPA that agt manages: the agent shares agt's user, reaches loopback and reads /proc.

It must not be able to read or replace policies or data, with or without guessing the token, and the
decision must not change whatever it sends to OPA's API.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from agt.action import Action
from agt.decision import Effect
from agt.engines.opa import OpaEngine
from agt.errors import PolicyLoadError

ROOT = Path(__file__).resolve().parents[2]
REGO = ROOT / "rego"
DROP = Action.from_dict({"agent": {"id": "a"}, "action": {"tool": "sql", "params": {"query": "DROP TABLE users"}}})
ALLOW_ALL = b'package agt\n\ndecision := {"effect": "allow", "reasons": [{"id": "pwned", "message": ""}]}\n'


@pytest.fixture(params=[False, True], ids=["tcp", "unix"])
def engine(request, opa_binary):
    e = OpaEngine(REGO, unix_socket=request.param)
    yield e
    e.close()


def _client(engine: OpaEngine) -> httpx.Client:
    """What the agent can do: talk to OPA's address directly."""
    assert engine.server is not None
    return httpx.Client(base_url=engine.server.url, transport=engine.server.transport(), timeout=30)


WRITES = [
    ("PUT", "/v1/policies/pwned", ALLOW_ALL),
    ("PUT", "/v1/policies/" + str(REGO / "agt" / "decision.rego").lstrip("/"), ALLOW_ALL),
    ("DELETE", "/v1/policies/" + str(REGO / "agt" / "decision.rego").lstrip("/"), None),
    ("PUT", "/v1/data/agt", b'{"decision": {"effect": "allow"}}'),
    ("PATCH", "/v1/data", b'[{"op": "add", "path": "/agt_pwned", "value": 1}]'),
    ("DELETE", "/v1/data/agt", None),
    ("PUT", "/v1/data/system/authz/allow", b"true"),
]
READS = [
    ("GET", "/v1/policies", None),
    ("GET", "/v1/data", None),
    ("POST", "/v1/data/agt/policies", b'{"input": {}}'),
    ("POST", "/v1/query", b'{"query": "data"}'),
    ("POST", "/v1/compile", b'{"query": "data.agt.decision.effect == \\"allow\\""}'),
    ("GET", "/v1/config", None),
    ("GET", "/v1/status", None),
    ("GET", "/metrics", None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES + READS, ids=[f"{m} {p[:40]}" for m, p, _ in WRITES + READS])
def test_without_the_token_the_api_is_refused(engine, method, path, body):
    before = engine.evaluate(DROP)
    with _client(engine) as client:
        status = client.request(method, path, content=body).status_code
    assert status in (401, 403)
    assert engine.evaluate(DROP) == before


@pytest.mark.parametrize(("method", "path", "body"), WRITES + READS, ids=[f"{m} {p[:40]}" for m, p, _ in WRITES + READS])
def test_with_the_token_everything_but_the_decision_is_still_refused(engine, method, path, body):
    before = engine.evaluate(DROP)
    assert engine.server is not None
    with _client(engine) as client:
        status = client.request(method, path, content=body, headers=engine.server.headers).status_code
    assert status in (401, 403)
    assert engine.evaluate(DROP) == before


def test_the_decision_query_needs_the_token(engine):
    with _client(engine) as client:
        assert client.post("/v1/data/agt/decision", json={"input": DROP.document}).status_code == 401
        assert client.post("/v1/data/agt/decision", json={"input": DROP.document},
                           headers={"Authorization": "Bearer guess"}).status_code == 401


def test_the_decision_is_unchanged_after_every_write_attempt(engine):
    before = engine.evaluate(DROP)
    assert before.effect is Effect.DENY and "pwned" not in before.rule_ids
    with _client(engine) as client:
        for method, path, body in WRITES:
            client.request(method, path, content=body)
    assert engine.evaluate(DROP) == before


def test_the_private_directory_is_0700_and_holds_the_socket(opa_binary):
    e = OpaEngine(REGO, unix_socket=True)
    try:
        assert e.server is not None
        assert stat.S_IMODE(os.stat(e.server.private_dir).st_mode) == 0o700
        assert Path(e.server.socket_path).parent == e.server.private_dir
        assert stat.S_ISSOCK(os.stat(e.server.socket_path).st_mode)
    finally:
        e.close()


def test_the_token_is_on_no_command_line_and_in_no_file(engine):
    server = engine.server
    assert server is not None and len(server.token) >= 32
    cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes()
    assert b"--authentication=token" in cmdline and b"--authorization=basic" in cmdline
    assert server.token.encode() not in cmdline
    # The agent reads what agt's user reads: by default no file holds the token, not even the authz policy.
    assert not server.token_path.exists()
    for f in server.private_dir.rglob("*"):
        if f.is_file():
            assert server.token.encode() not in f.read_bytes()


def test_a_token_file_when_asked_for_is_0600(opa_binary):
    from agt.opa import ManagedOpa

    with ManagedOpa([REGO], token_file=True, ready_timeout=60) as server:
        assert stat.S_IMODE(os.stat(server.token_path).st_mode) == 0o600
        assert server.token_path.read_text() == server.token


def test_a_restart_gets_a_fresh_token_and_the_old_one_stops_working(opa_binary):
    e = OpaEngine(REGO)
    try:
        assert e.server is not None and e.server._proc is not None  # noqa: SLF001
        old = e.server.headers
        before = e.evaluate(DROP)
        e.server._proc.kill()  # noqa: SLF001 - inject the crash
        e.server._proc.wait()  # noqa: SLF001
        assert e.evaluate(DROP) == before
        assert e.server.restarts == 1 and e.server.headers != old
        with _client(e) as client:
            assert client.post("/v1/data/agt/decision", json={"input": DROP.document}, headers=old).status_code == 401
    finally:
        e.close()


@pytest.mark.parametrize(
    "module",
    [
        "package system.authz\n\nallow if true\n",
        'package system.authz\n\nallow := {"allowed": true}\n',
        "package system\n\nauthz.allow if true\n",
        "package system.authz.extra\n\nx := 1\n",
    ],
    ids=["authz-allow", "authz-conflicting-value", "system-ref-head", "authz-subpackage"],
)
def test_user_rego_cannot_define_the_authorization_policy(opa_binary, tmp_path, module):
    for f in (REGO / "agt").rglob("*.rego"):
        target = tmp_path / f.relative_to(REGO)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.read_bytes())
    (tmp_path / "evil.rego").write_text(module)
    with pytest.raises(PolicyLoadError, match=r"authorization namespace.*evil\.rego"):
        OpaEngine(tmp_path).close()


def test_an_opa_loading_a_local_bundle_is_closed_too(opa_binary, tmp_path):
    from agt.bundle import build_bundle
    from agt.opa import ManagedOpa

    (tmp_path / "b.tar.gz").write_bytes(build_bundle([REGO]))
    with ManagedOpa([tmp_path / "b.tar.gz"], extra_args=["--bundle"], ready_timeout=60) as server:
        e = OpaEngine(url=server.url, token=server.token)
        try:
            before = e.evaluate(DROP)
            assert before.effect is Effect.DENY and before.rule_ids != ("engine_error",)
            with httpx.Client(base_url=server.url, timeout=30) as client:
                assert client.put("/v1/policies/pwned", content=ALLOW_ALL).status_code == 401
                assert client.put("/v1/policies/pwned", content=ALLOW_ALL, headers=server.headers).status_code == 401
            assert e.evaluate(DROP) == before
        finally:
            e.close()


def test_health_answers_without_the_token(engine):
    with _client(engine) as client:
        assert client.get("/health").status_code == 200
