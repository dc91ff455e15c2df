"""agt.adapters.adk.GovernancePlugin, driven through ADK's real Runner and LlmAgent.

The model is a scripted ``BaseLlm`` subclass (ADK's own model interface): it answers each turn from a script
and keeps every ``LlmRequest`` it was sent, so a test can read exactly what the model saw next.
No network, no Google credentials.
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

from google.adk.agents import LlmAgent  # noqa: E402
from google.adk.apps import App as AdkApp  # noqa: E402
from google.adk.models.base_llm import BaseLlm  # noqa: E402
from google.adk.models.llm_response import LlmResponse  # noqa: E402
from google.adk.plugins import BasePlugin  # noqa: E402
from google.adk.runners import InMemoryRunner  # noqa: E402
from google.genai import types  # noqa: E402

from agt.adapters.adk import APPROVAL_PAYLOAD_KEY, GovernancePlugin  # noqa: E402
from agt.audit.log import select  # noqa: E402
from scenario import (  # noqa: E402
    ALLOWED, APPROVAL_RULE, DENIED, DENY_RULE, ENGINE_ERROR, NEEDS_APPROVAL, RAN, TOOLS, BrokenScenario, Scenario,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIRM = "adk_request_confirmation"
REJECTED = "approval-denied"  # the rule id agt gives a request the approvers refused


class ScriptedLlm(BaseLlm):
    """ADK's model interface, answered from a script: one list of parts per turn, then a closing text."""

    model: str = "scripted"
    turns: list = []
    requests: list = []

    async def generate_content_async(self, llm_request, stream: bool = False):  # noqa: ANN001
        self.requests.append(llm_request)
        i = len(self.requests) - 1
        parts = self.turns[i] if i < len(self.turns) else [types.Part.from_text(text="done")]
        yield LlmResponse(content=types.Content(role="model", parts=parts))


def call(spec: tuple[str, dict], call_id: str) -> types.Part:
    name, args = spec
    return types.Part(function_call=types.FunctionCall(name=name, args=dict(args), id=call_id))


def user(text: str = "go") -> types.Content:
    return types.Content(role="user", parts=[types.Part.from_text(text=text)])


class App:
    """A real InMemoryRunner with one LlmAgent ("assistant") on the scenario's tools and agt's plugin."""

    def __init__(self, governor, *turns: list[types.Part], agent_name: str = "assistant", **plugin_options) -> None:
        self.llm = ScriptedLlm(turns=list(turns))
        self.agent = LlmAgent(name=agent_name, model=self.llm, tools=list(TOOLS), **plugin_options.pop("agent", {}))
        self.plugin = GovernancePlugin(governor, **plugin_options)
        self.runner = InMemoryRunner(app=AdkApp(name="scenario", root_agent=self.agent, plugins=[self.plugin]))
        self.session = asyncio.run(self.runner.session_service.create_session(app_name=self.runner.app_name, user_id="u"))

    def run(self, message: types.Content | None = None) -> list:
        return list(self.runner.run(user_id="u", session_id=self.session.id, new_message=message or user()))

    async def arun(self, message: types.Content | None = None) -> list:
        return [e async for e in self.runner.run_async(user_id="u", session_id=self.session.id,
                                                       new_message=message or user())]

    def responses_seen_by_model(self, turn: int = -1) -> dict[str, dict]:
        """The function responses in the model's input on ``turn``, by call id."""
        return {p.function_response.id: p.function_response.response
                for c in self.llm.requests[turn].contents for p in (c.parts or []) if p.function_response}


def confirmation_calls(events: list) -> list[types.FunctionCall]:
    return [p.function_call for e in events for p in (e.content.parts if e.content else []) or []
            if p.function_call and p.function_call.name == CONFIRM]


def confirm(fc: types.FunctionCall, confirmed: bool = True) -> types.Content:
    return types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
        name=CONFIRM, id=fc.id, response={"confirmed": confirmed}))])


@pytest.fixture
def scenario(tmp_path):
    s = Scenario(tmp_path)
    yield s
    s.close()


# --- the plugin is ADK's --------------------------------------------------------------------------------
def test_plugin_is_a_real_adk_base_plugin(scenario):
    assert isinstance(GovernancePlugin(scenario.governor), BasePlugin)


# --- allowed ----------------------------------------------------------------------------------------------
def test_allowed_call_runs_and_its_result_reaches_the_model(scenario):
    app = App(scenario.governor, [call(ALLOWED, "w1")])
    app.run()
    assert RAN == [("get_weather", {"city": "Paris"})]
    assert app.responses_seen_by_model() == {"w1": {"result": "sunny in Paris"}}


# --- denied: sync and async -------------------------------------------------------------------------------
def test_denied_call_never_runs_and_the_model_reads_the_rule_sync(scenario):
    app = App(scenario.governor, [call(DENIED, "e1")])
    app.run()
    assert RAN == []
    seen = app.responses_seen_by_model()["e1"]
    assert set(seen) == {"error"}
    assert DENY_RULE in seen["error"] and "do not retry" in seen["error"]


def test_denied_call_never_runs_and_the_model_reads_the_rule_async(scenario):
    app = App(scenario.governor, [call(DENIED, "e1")])
    asyncio.run(app.arun())
    assert RAN == []
    assert DENY_RULE in app.responses_seen_by_model()["e1"]["error"]


def test_denied_call_is_audited_with_its_rule_id(scenario):
    App(scenario.governor, [call(DENIED, "e1")]).run()
    assert DENY_RULE in scenario.audited_rules()


def test_a_denial_does_not_end_the_run(scenario):
    app = App(scenario.governor, [call(DENIED, "e1")], [call(ALLOWED, "w1")])
    app.run()
    assert RAN == [("get_weather", {"city": "Paris"})]
    assert len(app.llm.requests) == 3  # denial seen, weather called, then the closing turn


def test_denied_and_allowed_calls_in_one_turn_each_get_their_own_answer(scenario):
    app = App(scenario.governor, [call(DENIED, "e1"), call(ALLOWED, "w1")])
    asyncio.run(app.arun())
    seen = app.responses_seen_by_model()
    assert DENY_RULE in seen["e1"]["error"] and seen["w1"] == {"result": "sunny in Paris"}
    assert RAN == [("get_weather", {"city": "Paris"})]


# --- identity -----------------------------------------------------------------------------------------------
def test_agent_id_defaults_to_the_adk_agent_name(scenario):
    App(scenario.governor, [call(DENIED, "e1")], agent_name="mailer").run()
    scenario.audit.flush()
    assert select(scenario.log_dir, kind="decision", agent="mailer", rule=DENY_RULE)


def test_an_explicit_agent_id_wins_over_the_adk_agent_name(scenario):
    App(scenario.governor, [call(DENIED, "e1")], agent_name="mailer", agent_id="billing-bot").run()
    scenario.audit.flush()
    assert select(scenario.log_dir, kind="decision", agent="billing-bot", rule=DENY_RULE)
    assert not select(scenario.log_dir, kind="decision", agent="mailer")


# --- approvals: wait (default) ------------------------------------------------------------------------------
def test_wait_mode_runs_the_call_once_the_cfo_approves(scenario):
    app = App(scenario.governor, [call(NEEDS_APPROVAL, "t1")])
    voter = scenario.vote_when_pending(approve=True)
    app.run()
    voter.join(timeout=30)
    assert RAN == [("transfer_funds", {"amount": 500})]
    assert app.responses_seen_by_model()["t1"] == {"result": "transferred 500"}
    assert len(scenario.requests()) == 1
    assert APPROVAL_RULE in scenario.audited_rules()


def test_wait_mode_async_denies_the_call_when_the_cfo_rejects(scenario):
    app = App(scenario.governor, [call(NEEDS_APPROVAL, "t1")])
    voter = scenario.vote_when_pending(approve=False)
    asyncio.run(app.arun())
    voter.join(timeout=30)
    assert RAN == []
    assert REJECTED in app.responses_seen_by_model()["t1"]["error"]


# --- approvals: ADK's native tool-confirmation pause -----------------------------------------------------------
def test_native_mode_pauses_the_run_with_agts_request_id(scenario):
    app = App(scenario.governor, [call(NEEDS_APPROVAL, "t1")], approvals="native")
    events = app.run()
    [fc] = confirmation_calls(events)
    [request] = scenario.requests()
    assert fc.args["originalFunctionCall"]["id"] == "t1"
    assert fc.args["toolConfirmation"]["payload"] == {APPROVAL_PAYLOAD_KEY: request.id}
    assert RAN == [] and len(app.llm.requests) == 1  # the run stopped: the model was not asked again


def test_native_resume_after_agt_approval_runs_the_call_and_reuses_the_request(scenario):
    app = App(scenario.governor, [call(NEEDS_APPROVAL, "t1")], approvals="native")
    [fc] = confirmation_calls(app.run())
    scenario.vote(scenario.requests()[0].id, approve=True)
    asyncio.run(app.arun(confirm(fc)))
    assert RAN == [("transfer_funds", {"amount": 500})]
    assert len(scenario.requests()) == 1
    assert app.responses_seen_by_model()["t1"] == {"result": "transferred 500"}


def test_native_resume_before_agt_decides_waits_on_the_same_request(scenario):
    app = App(scenario.governor, [call(NEEDS_APPROVAL, "t1")], approvals="native")
    [fc] = confirmation_calls(app.run())
    [request] = scenario.requests()
    resumed = threading.Event()
    plugin_before = app.plugin.before_tool_callback

    async def spy(**kwargs):  # noqa: ANN003 - tells the CFO the resumed call has reached agt
        resumed.set()
        return await plugin_before(**kwargs)

    app.plugin.before_tool_callback = spy

    def cfo() -> None:  # votes only once the resumed call is in agt's hands
        resumed.wait(30)
        scenario.vote(request.id, approve=True)

    voter = threading.Thread(target=cfo, daemon=True)
    voter.start()
    app.run(confirm(fc))
    voter.join(timeout=30)
    assert RAN == [("transfer_funds", {"amount": 500})]
    assert len(scenario.requests()) == 1


def test_native_resume_after_agt_rejection_denies_with_the_rule(scenario):
    app = App(scenario.governor, [call(NEEDS_APPROVAL, "t1")], approvals="native")
    [fc] = confirmation_calls(app.run())
    scenario.vote(scenario.requests()[0].id, approve=False)
    app.run(confirm(fc))
    assert RAN == []
    assert REJECTED in app.responses_seen_by_model()["t1"]["error"]


def test_native_confirmation_answered_no_denies_even_though_agt_approved(scenario):
    app = App(scenario.governor, [call(NEEDS_APPROVAL, "t1")], approvals="native")
    [fc] = confirmation_calls(app.run())
    scenario.vote(scenario.requests()[0].id, approve=True)
    app.run(confirm(fc, confirmed=False))
    assert RAN == []
    assert "adapter-confirmation-rejected" in app.responses_seen_by_model()["t1"]["error"]


# --- fails closed -----------------------------------------------------------------------------------------
def test_engine_error_denies_and_the_tool_never_runs(tmp_path):
    broken = BrokenScenario(tmp_path)
    app = App(broken.governor, [call(ALLOWED, "w1")])
    app.run()
    assert RAN == []
    assert ENGINE_ERROR in app.responses_seen_by_model()["w1"]["error"]
    assert ENGINE_ERROR in broken.audited_rules()


def test_an_internal_error_in_the_plugin_denies_instead_of_raising(scenario):
    app = App(scenario.governor, [call(ALLOWED, "w1")])

    def explode(tool_context):  # noqa: ANN001 - fault injection: the plugin's own machinery fails
        raise RuntimeError("plugin machinery broke")

    app.plugin._gate = explode
    app.run()
    assert RAN == []
    assert "adapter-error" in app.responses_seen_by_model()["w1"]["error"]
    assert "adapter-error" in scenario.audited_rules()


# --- ADK traps ----------------------------------------------------------------------------------------------
def test_arguments_rewritten_by_an_agent_callback_after_agt_allowed_withhold_the_result(scenario):
    def rewrite(tool, args, tool_context):  # noqa: ANN001 - an agent-level callback runs after every plugin
        args["city"] = "Atlantis"

    app = App(scenario.governor, [call(ALLOWED, "w1")], agent={"before_tool_callback": rewrite})
    app.run()
    seen = app.responses_seen_by_model()["w1"]
    assert "adapter-arguments-changed" in seen["error"] and "Atlantis" not in str(seen)


def test_a_tool_that_raises_is_recorded_and_adk_handles_the_error(scenario):
    def flaky(city: str) -> str:
        """Always fails."""
        raise ValueError("weather service down")

    llm = ScriptedLlm(turns=[[types.Part(function_call=types.FunctionCall(name="flaky", args={"city": "Oslo"}, id="f1"))]])
    runner = InMemoryRunner(app=AdkApp(name="scenario", root_agent=LlmAgent(name="assistant", model=llm, tools=[flaky]),
                                       plugins=[GovernancePlugin(scenario.governor)]))
    s = asyncio.run(runner.session_service.create_session(app_name=runner.app_name, user_id="u"))
    with pytest.raises(ValueError, match="weather service down"):  # ADK's own behaviour, unchanged by agt
        list(runner.run(user_id="u", session_id=s.id, new_message=user()))
    assert not app_tickets(runner)
    scenario.audit.flush()
    assert any("weather service down" in (r["result"].get("tool_error") or "")
               for r in select(scenario.log_dir, kind="decision"))


def app_tickets(runner) -> dict:  # noqa: ANN001
    [plugin] = [p for p in runner.plugin_manager.plugins if isinstance(p, GovernancePlugin)]
    return plugin._tickets


# --- the example --------------------------------------------------------------------------------------------
def test_example_runs_offline_and_prints_what_happened():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "adk_agent.py")], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OTEL_SDK_DISABLED": "true"})
    assert out.returncode == 0, out.stderr
    assert DENY_RULE in out.stdout and "sunny in Paris" in out.stdout and "transferred 500" in out.stdout
    assert "send_email ran: False" in out.stdout
