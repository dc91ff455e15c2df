"""Eleven agents run at once through one Governor: some behave, some do not.

Run it with `make demo` (after the engine comparison), or with `python examples/multi_agent_demo.py`.
Every tool call goes through the gates: trust, then policy (the starter policy on the yaml engine),
then reliability. Emails wait for an approval that a scripted "human" grants or refuses with a vote signed
by the comms-lead's own Ed25519 key; the Governor counts only votes that verify against its approver registry.
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

import agt
from agt.errors import GovernanceDenied
from agt.runtime import Governor, govern
from agt.identity import IdentityStore
from agt.runtime import ApproverRegistry, cast_vote
from agt.runtime.approvals import ApprovalStatus

ROOT = Path(__file__).resolve().parents[1]
console = Console(width=max(Console().width, 110))
print_lock = threading.Lock()
tally: dict[str, Counter] = defaultdict(Counter)


def show(agent: str, tool: str, outcome: str, detail: str = "") -> None:
    style = {"allow": "green", "deny": "bold red", "approved": "yellow", "error": "magenta"}[outcome]
    with print_lock:
        tally[agent][outcome] += 1
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {agent:14} {tool:12} [{style}]{outcome:8}[/] {detail}", highlight=False)


def main() -> int:
    # The approver's key store: in a deployment a directory only the approver's OS user can read.
    key_dir = tempfile.TemporaryDirectory(prefix="agt-demo-approver-keys-")
    key_store = IdentityStore(key_dir.name)
    comms_lead = key_store.create("comms-lead")
    gov = Governor("yaml", str(ROOT / "policies" / "starter.yaml"), approval_timeout=3.0, quorum=1,
                   rate_limits={"tool:send_email": "3/minute"}, approvers=ApproverRegistry.from_store(key_store))
    agents = {
        "reader": agt.Agent("reader", trust_score=650, attributes={"workspace": "/ws/reader"}),
        "writer": agt.Agent("writer", trust_score=720, attributes={"workspace": "/ws/writer"}),
        "rogue-rm": agt.Agent("rogue-rm", trust_score=720, attributes={"workspace": "/ws/rogue"}),
        "rogue-sql": agt.Agent("rogue-sql", trust_score=720),
        "token-hog": agt.Agent("token-hog", trust_score=700),
        "loop-bot": agt.Agent("loop-bot", trust_score=700),
        "mailer": agt.Agent("mailer", trust_score=700),
        "spammer": agt.Agent("spammer", trust_score=700),
        "intern": agt.Agent("intern", trust_score=320, attributes={"workspace": "/ws/intern"}),
        "flaky": agt.Agent("flaky", trust_score=700),
        "escaper": agt.Agent("escaper", trust_score=720, attributes={"workspace": "/ws/escaper"}),
    }
    for a in agents.values():
        gov.register_agent(a)

    def tools_for(agent_id: str) -> dict:
        def g(fn, **kw):
            return govern(fn, governor=gov, agent=agent_id, session=f"task-{agent_id}", **kw)

        def read_file(path: str) -> str:
            return f"contents of {path}"

        def write_file(path: str, content: str) -> int:
            return len(content)

        def run_shell(command: str) -> str:
            return f"ran {command!r}"

        def query_db(sql: str) -> list:
            return [("row", 1)]

        def send_email(to: str, subject: str, body: str = "") -> str:
            return f"sent to {to}"

        def summarize(text: str) -> str:
            gov.add_tokens(f"task-{agent_id}", 1500)  # what the model call cost
            return text[:20]

        def fetch_prices(symbol: str) -> float:
            raise ConnectionError("upstream timed out")

        return {f.__name__: g(f) for f in (read_file, write_file, run_shell, query_db, send_email, summarize, fetch_prices)}

    def attempt(agent_id: str, tool: str, **kwargs) -> None:
        fn = tools_for(agent_id)[tool]
        try:
            fn(**kwargs)
            approved = tool == "send_email"
            show(agent_id, tool, "approved" if approved else "allow", ", ".join(f"{k}={v!r}"[:40] for k, v in kwargs.items()))
        except GovernanceDenied as exc:
            show(agent_id, tool, "deny", f"{exc.gate}: {', '.join(exc.rule_ids)}")
        except Exception as exc:  # noqa: BLE001 - the tool itself failed
            show(agent_id, tool, "error", f"{type(exc).__name__}: {exc}")
        time.sleep(random.uniform(0.005, 0.03))

    scripts = {
        "reader": lambda: [attempt("reader", "read_file", path=f"/ws/reader/doc{i}.md") for i in range(4)],
        "writer": lambda: [attempt("writer", "write_file", path=f"/ws/writer/out{i}.txt", content="x" * i) for i in range(4)],
        "rogue-rm": lambda: [attempt("rogue-rm", "run_shell", command="ls /ws/rogue"),
                             attempt("rogue-rm", "run_shell", command="sudo rm -rf / --no-preserve-root")],
        "rogue-sql": lambda: [attempt("rogue-sql", "query_db", sql="SELECT count(*) FROM users"),
                              attempt("rogue-sql", "query_db", sql="DROP TABLE users; --")],
        "token-hog": lambda: [attempt("token-hog", "summarize", text=f"chapter {i}") for i in range(8)],
        "loop-bot": lambda: [attempt("loop-bot", "read_file", path=f"/data/{i}") for i in range(23)],
        "mailer": lambda: [attempt("mailer", "send_email", to="cfo@example.com", subject="Q3 numbers")],
        "spammer": lambda: [attempt("spammer", "send_email", to=f"lead{i}@elsewhere.example", subject="offer") for i in range(5)],
        "intern": lambda: [attempt("intern", "read_file", path="/ws/intern/notes"),
                           attempt("intern", "run_shell", command="whoami")],
        "flaky": lambda: [attempt("flaky", "fetch_prices", symbol="ACME") for _ in range(7)],
        "escaper": lambda: [attempt("escaper", "write_file", path="/ws/escaper/../../etc/crontab", content="* * * * * evil")],
    }

    stop = threading.Event()

    def human_approver() -> None:
        """Approves email to example.com, refuses everything else."""
        while not stop.is_set():
            for req in gov.approvals.list():
                if gov.approval_status(req.id).status is not ApprovalStatus.PENDING:
                    continue
                to = req.action.get("document", {}).get("action", {}).get("params", {}).get("to", "")
                time.sleep(0.05)
                cast_vote(gov.approvals, req.id, comms_lead, to.endswith("@example.com"), note="scripted reviewer")
            time.sleep(0.02)

    console.rule("[bold]11 agents, one Governor, starter policy (strict mode)")
    reviewer = threading.Thread(target=human_approver, daemon=True)
    reviewer.start()
    threads = [threading.Thread(target=fn, name=name) for name, fn in scripts.items()]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    elapsed = time.perf_counter() - started

    table = Table(title=f"summary: {sum(sum(c.values()) for c in tally.values())} calls in {elapsed:.2f}s")
    for col in ("agent", "trust now", "allowed", "approved", "denied", "tool errors"):
        table.add_column(col, justify="left" if col == "agent" else "right")
    for name in scripts:
        c = tally[name]
        table.add_row(name, str(gov.trust.score(name)), str(c["allow"]), str(c["approved"]), str(c["deny"]), str(c["error"]))
    console.print(table)
    kinds = Counter(r.kind for r in gov.audit.records)
    console.print(f"audit trail: {kinds['decision']} decisions, {kinds['approval']} approval events, "
                  f"{kinds['trust']} trust changes")
    gov.close()
    key_dir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
