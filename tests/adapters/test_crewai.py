"""agt.adapters.crewai against the real CrewAI 1.15 agent loop (Crew -> Agent -> Task kickoff).

The model is a scripted ``crewai.BaseLLM`` subclass (CrewAI's own LLM interface; CrewAI ships no fake
model) that answers in CrewAI's ReAct text format and records every message list it is sent, so a test
can read exactly what the model saw after a tool call. No network, no real model, telemetry off.
"""

from __future__ import annotations

import os

# Before crewai is imported: no telemetry, no tracing, no version check, no files in the home directory.
os.environ.update({
    "CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true", "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true", "CREWAI_TESTING": "true",
})

import asyncio  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

crewai = pytest.importorskip("crewai")
from crewai import Agent, BaseLLM, Crew, Task  # noqa: E402
from crewai.hooks import (  # noqa: E402
    clear_all_tool_call_hooks,
    clear_before_tool_call_hooks,
    get_after_tool_call_hooks,
    get_before_tool_call_hooks,
    register_before_tool_call_hook,
    unregister_before_tool_call_hook,
)
from crewai.tools import tool  # noqa: E402

from agt.adapters import crewai as agt_crewai  # noqa: E402
from agt.adapters._core import ToolGate  # noqa: E402
from agt.audit.log import select  # noqa: E402

from scenario import (  # noqa: E402
    ALLOWED, APPROVAL_RULE, DENIED, DENY_RULE, ENGINE_ERROR, NEEDS_APPROVAL, RAN, TOOLS, BrokenScenario, Scenario,
)

ROOT = Path(__file__).resolve().parents[2]
ROLE = "Finance assistant"
CREW_TOOLS = [tool(f.__name__)(f) for f in TOOLS]


class ScriptedLLM(BaseLLM):
    """Replies with the next scripted text; ``seen`` holds every message list CrewAI sent."""

    replies: list[Any] = []
    seen: list[Any] = []
    function_calling: bool = False  # False: the ReAct text loop; True: native tool calls (OpenAI-style)

    def call(self, messages, tools=None, callbacks=None, available_functions=None, from_task=None,
             from_agent=None, response_model=None):  # noqa: ANN001
        self.seen.append(json.loads(json.dumps(messages, default=str)))
        if not self.replies:
            return "Thought: I am done.\nFinal Answer: nothing more to do"
        return self.replies.pop(0)

    async def acall(self, messages, tools=None, callbacks=None, available_functions=None, from_task=None,
                    from_agent=None, response_model=None):  # noqa: ANN001
        return self.call(messages, tools, callbacks, available_functions, from_task, from_agent, response_model)

    def supports_function_calling(self) -> bool:
        return self.function_calling

    def next_input_after(self, call_index: int) -> str:
        """Everything the model was sent on the call after ``call_index`` (its next input)."""
        return "\n".join(str(m.get("content", "")) for m in self.seen[call_index + 1])


def act(call: tuple[str, dict]) -> str:
    name, args = call
    return f"Thought: I should use {name}.\nAction: {name}\nAction Input: {json.dumps(args)}"


def tool_calls(*calls: tuple[str, dict]) -> list[dict]:
    """One model turn asking for these tools at once, as OpenAI-style tool calls."""
    return [{"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for i, (name, args) in enumerate(calls)]


def final(text: str = "done") -> str:
    return f"Thought: I now know the final answer.\nFinal Answer: {text}"


def crew_with(*replies: Any, role: str = ROLE, function_calling: bool = False,
              tools: list | None = None) -> tuple[Crew, ScriptedLLM]:
    llm = ScriptedLLM(model="scripted", replies=list(replies), seen=[], function_calling=function_calling)
    agent = Agent(role=role, goal="Help with mail, weather and money", backstory="A careful assistant.",
                  llm=llm, tools=CREW_TOOLS if tools is None else tools, allow_delegation=False, verbose=False, max_iter=5)
    task = Task(description="Do what the user asked.", expected_output="One sentence.", agent=agent)
    return Crew(agents=[agent], tasks=[task], verbose=False), llm


def ran(name: str) -> list[dict]:
    return [args for tool_name, args in RAN if tool_name == name]


def decisions(s: Scenario, rule: str) -> list[dict]:
    s.audit.flush()
    return [r for r in select(s.log_dir, kind="decision") if rule in {x["id"] for x in r["result"].get("reasons", [])}]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CREWAI_STORAGE_DIR", str(tmp_path / "crewai"))
    monkeypatch.chdir(tmp_path)
    yield
    if agt_crewai._active is not None:
        agt_crewai._active.uninstall()
    ours = [h for h in get_before_tool_call_hooks() + get_after_tool_call_hooks()
            if getattr(h, "__self__", None).__class__ is agt_crewai.CrewAIGovernance]
    assert not ours, "a test left agt's hooks installed"


@pytest.fixture
def scenario(tmp_path):
    s = Scenario(tmp_path)
    yield s
    s.close()


# --- the shared scenario -------------------------------------------------------------------------------

def test_allowed_call_runs_and_the_model_reads_its_result(scenario):
    crew, llm = crew_with(act(ALLOWED), final())
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    assert ran("get_weather") == [{"city": "Paris"}]
    assert "sunny in Paris" in llm.next_input_after(0)


def test_denied_call_never_runs(scenario):
    crew, _ = crew_with(act(DENIED), final())
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    assert ran("send_email") == []


def test_model_next_input_holds_agt_denial_with_rule_id_not_crewai_generic_text(scenario):
    crew, llm = crew_with(act(DENIED), final())
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    seen = llm.next_input_after(0)
    assert f"rules: {DENY_RULE}" in seen and "Mail to outside domains is blocked." in seen and "do not retry" in seen
    assert "Tool execution blocked by hook" not in seen


def test_audit_log_holds_the_denial_rule_id(scenario):
    crew, _ = crew_with(act(DENIED), final())
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    assert DENY_RULE in scenario.audited_rules()


def test_approval_waits_for_the_cfo_vote_then_runs(scenario):
    crew, llm = crew_with(act(NEEDS_APPROVAL), final())
    voter = scenario.vote_when_pending(approve=True)
    with agt_crewai.install(scenario.governor):  # approvals="wait" is the default
        crew.kickoff()
    voter.join(30)
    assert ran("transfer_funds") == [{"amount": 500}]
    assert "transferred 500" in llm.next_input_after(0)
    assert len(scenario.requests()) == 1 and APPROVAL_RULE in scenario.audited_rules()


def test_rejected_approval_never_runs_and_the_model_reads_why(scenario):
    crew, llm = crew_with(act(NEEDS_APPROVAL), final())
    voter = scenario.vote_when_pending(approve=False)
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    voter.join(30)
    assert ran("transfer_funds") == []
    assert "agt governance denied the call to 'transfer_funds' at the approval gate" in llm.next_input_after(0)


def test_native_approval_blocks_with_the_request_id_and_the_same_call_again_reuses_it(scenario):
    crew, llm = crew_with(act(NEEDS_APPROVAL), final("waiting for the CFO"))
    with agt_crewai.install(scenario.governor, approvals="native"):
        crew.kickoff()
        assert ran("transfer_funds") == []
        [request] = scenario.requests()
        assert f"request {request.id}" in llm.next_input_after(0)
        scenario.vote(request.id, approve=True)
        again, llm2 = crew_with(act(NEEDS_APPROVAL), final())  # the user asks again after the CFO approved
        again.kickoff()
    assert ran("transfer_funds") == [{"amount": 500}]
    assert "transferred 500" in llm2.next_input_after(0)
    assert len(scenario.requests()) == 1


def test_engine_error_denies_and_the_tool_never_runs(tmp_path):
    broken = BrokenScenario(tmp_path)
    crew, llm = crew_with(act(ALLOWED), final())
    with agt_crewai.install(broken.governor):
        crew.kickoff()
    assert ran("get_weather") == []
    assert ENGINE_ERROR in llm.next_input_after(0)
    assert ENGINE_ERROR in broken.audited_rules()
    broken.close()


def test_async_kickoff_is_governed(scenario):
    crew, llm = crew_with(act(DENIED), act(ALLOWED), final())
    with agt_crewai.install(scenario.governor):
        asyncio.run(crew.akickoff())
    assert ran("send_email") == [] and ran("get_weather") == [{"city": "Paris"}]
    assert DENY_RULE in llm.next_input_after(0) and "sunny in Paris" in llm.next_input_after(1)


def test_native_tool_calls_in_one_turn_are_each_governed(scenario):
    """CrewAI's other loop: the model returns tool calls (CrewAI may run them in parallel threads)."""
    crew, llm = crew_with(tool_calls(DENIED, ALLOWED), "It is sunny; the mail was refused.", function_calling=True)
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    assert ran("send_email") == [] and ran("get_weather") == [{"city": "Paris"}]
    seen = llm.next_input_after(0)
    assert f"rules: {DENY_RULE}" in seen and "sunny in Paris" in seen and "Tool execution blocked by hook" not in seen


def test_native_tool_call_approval_waits_for_the_vote(scenario):
    crew, llm = crew_with(tool_calls(NEEDS_APPROVAL), "Transferred.", function_calling=True)
    voter = scenario.vote_when_pending(approve=True)
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    voter.join(30)
    assert ran("transfer_funds") == [{"amount": 500}] and "transferred 500" in llm.next_input_after(0)
    assert len(scenario.requests()) == 1


def test_crewai_delegation_is_a_governed_tool_call_refused_at_default_trust(scenario):
    """CrewAI's built-in "Delegate work to coworker" reaches the hooks as ``delegate_work_to_coworker``: a
    delegate-kind tool, which the trust-ring gate refuses an unregistered agent (default trust, ring 2)."""
    helper_llm = ScriptedLLM(model="scripted", replies=[final("the coworker did it")], seen=[])
    coworker = Agent(role="Coworker", goal="Help", backstory="Helpful.", llm=helper_llm, allow_delegation=False)
    delegation = ("Delegate work to coworker", {"task": "send the numbers", "context": "to boss", "coworker": "Coworker"})
    crew, llm = crew_with(act(delegation), final())
    crew.agents[0].allow_delegation = True
    crew.agents.append(coworker)
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    seen = llm.next_input_after(0)
    assert "agt governance denied the call to 'delegate_work_to_coworker' at the trust gate" in seen
    assert helper_llm.seen == []


# --- CrewAI's fail-open trap -----------------------------------------------------------------------------

def test_crewai_itself_runs_the_tool_when_a_hook_raises(scenario):
    """The trap the adapter guards against: still true of the installed CrewAI."""
    def buggy(ctx):  # noqa: ANN001
        raise RuntimeError("a bug in a hook")
    register_before_tool_call_hook(buggy)
    try:
        crew, _ = crew_with(act(DENIED), final())
        crew.kickoff()
    finally:
        unregister_before_tool_call_hook(buggy)
    assert ran("send_email") == [{"to": "boss@evil.example", "body": "the numbers"}]


def test_governor_raising_an_unexpected_exception_type_denies(scenario, monkeypatch):
    def begin(*a, **kw):  # noqa: ANN002, ANN003
        raise LookupError("approval store vanished")
    monkeypatch.setattr(scenario.governor, "begin", begin)  # fault injection
    crew, llm = crew_with(act(ALLOWED), final())
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    assert ran("get_weather") == []
    assert "adapter-error" in llm.next_input_after(0) and "approval store vanished" in llm.next_input_after(0)
    assert "adapter-error" in scenario.audited_rules()


def test_a_fault_inside_the_adapters_before_hook_blocks_the_call(scenario, monkeypatch):
    def begin(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003
        raise RuntimeError("adapter bug")
    monkeypatch.setattr(ToolGate, "begin", begin)  # fault injection past ToolGate's own guard
    crew, llm = crew_with(act(ALLOWED), final())
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    assert ran("get_weather") == []
    assert "adapter-error" in llm.next_input_after(0) and "adapter-error" in scenario.audited_rules()


def test_a_fault_inside_the_adapters_after_hook_withholds_the_result(scenario, monkeypatch):
    def finish(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003
        raise RuntimeError("adapter bug")
    monkeypatch.setattr(ToolGate, "finish", finish)
    crew, llm = crew_with(act(ALLOWED), final())
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    seen = llm.next_input_after(0)
    assert "sunny in Paris" not in seen and "adapter-error" in seen


# --- installation -----------------------------------------------------------------------------------------

def test_uninstall_removes_governance(scenario):
    handle = agt_crewai.install(scenario.governor)
    handle.uninstall()
    assert handle._before not in get_before_tool_call_hooks() and handle._after not in get_after_tool_call_hooks()
    crew, _ = crew_with(act(DENIED), final())
    crew.kickoff()
    assert ran("send_email") == [{"to": "boss@evil.example", "body": "the numbers"}]


def test_leaving_the_context_manager_uninstalls(scenario):
    with agt_crewai.install(scenario.governor) as handle:
        assert handle.active
    assert not handle.active and agt_crewai._active is None


def test_installing_twice_is_refused_and_calls_are_governed_once(scenario):
    first = agt_crewai.install(scenario.governor)
    with pytest.raises(agt_crewai.AlreadyInstalled):
        agt_crewai.install(scenario.governor)
    assert get_before_tool_call_hooks().count(first._before) == 1 and len(get_before_tool_call_hooks()) == 1
    crew, _ = crew_with(act(DENIED), final())
    crew.kickoff()
    first.uninstall()
    assert len(decisions(scenario, DENY_RULE)) == 1


def test_install_again_after_crewai_cleared_the_hooks(scenario):
    first = agt_crewai.install(scenario.governor)
    clear_all_tool_call_hooks()
    assert not first.active
    second = agt_crewai.install(scenario.governor)
    assert second.active
    second.uninstall()


def test_install_again_after_half_the_pair_was_cleared_removes_the_other_half(scenario):
    first = agt_crewai.install(scenario.governor)
    clear_before_tool_call_hooks()
    second = agt_crewai.install(scenario.governor)
    assert first._after not in get_after_tool_call_hooks() and get_after_tool_call_hooks() == [second._after]
    second.uninstall()


def test_the_crewai_agents_role_is_the_agent_id_by_default(scenario):
    crew, _ = crew_with(act(DENIED), final(), role="Mailer")
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    assert {r["agent_id"] for r in decisions(scenario, DENY_RULE)} == {"Mailer"}


def test_an_explicit_agent_id_wins_over_the_role(scenario):
    crew, _ = crew_with(act(DENIED), final(), role="Mailer")
    with agt_crewai.install(scenario.governor, agent_id="billing-bot"):
        crew.kickoff()
    assert {r["agent_id"] for r in decisions(scenario, DENY_RULE)} == {"billing-bot"}


def test_a_later_hook_that_blocks_an_admitted_call_is_recorded_as_not_run(scenario):
    def veto(ctx):  # noqa: ANN001
        return False
    with agt_crewai.install(scenario.governor):
        register_before_tool_call_hook(veto)
        try:
            crew, _ = crew_with(act(ALLOWED), final())
            crew.kickoff()
        finally:
            unregister_before_tool_call_hook(veto)
    scenario.audit.flush()
    assert ran("get_weather") == []
    assert any("not run" in str(r["result"].get("tool_error", "")) for r in select(scenario.log_dir, kind="decision"))


# --- the red-team findings: retries, failures, coerced arguments ----------------------------------------------

@tool("transfer_funds")
def flaky_transfer_funds(amount: int) -> str:
    """Transfer money; the bank's reply parser is flaky (it raises after the money moved)."""
    RAN.append(("transfer_funds", {"amount": amount}))
    raise RuntimeError("bank replied 502 after booking the transfer")


@tool("get_weather")
def failing_get_weather(city: str) -> str:
    """The weather service is down."""
    RAN.append(("get_weather", {"city": city}))
    raise RuntimeError("weather service unavailable")


@tool("send_email")
def send_email_with_default(body: str, to: str = "boss@evil.example") -> str:
    """Send mail; without a recipient it goes to the default one."""
    RAN.append(("send_email", {"to": to, "body": body}))
    return f"sent to {to}"


@tool("get_weather")
def get_weather_with_default(city: str = "Paris") -> str:
    """The weather, in Paris unless told otherwise."""
    RAN.append(("get_weather", {"city": city}))
    return f"sunny in {city}"


def crew_of(tools: list, *replies: Any, function_calling: bool = False) -> tuple[Crew, ScriptedLLM]:
    return crew_with(*replies, function_calling=function_calling, tools=tools)


def tool_errors(s: Scenario, tool_name: str) -> list:
    s.audit.flush()
    return [r["result"].get("tool_error") for r in select(s.log_dir, kind="decision")
            if (r.get("input") or {}).get("action", {}).get("tool") == tool_name]


def test_react_retries_of_a_raising_tool_do_not_rerun_it_on_one_approval(scenario):
    """CrewAI's ToolUsage retries a tool that raises (3 use() attempts x 2 invokes) inside one hook pair: the
    one approved call must run the body once, not six times."""
    crew, _ = crew_of([flaky_transfer_funds], act(NEEDS_APPROVAL), final())
    voter = scenario.vote_when_pending(approve=True)
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    voter.join(30)
    assert ran("transfer_funds") == [{"amount": 500}]
    assert len(scenario.requests()) == 1


def test_async_react_retries_of_a_raising_tool_do_not_rerun_it(scenario):
    crew, _ = crew_of([failing_get_weather], act(ALLOWED), final())
    with agt_crewai.install(scenario.governor):
        asyncio.run(crew.akickoff())
    assert ran("get_weather") == [{"city": "Paris"}]


def test_react_the_model_reads_the_tools_error_and_that_crewai_did_not_rerun_it(scenario):
    crew, llm = crew_of([failing_get_weather], act(ALLOWED), final())
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    seen = llm.next_input_after(0)
    assert "weather service unavailable" in seen and "did not let CrewAI run it again" in seen
    assert ran("get_weather") == [{"city": "Paris"}]


def test_react_a_raising_tool_is_audited_as_failed_not_as_a_success(scenario):
    crew, _ = crew_of([failing_get_weather], act(ALLOWED), final())
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    errors = tool_errors(scenario, "get_weather")
    assert len(errors) == 1 and "weather service unavailable" in str(errors[0])


def test_native_tool_call_that_raises_is_audited_as_failed(scenario):
    crew, _ = crew_of([failing_get_weather], tool_calls(ALLOWED), "It failed.", function_calling=True)
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    errors = tool_errors(scenario, "get_weather")
    assert len(errors) == 1 and "weather service unavailable" in str(errors[0])


def test_a_raising_tool_trips_the_breaker_and_the_next_call_is_refused_unrun(tmp_path):
    from agt.runtime.breaker import BreakerPolicy
    s = Scenario(tmp_path, breakers=BreakerPolicy(failures=1))
    crew, llm = crew_of([failing_get_weather], act(("get_weather", {"city": "Paris"})),
                        act(("get_weather", {"city": "Rome"})), final())
    with agt_crewai.install(s.governor):
        crew.kickoff()
    s.close()
    assert ran("get_weather") == [{"city": "Paris"}]
    assert "reliability gate" in llm.next_input_after(1) and "circuit-open" in llm.next_input_after(1)


def test_react_an_argument_pydantic_would_coerce_is_refused_before_the_policy(scenario):
    """"500" is not an integer: CrewAI's pydantic would make it 500 after the policy read a string (and the
    approval rule "amount > 100" would not match), so the transfer ran without the CFO."""
    crew, llm = crew_with(act(("transfer_funds", {"amount": "500"})), final())
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    assert ran("transfer_funds") == []
    assert "adapter-arguments" in llm.next_input_after(0) and "adapter-arguments" in scenario.audited_rules()


def test_native_tool_call_with_a_coercible_argument_is_refused(scenario):
    crew, llm = crew_with(tool_calls(("transfer_funds", {"amount": "500"})), "Refused.", function_calling=True)
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    assert ran("transfer_funds") == [] and "adapter-arguments" in llm.next_input_after(0)


def test_an_omitted_argument_is_decided_with_the_tools_default(scenario):
    """The model leaves out ``to``; the tool's default is an outside address the policy blocks."""
    crew, llm = crew_of([send_email_with_default], act(("send_email", {"body": "the numbers"})), final())
    with agt_crewai.install(scenario.governor):
        crew.kickoff()
    assert ran("send_email") == []
    assert f"rules: {DENY_RULE}" in llm.next_input_after(0)


def test_the_decided_defaults_are_written_into_the_arguments_crewai_runs_the_tool_with(scenario):
    seen: list[dict] = []

    def recorder(ctx):  # noqa: ANN001 - runs after agt's before-hook, on the dict CrewAI passes to the tool
        seen.append(dict(ctx.tool_input))
    crew, _ = crew_of([get_weather_with_default], act(("get_weather", {"note": "x"})), final())
    with agt_crewai.install(scenario.governor):
        register_before_tool_call_hook(recorder)
        try:
            crew.kickoff()
        finally:
            unregister_before_tool_call_hook(recorder)
    assert seen == [{"note": "x", "city": "Paris"}] and ran("get_weather") == [{"city": "Paris"}]


# --- the example --------------------------------------------------------------------------------------------

def test_the_offline_example_runs():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "crewai_agent.py")], capture_output=True, text=True,
                         timeout=300, cwd=ROOT, env={**os.environ})
    assert out.returncode == 0, out.stderr
    assert "get_weather ran: sunny in Paris" in out.stdout
    assert f"send_email denied ({DENY_RULE})" in out.stdout
    assert "send_email body ran: no" in out.stdout
