"""An OpenAI Agents SDK agent governed by agt, offline: the SDK's own scripted model plays the LLM.

    pip install 'agt[openai-agents]'
    python examples/openai_agents_agent.py

The model asks for three tools. agt lets get_weather run, denies send_email to an outside domain (the model
reads agt's reason as the tool's result), and holds transfer_funds for the CFO: with approvals="native" the
run pauses (result.interruptions), the CFO's signed vote goes to agt's approval store, and the resumed run
executes the transfer on that one request. No network, no API key, no tracing.

The policy (examples/offline_policy.yaml), the plain tools and the CFO's keys come from examples/_offline.py.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
os.environ.setdefault("OPENAI_API_KEY", "sk-offline-example")  # never sent: the model is scripted

from agents import Agent, Runner, function_tool, set_tracing_disabled  # noqa: E402
from agents.testing import ScriptedModel, assistant_message, function_call  # noqa: E402

from _offline import get_weather, offline_governor, send_email, transfer_funds  # noqa: E402
from agt.adapters.openai_agents import approval_request, govern_agent  # noqa: E402
from agt.runtime.approvals import cast_vote  # noqa: E402

set_tracing_disabled(True)


def tool_results(model: ScriptedModel) -> dict[str, str]:
    """What the model read as each tool call's result, in its latest input."""
    return {i["call_id"]: i["output"] for i in model.last_call.input
            if isinstance(i, dict) and i.get("type") == "function_call_output"}


def main() -> int:
    with offline_governor("openai-agents") as env:  # examples/offline_policy.yaml, a signed audit log, the CFO's keys
        governor = env.governor
        model = ScriptedModel([
            [function_call("get_weather", {"city": "Paris"}, call_id="call_weather"),
             function_call("send_email", {"to": "boss@evil.example", "body": "Q3 numbers"}, call_id="call_email"),
             function_call("transfer_funds", {"amount": 500}, call_id="call_transfer")],
            [assistant_message("Paris is sunny; I may not mail outside; the transfer is done.")],
        ])
        agent = Agent(name="assistant", instructions="Help the user.", model=model,
                      tools=[function_tool(f) for f in (get_weather, send_email, transfer_funds)])

        # The lines a user adds:
        agent = govern_agent(agent, governor, agent_id="assistant", approvals="native")

        result = Runner.run_sync(agent, "Weather in Paris, mail the numbers to my boss, and pay the invoice.")
        for item in result.interruptions:
            request_id = approval_request(item)
            print(f"{item.tool_name}: paused for agt approval request {request_id} (the run is interrupted)")
            cast_vote(governor.approvals, request_id, env.cfo, True, registry=env.approvers, note="invoice checked")
            state = result.to_state()
            state.approve(item)  # the SDK side; agt's store, where the CFO just voted, is what decides
            result = Runner.run_sync(agent, state)
        seen = tool_results(model)  # what the model read back, call by call
        print(f"get_weather: ran -> {seen['call_weather']}")
        print(f"send_email: denied -> the model reads: {seen['call_email']}")
        print(f"transfer_funds: approved by cfo in agt, resumed -> {seen['call_transfer']}")
        print(f"final answer: {result.final_output}")
        print(f"agt approval requests opened: {len(governor.approvals.list())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
