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

from agt import Agent as AgtAgent  # noqa: E402
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


# --- red-team regressions (REDTEAM.md findings 1, 2, 6) -------------------------------------------
REDTEAM_POLICY = """apiVersion: governance.toolkit/v1
name: redteam
default_action: allow
rules:
  - name: no-wipe
    condition: "tool_name == 'wipe_disk'"
    action: deny
    priority: 100
    message: never.
  - name: no-recursive-delete
    condition: "tool_name == 'delete_path' and action.params.recursive == true"
    action: deny
    priority: 100
    message: recursive deletes are refused.
  - name: large-transfer-approval
    condition: "tool_name == 'transfer_funds' and action.params.amount > 100"
    action: require_approval
    approvers: [cfo]
    priority: 50
"""


class RedTeam(Scenario):
    """The scenario's audit and approvers on the red team's policy (wipe_disk denied, recursive deletes denied)."""

    def __init__(self, tmp: Path) -> None:
        from scenario import Approvers
        from agt.audit import AuditLog
        from agt.runtime.governor import Governor

        RAN.clear()
        (tmp / "redteam.yaml").write_text(REDTEAM_POLICY)
        self.approvers = Approvers("cfo")
        self.log_dir = tmp / "audit"
        self.audit = AuditLog(self.log_dir, key_path=tmp / "audit.key")
        self.governor = Governor("yaml", str(tmp / "redteam.yaml"), audit=self.audit,
                                 approvers=self.approvers.registry, approval_timeout=30)


@pytest.fixture
def redteam(tmp_path):
    s = RedTeam(tmp_path)
    yield s
    s.close()


def _no_secrets():
    from agents.tool_guardrails import ToolGuardrailFunctionOutput, tool_input_guardrail

    @tool_input_guardrail
    def no_secrets(data):  # noqa: ANN001, ANN202 - an app's content filter the model can trip on purpose
        if "secret" in data.context.tool_arguments:
            return ToolGuardrailFunctionOutput.reject_content("no secrets")
        return ToolGuardrailFunctionOutput.allow()
    return no_secrets


def list_files(path: str) -> str:
    """List files."""
    RAN.append(("list_files", {"path": path}))
    return "a b c"


def wipe_disk(path: str) -> str:
    """Wipe a disk."""
    RAN.append(("wipe_disk", {"path": path}))
    return "WIPED " + path


def guarded_file_tools():
    return [function_tool(list_files, tool_input_guardrails=[_no_secrets()]), function_tool(wipe_disk)]


def held_tickets(agent) -> dict:
    return dict(agent._agt_governance.held)


def test_native_a_ticket_the_sdk_never_invoked_does_not_run_another_tool_later(redteam):
    # oa_leak.py: a guardrail rejects list_files after needs_approval admitted it; a new run asks for
    # wipe_disk with the same call id and the same arguments.
    args = {"path": "/data/secret"}
    model = ScriptedModel([[function_call("list_files", args, call_id="X")], [assistant_message("done")],
                           [function_call("wipe_disk", args, call_id="X")], [assistant_message("done2")]])
    agent = govern_agent(user_agent(model, guarded_file_tools()), redteam.governor, agent_id="bot", approvals="native")
    run(agent, "go", "async")
    run(agent, "a new conversation", "async")
    assert RAN == []
    assert [r["result"]["enforced"] for r in decisions(redteam, "wipe_disk")] == ["deny"]
    assert "no-wipe" in tool_outputs(model)["X"]


def test_native_a_ticket_a_guardrail_rejected_is_abandoned_when_the_turn_ends(redteam):
    model = ScriptedModel([[function_call("list_files", {"path": "/data/secret"}, call_id="X")],
                           [assistant_message("done")]])
    agent = govern_agent(user_agent(model, guarded_file_tools()), redteam.governor, agent_id="bot", approvals="native")
    run(agent, "go", "sync")
    assert held_tickets(agent) == {}
    [record] = decisions(redteam, "list_files")
    assert record["result"]["tool_error"].startswith("not run: the turn ended")
    assert redteam.governor.store.counters("default").tool_calls == 0  # its admission was given back


def test_native_a_ticket_held_when_the_run_raised_is_not_usable_by_the_next_run_and_is_abandoned_on_collection(redteam):
    import gc

    args = {"path": "/data/secret"}
    model = ScriptedModel([[function_call("list_files", args, call_id="X")], [assistant_message("never")],
                           [function_call("list_files", {"path": "/data/secret2"}, call_id="X")],
                           [assistant_message("done")]])
    tools = [function_tool(list_files, tool_input_guardrails=[_no_secrets()])]
    agent = govern_agent(user_agent(model, tools), redteam.governor, agent_id="bot", approvals="native")
    with pytest.raises(agents.MaxTurnsExceeded) as raised:  # the run ends before any hook ends the turn
        Runner.run_sync(agent, "go", max_turns=1)
    assert len(held_tickets(agent)) == 1
    # A new run with the same tool and call id (the guardrail rejects it too): decided afresh, not handed the
    # first run's ticket.
    other = ScriptedModel([[function_call("list_files", args, call_id="X")], [assistant_message("done")]])
    run(govern_agent(user_agent(other, tools), redteam.governor, agent_id="bot", approvals="native"), "go", "sync")
    assert RAN == []
    del raised
    gc.collect()
    assert held_tickets(agent) == {}
    first, second = decisions(redteam, "list_files")
    assert {first["result"]["tool_error"][:8], second["result"]["tool_error"][:8]} == {"not run:"}
    assert redteam.governor.store.counters("default").tool_calls == 0


def test_native_held_tickets_are_capped_and_the_evicted_one_is_abandoned(redteam, monkeypatch):
    import agt.adapters.openai_agents as module

    monkeypatch.setattr(module, "_HELD_CAP", 2)
    model = ScriptedModel([[function_call("list_files", {"path": f"/secret/{i}"}, call_id=f"c{i}") for i in range(3)],
                           [assistant_message("never")]])
    agent = govern_agent(user_agent(model, guarded_file_tools()), redteam.governor, agent_id="bot", approvals="native")
    with pytest.raises(agents.MaxTurnsExceeded) as raised:
        Runner.run_sync(agent, "go", max_turns=1)
    assert len(held_tickets(agent)) == 2
    errors = [r["result"]["tool_error"] for r in decisions(redteam, "list_files")]
    assert errors == ["not run: held too long: the SDK did not invoke it"]
    del raised


def test_native_request_ids_are_capped(redteam, monkeypatch):
    import agt.adapters.openai_agents as module

    monkeypatch.setattr(module, "_REQUESTS_CAP", 2)
    model = ScriptedModel([[function_call("transfer_funds", {"amount": 500 + i}, call_id=f"c{i}") for i in range(3)],
                           [assistant_message("done")]])
    agent = govern_agent(user_agent(model), redteam.governor, agent_id="bot", approvals="native")
    result = run(agent, "pay", "sync")
    assert len(result.interruptions) == 3 and len(redteam.requests()) == 3
    assert len(agent._agt_governance.requests) == 2
    assert [approval_request(i) is not None for i in result.interruptions] == [False, True, True]


def test_a_reused_call_id_in_one_response_is_refused_by_the_sdk_and_nothing_runs(redteam):
    # oa_collide.py: the SDK itself refuses two invocations with one call id in one response.
    model = ScriptedModel([[function_call("list_files", {"path": "/data"}, call_id="X"),
                            function_call("wipe_disk", {"path": "/data"}, call_id="X")], [assistant_message("done")]])
    agent = govern_agent(user_agent(model, guarded_file_tools()), redteam.governor, agent_id="bot", approvals="native")
    with pytest.raises(agents.ModelBehaviorError, match="reused a tool call ID"):
        run(agent, "go", "sync")
    assert RAN == [] and held_tickets(agent) == {}


def test_native_a_call_id_reused_by_another_tool_after_a_pause_is_decided_for_that_tool(redteam):
    # oa_collide2.py: list_files X runs beside a paused transfer; the app starts a new run, where the model
    # asks for wipe_disk with the same call id X.
    model = ScriptedModel([[function_call("list_files", {"path": "/data"}, call_id="X"),
                            function_call("transfer_funds", {"amount": 500}, call_id="Y")],
                           [function_call("wipe_disk", {"path": "/data"}, call_id="X")], [assistant_message("done")]])
    tools = [function_tool(list_files), function_tool(wipe_disk), function_tool(TOOLS[2])]
    agent = govern_agent(user_agent(model, tools), redteam.governor, agent_id="bot", approvals="native")
    first = run(agent, "go", "sync")
    assert [i.raw_item.call_id for i in first.interruptions] == ["Y"] and held_tickets(agent) == {}
    run(agent, "again", "sync")
    assert RAN == [("list_files", {"path": "/data"})]
    assert [r["result"]["enforced"] for r in decisions(redteam, "wipe_disk")] == ["deny"]


# --- finding 2: the policy decides what the tool receives ------------------------------------------
TRUSTED = AgtAgent("bot", trust_score=900)  # agt's trust ring keeps delete_* from an unscored agent


def delete_path(path: str, recursive: bool = False) -> str:
    """Delete a path."""
    RAN.append(("delete_path", {"path": path, "recursive": recursive}))
    return "deleted"


def delete_recursively(path: str, recursive: bool = True) -> str:
    """Delete a path, recursively unless told otherwise."""
    RAN.append(("delete_path", {"path": path, "recursive": recursive}))
    return "deleted"


def audited_params(scenario, tool: str) -> list[dict]:
    return [(r.get("input") or {}).get("action", {}).get("params") for r in decisions(scenario, tool)]


@pytest.mark.parametrize("approvals", ["wait", "native"])
def test_a_boolean_sent_as_a_string_or_number_is_denied_before_the_tool_runs(redteam, approvals):
    # oa_coerce.py: pydantic would turn "true", 1 and "yes" into True, which the policy denies.
    model = script(("delete_path", {"path": "/home", "recursive": True}),
                   ("delete_path", '{"path": "/home", "recursive": "true"}'),
                   ("delete_path", '{"path": "/home", "recursive": 1}'),
                   ("delete_path", '{"path": "/home", "recursive": "yes"}'))
    agent = govern_agent(user_agent(model, [function_tool(delete_path)]), redteam.governor, agent_id=TRUSTED,
                         approvals=approvals)
    result = run(agent, "clean up", "async")
    assert RAN == [] and result.interruptions == []
    outputs = tool_outputs(model)
    assert "no-recursive-delete" in outputs["c0"]
    assert all("adapter-arguments" in outputs[c] for c in ("c1", "c2", "c3")), outputs


@pytest.mark.parametrize("approvals", ["wait", "native"])
def test_an_omitted_argument_is_decided_with_the_tools_default(redteam, approvals):
    model = script(("delete_path", {"path": "/home"}))
    agent = govern_agent(user_agent(model, [function_tool(delete_recursively, name_override="delete_path")]),
                         redteam.governor, agent_id=TRUSTED, approvals=approvals)
    run(agent, "clean up", "sync")
    assert RAN == []
    assert "no-recursive-delete" in tool_outputs(model)["c0"]
    assert audited_params(redteam, "delete_path") == [{"path": "/home", "recursive": True}]


@pytest.mark.parametrize("strict", [True, False])
def test_the_policy_sees_the_defaults_the_tool_gets_in_strict_and_lax_schemas(redteam, strict):
    def archive(path: str, recursive: bool = False, note: str | None = None) -> str:
        """Archive a path."""
        RAN.append(("archive", {"path": path, "recursive": recursive, "note": note}))
        return "archived"

    model = script(("archive", {"path": "/tmp/x"}))
    tool = function_tool(archive, strict_mode=strict)
    assert ("note" in tool.params_json_schema["required"]) is strict  # strict mode requires it, without its default
    run(govern_agent(user_agent(model, [tool]), redteam.governor, agent_id="bot"), "archive", "sync")
    assert RAN == [("archive", {"path": "/tmp/x", "recursive": False, "note": None})]
    assert audited_params(redteam, "archive") == [{"path": "/tmp/x", "recursive": False, "note": None}]


def test_native_an_omitted_amount_is_paused_for_approval_on_its_default(redteam):
    def transfer_funds(amount: int = 500) -> str:
        """Transfer money."""
        RAN.append(("transfer_funds", {"amount": amount}))
        return f"transferred {amount}"

    model = script(("transfer_funds", {}))
    agent = govern_agent(user_agent(model, [function_tool(transfer_funds)]), redteam.governor, agent_id="bot",
                         approvals="native")
    result = run(agent, "pay", "sync")
    [item] = result.interruptions
    assert approval_request(item) == redteam.requests()[0].id and RAN == []


def test_native_mode_keeps_the_agents_own_hooks(scenario):
    seen = []

    class Hooks(agents.AgentHooks):
        async def on_llm_start(self, context, agent, system_prompt, input_items):  # noqa: ANN001, ANN201
            seen.append("llm_start")

        async def on_tool_end(self, context, agent, tool, result):  # noqa: ANN001, ANN201
            seen.append(("tool_end", tool.name, result))

        async def on_end(self, context, agent, output):  # noqa: ANN001, ANN201
            seen.append(("end", output))

    model = script(ALLOWED)
    agent = govern_agent(user_agent(model).clone(hooks=Hooks()), scenario.governor, agent_id="bot", approvals="native")
    run(agent, "weather?", "async")
    assert seen == ["llm_start", ("tool_end", "get_weather", "sunny in Paris"), "llm_start", ("end", "done")]
