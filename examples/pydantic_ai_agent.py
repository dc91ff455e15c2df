"""PydanticAI + agt, offline: an Agent whose tool calls go through agt's GovernanceCapability.

The model is PydanticAI's own ``FunctionModel``, scripted to ask for three tools in one turn: the weather
(allowed), an email to an outside domain (denied by policy) and a transfer of 500 (needs the CFO's
approval, given here by a signed vote from another thread while the call waits). It then prints what the
model was told about each call. No network, no API key.

    pip install 'agt[pydantic-ai]'
    python examples/pydantic_ai_agent.py
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OTEL_SDK_DISABLED", "true")

from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart  # noqa: E402
from pydantic_ai.models.function import FunctionModel  # noqa: E402

from agt.adapters.pydantic_ai import GovernanceCapability  # noqa: E402
from agt.audit import AuditLog  # noqa: E402
from agt.identity import IdentityKeys  # noqa: E402
from agt.runtime import ApproverRegistry  # noqa: E402
from agt.runtime.approvals import ApprovalStatus, cast_vote  # noqa: E402
from agt.runtime.governor import Governor  # noqa: E402

POLICY = """
apiVersion: governance.toolkit/v1
name: pydantic-ai-example
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


SEEN: list = []


def scripted_model(messages, info):  # noqa: ANN001 - FunctionModel's signature
    """Turn 1: call the three tools. Turn 2: say what happened. Keeps what it was sent."""
    SEEN.append(list(messages))
    if len(SEEN) == 1:
        return ModelResponse(parts=[ToolCallPart("get_weather", {"city": "Paris"}, tool_call_id="call-0"),
                                    ToolCallPart("send_email", {"to": "boss@evil.example", "body": "Q3"}, tool_call_id="call-1"),
                                    ToolCallPart("transfer_funds", {"amount": 500}, tool_call_id="call-2")])
    return ModelResponse(parts=[TextPart("Done; one call was refused by policy.")])


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

        agent = Agent(FunctionModel(scripted_model), tools=[get_weather, send_email, transfer_funds], name="assistant",
                      capabilities=[GovernanceCapability(governor)])  # <- the agt line

        voter = cfo_approves_when_asked(governor, cfo, registry)
        result = agent.run_sync("Go")
        voter.join(timeout=30)
        print("model says:", result.output)

        print("what the model was told about each call:")
        last = SEEN[-1][-1]
        assert isinstance(last, ModelRequest)
        for part in last.parts:
            if isinstance(part, ToolReturnPart):
                print(f"  {part.tool_name} ({part.outcome}): {part.model_response_str()}")
        for tool in ("get_weather", "send_email", "transfer_funds"):
            print(f"{tool} ran: {tool in RAN}")
        governor.close()


if __name__ == "__main__":
    main()
