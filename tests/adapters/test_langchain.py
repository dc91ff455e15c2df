"""agt.adapters.langchain through LangChain's real create_agent loop and LangGraph's real ToolNode.

The model is LangChain's own FakeMessagesListChatModel, scripted to emit tool calls; every test reads what
the model received on its next call (or the final state), what ran (RAN) and what the audit log recorded.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

os.environ["LANGSMITH_TRACING"] = "false"  # no tracing, no network
os.environ["LANGCHAIN_TRACING_V2"] = "false"

import pytest  # noqa: E402
from langchain.agents import create_agent  # noqa: E402
from langchain.agents.middleware import AgentMiddleware  # noqa: E402
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain.tools import ToolRuntime  # noqa: E402
from langchain_core.tools import BaseTool, InjectedToolArg, InjectedToolCallId, tool  # noqa: E402
from langgraph.checkpoint.memory import MemorySaver  # noqa: E402
from langgraph.graph import END, START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import InjectedState  # noqa: E402
from langgraph.types import Command  # noqa: E402

from agt.adapters.langchain import APPROVAL_INTERRUPT, GovernanceMiddleware, governed_tool_node  # noqa: E402
from agt import Agent  # noqa: E402
from agt.audit import AuditLog  # noqa: E402
from agt.runtime.governor import Governor  # noqa: E402
from scenario import (  # noqa: E402
    ALLOWED, APPROVAL_RULE, DENIED, DENY_RULE, ENGINE_ERROR, NEEDS_APPROVAL, RAN, TOOLS, BrokenScenario, Scenario,
)

ROOT = Path(__file__).resolve().parents[2]


class ScriptedModel(FakeMessagesListChatModel):
    """LangChain's fake chat model, with the bind_tools create_agent needs and a record of every input."""

    inputs: list = []

    def bind_tools(self, tools: Any, **kwargs: Any) -> "ScriptedModel":
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # noqa: ANN001
        self.inputs.append(list(messages))
        return super()._generate(messages, stop, run_manager, **kwargs)


def calls(*calls: tuple[str, dict], prefix: str = "call") -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"{prefix}_{i}"}
                                     for i, (name, args) in enumerate(calls)])


def model_for(*turns: AIMessage) -> ScriptedModel:
    return ScriptedModel(responses=[*turns, AIMessage("done")], inputs=[])


def tool_messages(messages: list) -> dict[str, ToolMessage]:
    return {m.name: m for m in messages if isinstance(m, ToolMessage)}


def ask(text: str = "go") -> dict:
    return {"messages": [HumanMessage(text)]}


@pytest.fixture
def scenario(tmp_path: Path):
    s = Scenario(tmp_path)
    yield s
    s.close()


@pytest.fixture
def broken(tmp_path: Path):
    s = BrokenScenario(tmp_path)
    yield s
    s.close()


# --- create_agent, sync and async -----------------------------------------------------------------------
def test_denied_call_never_runs_and_the_model_next_reads_the_rule(scenario):
    model = model_for(calls(DENIED, ALLOWED))
    agent = create_agent(model, list(TOOLS), middleware=[GovernanceMiddleware(scenario.governor, agent="support-bot")])
    agent.invoke(ask())
    assert [name for name, _ in RAN] == ["get_weather"]
    second_input = tool_messages(model.inputs[1])
    denial = second_input["send_email"]
    assert denial.status == "error" and denial.tool_call_id == "call_0"
    assert DENY_RULE in denial.content and "do not retry" in denial.content
    assert second_input["get_weather"].content == "sunny in Paris" and second_input["get_weather"].status == "success"
    assert DENY_RULE in scenario.audited_rules()


def test_async_agent_denies_and_allows_like_the_sync_one(scenario):
    model = model_for(calls(DENIED, ALLOWED))
    agent = create_agent(model, list(TOOLS), middleware=[GovernanceMiddleware(scenario.governor, agent="support-bot")])
    result = asyncio.run(agent.ainvoke(ask()))
    assert [name for name, _ in RAN] == ["get_weather"]
    denial = tool_messages(result["messages"])["send_email"]
    assert denial.status == "error" and DENY_RULE in denial.content
    assert DENY_RULE in tool_messages(model.inputs[1])["send_email"].content
    assert DENY_RULE in scenario.audited_rules()


def test_async_tools_run_through_awrap_tool_call(scenario):
    async def get_weather(city: str) -> str:
        """Get the weather for a city."""
        RAN.append(("get_weather", {"city": city}))
        return f"async sunny in {city}"

    model = model_for(calls(ALLOWED))
    agent = create_agent(model, [get_weather], middleware=[GovernanceMiddleware(scenario.governor, agent="support-bot")])
    result = asyncio.run(agent.ainvoke(ask()))
    assert tool_messages(result["messages"])["get_weather"].content == "async sunny in Paris"
    assert RAN == [("get_weather", {"city": "Paris"})]


def test_approval_waits_on_agt_store_then_the_tool_runs(scenario):
    voter = scenario.vote_when_pending(approve=True)
    model = model_for(calls(NEEDS_APPROVAL))
    agent = create_agent(model, list(TOOLS), middleware=[GovernanceMiddleware(scenario.governor, agent="support-bot")])
    result = agent.invoke(ask())
    voter.join(timeout=30)
    assert RAN == [("transfer_funds", {"amount": 500})]
    assert tool_messages(result["messages"])["transfer_funds"].content == "transferred 500"
    assert len(scenario.requests()) == 1
    assert APPROVAL_RULE in scenario.audited_rules()


def test_async_approval_refused_by_the_cfo_is_denied_and_not_run(scenario):
    voter = scenario.vote_when_pending(approve=False)
    model = model_for(calls(NEEDS_APPROVAL))
    agent = create_agent(model, list(TOOLS), middleware=[GovernanceMiddleware(scenario.governor, agent="support-bot")])
    result = asyncio.run(agent.ainvoke(ask()))
    voter.join(timeout=30)
    assert RAN == []
    refusal = tool_messages(result["messages"])["transfer_funds"]
    assert refusal.status == "error" and "approval-denied" in refusal.content


def test_engine_error_denies_every_call_and_runs_none(broken):
    model = model_for(calls(ALLOWED, DENIED))
    agent = create_agent(model, list(TOOLS), middleware=[GovernanceMiddleware(broken.governor, agent="support-bot")])
    agent.invoke(ask())
    assert RAN == []
    second_input = tool_messages(model.inputs[1])
    assert all(m.status == "error" and ENGINE_ERROR in m.content for m in second_input.values())
    assert set(second_input) == {"get_weather", "send_email"}
    assert ENGINE_ERROR in broken.audited_rules()


def test_async_engine_error_denies_and_runs_nothing(broken):
    model = model_for(calls(ALLOWED))
    agent = create_agent(model, list(TOOLS), middleware=[GovernanceMiddleware(broken.governor, agent="support-bot")])
    result = asyncio.run(agent.ainvoke(ask()))
    assert RAN == []
    assert ENGINE_ERROR in tool_messages(result["messages"])["get_weather"].content


def test_arguments_that_are_not_an_object_are_denied_not_run(scenario):
    model = model_for(AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]))
    seen: list = []

    class Garble(AgentMiddleware):  # an outer middleware that hands over a broken call
        def wrap_tool_call(self, request, handler):  # noqa: ANN001
            seen.append(request.tool_call["id"])
            return handler(request.override(tool_call={**request.tool_call, "args": ["not", "an", "object"]}))

    agent = create_agent(model, list(TOOLS), middleware=[Garble(), GovernanceMiddleware(scenario.governor, agent="bot")])
    result = agent.invoke(ask())
    assert seen == ["c1"] and RAN == []
    refusal = tool_messages(result["messages"])["get_weather"]
    assert refusal.status == "error" and "adapter-arguments" in refusal.content
    assert "adapter-arguments" in scenario.audited_rules()


def test_a_tool_that_raises_is_recorded_and_the_framework_handles_its_error(scenario):
    def flaky(city: str) -> str:
        """Always fails."""
        RAN.append(("flaky", {"city": city}))
        raise RuntimeError("weather service down")

    model = model_for(AIMessage("", tool_calls=[{"name": "flaky", "args": {"city": "Paris"}, "id": "c1"}]))
    agent = create_agent(model, [flaky], middleware=[GovernanceMiddleware(scenario.governor, agent="bot")])
    with pytest.raises(RuntimeError, match="weather service down"):  # LangGraph's default: re-raise tool errors
        agent.invoke(ask())
    assert RAN == [("flaky", {"city": "Paris"})]
    scenario.audit.flush()
    from agt.audit.log import select

    errors = [r for r in select(scenario.log_dir, kind="decision") if "weather service down" in str(r)]
    assert errors, "the tool's failure is in the audit log"


def test_output_check_refusal_replaces_the_result_the_model_reads(tmp_path):
    scenario = Scenario(tmp_path, output_limit=8)  # "sunny in Paris" is longer
    model = model_for(calls(ALLOWED))
    agent = create_agent(model, list(TOOLS), middleware=[GovernanceMiddleware(scenario.governor, agent="bot")])
    agent.invoke(ask())
    scenario.close()
    refusal = tool_messages(model.inputs[1])["get_weather"]
    assert refusal.status == "error" and "output-too-large" in refusal.content and "sunny" not in refusal.content
    assert "output-too-large" in scenario.audited_rules()


def note_tool():
    @tool
    def remember(note: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Command:
        """Remember a note."""
        RAN.append(("remember", {"note": note}))
        return Command(update={"messages": [ToolMessage(f"noted {note}", tool_call_id=tool_call_id, name="remember")]})

    return remember


def test_a_command_result_is_checked_by_what_its_messages_say(tmp_path):
    scenario = Scenario(tmp_path, output_limit=40)  # the Command's repr is far longer; its message is not
    model = model_for(AIMessage("", tool_calls=[{"name": "remember", "args": {"note": "milk"}, "id": "c1"}]),
                      AIMessage("", tool_calls=[{"name": "remember", "args": {"note": "x" * 60}, "id": "c2"}]))
    agent = create_agent(model, [note_tool()], middleware=[GovernanceMiddleware(scenario.governor, agent="bot")])
    agent.invoke(ask())
    scenario.close()
    assert tool_messages(model.inputs[1])["remember"].content == "noted milk"
    refusal = tool_messages(model.inputs[2][-1:])["remember"]
    assert refusal.status == "error" and "output-too-large" in refusal.content


def test_session_defaults_to_the_thread_id(scenario):
    seen: list[str] = []
    original = scenario.governor.begin

    def spy(tool, params=None, **kw):  # noqa: ANN001 - records the session the adapter passes
        seen.append(kw["session"])
        return original(tool, params, **kw)

    scenario.governor.begin = spy  # type: ignore[method-assign]
    model = model_for(calls(ALLOWED))
    agent = create_agent(model, list(TOOLS), middleware=[GovernanceMiddleware(scenario.governor, agent="bot")],
                         checkpointer=MemorySaver())
    agent.invoke(ask(), {"configurable": {"thread_id": "thread-42"}})
    create_agent(model_for(calls(ALLOWED)), list(TOOLS), middleware=[GovernanceMiddleware(scenario.governor, agent="bot")]).invoke(ask())
    create_agent(model_for(calls(ALLOWED)), list(TOOLS),
                 middleware=[GovernanceMiddleware(scenario.governor, agent="bot", session="pinned")]).invoke(
        ask(), {"configurable": {"thread_id": "ignored"}})
    assert seen == ["thread-42", "default", "pinned"]


# --- interrupt mode: LangGraph's native pause ------------------------------------------------------------
def interrupting_agent(scenario: Scenario, model: ScriptedModel):
    return create_agent(model, list(TOOLS), checkpointer=MemorySaver(),
                        middleware=[GovernanceMiddleware(scenario.governor, agent="bot", approvals="interrupt")])


def agt_interrupt(result: dict) -> dict:
    (pause,) = result["__interrupt__"]
    assert pause.value["type"] == APPROVAL_INTERRUPT
    return pause.value


def test_interrupt_pauses_with_agt_approval_id_and_the_vote_lets_the_resume_run(scenario):
    config = {"configurable": {"thread_id": "t1"}}
    agent = interrupting_agent(scenario, model_for(calls(NEEDS_APPROVAL)))
    paused = agent.invoke(ask(), config)
    value = agt_interrupt(paused)
    (request,) = scenario.requests()
    assert value["approval_id"] == request.id and value["tool"] == "transfer_funds" and value["tool_call_id"] == "call_0"
    assert APPROVAL_RULE in value["message"] or APPROVAL_RULE in value["rule_ids"]
    assert RAN == []
    scenario.vote(request.id, approve=True)
    done = agent.invoke(Command(resume={"approved": True}), config)
    assert "__interrupt__" not in done
    assert RAN == [("transfer_funds", {"amount": 500})]
    assert tool_messages(done["messages"])["transfer_funds"].content == "transferred 500"
    assert len(scenario.requests()) == 1  # the resumed call found its request


def test_a_resume_that_says_approved_without_a_signed_vote_does_not_run_the_tool(scenario):
    config = {"configurable": {"thread_id": "t2"}}
    agent = interrupting_agent(scenario, model_for(calls(NEEDS_APPROVAL)))
    first = agt_interrupt(agent.invoke(ask(), config))
    again = agent.invoke(Command(resume="approved"), config)
    assert RAN == []
    assert agt_interrupt(again)["approval_id"] == first["approval_id"]  # paused again, on the same request
    assert len(scenario.requests()) == 1
    scenario.vote(first["approval_id"], approve=True)
    done = agent.invoke(Command(resume="approved"), config)
    assert RAN == [("transfer_funds", {"amount": 500})] and "__interrupt__" not in done
    assert len(scenario.requests()) == 1


def test_interrupt_resumed_after_a_refusal_is_denied_and_the_model_reads_why(scenario):
    config = {"configurable": {"thread_id": "t3"}}
    model = model_for(calls(NEEDS_APPROVAL))
    agent = interrupting_agent(scenario, model)
    value = agt_interrupt(agent.invoke(ask(), config))
    scenario.vote(value["approval_id"], approve=False)
    agent.invoke(Command(resume="approved"), config)
    assert RAN == []
    refusal = tool_messages(model.inputs[-1])["transfer_funds"]
    assert refusal.status == "error" and "approval-denied" in refusal.content
    assert len(scenario.requests()) == 1


def test_async_interrupt_and_resume_reuse_the_one_request(scenario):
    config = {"configurable": {"thread_id": "t4"}}
    agent = interrupting_agent(scenario, model_for(calls(NEEDS_APPROVAL)))

    async def run() -> dict:
        value = agt_interrupt(await agent.ainvoke(ask(), config))
        again = await agent.ainvoke(Command(resume="approved"), config)
        assert agt_interrupt(again)["approval_id"] == value["approval_id"] and RAN == []
        scenario.vote(value["approval_id"], approve=True)
        return await agent.ainvoke(Command(resume="approved"), config)

    done = asyncio.run(run())
    assert RAN == [("transfer_funds", {"amount": 500})] and "__interrupt__" not in done
    assert len(scenario.requests()) == 1


def test_a_model_that_replays_a_spent_call_id_needs_a_new_approval(scenario):
    config = {"configurable": {"thread_id": "t6"}}
    agent = interrupting_agent(scenario, model_for(calls(NEEDS_APPROVAL), calls(NEEDS_APPROVAL)))  # same id twice
    first = agt_interrupt(agent.invoke(ask(), config))
    scenario.vote(first["approval_id"], approve=True)
    second = agt_interrupt(agent.invoke(Command(resume="approved"), config))
    assert second["tool_call_id"] == first["tool_call_id"] and second["approval_id"] != first["approval_id"]
    assert RAN == [("transfer_funds", {"amount": 500})]  # once: the spent approval was not used again
    assert len(scenario.requests()) == 2


def test_a_call_reusing_a_pending_call_id_with_other_arguments_is_denied(scenario):
    governance = GovernanceMiddleware(scenario.governor, agent="bot", session="shared", approvals="interrupt")
    saver = MemorySaver()
    first = create_agent(model_for(calls(NEEDS_APPROVAL)), list(TOOLS), middleware=[governance], checkpointer=saver)
    agt_interrupt(first.invoke(ask(), {"configurable": {"thread_id": "a"}}))
    model = model_for(calls(("transfer_funds", {"amount": 9000})))  # the same id, call_0, in the same agt session
    second = create_agent(model, list(TOOLS), middleware=[governance], checkpointer=saver)
    result = second.invoke(ask(), {"configurable": {"thread_id": "b"}})
    assert "__interrupt__" not in result and RAN == []
    assert "approval-mismatch" in tool_messages(model.inputs[1])["transfer_funds"].content
    assert len(scenario.requests()) == 1


def test_interrupt_mode_without_a_checkpointer_never_runs_the_tool(scenario):
    governance = GovernanceMiddleware(scenario.governor, agent="bot", approvals="interrupt")
    agent = create_agent(model_for(calls(NEEDS_APPROVAL)), list(TOOLS), middleware=[governance])
    result = agent.invoke(ask())
    assert agt_interrupt(result)["approval_id"] == scenario.requests()[0].id
    assert RAN == []


def test_interrupt_mode_still_denies_outright_without_pausing(scenario):
    config = {"configurable": {"thread_id": "t5"}}
    model = model_for(calls(DENIED))
    result = interrupting_agent(scenario, model).invoke(ask(), config)
    assert "__interrupt__" not in result and RAN == []
    assert DENY_RULE in tool_messages(model.inputs[1])["send_email"].content


# --- a bare LangGraph ToolNode ---------------------------------------------------------------------------
def tool_graph(model: ScriptedModel, node: Any, checkpointer: Any = None):
    def call_model(state: MessagesState) -> dict:
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if getattr(last, "tool_calls", None) else END

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", node)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route, ["tools", END])
    graph.add_edge("tools", "model")
    return graph.compile(checkpointer=checkpointer)


def test_bare_tool_node_denies_and_the_model_reads_the_rule(scenario):
    model = model_for(calls(DENIED, ALLOWED))
    graph = tool_graph(model, governed_tool_node(list(TOOLS), scenario.governor, agent="graph-bot"))
    graph.invoke(ask())
    assert [name for name, _ in RAN] == ["get_weather"]
    second_input = tool_messages(model.inputs[1])
    assert second_input["send_email"].status == "error" and DENY_RULE in second_input["send_email"].content
    assert second_input["get_weather"].content == "sunny in Paris"
    assert DENY_RULE in scenario.audited_rules()


def test_bare_tool_node_async_denies_and_allows(scenario):
    model = model_for(calls(DENIED, ALLOWED))
    graph = tool_graph(model, governed_tool_node(list(TOOLS), scenario.governor, agent="graph-bot"))
    result = asyncio.run(graph.ainvoke(ask()))
    assert [name for name, _ in RAN] == ["get_weather"]
    assert DENY_RULE in tool_messages(result["messages"])["send_email"].content


def test_bare_tool_node_interrupt_and_resume_reuse_the_request(scenario):
    config = {"configurable": {"thread_id": "g1"}}
    model = model_for(calls(NEEDS_APPROVAL))
    node = governed_tool_node(list(TOOLS), scenario.governor, agent="graph-bot", approvals="interrupt")
    graph = tool_graph(model, node, MemorySaver())
    value = agt_interrupt(graph.invoke(ask(), config))
    assert RAN == []
    scenario.vote(value["approval_id"], approve=True)
    done = graph.invoke(Command(resume=True), config)
    assert RAN == [("transfer_funds", {"amount": 500})]
    assert tool_messages(done["messages"])["transfer_funds"].content == "transferred 500"
    assert len(scenario.requests()) == 1


def test_bare_tool_node_engine_error_denies(broken):
    model = model_for(calls(ALLOWED))
    graph = tool_graph(model, governed_tool_node(list(TOOLS), broken.governor, agent="graph-bot"))
    result = graph.invoke(ask())
    assert RAN == [] and ENGINE_ERROR in tool_messages(result["messages"])["get_weather"].content


def test_governed_tool_node_refuses_a_second_wrapper(scenario):
    with pytest.raises(TypeError, match="wrap_tool_call"):
        governed_tool_node(list(TOOLS), scenario.governor, agent="bot", wrap_tool_call=lambda r, h: h(r))


def test_bad_approvals_mode_is_refused_at_construction(scenario):
    with pytest.raises(ValueError, match="approvals"):
        GovernanceMiddleware(scenario.governor, agent="bot", approvals="native")


# --- the policy decides on what the tool gets, not on what pydantic will coerce --------------------------
RECURSIVE_POLICY = """apiVersion: governance.toolkit/v1
name: no-recursive-deletes
default_action: allow
rules:
  - name: no-recursive-delete
    condition: "tool_name in ['delete_path', 'delete_tree'] and action.params.recursive == true"
    action: deny
    priority: 100
    message: recursive deletes are refused.
"""
RECURSIVE_RULE = "no-recursive-delete"
TRUSTED = Agent("ops-bot", trust_score=900)  # trusted enough for destructive tools: only the policy refuses


@pytest.fixture
def deletes(tmp_path: Path):
    """The scenario's audit log and RAN, with a policy that refuses ``recursive == true``."""
    s = Scenario(tmp_path)
    s.governor.close()  # it closes its audit log too: the new governor gets a new one, in the same place
    s.audit = AuditLog(s.log_dir, key_path=tmp_path / "audit.key")
    (tmp_path / "deletes.yaml").write_text(RECURSIVE_POLICY)
    s.governor = Governor("yaml", str(tmp_path / "deletes.yaml"), audit=s.audit, approvers=s.approvers.registry)
    yield s
    s.close()


@tool
def delete_path(path: str, recursive: bool = False) -> str:
    """Delete a path."""
    RAN.append(("delete_path", {"path": path, "recursive": recursive}))
    return f"deleted {path} recursive={recursive}"


@tool
def delete_tree(path: str, recursive: bool = True) -> str:
    """Delete a tree (recursive unless told otherwise)."""
    RAN.append(("delete_tree", {"path": path, "recursive": recursive}))
    return f"deleted tree {path} recursive={recursive}"


DELETES = [delete_path, delete_tree]
COERCED = calls(("delete_path", {"path": "/home", "recursive": "true"}),  # pydantic: True
                ("delete_path", {"path": "/home", "recursive": "yes"}),   # pydantic: True
                ("delete_path", {"path": "/home", "recursive": 1}),       # pydantic: True
                ("delete_tree", {"path": "/home"}),                       # the default: True
                ("delete_path", {"path": "/tmp/x", "recursive": False}))  # the one honest call


def by_id(messages: list) -> dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}


def assert_only_the_honest_delete_ran(deletes: Scenario, model: ScriptedModel) -> None:
    assert RAN == [("delete_path", {"path": "/tmp/x", "recursive": False})]
    seen = by_id(model.inputs[1])
    for coerced in ("call_0", "call_1", "call_2"):
        assert seen[coerced].status == "error" and "adapter-arguments" in seen[coerced].content
        assert "boolean" in seen[coerced].content  # the model reads which argument is wrong
    assert seen["call_3"].status == "error" and RECURSIVE_RULE in seen["call_3"].content
    assert seen["call_4"].content == "deleted /tmp/x recursive=False"
    assert {"adapter-arguments", RECURSIVE_RULE} <= deletes.audited_rules()


def test_arguments_pydantic_would_coerce_or_default_to_true_are_refused_in_create_agent(deletes):
    model = model_for(COERCED)
    agent = create_agent(model, DELETES, middleware=[GovernanceMiddleware(deletes.governor, agent=TRUSTED)])
    agent.invoke(ask())
    assert_only_the_honest_delete_ran(deletes, model)


def test_async_create_agent_refuses_coerced_and_defaulted_arguments(deletes):
    model = model_for(COERCED)
    agent = create_agent(model, DELETES, middleware=[GovernanceMiddleware(deletes.governor, agent=TRUSTED)])
    asyncio.run(agent.ainvoke(ask()))
    assert_only_the_honest_delete_ran(deletes, model)


def test_bare_tool_node_refuses_coerced_and_defaulted_arguments(deletes):
    model = model_for(COERCED)
    graph = tool_graph(model, governed_tool_node(DELETES, deletes.governor, agent=TRUSTED))
    graph.invoke(ask())
    assert_only_the_honest_delete_ran(deletes, model)


def test_bare_tool_node_async_refuses_coerced_and_defaulted_arguments(deletes):
    model = model_for(COERCED)
    graph = tool_graph(model, governed_tool_node(DELETES, deletes.governor, agent=TRUSTED))
    asyncio.run(graph.ainvoke(ask()))
    assert_only_the_honest_delete_ran(deletes, model)


def test_injected_arguments_are_neither_required_nor_refused_and_the_policy_sees_defaults(deletes):
    seen: list[dict] = []
    original = deletes.governor.begin

    def spy(tool, params=None, **kw):  # noqa: ANN001 - records the params the policy decides on
        seen.append(dict(params))
        return original(tool, params, **kw)

    deletes.governor.begin = spy  # type: ignore[method-assign]

    @tool
    def tidy(path: str, runtime: ToolRuntime, state: Annotated[dict, InjectedState],
             call_id: Annotated[str, InjectedToolCallId], owner: Annotated[str, InjectedToolArg] = "ops",
             dry_run: bool = True) -> str:
        """Tidy a path."""
        RAN.append(("tidy", {"path": path, "dry_run": dry_run, "call_id": call_id, "owner": owner,
                             "runtime": runtime is not None, "messages": len(state["messages"])}))
        return "tidied"

    model = model_for(AIMessage("", tool_calls=[{"name": "tidy", "args": {"path": "/srv"}, "id": "t1"}]))
    create_agent(model, [tidy], middleware=[GovernanceMiddleware(deletes.governor, agent=TRUSTED)]).invoke(ask())
    assert tool_messages(model.inputs[1])["tidy"].content == "tidied"
    assert RAN == [("tidy", {"path": "/srv", "dry_run": True, "call_id": "t1", "owner": "ops", "runtime": True,
                             "messages": 2})]
    assert seen == [{"path": "/srv", "dry_run": True}]  # the default the tool got; no injected value


def test_a_default_pydantic_never_validates_does_not_refuse_the_call(deletes):
    @tool
    def note(text: str, tag: str = None) -> str:  # type: ignore[assignment] - a common, sloppy signature
        """Take a note."""
        RAN.append(("note", {"text": text, "tag": tag}))
        return f"noted {text}"

    model = model_for(AIMessage("", tool_calls=[{"name": "note", "args": {"text": "milk"}, "id": "n1"}]))
    create_agent(model, [note], middleware=[GovernanceMiddleware(deletes.governor, agent=TRUSTED)]).invoke(ask())
    assert RAN == [("note", {"text": "milk", "tag": None})]
    assert tool_messages(model.inputs[1])["note"].content == "noted milk"


def test_a_tool_whose_schema_cannot_be_read_is_denied_not_run(deletes):
    class Opaque(BaseTool):
        name: str = "opaque"
        description: str = "A tool without a readable schema."

        @property
        def tool_call_schema(self):  # noqa: ANN201
            raise RuntimeError("no schema here")

        def _run(self, **kwargs: Any) -> str:
            RAN.append(("opaque", kwargs))
            return "ran"

    node = governed_tool_node([Opaque()], deletes.governor, agent=TRUSTED)
    model = model_for(AIMessage("", tool_calls=[{"name": "opaque", "args": {}, "id": "o1"}]))
    tool_graph(model, node).invoke(ask())
    assert RAN == []
    refusal = tool_messages(model.inputs[1])["opaque"]
    assert refusal.status == "error" and "adapter-error" in refusal.content and "no schema here" in refusal.content


def test_an_unknown_tool_gets_langgraphs_own_error_and_nothing_runs(deletes):
    model = model_for(AIMessage("", tool_calls=[{"name": "rm_rf", "args": {"path": "/"}, "id": "u1"}]))
    create_agent(model, DELETES, middleware=[GovernanceMiddleware(deletes.governor, agent=TRUSTED)]).invoke(ask())
    answer = tool_messages(model.inputs[1])["rm_rf"]
    assert RAN == [] and answer.status == "error" and "not a valid tool" in answer.content


# --- the example -----------------------------------------------------------------------------------------
def test_example_runs_offline_and_prints_what_happened():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "langchain_agent.py")], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "get_weather: ran" in out
    assert "send_email: denied" in out and "block-external-email" in out
    assert "transfer_funds: paused for approval" in out and "transfer_funds: ran after the CFO's vote" in out
    assert "send_email" not in out.split("tools that ran:")[1].splitlines()[0]
