"""OpaEngine.evaluate_many through data.agt.batch (rego/agt/batch.rego), against a real OPA.

The batch must reach exactly the decisions single calls reach: every conformance suite and a stretch of the
fuzz are decided both ways and compared. Fakes only inject faults: a malformed element, a failed POST.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import agt
from agt.action import Action, ActionError
from agt.conformance import load_suite, open_engines
from agt.conformance.fuzz import ActionGenerator, vocabulary_from_policy
from agt.decision import ENGINE_ERROR_ID, Effect
from agt.engines.opa import BATCH_PATH, BATCH_SIZE, OpaEngine
from agt.opa import ManagedOpa

ROOT = Path(__file__).resolve().parents[1]
REGO = ROOT / "rego"
SUITES = sorted((ROOT / "conformance").glob("*.yaml"))

READ = agt.from_call("read_file", {"path": "/ws/alice/a"}, agent=agt.Agent("alice", trust_score=720))
DROP = agt.from_call("drop_table", {"table": "users"}, agent=agt.Agent("alice", trust_score=720))
EMAIL = agt.from_call("send_email", {"to": "a@example.com"}, agent=agt.Agent("alice", trust_score=720))


def _full(d):
    return (d.effect, d.reasons, d.approvers, d.matched)


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_a_suite_decided_in_batches_equals_it_decided_one_by_one(opa_binary, path):
    suite = load_suite(path)
    engine = open_engines(suite, ("opa",))["opa"]
    try:
        actions = [c.action for c in suite.cases]
        single = [engine.evaluate(a) for a in actions]
        batched = engine.evaluate_many(actions)
        assert engine.batch_supported is True
        assert [_full(d) for d in batched] == [_full(d) for d in single]
    finally:
        engine.close()


def test_fuzzed_actions_decided_in_batches_equal_single_calls(opa_binary):
    suite = load_suite(ROOT / "conformance" / "starter.yaml")
    gen = iter(ActionGenerator(vocabulary_from_policy(suite.policies["yaml"]), 7))
    actions: list[Action] = []
    while len(actions) < 2 * BATCH_SIZE + 17:  # more than one chunk, the last one partial
        try:
            actions.append(Action.from_dict(next(gen)))
        except ActionError:
            pass
    engine = open_engines(suite, ("opa",))["opa"]
    try:
        batched = engine.evaluate_many(actions)
        assert engine.batch_supported is True
        assert [_full(d) for d in batched] == [_full(engine.evaluate(a)) for a in actions]
    finally:
        engine.close()


MONEY = """package agt.policies.money

import data.agt

default_action := "allow"

approval["refund-approval"] := {"message": "big refund", "approvers": ["finance"]} if {
	input.action.tool == "refund"
	agt.greater(input.action.params.amount, 100)
}
"""


def test_a_type_error_in_one_input_denies_only_that_input(opa_binary, tmp_path):
    # agt.compare's type error fails a whole query (HTTP 500); the chunk is then decided one input at a time.
    (tmp_path / "money.rego").write_text(MONEY)
    engine = OpaEngine(tmp_path)
    try:
        actions = [agt.from_call("refund", {"amount": 150}), agt.from_call("refund", {"amount": "19.99"}), READ]
        got = engine.evaluate_many(actions)
        assert [d.effect for d in got] == [Effect.REQUIRE_APPROVAL, Effect.DENY, Effect.ALLOW]
        assert got[1].rule_ids == (ENGINE_ERROR_ID,) and "cannot order" in got[1].reasons[0].message
        assert [_full(d) for d in got] == [_full(engine.evaluate(a)) for a in actions]
        assert engine.batch_supported is not False  # the batch is still used for the next call
    finally:
        engine.close()


def test_an_opa_without_data_agt_batch_falls_back_to_single_calls(opa_binary, tmp_path):
    # Your own OPA with a copy of the library from before batch.rego: the batch is undefined there.
    lib = tmp_path / "agt"
    lib.mkdir()
    shutil.copy(REGO / "agt" / "decision.rego", lib)
    shutil.copy(REGO / "agt" / "compare.rego", lib)
    shutil.copytree(REGO / "agt" / "policies", lib / "policies")
    with ManagedOpa([tmp_path]) as server:
        engine = OpaEngine(url=server.url, token=server.token)
        try:
            actions = [READ, DROP, EMAIL] * 3
            got = engine.evaluate_many(actions)
            assert engine.batch_supported is False
            assert [d.effect for d in got] == [Effect.ALLOW, Effect.DENY, Effect.REQUIRE_APPROVAL] * 3
            assert engine.evaluate_many(actions) == got
        finally:
            engine.close()


def test_each_action_is_encoded_once_whatever_decides_it(opa_binary, tmp_path, monkeypatch):
    # The fallbacks (an OPA without data.agt.batch; an input alone after a split) send the bytes the batch was built
    # from, not a second encoding. The counter calls the real encoder.
    import agt.engines.opa as opa_engine

    real, calls = opa_engine._encode, []
    monkeypatch.setattr(opa_engine, "_encode", lambda doc: calls.append(1) or real(doc))
    (tmp_path / "money.rego").write_text(MONEY)
    engine = OpaEngine(tmp_path)
    try:
        actions = [agt.from_call("refund", {"amount": 150}), agt.from_call("refund", {"amount": "19.99"}), READ]
        got = engine.evaluate_many(actions)  # HTTP 500: split until the failing input is alone
        assert [d.effect for d in got] == [Effect.REQUIRE_APPROVAL, Effect.DENY, Effect.ALLOW] and len(calls) == 3
    finally:
        engine.close()
    lib = tmp_path / "old" / "agt"
    lib.mkdir(parents=True)
    shutil.copy(REGO / "agt" / "decision.rego", lib)
    shutil.copy(REGO / "agt" / "compare.rego", lib)
    shutil.copytree(REGO / "agt" / "policies", lib / "policies")
    with ManagedOpa([tmp_path / "old"]) as server:
        engine = OpaEngine(url=server.url, token=server.token)
        try:
            calls.clear()
            got = engine.evaluate_many([READ, DROP, EMAIL])  # no batch here: one call each
            assert engine.batch_supported is False and len(calls) == 3
            assert [d.effect for d in got] == [Effect.ALLOW, Effect.DENY, Effect.REQUIRE_APPROVAL]
        finally:
            engine.close()


def test_a_decision_path_of_your_own_never_uses_the_batch(opa_binary, tmp_path):
    (tmp_path / "authz.rego").write_text("package authz\n\ndefault allow := false\n\nallow if input.action.tool == \"read_file\"\n")
    engine = OpaEngine(tmp_path, decision_path="data.authz.allow")
    try:
        assert engine.batch_supported is False
        assert [d.effect for d in engine.evaluate_many([READ, DROP])] == [Effect.ALLOW, Effect.DENY]
    finally:
        engine.close()


def test_the_batch_survives_a_managed_opa_crash(opa_binary):
    engine = OpaEngine(REGO)
    try:
        assert engine.server is not None
        engine.server._proc.kill()  # noqa: SLF001 - inject the crash
        engine.server._proc.wait()  # noqa: SLF001
        got = engine.evaluate_many([READ, DROP, EMAIL])
        assert [d.effect for d in got] == [Effect.ALLOW, Effect.DENY, Effect.REQUIRE_APPROVAL]
        assert engine.server.restarts == 1 and engine.batch_supported is True
    finally:
        engine.close()


# --- faults ---------------------------------------------------------------------------------------------


class _Fake:
    """Answers POSTs to data.agt.batch with a canned status, body and delay; any other POST with ``single``."""

    def __init__(self, status: int = 200, body: object = None, delay: float = 0.0, single: object = None) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                sent = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                fake.paths.append(self.path)
                if self.path == BATCH_PATH:
                    fake.sizes.append(len(sent["input"]["inputs"]))
                    time.sleep(fake.delay)
                    status, body = fake.status, fake.body
                    if callable(body):
                        body = body(sent["input"]["inputs"])
                else:
                    status, body = 200, fake.single
                out = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        self.status, self.body, self.delay, self.single = status, body, delay, single
        self.paths: list[str] = []
        self.sizes: list[int] = []
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


GOOD = {"effect": "allow", "reasons": [{"id": "ok", "message": ""}]}


def _engine(fake_server: _Fake, **kw) -> OpaEngine:
    return OpaEngine(url=fake_server.url, catalog=None, **kw)


def test_a_malformed_element_denies_only_its_own_action(fake):
    f = fake(body={"result": [GOOD, {"effect": "maybe", "reasons": [{"id": "x"}]}, None, GOOD]})
    engine = _engine(f)
    try:
        got = engine.evaluate_many([READ, READ, READ, READ])
        assert [d.effect for d in got] == [Effect.ALLOW, Effect.DENY, Effect.DENY, Effect.ALLOW]
        assert "wrong shape" in got[1].reasons[0].message and "undefined" in got[2].reasons[0].message
        assert got[1].rule_ids == got[2].rule_ids == (ENGINE_ERROR_ID,)
    finally:
        engine.close()


@pytest.mark.parametrize("body,match", [
    ({"result": [GOOD]}, "a list of 1 for 3 inputs"),
    ({"result": {"effect": "allow"}}, "dict for 3 inputs"),
    (b"<html>", "not JSON"),
], ids=["too-few", "not-a-list", "not-json"])
def test_a_reply_that_is_not_one_decision_per_input_denies_the_whole_post(fake, body, match):
    engine = _engine(fake(body=body))
    try:
        got = engine.evaluate_many([READ, READ, READ])
        assert all(d.effect is Effect.DENY and d.rule_ids == (ENGINE_ERROR_ID,) for d in got)
        assert all(match in d.reasons[0].message for d in got)
    finally:
        engine.close()


@pytest.mark.parametrize("status", [400, 401, 503])
def test_a_failed_post_denies_all_of_its_actions_naming_the_status(fake, status):
    engine = _engine(fake(status=status, body={"code": "x"}))
    try:
        got = engine.evaluate_many([READ, READ])
        assert all(d.effect is Effect.DENY and f"HTTP {status}" in d.reasons[0].message for d in got)
    finally:
        engine.close()


def test_a_slow_batch_denies_all_of_its_actions_with_the_timeout(fake):
    engine = _engine(fake(delay=1.0, body={"result": [GOOD, GOOD]}), timeout=0.2)
    try:
        got = engine.evaluate_many([READ, READ])
        assert all(d.effect is Effect.DENY and "timeout" in d.reasons[0].message for d in got)
    finally:
        engine.close()


def test_batches_are_chunked_and_keep_order(fake):
    # The fake names each decision after its input's path, so any shuffle shows.
    f = fake(body=lambda inputs: {"result": [
        {"effect": "allow", "reasons": [{"id": x["action"]["params"]["path"]}]} for x in inputs]})
    engine = _engine(f)
    try:
        n = 2 * BATCH_SIZE + 3
        actions = [agt.from_call("read_file", {"path": f"/ws/{i}"}) for i in range(n)]
        got = engine.evaluate_many(actions)
        assert f.sizes == [BATCH_SIZE, BATCH_SIZE, 3]
        assert [d.rule_ids for d in got] == [(f"/ws/{i}",) for i in range(n)]
    finally:
        engine.close()


@pytest.mark.parametrize("status", [403, 404])
def test_a_batch_refused_outright_means_single_calls(fake, status):
    f = fake(status=status, body={"code": "x"}, single={"result": GOOD})
    engine = _engine(f)
    try:
        assert [d.effect for d in engine.evaluate_many([READ, READ])] == [Effect.ALLOW, Effect.ALLOW]
        assert engine.batch_supported is False
        assert f.paths.count(BATCH_PATH) == 1
    finally:
        engine.close()
