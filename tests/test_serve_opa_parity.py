"""OPA-API parity (issue 15): the same action documents, asked of a real OPA running the agt Rego library and the
starter policy bundle (as the opa engine runs it) and of agt serve on the yaml engine, get the same JSON
``result``: effect, reasons with their messages, approvers and matched. Nothing differs; the raw bodies go
to both over HTTP, exactly as an OPA client would send them.

What legitimately differs, and why (docs/serve.md, "Parity with OPA"):

* **Derived facts.** agt serve normalizes its input as every agt engine does: it derives ``params_text`` and the
  parsed shell and SQL ``facts`` from the params (a supplied value is ignored and recomputed). A bare OPA decides
  the document as sent, so a client that sends ``rm -rf /`` without facts gets allow from OPA and deny from agt
  serve. Parity therefore holds between agt serve given a document and OPA given that document normalized (which
  is what the opa engine sends); the suite's documents are normalized already.
* **The tool catalog.** The yaml engine checks params against policies/catalog.yaml before it decides; a bare OPA
  does not (the opa engine does it on agt's side). None of the starter suite's cases is refused by the catalog;
  the last test checks that, so the comparison never passes by deciding nothing."""

from __future__ import annotations

import httpx
import pytest

from agt import _json
from agt.action import Action
from agt.conformance.suite import load_suite
from agt.serve.auth import Credentials
from serve_helpers import ROOT, served, starter_governor

SUITE = load_suite(ROOT / "conformance" / "starter.yaml")
EXTRA = [  # documents as a hand-written OPA client sends them: no derived facts, few fields
    {"agent": {"id": "a"}, "action": {"tool": "run_shell", "params": {"command": "rm -rf /"}}},
    {"agent": {"id": "a"}, "action": {"tool": "send_email", "params": {"to": "x@example.com"}}},
    {"agent": {"id": "a", "trust_score": 100}, "action": {"tool": "read_file"}},
]


@pytest.fixture(scope="module")
def both(opa_binary):
    from agt.engines.opa import OpaEngine

    opa = OpaEngine(str(ROOT / "rego"))
    try:
        with served(starter_governor("yaml"), credentials=Credentials()) as (url, _):
            with httpx.Client(base_url=opa.server.url, transport=opa.server.transport(), headers=opa.server.headers,
                              timeout=10) as to_opa, httpx.Client(base_url=url, timeout=10) as to_agt:
                yield to_opa, to_agt
    finally:
        opa.close()


def _ask(client: httpx.Client, doc) -> dict:
    r = client.post("/v1/data/agt/decision", content=_json.dumps({"input": doc}), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("case", SUITE.cases, ids=[c.name for c in SUITE.cases])
def test_agt_serve_answers_the_starter_suite_as_opa_does(both, case):
    to_opa, to_agt = both
    doc = case.action.document
    assert _ask(to_agt, doc) == _ask(to_opa, doc)


@pytest.mark.parametrize("doc", EXTRA, ids=["rm -rf /", "send_email", "low trust read"])
def test_agt_serve_answers_a_bare_document_as_opa_answers_it_normalized(both, doc):
    to_opa, to_agt = both
    assert _ask(to_agt, doc) == _ask(to_opa, Action.from_dict(doc).document)


def test_a_bare_document_is_decided_on_facts_agt_derives_and_opa_cannot(both):
    to_opa, to_agt = both
    assert _ask(to_opa, EXTRA[0])["result"]["effect"] == "allow"  # no facts sent: no rule can see the rm
    assert _ask(to_agt, EXTRA[0])["result"]["effect"] == "deny"


def test_no_parity_case_is_decided_by_the_catalog(both):
    _, to_agt = both
    reasons = {r["id"] for c in SUITE.cases for r in _ask(to_agt, c.action.document)["result"]["reasons"]}
    assert "engine_error" not in reasons  # a catalog refusal is a fail-closed deny, engine_error


def test_agt_serve_on_the_opa_engine_forwards_to_its_opa(both, opa_binary):
    to_opa, _ = both
    with served(starter_governor("opa", str(ROOT / "rego")), credentials=Credentials()) as (url, _):
        with httpx.Client(base_url=url, timeout=30) as to_agt:
            for case in SUITE.cases[:20]:
                assert _ask(to_agt, case.action.document) == _ask(to_opa, case.action.document)


def test_remote_engine_sends_a_plain_opa_whole_documents(opa_binary):
    # Only agt serve derives facts again; a plain OPA sent a lean document would allow the rm (test above)
    from agt.client import RemoteEngine
    from agt.engines.opa import OpaEngine

    opa = OpaEngine(str(ROOT / "rego"))
    try:
        server = opa.server
        url = f"unix://{server.socket_path}" if server.unix_socket else server.url
        remote = RemoteEngine(url, token=server.token or None)
        try:
            decision = remote.evaluate(Action.from_dict(EXTRA[0]))
            assert not decision.is_engine_error, decision.reasons
            assert decision.effect.value == "deny", decision.reasons
        finally:
            remote.close()
    finally:
        opa.close()


def test_remote_engine_sends_agt_serve_lean_documents():
    from agt.client import RemoteEngine

    with served(starter_governor("yaml"), credentials=Credentials()) as (url, _):
        remote = RemoteEngine(url)
        try:
            assert remote.evaluate(Action.from_dict(EXTRA[0])).effect.value == "deny"
            assert remote._lean is True  # noqa: SLF001 - the service said it is agt serve
        finally:
            remote.close()
