"""agt.adapters._core: argument normalization, the ToolGate's three outcomes, and failing closed."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from agt.action import Agent
from agt.adapters import require
from agt.adapters._core import ArgumentsError, Outcome, ToolGate, denial_text, params_of

sys.path.insert(0, str(Path(__file__).parent / "adapters"))
import scenario  # noqa: E402
from scenario import DENY_RULE, ENGINE_ERROR, RAN, BrokenScenario, Scenario  # noqa: E402


@pytest.fixture
def s(tmp_path):
    sc = Scenario(tmp_path)
    yield sc
    sc.close()


def run(gate: ToolGate, tool: str, arguments, call_id: str | None = None) -> Outcome:
    return gate.run(tool, arguments, lambda p: getattr(scenario, tool)(**p), call_id=call_id)


# --- params_of -------------------------------------------------------------------------------------

def test_params_of_a_dict_is_a_copy():
    args = {"city": "Paris"}
    out = params_of(args)
    assert out == args and out is not args


def test_params_of_a_json_string():
    assert params_of('{"city": "Paris"}') == {"city": "Paris"}


def test_params_of_json_bytes():
    assert params_of(b'{"city": "Paris"}') == {"city": "Paris"}


def test_params_of_json_keeps_decimals_exact():
    assert params_of('{"amount": 100.10}') == {"amount": Decimal("100.10")}


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_params_of_nothing_is_empty(empty):
    assert params_of(empty) == {}


def test_params_of_an_object_with_model_dump():
    class Model:
        def model_dump(self):
            return {"city": "Paris"}

    assert params_of(Model()) == {"city": "Paris"}


def test_params_of_a_dataclass():
    @dataclass
    class Args:
        city: str

    assert params_of(Args("Paris")) == {"city": "Paris"}


@pytest.mark.parametrize("bad, says", [("[1, 2]", "list"), ("not json", "not valid JSON"), (42, "int"),
                                       ({1: "x"}, "names must be strings")])
def test_params_of_refuses_what_is_not_named_values(bad, says):
    with pytest.raises(ArgumentsError, match=says):
        params_of(bad)


# --- outcomes ----------------------------------------------------------------------------------------

def test_an_allowed_call_runs_and_returns_its_result(s):
    assert run(ToolGate(s.governor, agent="a1"), "get_weather", {"city": "Paris"}) == Outcome("ran", "get_weather", result="sunny in Paris")


def test_a_denied_call_never_runs_the_tool(s):
    run(ToolGate(s.governor, agent="a1"), *scenario.DENIED)
    assert RAN == []


def test_a_denied_call_carries_the_rule_id(s):
    assert run(ToolGate(s.governor, agent="a1"), *scenario.DENIED).rule_ids == (DENY_RULE,)


def test_a_denied_call_tells_the_model_the_rule_and_not_to_retry(s):
    message = run(ToolGate(s.governor, agent="a1"), *scenario.DENIED).message
    assert DENY_RULE in message and "do not retry" in message and "policy gate" in message


def test_a_denied_call_is_audited_with_its_rule_id(s):
    run(ToolGate(s.governor, agent="a1"), *scenario.DENIED)
    assert DENY_RULE in s.audited_rules()


def test_native_approvals_return_pending_with_the_request_id(s):
    out = run(ToolGate(s.governor, agent="a1", approvals="native"), *scenario.NEEDS_APPROVAL)
    assert out.pending and out.approval_id == s.requests()[0].id


def test_a_pending_call_tells_the_model_it_has_not_run(s):
    out = run(ToolGate(s.governor, agent="a1", approvals="native"), *scenario.NEEDS_APPROVAL)
    assert "has not run" in out.message and out.approval_id in out.message and RAN == []


def test_a_resumed_native_call_runs_once_voted(s):
    gate = ToolGate(s.governor, agent="a1", approvals="native")
    first = run(gate, *scenario.NEEDS_APPROVAL, call_id="c1")
    s.vote(first.approval_id)
    assert run(gate, *scenario.NEEDS_APPROVAL, call_id="c1").ran and len(s.requests()) == 1


def test_wait_approvals_block_until_the_vote(s):
    s.vote_when_pending()
    assert run(ToolGate(s.governor, agent="a1"), *scenario.NEEDS_APPROVAL).result == "transferred 500"


def test_a_refused_approval_is_a_denial(s):
    s.vote_when_pending(approve=False)
    assert run(ToolGate(s.governor, agent="a1"), *scenario.NEEDS_APPROVAL).rule_ids == ("approval-denied",)


def test_an_engine_error_is_a_denial(tmp_path):
    b = BrokenScenario(tmp_path)
    out = run(ToolGate(b.governor, agent="a1"), "get_weather", {"city": "Paris"})
    assert out.denied and out.rule_ids == (ENGINE_ERROR,) and RAN == []


def test_unreadable_arguments_are_a_denial(s):
    out = run(ToolGate(s.governor, agent="a1"), "get_weather", "[1]")
    assert out.denied and out.rule_ids == ("adapter-arguments",)


def test_unreadable_arguments_are_audited(s):
    run(ToolGate(s.governor, agent="a1"), "get_weather", "[1]")
    assert "adapter-arguments" in s.audited_rules()


def test_an_unexpected_error_inside_governance_is_a_denial(s, monkeypatch):
    def explode(*a, **kw):
        raise KeyError("internal")

    monkeypatch.setattr(s.governor, "begin", explode)  # fault injection
    out = run(ToolGate(s.governor, agent="a1"), "get_weather", {"city": "Paris"})
    assert out.denied and out.rule_ids == ("adapter-error",) and RAN == []


def test_a_tool_error_is_recorded_and_raised(s):
    def broken(params):
        raise RuntimeError("tool broke")

    with pytest.raises(RuntimeError, match="tool broke"):
        ToolGate(s.governor, agent="a1").run("get_weather", {"city": "Paris"}, broken)


def test_an_output_the_output_check_refuses_is_a_denial(tmp_path):
    sc = Scenario(tmp_path, output_limit=5)
    out = run(ToolGate(sc.governor, agent="a1"), "get_weather", {"city": "Paris"})
    assert out.denied and out.gate == "output"


def test_arun_awaits_an_async_tool(s):
    async def tool(params):
        return f"async {params['city']}"

    out = asyncio.run(ToolGate(s.governor, agent="a1").arun("get_weather", {"city": "Paris"}, tool))
    assert out.result == "async Paris"


def test_arun_runs_a_sync_tool(s):
    out = asyncio.run(ToolGate(s.governor, agent="a1").arun("get_weather", {"city": "Paris"}, lambda p: "sync"))
    assert out.result == "sync"


# --- identity, configuration, texts -------------------------------------------------------------

def test_a_registered_agent_brings_its_trust(s):
    gate = ToolGate(s.governor, agent=Agent("admin", trust_score=950))
    assert gate.run("delete_file", {"path": "x"}, lambda p: "deleted").ran


def test_an_unregistered_agent_gets_the_default_trust_ring(s):
    out = ToolGate(s.governor, agent="newbie").run("delete_file", {"path": "x"}, lambda p: "deleted")
    assert out.rule_ids == ("trust-ring",)


def test_a_trust_ring_denial_names_the_ring_and_the_tool_kind(s):
    message = ToolGate(s.governor, agent="newbie").run("delete_file", {"path": "x"}, lambda p: "x").message
    assert "trust-ring gate, before any policy rule" in message and "ring 2" in message and "delete tools" in message


def test_tool_gate_refuses_what_is_not_a_governor():
    with pytest.raises(TypeError, match="Governor"):
        ToolGate(object())  # type: ignore[arg-type]


def test_tool_gate_refuses_an_unknown_approval_mode(s):
    with pytest.raises(ValueError, match="'wait' or 'native'"):
        ToolGate(s.governor, approvals="later")  # type: ignore[arg-type]


def test_tool_gate_refuses_an_empty_agent_id(s):
    with pytest.raises(ValueError, match="agent"):
        ToolGate(s.governor, agent="")


def test_denial_text_names_every_rule():
    text = denial_text("t", _decision("r1", "r2"), "policy")
    assert "rules: r1, r2" in text


def _decision(*ids):
    from agt.decision import Decision, Effect, Reason

    return Decision(Effect.DENY, tuple(Reason(i, f"because {i}") for i in ids))


def test_a_missing_framework_names_its_extra():
    with pytest.raises(ImportError, match=r"pip install 'agt\[nothing\]'"):
        require("agt_no_such_framework", "nothing")


def test_a_cancelled_wait_is_a_cancellation_not_a_denial(s):
    gate = ToolGate(s.governor, agent="a1")

    async def cancelled() -> None:
        task = asyncio.ensure_future(gate.arun(*scenario.NEEDS_APPROVAL, lambda p: "ran"))
        while not s.requests():
            await asyncio.sleep(0.01)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())


def test_denial_text_does_not_double_the_full_stop():
    from agt.decision import Decision, Effect, Reason

    assert ".." not in denial_text("t", Decision(Effect.DENY, (Reason("r1", "Mail is blocked."),)), "policy")


# --- Gates ---------------------------------------------------------------------------------------

def test_gates_give_one_gate_per_agent_session_and_mode(s):
    from agt.adapters._core import Gates

    gates = Gates(s.governor)
    assert gates.get("a1", "s1") is gates.get("a1", "s1") and gates.get("a1", "s1") is not gates.get("a1", "s2")


def test_gates_keep_only_the_most_recently_used(s):
    from agt.adapters._core import Gates

    gates = Gates(s.governor, limit=2)
    first = gates.get("a1", "s1")
    gates.get("a1", "s2")
    gates.get("a1", "s3")
    assert gates.get("a1", "s1") is not first


def test_a_coerced_spelling_is_denied_before_the_policy(s):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    out = ToolGate(s.governor, agent="a1").run("get_weather", {"city": 7}, lambda p: "x", schema=schema)
    assert out.rule_ids == ("adapter-arguments",) and "city" in out.message


def test_the_policy_and_the_tool_see_the_schema_defaults(s):
    schema = {"type": "object", "properties": {"to": {"type": "string", "default": "boss@evil.example"},
                                               "body": {"type": "string", "default": ""}}}
    out = ToolGate(s.governor, agent="a1").run("send_email", {}, lambda p: scenario.send_email(**p), schema=schema)
    assert out.rule_ids == (DENY_RULE,) and RAN == []
