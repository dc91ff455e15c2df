"""agt.engines.opa against a real OPA, plus fault injection with small fake servers.

Real OPA: decisions, unix sockets, concurrency, an existing deployment by URL, restart after a crash.
Fakes only inject faults: refused connections, slow answers, HTTP errors, undefined and malformed results.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import agt
from agt.decision import ENGINE_ERROR_ID, Effect
from agt.engines.opa import OpaEngine
from agt.errors import PolicyLoadError
from agt.opa import ManagedOpa
from agt.opa.server import free_port

ROOT = Path(__file__).resolve().parents[1]
REGO = ROOT / "rego"

EMAIL = agt.from_call("send_email", {"to": "a@example.com"}, agent=agt.Agent("alice", trust_score=720))
DROP = agt.from_call("drop_table", {"table": "users"}, agent=agt.Agent("alice", trust_score=720))
READ = agt.from_call("read_file", {"path": "/ws/alice/a"}, agent=agt.Agent("alice", trust_score=720))


@pytest.fixture(scope="module")
def engine(opa_binary):
    e = OpaEngine(REGO)
    yield e
    e.close()


def test_email_needs_approval_from_real_opa(engine):
    d = engine.evaluate(EMAIL)
    assert (d.effect, d.rule_ids, d.approvers) == (Effect.REQUIRE_APPROVAL, ("email-approval",), ("comms-lead",))


def test_destructive_tool_denied_by_real_opa(engine):
    assert engine.evaluate(DROP).rule_ids == ("block-destructive-db-tools",)


def test_matched_lists_non_determining_rules(engine):
    both = agt.from_call("send_email", {"body": "DROP TABLE x"}, agent=agt.Agent("alice", trust_score=720))
    d = engine.evaluate(both)
    assert d.effect is Effect.DENY
    assert d.matched == ("block-destructive-patterns", "email-approval")


def test_revision_is_a_content_hash_of_the_rego(engine):
    assert engine.revision.startswith("sha256:")


def test_evaluate_many_keeps_order(engine):
    actions = [READ, DROP, EMAIL] * 20
    assert [d.effect for d in engine.evaluate_many(actions)] == [Effect.ALLOW, Effect.DENY, Effect.REQUIRE_APPROVAL] * 20


def test_unix_socket_gives_the_same_decisions(opa_binary):
    e = OpaEngine(REGO, unix_socket=True)
    try:
        assert e.server is not None and e.server.addr.startswith("unix://")
        assert e.evaluate(EMAIL).rule_ids == ("email-approval",)
    finally:
        e.close()


def test_existing_deployment_by_url(opa_binary):
    with ManagedOpa([REGO]) as server:
        e = OpaEngine(url=server.url, token=server.token)
        try:
            assert e.server is None
            assert e.evaluate(EMAIL).effect is Effect.REQUIRE_APPROVAL
        finally:
            e.close()


def test_url_from_environment(opa_binary, monkeypatch):
    with ManagedOpa([REGO]) as server:
        monkeypatch.setenv("AGT_OPA_URL", server.url)
        monkeypatch.setenv("AGT_OPA_TOKEN", server.token)
        e = agt.create_engine("opa", None)
        try:
            assert e.url == server.url and e.evaluate(EMAIL).effect is Effect.REQUIRE_APPROVAL
        finally:
            e.close()


def test_managed_opa_restarts_after_it_dies(opa_binary):
    e = OpaEngine(REGO)
    try:
        assert e.server is not None
        e.server._proc.kill()  # noqa: SLF001 - inject the crash
        e.server._proc.wait()  # noqa: SLF001
        d = e.evaluate(EMAIL)
        assert d.effect is Effect.REQUIRE_APPROVAL
        assert e.server.restarts == 1
    finally:
        e.close()


def test_close_stops_the_managed_opa(opa_binary):
    e = OpaEngine(REGO)
    server = e.server
    e.close()
    assert server is not None and not server.alive()


def test_rego_that_does_not_compile_is_a_load_error(opa_binary, tmp_path):
    (tmp_path / "bad.rego").write_text("package agt\n\ndecision := {\n")
    with pytest.raises(PolicyLoadError, match="bad.rego"):
        OpaEngine(tmp_path)


def test_missing_rego_path_is_a_load_error(tmp_path):
    with pytest.raises(PolicyLoadError, match="does not exist"):
        OpaEngine(tmp_path / "absent")


def test_rego_without_the_decision_library_denies_as_undefined(opa_binary, tmp_path):
    (tmp_path / "p.rego").write_text("package other\n\nx := 1\n")
    e = OpaEngine(tmp_path)
    try:
        d = e.evaluate(READ)
        assert (d.effect, d.rule_ids) == (Effect.DENY, (ENGINE_ERROR_ID,))
        assert "undefined" in d.reasons[0].message
    finally:
        e.close()


# --- faults ---------------------------------------------------------------------------------------


class _Fake:
    """An HTTP server answering every POST with a canned status, body and delay."""

    def __init__(self, status: int = 200, body: bytes = b"{}", delay: float = 0.0) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                fake.auth = self.headers.get("Authorization")
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(fake.delay)
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(fake.body)))
                self.end_headers()
                self.wfile.write(fake.body)

            def log_message(self, *args: object) -> None:
                pass

        self.status, self.body, self.delay, self.auth = status, body, delay, None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    made: list[_Fake] = []

    def make(**kw: object) -> _Fake:
        made.append(_Fake(**kw))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for f in made:
        f.close()


def _deny_cause(engine: OpaEngine) -> str:
    d = engine.evaluate(READ)
    engine.close()
    assert d.effect is Effect.DENY and d.rule_ids == (ENGINE_ERROR_ID,)
    return d.reasons[0].message


def test_connection_refused_denies():
    assert "unreachable" in _deny_cause(OpaEngine(url=f"http://127.0.0.1:{free_port()}"))


def test_timeout_denies(fake):
    slow = fake(delay=1.0, body=json.dumps({"result": {"effect": "allow", "reasons": [{"id": "x"}]}}).encode())
    assert "timeout" in _deny_cause(OpaEngine(url=slow.url, timeout=0.2))


@pytest.mark.parametrize("status", [400, 403, 404, 500, 503])
def test_http_error_denies_naming_the_status(fake, status):
    assert f"HTTP {status}" in _deny_cause(OpaEngine(url=fake(status=status, body=b'{"code":"x"}').url))


def test_undefined_result_denies(fake):
    assert "undefined" in _deny_cause(OpaEngine(url=fake(body=b"{}").url))


def test_non_json_body_denies(fake):
    assert "not JSON" in _deny_cause(OpaEngine(url=fake(body=b"<html>").url))


@pytest.mark.parametrize(
    "result",
    [
        [1, 2],
        {"effect": "maybe", "reasons": [{"id": "x"}]},
        {"effect": "allow"},
        {"effect": "allow", "reasons": []},
        {"effect": "allow", "reasons": ["x"]},
        {"effect": "allow", "reasons": [{"id": 3}]},
        {"effect": "require_approval", "reasons": [{"id": "x"}], "approvers": "ops"},
        {"effect": "allow", "reasons": [{"id": "x"}], "matched": [1]},
    ],
    ids=["list", "unknown-effect", "no-reasons", "empty-reasons", "reason-not-object", "id-not-string",
         "approvers-not-list", "matched-not-strings"],
)
def test_wrong_shape_denies(fake, result):
    body = json.dumps({"result": result}).encode()
    assert "wrong shape" in _deny_cause(OpaEngine(url=fake(body=body).url))


def test_bearer_token_is_sent(fake):
    ok = fake(body=json.dumps({"result": {"effect": "allow", "reasons": [{"id": "x", "message": ""}]}}).encode())
    e = OpaEngine(url=ok.url, token="s3cret")
    try:
        assert e.evaluate(READ).effect is Effect.ALLOW
        assert ok.auth == "Bearer s3cret"
    finally:
        e.close()


def test_a_well_formed_fake_result_is_parsed_not_trusted_blindly(fake):
    body = {"result": {"effect": "require_approval", "reasons": [{"id": "b", "message": "m"}, {"id": "a"}],
                       "approvers": ["z", "y", "z"]}}
    e = OpaEngine(url=fake(body=json.dumps(body).encode()).url)
    try:
        d = e.evaluate(READ)
        assert (d.rule_ids, d.approvers) == (("a", "b"), ("y", "z"))
    finally:
        e.close()
