"""agt.explain and agt eval --explain: the document each engine receives, the rules that matched, the
combining step. Real engines: the YAML engine, cedarpy, a real opa."""

import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from agt import Agent, from_call
from agt.cli import cli
from agt.decision import Decision, Effect, Reason, fail_closed
from agt.engines import create_engine
from agt.explain import combining_step, explain, explain_engine
from agt.resources import starter_policy

# Matches the deny rule block-destructive-patterns and the approval rule email-approval.
MIXED = from_call("send_email", {"to": "dba@example.com", "body": "please DELETE FROM orders"}, agent=Agent("alice"))
REFUND = from_call("refund", {"amount": Decimal("150.25")})


@pytest.fixture(scope="module")
def yaml_engine():
    return create_engine("yaml", str(starter_policy("yaml")))


@pytest.fixture(scope="module")
def cedar_engine():
    return create_engine("cedar", str(starter_policy("cedar")))


@pytest.fixture(scope="module")
def opa_engine(opa_binary):
    e = create_engine("opa", str(starter_policy("opa")))
    yield e
    e.close()


def test_yaml_lists_every_matching_rule_including_the_overridden_approval(yaml_engine):
    e = explain_engine(yaml_engine, MIXED)
    hits = {r.rule_id: r for r in e.rules}
    assert e.complete and hits["email-approval"].effect == "require_approval"
    assert (hits["email-approval"].determining, hits["block-destructive-patterns"].determining) == (False, True)


def test_the_combining_step_says_deny_overrides(yaml_engine):
    assert explain_engine(yaml_engine, MIXED).combining == \
        "deny rule block-destructive-patterns matched → deny (deny overrides)"


def test_yaml_receives_the_normalized_document(yaml_engine):
    e = explain_engine(yaml_engine, MIXED)
    assert e.receives["document"]["action"]["params_text"] == MIXED.document["action"]["params_text"]


def test_cedar_receives_its_request_and_entities(cedar_engine):
    receives = explain_engine(cedar_engine, MIXED).receives
    assert receives["request"]["principal"] == {"type": "Agent", "id": "alice"}
    assert receives["request"]["context"]["tool"] == "send_email"
    assert {"type": "Agent", "id": "alice"} in [ent["uid"] for ent in receives["entities"]]


def test_cedar_names_the_policies_on_the_deciding_side_only(cedar_engine):
    e = explain_engine(cedar_engine, MIXED)  # the approval is a forbid too, so Cedar reports it beside the deny
    assert not e.complete
    assert [(r.rule_id, r.effect, r.determining) for r in e.rules] == [
        ("block-destructive-patterns", "deny", True), ("email-approval", "require_approval", False)]


def test_opa_receives_the_document_as_input_at_the_decision_path(opa_engine):
    receives = explain_engine(opa_engine, MIXED).receives
    assert receives["input"] is MIXED.document and receives["query"] == "POST /v1/data/agt/decision"


def test_opa_lists_the_other_matching_rules_by_id(opa_engine):
    e = explain_engine(opa_engine, MIXED)
    hits = {r.rule_id: r for r in e.rules}
    assert e.complete and hits["block-destructive-patterns"].determining
    assert (hits["email-approval"].effect, hits["email-approval"].determining) == ("matched", False)


def test_the_engines_agree_on_the_combining_step(yaml_engine, cedar_engine, opa_engine):
    whole = explain(MIXED, {"yaml": yaml_engine, "cedar": cedar_engine, "opa": opa_engine})
    assert len({e.combining for e in whole.engines}) == 1


def test_decimals_are_listed_with_their_path(yaml_engine):
    assert explain(REFUND, [yaml_engine]).decimals == [("action.params.amount", Decimal("150.25"))]


@pytest.mark.parametrize(
    "decision,text",
    [
        (Decision(Effect.DENY, (Reason("default", "no rule matched"),)), "no deciding rule matched → deny (the policy default)"),
        (Decision(Effect.REQUIRE_APPROVAL, (Reason("a"), Reason("b")), approvers=("ops",)),
         "approval rules a, b matched, no deny rule → require_approval; approvers: ops"),
        (Decision(Effect.ALLOW, (Reason("reads"),)), "allow rule reads matched, no deny or approval rule → allow"),
        (fail_closed("opa: unreachable"), "the engine could not decide (opa: unreachable) → deny (fail closed)"),
        (Decision(Effect.DENY, (Reason("decision-path:false", "data.authz.allow is false"),)),
         "data.authz.allow is false → deny (the decision path's result)"),
    ],
    ids=["default", "approval", "allow", "engine-error", "decision-path"],
)
def test_combining_step_names_the_step(decision, text):
    assert combining_step(decision) == text


def test_an_engine_error_lists_no_rules(yaml_engine):
    bad = from_call("refund", {"amount": "lots"})  # the catalog declares amount a decimal
    e = explain_engine(yaml_engine, bad)
    assert e.decision.is_engine_error and e.rules == () and "fail closed" in e.combining


def test_eval_explain_json_gives_everything_as_data():
    doc = json.dumps({"agent": {"id": "a"}, "action": {"tool": "refund", "params": {"amount": 150.25}}})
    result = CliRunner().invoke(cli, ["eval", "-e", "cedar", "--explain", "--json", "-"], input=doc)
    out = json.loads(result.output)
    engine = out["engines"][0]
    assert out["normalized"]["decimals"] == [{"path": "action.params.amount", "value": "150.25"}]
    assert engine["receives"]["request"]["context"]["params"]["amount"] == {"__extn": {"fn": "decimal", "arg": "150.25"}}
    assert engine["decision"]["effect"] == out["engines"][0]["decision"]["effect"] and "combining" in engine
    assert result.exit_code == 4


def test_eval_explain_prints_the_matched_rules_and_the_combining_step():
    doc = json.dumps({"agent": {"id": "a"}, "action": {"tool": "send_email", "params": {"body": "DELETE FROM orders"}}})
    text = CliRunner().invoke(cli, ["eval", "--explain", "-"], input=doc).output
    assert "email-approval" in text and "not determining" in text and "deny (deny overrides)" in text
