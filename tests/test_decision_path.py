"""--decision-path: an existing entry point decides (agt.opa.decision_path). Shapes are unit-tested on
interpret(); the policies run on a real opa."""

import json

import pytest
from click.testing import CliRunner

from agt import from_call
from agt.cli import EXIT_ALLOW, EXIT_DENY, EXIT_ENGINE_ERROR, cli
from agt.decision import Effect
from agt.engines import create_engine
from agt.errors import PolicyLoadError
from agt.opa.decision_path import (
    ALLOW_ID, DENY_ID, DecisionPathError, decision_ref, decision_url_path, interpret,
)

AUTHZ = """package authz

default allow := false

allow if input.action.tool == "read_file"
"""

BRIDGE = """package support

default decision := {"allow": false, "reasons": ["nothing allowed this"]}

decision := {"allow": true, "reasons": [{"id": "reads-ok", "message": "reads are fine"}]} if {
	input.action.tool == "read_file"
}

verdict := "yes"
"""

READ = from_call("read_file", {"path": "/x"})
EMAIL = from_call("send_email", {"to": "a@example.com"})
REF = "data.authz.allow"


# --- paths -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["data.authz.allow", "/v1/data/authz/allow", " data.authz.allow "])
def test_a_rego_reference_and_a_rest_path_name_the_same_rule(path):
    assert (decision_url_path(path), decision_ref(path)) == ("/v1/data/authz/allow", "data.authz.allow")


@pytest.mark.parametrize("path", ["authz.allow", "data", "data.authz[0]", "/v1/policies/x", "data..x"])
def test_a_path_that_names_no_rule_is_refused(path):
    with pytest.raises(DecisionPathError):
        decision_url_path(path)


def test_the_engine_refuses_a_bad_path_as_a_load_error():
    with pytest.raises(PolicyLoadError, match="decision path"):
        create_engine("opa", None, url="http://127.0.0.1:1", decision_path="authz.allow")


# --- shapes --------------------------------------------------------------------------------------------


def test_true_is_allow_with_a_named_reason():
    got = interpret(True, REF)
    assert (got.effect, [r.rule_id for r in got.reasons]) == (Effect.ALLOW, [ALLOW_ID])
    assert "data.authz.allow is true" in got.reasons[0].message


def test_false_is_deny_with_a_named_reason():
    got = interpret(False, REF)
    assert (got.effect, [r.rule_id for r in got.reasons]) == (Effect.DENY, [DENY_ID])


def test_a_bridge_object_with_string_reasons():
    got = interpret({"allow": False, "reasons": ["over budget", "after hours"]}, REF)
    assert got.effect is Effect.DENY and got.reasons[0].rule_id == DENY_ID
    assert got.reasons[0].message == "over budget; after hours"


def test_a_bridge_object_with_reason_objects_keeps_their_ids():
    got = interpret({"allowed": True, "reasons": [{"id": "reads-ok", "message": "fine"}]}, REF)
    assert (got.effect, got.reasons[0].rule_id) == (Effect.ALLOW, "reads-ok")


def test_a_bridge_deny_list_overrides_allow():
    got = interpret({"allow": True, "deny": ["secrets in params"]}, REF)
    assert (got.effect, got.reasons[0].message) == (Effect.DENY, "secrets in params")


def test_the_agt_decision_object_still_reads_at_a_custom_path():
    got = interpret({"effect": "require_approval", "reasons": [{"id": "x", "message": "m"}], "approvers": ["ops"]}, REF)
    assert (got.effect, got.approvers) == (Effect.REQUIRE_APPROVAL, ("ops",))


@pytest.mark.parametrize(
    "result,named",
    [("yes", "a string"), (1, "a number"), ([], "a list"), ({"ok": True}, "keys ok"), (None, "null"),
     ({"allow": "true"}, "allow must be a boolean"), ({"allow": True, "allowed": False}, "disagree"),
     ({"allow": True, "reasons": [3]}, "reasons must be")],
    ids=["string", "number", "list", "object-without-allow", "null", "allow-string", "allow-allowed-disagree",
         "reason-number"],
)
def test_any_other_shape_is_refused_naming_it(result, named):
    got = interpret(result, REF)
    assert isinstance(got, str) and named in got


@pytest.mark.parametrize("result", [True, {"allow": True}])
def test_the_default_path_accepts_only_the_agt_decision_object(result):
    got = interpret(result, "data.agt.decision")
    assert isinstance(got, str) and "expected the agt decision object" in got


# --- a real opa --------------------------------------------------------------------------------------------


@pytest.fixture
def authz(tmp_path):
    (tmp_path / "authz.rego").write_text(AUTHZ)
    (tmp_path / "support.rego").write_text(BRIDGE)
    return tmp_path


@pytest.fixture
def engine_at(opa_binary, authz):
    opened = []

    def make(path):
        e = create_engine("opa", str(authz), decision_path=path)
        opened.append(e)
        return e

    yield make
    for e in opened:
        e.close()


def test_a_plain_allow_policy_allows_via_its_decision_path(engine_at):
    d = engine_at("data.authz.allow").evaluate(READ)
    assert (d.effect, d.rule_ids) == (Effect.ALLOW, (ALLOW_ID,))


def test_a_plain_allow_policy_denies_with_decision_path_false(engine_at):
    d = engine_at("data.authz.allow").evaluate(EMAIL)
    assert (d.effect, d.rule_ids) == (Effect.DENY, (DENY_ID,))


def test_a_bridge_object_policy_decides_with_its_reasons(engine_at):
    e = engine_at("data.support.decision")
    allowed, denied = e.evaluate(READ), e.evaluate(EMAIL)
    assert (allowed.effect, allowed.rule_ids) == (Effect.ALLOW, ("reads-ok",))
    assert (denied.effect, denied.reasons[0].message) == (Effect.DENY, "nothing allowed this")


def test_a_string_result_is_a_fail_closed_deny_naming_the_shape(engine_at):
    d = engine_at("data.support.verdict").evaluate(READ)
    assert d.is_engine_error and "a string" in d.reasons[0].message


def test_an_undefined_custom_path_is_a_fail_closed_deny_with_a_hint(engine_at):
    d = engine_at("data.authz.nope").evaluate(READ)
    assert d.is_engine_error and "default allow := false" in d.reasons[0].message


def test_the_default_path_on_a_plain_policy_says_to_pass_a_decision_path(engine_at):
    d = engine_at("data.agt.decision").evaluate(READ)
    assert d.is_engine_error and "--decision-path" in d.reasons[0].message


@pytest.mark.parametrize("tool,code", [("read_file", EXIT_ALLOW), ("send_email", EXIT_DENY)])
def test_eval_cli_decision_path(opa_binary, authz, tool, code):
    doc = json.dumps({"agent": {"id": "a"}, "action": {"tool": tool}})
    result = CliRunner().invoke(cli, ["eval", "-e", "opa", "-p", str(authz), "--decision-path", "data.authz.allow",
                                      "--json", "-"], input=doc)
    assert result.exit_code == code, result.output
    # stdout only: a warning another test's managed OPA leaves on stderr (its temp dir cleaned up) is not JSON
    assert json.loads(result.stdout)["reasons"][0]["id"] in (ALLOW_ID, DENY_ID)


def test_eval_cli_wrong_shape_exits_with_the_engine_error_code(opa_binary, authz):
    doc = json.dumps({"agent": {"id": "a"}, "action": {"tool": "read_file"}})
    result = CliRunner().invoke(cli, ["eval", "-e", "opa", "-p", str(authz), "--decision-path", "data.support.verdict",
                                      "-"], input=doc)
    assert result.exit_code == EXIT_ENGINE_ERROR


def test_decision_path_needs_the_opa_engine():
    result = CliRunner().invoke(cli, ["eval", "-e", "yaml", "--decision-path", "data.authz.allow", "-"], input="{}")
    assert result.exit_code == 2 and "--engine opa" in result.output
