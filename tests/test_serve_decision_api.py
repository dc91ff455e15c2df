"""agt.serve.decision_api: OPA's decision API over the yaml and cedar engines (shapes, bad input, batch, health)."""

from __future__ import annotations

import httpx
import pytest

from agt.runtime.audit import MemoryAuditSink
from agt.serve.wire import opa_result
from serve_helpers import ROOT, headers, served, starter_governor

RM_ROOT = {"agent": {"id": "a"}, "action": {"tool": "run_shell", "params": {"command": "rm -rf /"}}}
READ = {"agent": {"id": "a"}, "action": {"tool": "read_file", "params": {"path": "/ws/a/x"}}}
EMAIL = {"agent": {"id": "a"}, "action": {"tool": "send_email", "params": {"to": "x@example.com"}}}


@pytest.fixture(scope="module", params=["yaml", "cedar"])
def service(request):
    policy = str(ROOT / ("policies/starter.yaml" if request.param == "yaml" else "cedar"))
    with served(starter_governor(request.param, policy)) as (url, gov):
        with httpx.Client(base_url=url, headers=headers()) as client:
            yield client, gov


def decide(client, doc):
    r = client.post("/v1/data/agt/decision", json={"input": doc})
    assert r.status_code == 200
    return r.json()


def test_the_answer_has_opas_shape_and_nothing_more(service):
    client, _ = service
    body = decide(client, RM_ROOT)
    assert set(body) == {"result"}
    assert set(body["result"]) == {"effect", "reasons", "approvers", "matched"}


def test_a_deny_names_its_rule(service):
    client, _ = service
    result = decide(client, RM_ROOT)["result"]
    assert result["effect"] == "deny"
    assert [r["id"] for r in result["reasons"]] == ["block-recursive-delete"]


def test_an_approval_names_its_approvers(service):
    client, _ = service
    result = decide(client, EMAIL)["result"]
    assert (result["effect"], result["approvers"]) == ("require_approval", ["comms-lead"])


def test_the_result_is_the_engines_own_decision(service):
    client, gov = service
    from agt.action import Action

    assert decide(client, READ)["result"] == opa_result(gov.engine.evaluate(Action.from_dict(READ)))


def test_decisions_are_stateless_no_counter_moves(service):
    client, gov = service
    decide(client, {**READ, "context": {"task_id": "stateless"}})
    assert gov.store.counters("stateless").tool_calls == 0
    assert not [r for r in gov.audit.records if r.kind == "decision"]


@pytest.mark.parametrize("doc, field", [
    ({"agent": {"id": "a"}}, "action: is required"),
    ({"agent": {"id": "a"}, "action": {}}, "action.tool"),
    ({"agent": {"id": "a"}, "action": {"tool": "x", "colour": 1}}, "colour"),
    ("a string", "<document>"),
])
def test_an_invalid_action_is_a_fail_closed_deny_naming_the_field(service, doc, field):
    client, _ = service
    result = decide(client, doc)["result"]
    assert result["effect"] == "deny"
    assert result["reasons"][0]["id"] == "engine_error" and field in result["reasons"][0]["message"]


def test_no_input_is_a_fail_closed_deny(service):
    client, _ = service
    result = client.post("/v1/data/agt/decision", json={}).json()["result"]
    assert result["effect"] == "deny" and "no input" in result["reasons"][0]["message"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", "\ud800".encode("utf-8", "surrogatepass")])
def test_a_body_that_is_not_a_json_object_is_opas_400(service, body):
    client, _ = service
    r = client.post("/v1/data/agt/decision", content=body)
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_parameter" and r.json()["message"]


def test_a_deeply_nested_body_is_400_not_a_crash(service):
    client, _ = service
    r = client.post("/v1/data/agt/decision", content=b'{"input":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert r.status_code in (400, 413)


def test_an_oversized_body_is_413(service):
    client, _ = service
    r = client.post("/v1/data/agt/decision", content=b'{"input": "' + b"x" * (2 << 20) + b'"}')
    assert r.status_code == 413 and r.json()["code"] == "invalid_parameter"


def test_an_unknown_path_is_a_json_404(service):
    client, _ = service
    r = client.post("/v1/data/agt/nothing", json={"input": READ})
    assert r.status_code == 404 and r.json()["code"] == "resource_not_found"


def test_the_batch_answers_one_decision_per_input_in_order(service):
    client, _ = service
    r = client.post("/v1/data/agt/batch", json={"input": {"inputs": [READ, RM_ROOT, {"bad": 1}, EMAIL]}})
    effects = [d["effect"] for d in r.json()["result"]]
    assert effects == ["allow", "deny", "deny", "require_approval"]
    assert r.json()["result"][2]["reasons"][0]["id"] == "engine_error"


def test_a_batch_without_inputs_is_400(service):
    client, _ = service
    r = client.post("/v1/data/agt/batch", json={"input": [READ]})
    assert r.status_code == 400 and "inputs" in r.json()["message"]


def test_health_is_500_when_the_audit_log_cannot_record():
    class Broken(MemoryAuditSink):
        def health(self):
            return "disk full"

    gov = starter_governor()
    gov.audit = Broken()
    with served(gov) as (url, _):
        r = httpx.get(f"{url}/health")
        assert r.status_code == 500 and "disk full" in r.json()["error"]
