"""agt.adapters.openai_agents against the real OpenAI Agents SDK 0.24: the real Runner loop, the SDK's own
scripted model (agents.testing.ScriptedModel), the shared scenario. No network, no real model, no tracing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"
os.environ.setdefault("OPENAI_API_KEY", "sk-agt-test-no-network")

import agents  # noqa: E402
from agents import Agent, FunctionTool, Runner, WebSearchTool, function_tool  # noqa: E402
from agents.testing import ScriptedModel, assistant_message, function_call  # noqa: E402

from agt.audit.log import select  # noqa: E402
from agt.adapters.openai_agents import approval_request, govern_agent  # noqa: E402

from scenario import (  # noqa: E402
    ALLOWED, APPROVAL_RULE, DENIED, DENY_RULE, ENGINE_ERROR, NEEDS_APPROVAL, RAN, TOOLS, BrokenScenario, Scenario,
)

agents.set_tracing_disabled(True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scenario(tmp_path):
    s = Scenario(tmp_path)
    yield s
    s.close()


def script(*calls: tuple[str, dict | str], then: str = "done") -> ScriptedModel:
    """A model that asks for these tool calls (ids c0, c1, ...) in one turn, then answers ``then``."""
    return ScriptedModel([[function_call(name, args, call_id=f"c{i}") for i, (name, args) in enumerate(calls)],
                          [assistant_message(then)]])


def user_agent(model: ScriptedModel, tools=None) -> Agent:
    return Agent(name="assistant", instructions="Help.", model=model,
                 tools=list(tools) if tools is not None else [function_tool(t) for t in TOOLS])


def run(agent, prompt_or_state, how: str):
    """One run of the SDK's real loop: Runner.run_sync, Runner.run (asyncio) or Runner.run_streamed."""
    if how == "sync":
        return Runner.run_sync(agent, prompt_or_state)
    if how == "async":
        return asyncio.run(Runner.run(agent, prompt_or_state))

    async def streamed():
        result = Runner.run_streamed(agent, prompt_or_state)
        async for _ in result.stream_events():
            pass
        return result
    return asyncio.run(streamed())


def tool_outputs(model: ScriptedModel) -> dict[str, str]:
    """What the model read as each call's tool result, by call id, in its last input."""
    items = model.last_call.input
    return {i["call_id"]: i["output"] for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"}


def decisions(scenario, tool: str) -> list[dict]:
    scenario.audit.flush()
    return [r for r in select(scenario.log_dir, kind="decision") if (r.get("input") or {}).get("action", {}).get("tool") == tool]


MODES = ["sync", "async", "streamed"]


# --- allowed and denied ------------------------------------------------------------------------------
@pytest.mark.parametrize("how", MODES)
def test_allowed_call_runs_and_the_model_reads_its_result(scenario, how):
    model = script(ALLOWED)
    result = run(govern_agent(user_agent(model), scenario.governor, agent_id="bot"), "weather?", how)
    assert RAN == [ALLOWED]
    assert tool_outputs(model) == {"c0": "sunny in Paris"}
    assert result.final_output == "done"


@pytest.mark.parametrize("how", MODES)
def test_denied_call_never_runs_its_body(scenario, how):
    model = script(DENIED)
    run(govern_agent(user_agent(model), scenario.governor, agent_id="bot"), "mail it", how)
    assert RAN == []


@pytest.mark.parametrize("how", MODES)
def test_the_models_next_input_holds_agts_denial_with_the_rule_id(scenario, how):
    model = script(DENIED, then="I could not send it.")
    result = run(govern_agent(user_agent(model), scenario.governor, agent_id="bot"), "mail it", how)
    text = tool_outputs(model)["c0"]
    assert "agt governance denied" in text and DENY_RULE in text and "do not retry" in text
    assert result.final_output == "I could not send it."  # the run went on: the denial did not raise


def test_the_audit_log_holds_the_denial_rule_id(scenario):
    run(govern_agent(user_agent(script(DENIED)), scenario.governor, agent_id="bot"), "mail it", "sync")
    assert DENY_RULE in scenario.audited_rules()
    assert [r["result"]["enforced"] for r in decisions(scenario, "send_email")] == ["deny"]


def test_a_denied_call_beside_an_allowed_one_denies_only_itself(scenario):
    model = script(ALLOWED, DENIED)
    run(govern_agent(user_agent(model), scenario.governor, agent_id="bot"), "both", "async")
    assert RAN == [ALLOWED]
    outputs = tool_outputs(model)
    assert outputs["c0"] == "sunny in Paris" and DENY_RULE in outputs["c1"]


def test_the_policy_sees_the_json_arguments_and_unreadable_ones_are_denied(scenario):
    model = script(("get_weather", "this is not json"))
    run(govern_agent(user_agent(model), scenario.governor, agent_id="bot"), "weather?", "sync")
    assert RAN == []
    assert "adapter-arguments" in tool_outputs(model)["c0"]
    assert "adapter-arguments" in scenario.audited_rules()


def test_a_tool_that_raises_is_audited_as_a_failure_and_the_model_reads_the_sdks_error(scenario):
    def flaky_lookup(city: str) -> str:
        """Look a city up."""
        raise RuntimeError("backend down")

    model = script(("flaky_lookup", {"city": "Paris"}))
    run(govern_agent(user_agent(model, [function_tool(flaky_lookup)]), scenario.governor, agent_id="bot"), "?", "sync")
    assert tool_outputs(model)["c0"].startswith("An error occurred while running the tool")  # the SDK's, as without agt
    [record] = decisions(scenario, "flaky_lookup")
    assert "ToolFailed" in record["result"]["tool_error"]  # a failure, for the breakers too, not a result


# --- approvals: wait (default) -----------------------------------------------------------------------
@pytest.mark.parametrize("how", ["sync", "async"])
def test_wait_mode_runs_the_call_once_the_cfo_approves_in_agt(scenario, how):
    model = script(NEEDS_APPROVAL)
    voter = scenario.vote_when_pending(approve=True)
    run(govern_agent(user_agent(model), scenario.governor, agent_id="bot"), "pay", how)
    voter.join(5)
    assert RAN == [NEEDS_APPROVAL]
    assert tool_outputs(model) == {"c0": "transferred 500"}
    assert len(scenario.requests()) == 1
    assert APPROVAL_RULE in scenario.audited_rules()


def test_wait_mode_denies_the_call_the_cfo_rejects(scenario):
    model = script(NEEDS_APPROVAL)
    voter = scenario.vote_when_pending(approve=False)
    run(govern_agent(user_agent(model), scenario.governor, agent_id="bot"), "pay", "async")
    voter.join(5)
    assert RAN == []
    assert "agt governance denied" in tool_outputs(model)["c0"]


# --- approvals: the SDK's native pause -------------------------------------------------------------
def native(scenario, model):
    return govern_agent(user_agent(model), scenario.governor, agent_id="bot", approvals="native")


def paused(scenario, how="sync"):
    model = ScriptedModel([[function_call(*NEEDS_APPROVAL, call_id="c1")], [assistant_message("done")]])
    agent = native(scenario, model)
    result = run(agent, "pay", how)
    return model, agent, result


@pytest.mark.parametrize("how", ["sync", "async"])
def test_native_mode_pauses_the_run_with_agts_request_id(scenario, how):
    _, _, result = paused(scenario, how)
    [item] = result.interruptions
    [request] = scenario.requests()
    assert approval_request(item) == request.id
    assert item.tool_name == "transfer_funds" and RAN == []


def test_native_mode_keys_the_request_by_the_sdks_tool_call_id(scenario):
    paused(scenario)
    scenario.audit.flush()
    assert [r["result"].get("call_id") for r in select(scenario.log_dir, kind="approval")] == ["c1"]


def test_native_sdk_approval_without_an_agt_vote_does_not_run_the_tool(scenario):
    model, agent, result = paused(scenario)
    state = result.to_state()
    state.approve(result.interruptions[0])
    run(agent, state, "sync")
    assert RAN == []
    text = tool_outputs(model)["c1"]
    assert "has not approved" in text and scenario.requests()[0].id in text
    assert len(scenario.requests()) == 1


@pytest.mark.parametrize("how", ["sync", "async"])
def test_native_resume_after_the_agt_vote_runs_the_tool_on_its_one_request(scenario, how):
    model, agent, result = paused(scenario, how)
    item = result.interruptions[0]
    scenario.vote(approval_request(item), approve=True)
    state = result.to_state()
    state.approve(item)
    resumed = run(agent, state, how)
    assert RAN == [NEEDS_APPROVAL]
    assert tool_outputs(model) == {"c1": "transferred 500"}
    assert len(scenario.requests()) == 1
    assert resumed.final_output == "done" and not resumed.interruptions


def test_native_resume_after_an_agt_rejection_denies_the_call(scenario):
    model, agent, result = paused(scenario)
    item = result.interruptions[0]
    scenario.vote(approval_request(item), approve=False)
    state = result.to_state()
    state.approve(item)  # the SDK side says yes; agt's store said no, and decides
    run(agent, state, "sync")
    assert RAN == []
    assert "agt governance denied" in tool_outputs(model)["c1"]
    assert len(scenario.requests()) == 1


def test_native_mode_does_not_pause_a_denied_call_it_hands_the_model_the_denial(scenario):
    model = script(DENIED)
    result = run(native(scenario, model), "mail it", "sync")
    assert result.interruptions == [] and RAN == []
    assert DENY_RULE in tool_outputs(model)["c0"]
    assert len(decisions(scenario, "send_email")) == 1  # decided once, by needs_approval, not again on invoke


def test_native_mode_decides_an_allowed_call_once(scenario):
    model = script(ALLOWED)
    run(native(scenario, model), "weather?", "async")
    assert RAN == [ALLOWED]
    assert [r["result"]["enforced"] for r in decisions(scenario, "get_weather")] == ["allow"]
    assert scenario.governor.store.counters("default").tool_calls == 1  # one admission, not one per hook


def test_native_mode_keeps_the_tools_own_needs_approval(scenario):
    model = script(ALLOWED)
    tool = function_tool(TOOLS[0], needs_approval=True)
    agent = govern_agent(user_agent(model, [tool]), scenario.governor, agent_id="bot", approvals="native")
    result = run(agent, "weather?", "sync")
    [item] = result.interruptions  # agt allows it; the tool itself still asks the SDK's human
    assert approval_request(item) is None and scenario.requests() == []
    state = result.to_state()
    state.approve(item)
    run(agent, state, "sync")
    assert RAN == [ALLOWED]
    first, second = decisions(scenario, "get_weather")  # not held across a human's pause: decided again
    assert first["result"]["tool_error"].startswith("not run:") and second["result"]["enforced"] == "allow"
    assert scenario.governor.store.counters("default").tool_calls == 1


# --- engine error -----------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["sync", "async"])
@pytest.mark.parametrize("approvals", ["wait", "native"])
def test_an_engine_error_denies_every_call_and_runs_no_tool(tmp_path, how, approvals):
    broken = BrokenScenario(tmp_path)
    model = script(ALLOWED, NEEDS_APPROVAL)
    agent = govern_agent(user_agent(model), broken.governor, agent_id="bot", approvals=approvals)
    result = run(agent, "go", how)
    assert RAN == [] and result.interruptions == []
    outputs = tool_outputs(model)
    assert ENGINE_ERROR in outputs["c0"] and ENGINE_ERROR in outputs["c1"]
    assert ENGINE_ERROR in broken.audited_rules()
    broken.close()


# --- what govern_agent does to the agent ----------------------------------------------------------
def test_the_users_agent_and_tools_are_left_ungoverned_and_unchanged(scenario):
    original = user_agent(script(DENIED))
    invokers = [t.on_invoke_tool for t in original.tools]
    governed = govern_agent(original, scenario.governor, agent_id="bot")
    assert governed is not original and [t.on_invoke_tool for t in original.tools] == invokers
    assert all(isinstance(t, FunctionTool) for t in governed.tools)
    assert [t.name for t in governed.tools] == [t.name for t in original.tools]
    run(original, "mail it", "sync")  # the original still runs its tools unguarded, as the user built it
    assert RAN == [DENIED]


def test_governing_a_governed_agent_again_is_refused(scenario):
    governed = govern_agent(user_agent(script(ALLOWED)), scenario.governor, agent_id="bot")
    with pytest.raises(ValueError, match="already governed"):
        govern_agent(governed, scenario.governor, agent_id="bot")


def test_a_hosted_tool_is_refused_unless_left_ungoverned_knowingly(scenario):
    agent = user_agent(script(ALLOWED), [function_tool(TOOLS[0]), WebSearchTool()])
    with pytest.raises(TypeError, match="WebSearchTool"):
        govern_agent(agent, scenario.governor, agent_id="bot")
    governed = govern_agent(agent, scenario.governor, agent_id="bot", ungoverned="allow")
    assert isinstance(governed.tools[1], WebSearchTool)
    run(governed, "weather?", "sync")
    assert RAN == [ALLOWED]


def test_mcp_servers_are_refused_because_their_tools_arrive_at_run_time(scenario):
    from agents.mcp import MCPServerStdio

    server = MCPServerStdio(params={"command": "true"}, name="files")  # never started
    agent = user_agent(script(ALLOWED)).clone(mcp_servers=[server])
    with pytest.raises(TypeError, match="files \\(MCP server\\)"):
        govern_agent(agent, scenario.governor, agent_id="bot")


def test_without_the_sdk_the_error_names_the_extra():
    code = ("import sys; sys.modules['agents'] = None\n"
            "from agt.adapters.openai_agents import govern_agent\n"
            "try:\n    govern_agent(object(), None, agent_id='x')\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'agt[openai-agents]'" in out.stdout, out.stderr


# --- the example -----------------------------------------------------------------------------------
def test_the_example_runs_offline_and_shows_each_outcome():
    env = {**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "1"}
    env.pop("OPENAI_API_KEY", None)
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "openai_agents_agent.py")], capture_output=True,
                         text=True, timeout=120, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any("get_weather" in line and "ran" in line for line in lines), out.stdout
    assert any("send_email" in line and DENY_RULE in line for line in lines), out.stdout
    assert any("transfer_funds" in line and "paused" in line for line in lines), out.stdout
    assert any("transfer_funds" in line and "approved" in line and "transferred 500" in line for line in lines), out.stdout


def test_a_tool_without_sdk_failure_handling_raises_as_before_and_agt_records_the_failure(scenario):
    def strict_lookup(city: str) -> str:
        """Look a city up."""
        raise RuntimeError("backend down")

    tool = function_tool(strict_lookup, failure_error_function=None)
    agent = govern_agent(user_agent(script(("strict_lookup", {"city": "Paris"})), [tool]), scenario.governor, agent_id="bot")
    with pytest.raises(agents.UserError, match="backend down"):  # the SDK's own way to end the run
        run(agent, "?", "sync")
    [record] = decisions(scenario, "strict_lookup")
    assert record["result"]["tool_error"] == "RuntimeError: backend down"


def test_native_mode_decides_again_from_the_exact_json_when_the_sdks_dict_differs(scenario):
    def tip(amount: float) -> str:
        """Leave a tip."""
        RAN.append(("tip", {"amount": amount}))
        return "tipped"

    model = script(("tip", '{"amount": 0.10000000000000000001}'))  # the SDK's json.loads makes it 0.1
    agent = govern_agent(user_agent(model, [function_tool(tip)]), scenario.governor, agent_id="bot", approvals="native")
    run(agent, "tip", "sync")
    assert RAN == [("tip", {"amount": 0.1})]
    first, second = decisions(scenario, "tip")  # decided on needs_approval's float, then on agt's exact reading
    assert "arguments differ" in first["result"]["tool_error"] and second["result"]["enforced"] == "allow"
    assert scenario.governor.store.counters("default").tool_calls == 1
