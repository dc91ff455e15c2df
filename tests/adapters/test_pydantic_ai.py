"""agt.adapters.pydantic_ai.GovernanceCapability, driven through PydanticAI's real Agent.run / run_sync.

The model is PydanticAI's own ``FunctionModel``: a script that answers each turn and receives the full
message list, so a test reads exactly what the model saw next. No network, no API key.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

os.environ.setdefault("OTEL_SDK_DISABLED", "true")

from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults  # noqa: E402
from pydantic_ai.capabilities import AbstractCapability  # noqa: E402
from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart  # noqa: E402
from pydantic_ai.models.function import FunctionModel  # noqa: E402

from agt.adapters.pydantic_ai import APPROVAL_METADATA_KEY, GovernanceCapability  # noqa: E402
from agt.audit.log import select  # noqa: E402
from scenario import (  # noqa: E402
    ALLOWED, APPROVAL_RULE, DENIED, DENY_RULE, ENGINE_ERROR, NEEDS_APPROVAL, RAN, TOOLS, BrokenScenario, Scenario,
)

ROOT = Path(__file__).resolve().parents[2]
REJECTED = "approval-denied"  # the rule id agt gives a request the approvers refused


def call(spec: tuple[str, dict], call_id: str) -> ToolCallPart:
    name, args = spec
    return ToolCallPart(name, dict(args), tool_call_id=call_id)


class Script:
    """A FunctionModel script: one list of tool calls per turn, then a closing text; keeps every input."""

    def __init__(self, *turns: list[ToolCallPart]) -> None:
        self.turns, self.inputs = list(turns), []

    def __call__(self, messages, info):  # noqa: ANN001 - FunctionModel's signature
        self.inputs.append(list(messages))
        i = len(self.inputs) - 1
        return ModelResponse(parts=self.turns[i] if i < len(self.turns) else [TextPart("done")])

    def returns_seen(self, turn: int = -1) -> dict[str, ToolReturnPart]:
        """The tool returns in the model's input on ``turn``, by call id."""
        last = self.inputs[turn][-1]
        assert isinstance(last, ModelRequest)
        return {p.tool_call_id: p for p in last.parts if isinstance(p, ToolReturnPart)}


def make_agent(governor, script: Script, *, name: str = "assistant", native: bool = False,
               capability: GovernanceCapability | None = None, **options) -> Agent:
    capability = capability or GovernanceCapability(governor, approvals="native" if native else "wait", **options)
    output = [str, DeferredToolRequests] if native else str
    return Agent(FunctionModel(script), tools=list(TOOLS), capabilities=[capability], output_type=output, name=name)


@pytest.fixture
def scenario(tmp_path):
    s = Scenario(tmp_path)
    yield s
    s.close()


# --- the capability is PydanticAI's -------------------------------------------------------------------------
def test_capability_is_a_real_abstract_capability(scenario):
    assert isinstance(GovernanceCapability(scenario.governor), AbstractCapability)


# --- allowed ----------------------------------------------------------------------------------------------
def test_allowed_call_runs_and_its_result_reaches_the_model(scenario):
    script = Script([call(ALLOWED, "w1")])
    make_agent(scenario.governor, script).run_sync("go")
    assert RAN == [("get_weather", {"city": "Paris"})]
    seen = script.returns_seen()["w1"]
    assert seen.content == "sunny in Paris" and seen.outcome == "success"


# --- denied: sync and async -------------------------------------------------------------------------------
def test_denied_call_never_runs_and_the_model_reads_the_rule_sync(scenario):
    script = Script([call(DENIED, "e1")])
    result = make_agent(scenario.governor, script).run_sync("go")
    assert RAN == []
    seen = script.returns_seen()["e1"]
    assert DENY_RULE in seen.model_response_str() and "do not retry" in seen.model_response_str()
    assert result.output == "done"  # the run went on


def test_denied_call_never_runs_and_the_model_reads_the_rule_async(scenario):
    script = Script([call(DENIED, "e1")])
    asyncio.run(make_agent(scenario.governor, script).run("go"))
    assert RAN == []
    assert DENY_RULE in script.returns_seen()["e1"].model_response_str()


def test_a_denial_is_a_failed_tool_result_not_a_retry_prompt(scenario):
    script = Script([call(DENIED, "e1")])
    make_agent(scenario.governor, script).run_sync("go")
    seen = script.returns_seen()["e1"]
    assert seen.outcome == "failed" and seen.retry is None


def test_denied_call_is_audited_with_its_rule_id(scenario):
    make_agent(scenario.governor, Script([call(DENIED, "e1")])).run_sync("go")
    assert DENY_RULE in scenario.audited_rules()


def test_the_model_can_go_on_after_a_denial(scenario):
    script = Script([call(DENIED, "e1")], [call(ALLOWED, "w1")])
    make_agent(scenario.governor, script).run_sync("go")
    assert RAN == [("get_weather", {"city": "Paris"})]
    assert len(script.inputs) == 3


# --- identity -----------------------------------------------------------------------------------------------
def test_agent_id_defaults_to_the_pydantic_ai_agent_name(scenario):
    make_agent(scenario.governor, Script([call(DENIED, "e1")]), name="mailer").run_sync("go")
    scenario.audit.flush()
    assert select(scenario.log_dir, kind="decision", agent="mailer", rule=DENY_RULE)


def test_an_explicit_agent_id_wins_over_the_agent_name(scenario):
    make_agent(scenario.governor, Script([call(DENIED, "e1")]), name="mailer", agent_id="billing-bot").run_sync("go")
    scenario.audit.flush()
    assert select(scenario.log_dir, kind="decision", agent="billing-bot", rule=DENY_RULE)
    assert not select(scenario.log_dir, kind="decision", agent="mailer")


# --- approvals: wait (default) ------------------------------------------------------------------------------
def test_wait_mode_runs_the_call_once_the_cfo_approves(scenario):
    script = Script([call(NEEDS_APPROVAL, "t1")])
    voter = scenario.vote_when_pending(approve=True)
    make_agent(scenario.governor, script).run_sync("go")
    voter.join(timeout=30)
    assert RAN == [("transfer_funds", {"amount": 500})]
    assert script.returns_seen()["t1"].content == "transferred 500"
    assert len(scenario.requests()) == 1
    assert APPROVAL_RULE in scenario.audited_rules()


def test_wait_mode_async_denies_the_call_when_the_cfo_rejects(scenario):
    script = Script([call(NEEDS_APPROVAL, "t1")])
    voter = scenario.vote_when_pending(approve=False)
    asyncio.run(make_agent(scenario.governor, script).run("go"))
    voter.join(timeout=30)
    assert RAN == []
    assert REJECTED in script.returns_seen()["t1"].model_response_str()


# --- approvals: PydanticAI's native deferred-tool approval ---------------------------------------------------
def test_native_mode_defers_the_call_with_agts_request_id(scenario):
    script = Script([call(NEEDS_APPROVAL, "t1")])
    result = make_agent(scenario.governor, script, native=True).run_sync("go")
    [request] = scenario.requests()
    assert isinstance(result.output, DeferredToolRequests)
    assert [c.tool_call_id for c in result.output.approvals] == ["t1"]
    assert result.output.metadata["t1"][APPROVAL_METADATA_KEY] == request.id
    assert RAN == [] and len(script.inputs) == 1  # the run stopped: the model was not asked again


def test_native_resume_after_agt_approval_runs_the_call_and_reuses_the_request(scenario):
    script = Script([call(NEEDS_APPROVAL, "t1")])
    agent = make_agent(scenario.governor, script, native=True)
    paused = agent.run_sync("go")
    scenario.vote(scenario.requests()[0].id, approve=True)
    resumed = asyncio.run(agent.run(message_history=paused.all_messages(),
                                    deferred_tool_results=DeferredToolResults(approvals={"t1": True})))
    assert RAN == [("transfer_funds", {"amount": 500})]
    assert len(scenario.requests()) == 1
    assert script.returns_seen()["t1"].content == "transferred 500" and resumed.output == "done"


def test_native_resume_before_agt_decides_waits_on_the_same_request(scenario):
    script = Script([call(NEEDS_APPROVAL, "t1")])
    capability = GovernanceCapability(scenario.governor, approvals="native")
    agent = make_agent(scenario.governor, script, native=True, capability=capability)
    paused = agent.run_sync("go")
    [request] = scenario.requests()
    entered = threading.Event()
    hook = capability.wrap_tool_execute

    async def spy(ctx, **kwargs):  # noqa: ANN001, ANN003 - tells the CFO the resumed call has reached agt
        entered.set()
        return await hook(ctx, **kwargs)

    capability.wrap_tool_execute = spy

    def cfo() -> None:  # votes only once the resumed call is in agt's hands
        entered.wait(30)
        scenario.vote(request.id, approve=True)

    voter = threading.Thread(target=cfo, daemon=True)
    voter.start()
    agent.run_sync(message_history=paused.all_messages(), deferred_tool_results=DeferredToolResults(approvals={"t1": True}))
    voter.join(timeout=30)
    assert RAN == [("transfer_funds", {"amount": 500})]
    assert len(scenario.requests()) == 1


def test_native_resume_after_agt_rejection_denies_with_the_rule(scenario):
    script = Script([call(NEEDS_APPROVAL, "t1")])
    agent = make_agent(scenario.governor, script, native=True)
    paused = agent.run_sync("go")
    scenario.vote(scenario.requests()[0].id, approve=False)
    agent.run_sync(message_history=paused.all_messages(), deferred_tool_results=DeferredToolResults(approvals={"t1": True}))
    assert RAN == []
    assert REJECTED in script.returns_seen()["t1"].model_response_str()


def test_native_resume_refused_by_the_app_never_runs_even_though_agt_approved(scenario):
    script = Script([call(NEEDS_APPROVAL, "t1")])
    agent = make_agent(scenario.governor, script, native=True)
    paused = agent.run_sync("go")
    scenario.vote(scenario.requests()[0].id, approve=True)
    agent.run_sync(message_history=paused.all_messages(), deferred_tool_results=DeferredToolResults(approvals={"t1": False}))
    assert RAN == []
    assert script.returns_seen()["t1"].outcome == "denied"


# --- fails closed -----------------------------------------------------------------------------------------
def test_engine_error_denies_and_the_tool_never_runs(tmp_path):
    broken = BrokenScenario(tmp_path)
    script = Script([call(ALLOWED, "w1")])
    make_agent(broken.governor, script).run_sync("go")
    assert RAN == []
    assert ENGINE_ERROR in script.returns_seen()["w1"].model_response_str()
    assert ENGINE_ERROR in broken.audited_rules()


def test_an_internal_error_in_the_capability_denies_instead_of_raising(scenario):
    script = Script([call(ALLOWED, "w1")])
    capability = GovernanceCapability(scenario.governor)
    agent = make_agent(scenario.governor, script, capability=capability)

    def explode(ctx, approvals):  # noqa: ANN001 - fault injection: the capability's own machinery fails
        raise RuntimeError("capability machinery broke")

    capability._gate = explode
    agent.run_sync("go")
    assert RAN == []
    assert "adapter-error" in script.returns_seen()["w1"].model_response_str()
    assert "adapter-error" in scenario.audited_rules()


def test_a_tool_that_raises_is_recorded_and_pydantic_ai_handles_the_error(scenario):
    def flaky(city: str) -> str:
        """Always fails."""
        raise ValueError("weather service down")

    script = Script([ToolCallPart("flaky", {"city": "Oslo"}, tool_call_id="f1")])
    agent = Agent(FunctionModel(script), tools=[flaky], capabilities=[GovernanceCapability(scenario.governor)])
    with pytest.raises(ValueError, match="weather service down"):  # PydanticAI's own behaviour, unchanged by agt
        agent.run_sync("go")
    scenario.audit.flush()
    assert any("weather service down" in (r["result"].get("tool_error") or "")
               for r in select(scenario.log_dir, kind="decision"))


# --- the example --------------------------------------------------------------------------------------------
def test_example_runs_offline_and_prints_what_happened():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "pydantic_ai_agent.py")], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "OTEL_SDK_DISABLED": "true"})
    assert out.returncode == 0, out.stderr
    assert DENY_RULE in out.stdout and "sunny in Paris" in out.stdout and "transferred 500" in out.stdout
    assert "send_email ran: False" in out.stdout
