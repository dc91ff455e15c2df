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
from agt.audit import AuditLog  # noqa: E402
from agt.runtime.governor import Governor  # noqa: E402
from scenario import (  # noqa: E402
    ALLOWED, APPROVAL_RULE, DENIED, DENY_RULE, ENGINE_ERROR, NEEDS_APPROVAL, RAN, TOOLS, BrokenScenario, Scenario,
    wait_until,
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


# --- one function_call_id, one ticket ------------------------------------------------------------------------
DUPLICATE_RULE = "adapter-duplicate-call-id"


def run_tools(governor, tools: list, *turns: list[types.Part]) -> tuple[ScriptedLlm, GovernancePlugin]:
    """A real InMemoryRunner with one LlmAgent on ``tools`` and agt's plugin, run once to the end."""
    llm = ScriptedLlm(turns=list(turns))
    plugin = GovernancePlugin(governor)
    runner = InMemoryRunner(app=AdkApp(name="scenario", root_agent=LlmAgent(name="assistant", model=llm, tools=tools),
                                       plugins=[plugin]))
    s = asyncio.run(runner.session_service.create_session(app_name=runner.app_name, user_id="u"))
    list(runner.run(user_id="u", session_id=s.id, new_message=user()))
    return llm, plugin


def responses_in(llm: ScriptedLlm, turn: int = -1) -> list[tuple[str, dict]]:
    """(tool name, response) of every function response in the model's input on ``turn``, in order."""
    return [(p.function_response.name, p.function_response.response)
            for c in llm.requests[turn].contents for p in (c.parts or []) if p.function_response]


def test_a_repeated_call_id_in_one_parallel_turn_is_refused_and_the_call_holding_it_is_still_closed(scenario):
    async def read_note(name: str) -> str:
        """Reads a note; holds the call open until agt has answered the other call with the same id."""
        await asyncio.to_thread(wait_until, lambda: DUPLICATE_RULE in scenario.audited_rules(), 10)
        RAN.append(("read_note", {"name": name}))
        return f"note {name}"

    llm, plugin = run_tools(scenario.governor, [read_note],
                            [call(("read_note", {"name": "a"}), "dup"), call(("read_note", {"name": "b"}), "dup")])
    assert len(RAN) == 1  # exactly one of the two calls ran
    [(_, ran_args)] = RAN
    seen = responses_in(llm)
    assert {"result": f"note {ran_args['name']}"} in [r for _, r in seen]
    [refused] = [r for _, r in seen if "error" in r]
    assert DUPLICATE_RULE in refused["error"] and "do not retry" in refused["error"]
    assert plugin._tickets == {}  # the call that ran was closed by its own after callback
    scenario.audit.flush()
    closed = [r for r in select(scenario.log_dir, kind="decision")
              if (r.get("input") or {}).get("action", {}).get("tool") == "read_note"
              and (r.get("input") or {}).get("action", {}).get("params") == ran_args]
    assert len(closed) == 1 and closed[0]["result"]["enforced"] == "allow"


def test_a_repeated_call_id_does_not_take_the_output_check_of_the_call_that_ran(tmp_path):
    from agt.decision import Decision, Effect, Reason

    class NoSecretsOut:  # an output engine: refuses any result with SECRET in it
        name = "out"

        def evaluate(self, action):  # noqa: ANN001
            if "SECRET" in str(action.action.params.get("output", "")):
                return Decision(Effect.DENY, (Reason("no-secret-output", "a secret in the output"),), engine="out")
            return Decision(Effect.ALLOW, (), engine="out")

        def close(self) -> None:
            pass

    s = Scenario(tmp_path, output_engine=NoSecretsOut())
    try:
        async def read_secret(name: str) -> str:
            """Returns a secret once the other call with its id has been answered."""
            await asyncio.to_thread(wait_until, lambda: DUPLICATE_RULE in s.audited_rules(), 10)
            RAN.append(("read_secret", {"name": name}))
            return "SECRET-TOKEN-abc123"

        llm, _ = run_tools(s.governor, [read_secret, TOOLS[0]],
                           [call(("read_secret", {"name": "db"}), "dup"), call(ALLOWED, "dup")])
        seen = responses_in(llm)
        assert "SECRET-TOKEN" not in str(seen)
        assert RAN == [("read_secret", {"name": "db"})]
        assert {"no-secret-output", DUPLICATE_RULE} <= s.audited_rules()
    finally:
        s.close()


# --- the tool's own schema decides the arguments ----------------------------------------------------------------
LIST_POLICY = """apiVersion: governance.toolkit/v1
name: no-recursive-listing
default_action: allow
rules:
  - name: no-recursive-listing
    condition: "tool_name == 'list_files' and action.params.recursive == true"
    action: deny
    priority: 100
    message: Recursive listings are refused.
"""


def list_files(folder: str, recursive: bool = True) -> str:
    """Lists a folder; recursively unless told not to."""
    RAN.append(("list_files", {"folder": folder, "recursive": recursive}))
    return f"listed {folder} recursive={recursive!r}"


@pytest.fixture
def listing(tmp_path):
    RAN.clear()
    (tmp_path / "policy.yaml").write_text(LIST_POLICY)
    governor = Governor("yaml", str(tmp_path / "policy.yaml"),
                        audit=AuditLog(tmp_path / "audit", key_path=tmp_path / "audit.key"))
    yield governor
    governor.close()


def test_a_string_for_a_boolean_argument_is_denied_before_the_tool_runs(listing):
    llm, _ = run_tools(listing, [list_files], [call(("list_files", {"folder": "docs", "recursive": "true"}), "l1")])
    assert RAN == []
    [(_, seen)] = responses_in(llm)
    assert "adapter-arguments" in seen["error"] and "recursive" in seen["error"]


def test_an_omitted_defaulted_argument_is_decided_with_its_default(listing):
    llm, _ = run_tools(listing, [list_files], [call(("list_files", {"folder": "docs"}), "l1")])
    assert RAN == []
    [(_, seen)] = responses_in(llm)
    assert "no-recursive-listing" in seen["error"]


def test_an_argument_that_matches_the_schema_runs_with_the_value_the_policy_saw(listing):
    llm, _ = run_tools(listing, [list_files], [call(("list_files", {"folder": "docs", "recursive": False}), "l1")])
    assert RAN == [("list_files", {"folder": "docs", "recursive": False})]


def test_the_declared_genai_schema_is_applied_when_adk_declares_no_json_schema(listing):
    from google.adk.features._feature_registry import FeatureName, temporary_feature_override

    with temporary_feature_override(FeatureName.JSON_SCHEMA_FOR_FUNC_DECL, False):
        from google.adk.tools import FunctionTool

        declaration = FunctionTool(list_files)._get_declaration()
        assert declaration.parameters_json_schema is None and declaration.parameters is not None
        llm, _ = run_tools(listing, [list_files], [call(("list_files", {"folder": "docs"}), "l1")],
                           [call(("list_files", {"folder": "docs", "recursive": "false"}), "l2")])
    assert RAN == []
    assert "no-recursive-listing" in responses_in(llm, 1)[0][1]["error"]
    assert "adapter-arguments" in responses_in(llm, 2)[-1][1]["error"]  # the history holds the first answer too


# --- the example --------------------------------------------------------------------------------------------
def test_example_runs_offline_and_prints_what_happened():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "adk_agent.py")], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OTEL_SDK_DISABLED": "true"})
    assert out.returncode == 0, out.stderr
    assert DENY_RULE in out.stdout and "sunny in Paris" in out.stdout and "transferred 500" in out.stdout
    assert "send_email ran: False" in out.stdout
