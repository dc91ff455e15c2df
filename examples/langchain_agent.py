"""A LangChain agent governed by agt, offline: LangChain's own fake chat model plays the LLM.

    pip install 'agt[langchain]'
    python examples/langchain_agent.py

The scripted model asks for three tools. agt lets ``get_weather`` run, refuses ``send_email`` to an outside
domain (the model reads why, as an error ToolMessage), and pauses ``transfer_funds`` with LangGraph's
``interrupt()`` until the CFO's signed vote is in agt's approval store; the resumed run then transfers.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("LANGSMITH_TRACING", "false")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage  # noqa: E402
from langgraph.checkpoint.memory import MemorySaver  # noqa: E402
from langgraph.types import Command  # noqa: E402

from agt.adapters.langchain import GovernanceMiddleware  # noqa: E402
from agt.audit import AuditLog  # noqa: E402
from agt.identity import IdentityStore  # noqa: E402
from agt.runtime import ApproverRegistry, Governor, cast_vote  # noqa: E402

POLICY = """\
apiVersion: governance.toolkit/v1
name: langchain-example
default_action: allow
rules:
  - name: block-external-email
    condition: "tool_name == 'send_email' and action.params.to endswith '@evil.example'"
    action: deny
    priority: 100
    message: Mail to outside domains is blocked.
  - name: large-transfer-approval
    condition: "tool_name == 'transfer_funds' and action.params.amount > 100"
    action: require_approval
    approvers: [cfo]
    priority: 50
    message: Transfers over 100 need the CFO.
"""
RAN: list[str] = []


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    RAN.append("get_weather")
    return f"sunny in {city}"


def send_email(to: str, body: str) -> str:
    """Send an email."""
    RAN.append("send_email")
    return f"sent to {to}"


def transfer_funds(amount: int) -> str:
    """Transfer money."""
    RAN.append("transfer_funds")
    return f"transferred {amount}"


class ScriptedModel(FakeMessagesListChatModel):
    """LangChain's fake chat model; create_agent binds tools to its model, so this one accepts that."""

    def bind_tools(self, tools, **kwargs):  # noqa: ANN001, ANN003
        return self


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="agt-langchain-example-"))
    (work / "policy.yaml").write_text(POLICY)
    keys = IdentityStore(work / "approver-keys")  # the CFO's own Ed25519 key; only its signed vote counts
    cfo = keys.create("cfo")
    governor = Governor("yaml", str(work / "policy.yaml"), audit=AuditLog(work / "audit", key_path=work / "audit.key"),
                        approvers=ApproverRegistry.from_store(keys))

    model = ScriptedModel(responses=[
        AIMessage("", tool_calls=[
            {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_weather"},
            {"name": "send_email", "args": {"to": "boss@evil.example", "body": "the numbers"}, "id": "call_email"},
            {"name": "transfer_funds", "args": {"amount": 500}, "id": "call_transfer"},
        ]),
        AIMessage("All done."),
    ])
    # The three lines a user adds (approvals="interrupt" pauses the graph; the default waits on agt's store):
    governance = GovernanceMiddleware(governor, agent="finance-bot", approvals="interrupt")
    agent = create_agent(model, [get_weather, send_email, transfer_funds], middleware=[governance],
                         checkpointer=MemorySaver())

    config = {"configurable": {"thread_id": "example"}}
    state = agent.invoke({"messages": [HumanMessage("weather, mail the boss, pay the supplier")]}, config)
    for pause in state.get("__interrupt__", ()):
        value = pause.value
        print(f"{value['tool']}: paused for approval (agt request {value['approval_id']}, rules {value['rule_ids']})")
        # A human decides in agt's store (`agt approvals approve ID`); here the CFO's key signs the vote.
        cast_vote(governor.approvals, value["approval_id"], cfo, True, note="example reviewer")
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
    print(f"approval requests opened: {len(governor.approvals.list())}")
    print(f"audit log: {work / 'audit'}")
    governor.close()
    return 0 if "send_email" not in RAN and "transfer_funds" in RAN else 1


if __name__ == "__main__":
    sys.exit(main())
