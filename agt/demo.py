"""The scripted session `make demo` plays: agent tool calls, harmless to destructive, through the
shipped starter policy on every embedded engine, with each engine's decision side by side."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from agt.action import Action, Agent, Context, from_call
from agt.decision import Decision
from agt.engines import create_engine

ALICE = Agent("alice", roles=("developer",), trust_score=720, attributes={"workspace": "/ws/alice"})
MALLORY = Agent("mallory", roles=("intern",), trust_score=310, attributes={"workspace": "/ws/mallory"})
DEPLOYER = Agent("deploy-bot", roles=("release",), trust_score=880, attributes={"workspace": "/srv/app"})


@dataclass(frozen=True)
class DemoStep:
    label: str
    agent: Agent
    tool: str
    params: dict[str, Any]
    tokens_used: int
    tool_calls: int
    files_changed: int = 0
    environment: str = "development"

    def action(self) -> Action:
        return from_call(
            self.tool,
            self.params,
            agent=self.agent,
            context=Context(
                session_id="demo-session",
                task_id="demo-task",
                tokens_used=self.tokens_used,
                tool_calls=self.tool_calls,
                files_changed=self.files_changed,
                environment=self.environment,
            ),
        )


SCRIPT: tuple[DemoStep, ...] = (
    DemoStep("read a file in the workspace", ALICE, "read_file", {"path": "/ws/alice/README.md"}, 350, 1),
    DemoStep("write a file in the workspace", ALICE, "write_file", {"path": "/ws/alice/notes.md", "content": "todo"}, 900, 2, 1),
    DemoStep("write outside the workspace", ALICE, "write_file", {"path": "/ws/alice/../../etc/passwd", "content": "x"}, 1200, 3, 1),
    DemoStep("list a directory", ALICE, "run_shell", {"command": "ls -la /ws/alice"}, 1500, 4, 1),
    DemoStep("low-trust agent runs a shell", MALLORY, "run_shell", {"command": "cat /etc/hosts"}, 200, 1),
    DemoStep("wipe the disk", ALICE, "run_shell", {"argv": ["sudo", "rm", "-RF", "/"]}, 1800, 5, 1),
    DemoStep("harmless query", ALICE, "query_db", {"sql": "SELECT id FROM users LIMIT 5"}, 2100, 6, 1),
    DemoStep("SQL with DROP TABLE", ALICE, "query_db", {"sql": "drop   TABLE users;"}, 2300, 7, 1),
    DemoStep("destructive database tool", ALICE, "drop_table", {"table": "users"}, 2400, 8, 1),
    DemoStep("send an email", ALICE, "send_email", {"to": "cfo@example.com", "subject": "Q3 numbers"}, 2900, 9, 1),
    DemoStep("email that also deletes rows", ALICE, "send_email", {"to": "dba@example.com", "body": "please DELETE FROM orders"}, 3100, 10, 1),
    DemoStep("write in production", DEPLOYER, "write_file", {"path": "/srv/app/config.yaml", "content": "replicas: 3"}, 400, 2, 1, "production"),
    DemoStep("at the token budget", ALICE, "summarize", {"text": "long report"}, 8000, 11, 1),
    DemoStep("over the token budget", ALICE, "summarize", {"text": "another report"}, 8450, 12, 1),
    DemoStep("21st tool call", ALICE, "read_file", {"path": "/ws/alice/a.md"}, 5000, 21, 1),
    DemoStep("16th file changed", ALICE, "write_file", {"path": "/ws/alice/p.md", "content": "x"}, 5000, 13, 16),
)


@dataclass(frozen=True)
class DemoRow:
    step: DemoStep
    action: Action
    decisions: dict[str, Decision]

    @property
    def agree(self) -> bool:
        seen = {(d.effect, d.rule_ids) for d in self.decisions.values()}
        return len(seen) == 1


def default_policy(engine: str, root: Path | None = None) -> str:
    """The starter policy for ``engine``: the copy agt ships (agt.resources), whatever the current directory;
    with ``root``, the one in that checkout instead."""
    if root is None:
        from agt.resources import starter_policy

        return str(starter_policy(engine))
    return str(root / {"yaml": "policies/starter.yaml", "cedar": "cedar", "opa": "rego"}[engine])


def run_demo(engines: Sequence[str] = ("yaml", "cedar"), root: Path | None = None) -> list[DemoRow]:
    loaded = {name: create_engine(name, default_policy(name, root)) for name in engines}
    try:
        rows = []
        for step in SCRIPT:
            action = step.action()
            rows.append(DemoRow(step, action, {n: e.evaluate(action) for n, e in loaded.items()}))
        return rows
    finally:
        for e in loaded.values():
            e.close()
