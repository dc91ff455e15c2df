"""Google ADK + agt, offline: an LlmAgent whose tool calls go through agt's GovernancePlugin.

The model is a scripted ``BaseLlm`` (ADK's own model interface) that asks for three tools in one turn:
the weather (allowed), an email to an outside domain (denied by policy) and a transfer of 500 (needs the
CFO's approval, given here by a signed vote from another thread while the call waits). It then prints what
the model was told about each call. No network, no API key.

    pip install 'agt[adk]'
    python examples/adk_agent.py

The policy (examples/offline_policy.yaml), the plain tools and the CFO's keys come from examples/_offline.py.
"""

from __future__ import annotations

import asyncio
import logging
import os

os.environ.setdefault("OTEL_SDK_DISABLED", "true")
logging.getLogger("google_adk").setLevel(logging.ERROR)  # ADK logs that a scripted model reports no token usage

from google.adk.agents import LlmAgent  # noqa: E402
from google.adk.apps import App  # noqa: E402
from google.adk.models.base_llm import BaseLlm  # noqa: E402
from google.adk.models.llm_response import LlmResponse  # noqa: E402
from google.adk.runners import InMemoryRunner  # noqa: E402
from google.genai import types  # noqa: E402

from _offline import (  # noqa: E402
    RAN, cfo_approves_when_asked, get_weather, offline_governor, send_email, transfer_funds)
from agt.adapters.adk import GovernancePlugin  # noqa: E402


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


def main() -> None:
    with offline_governor("adk") as env:  # examples/offline_policy.yaml, a signed audit log, the CFO's keys
        llm = ScriptedLlm()
        agent = LlmAgent(name="assistant", model=llm, tools=[get_weather, send_email, transfer_funds])
        app = App(name="example", root_agent=agent, plugins=[GovernancePlugin(env.governor)])  # <- the agt line
        runner = InMemoryRunner(app=app)
        session = asyncio.run(runner.session_service.create_session(app_name=runner.app_name, user_id="me"))

        voter = cfo_approves_when_asked(env)
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


if __name__ == "__main__":
    main()
