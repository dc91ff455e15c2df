"""Google ADK + agt, offline: an LlmAgent whose tool calls go through agt's GovernancePlugin.

The model is a scripted ``BaseLlm`` (ADK's own model interface) that asks for three tools in one turn:
the weather (allowed), an email to an outside domain (denied by policy) and a transfer of 500 (needs the
CFO's approval, given here by a signed vote from another thread while the call waits). It then prints what
the model was told about each call. No network, no API key.

    pip install 'agt[adk]'
    python examples/adk_agent.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OTEL_SDK_DISABLED", "true")
logging.getLogger("google_adk").setLevel(logging.ERROR)  # ADK logs that a scripted model reports no token usage

from google.adk.agents import LlmAgent  # noqa: E402
from google.adk.apps import App  # noqa: E402
from google.adk.models.base_llm import BaseLlm  # noqa: E402
from google.adk.models.llm_response import LlmResponse  # noqa: E402
from google.adk.runners import InMemoryRunner  # noqa: E402
from google.genai import types  # noqa: E402

from agt.adapters.adk import GovernancePlugin  # noqa: E402
from agt.runtime import ApproverRegistry  # noqa: E402
from agt.audit import AuditLog  # noqa: E402
from agt.identity import IdentityKeys  # noqa: E402
from agt.runtime.approvals import ApprovalStatus, cast_vote  # noqa: E402
from agt.runtime.governor import Governor  # noqa: E402

POLICY = """
apiVersion: governance.toolkit/v1
name: adk-example
default_action: allow
rules:
  - name: block-external-email
    condition: "tool_name == 'send_email' and action.params.to endswith '@evil.example'"
    action: deny
    message: Mail to outside domains is blocked.
  - name: large-transfer-approval
    condition: "tool_name == 'transfer_funds' and action.params.amount > 100"
    action: require_approval
    approvers: [cfo]
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


class ScriptedLlm(BaseLlm):
    """Turn 1: call the three tools. Turn 2: say what happened. Keeps what it was sent."""

    model: str = "scripted"
    requests: list = []

    async def generate_content_async(self, llm_request, stream: bool = False):  # noqa: ANN001
        self.requests.append(llm_request)
        if len(self.requests) == 1:
            calls = [("get_weather", {"city": "Paris"}), ("send_email", {"to": "boss@evil.example", "body": "Q3"}),
                     ("transfer_funds", {"amount": 500})]
            parts = [types.Part(function_call=types.FunctionCall(name=n, args=a, id=f"call-{i}"))
                     for i, (n, a) in enumerate(calls)]
        else:
            parts = [types.Part.from_text(text="Done; one call was refused by policy.")]
        yield LlmResponse(content=types.Content(role="model", parts=parts))


def cfo_approves_when_asked(governor: Governor, cfo: IdentityKeys, registry: ApproverRegistry) -> threading.Thread:
    """A human at `agt approvals approve`, in another thread: votes yes on the first pending request."""

    def run() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for req in governor.approvals.list():
                if governor.approval_status(req.id).status is ApprovalStatus.PENDING:
                    cast_vote(governor.approvals, req.id, cfo, True, registry=registry)
                    return
            time.sleep(0.01)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(POLICY)
        cfo = IdentityKeys.generate("cfo")
        registry = ApproverRegistry({"cfo": cfo.identity}, source="<example>")
        governor = Governor("yaml", str(policy), audit=AuditLog(Path(tmp) / "audit", key_path=Path(tmp) / "audit.key"),
                            approvers=registry, approval_timeout=30)

        llm = ScriptedLlm()
        agent = LlmAgent(name="assistant", model=llm, tools=[get_weather, send_email, transfer_funds])
        app = App(name="example", root_agent=agent, plugins=[GovernancePlugin(governor)])  # <- the agt line
        runner = InMemoryRunner(app=app)
        session = asyncio.run(runner.session_service.create_session(app_name=runner.app_name, user_id="me"))

        voter = cfo_approves_when_asked(governor, cfo, registry)
        for event in runner.run(user_id="me", session_id=session.id,
                                new_message=types.Content(role="user", parts=[types.Part.from_text(text="Go")])):
            if event.content and any(p.text for p in event.content.parts or []):
                print("model says:", " ".join(p.text for p in event.content.parts if p.text))
        voter.join(timeout=30)

        print("what the model was told about each call:")
        for content in llm.requests[-1].contents:
            for part in content.parts or []:
                if part.function_response:
                    print(f"  {part.function_response.name}: {part.function_response.response}")
        for tool in ("get_weather", "send_email", "transfer_funds"):
            print(f"{tool} ran: {tool in RAN}")
        governor.close()


if __name__ == "__main__":
    main()
