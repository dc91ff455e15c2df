"""What deriving facts costs per action: a shell command, an argv, SQL (read in every default dialect, and
in one declared dialect), and an action with no command or SQL param, which must cost next to nothing.

Each sample builds a new Operation and reads its facts, as a governed call does once. The parsers' own
caches (``parse_shell``, ``parse_sql``) are cleared before every sample so the figure is a cold parse;
a repeated command string costs a cache hit."""

from __future__ import annotations

from typing import Callable

from agt.action import Operation
from agt.facts import derive_facts
from agt.facts.shell import parse_shell
from agt.facts.sql import parse_sql
from bench.stats import Figures, measure

CASES: tuple[tuple[str, str, str, dict], ...] = (
    ("no command or SQL param", "read_file", "read", {"path": "/ws/alice/README.md", "encoding": "utf-8"}),
    ("shell: rm -rf /", "run_shell", "execute", {"command": "rm -rf /"}),
    ("shell: pipeline + sudo + bash -c", "run_shell", "execute",
     {"command": "cd /srv && git pull --rebase && sudo -u app bash -c 'make build 2>&1 | tee /tmp/log'"}),
    ("argv: program + args", "run", "execute", {"program": "rm", "args": ["-rf", "/"]}),
    ("sql: DELETE … WHERE (plain: default dialect)", "run_sql", "execute", {"query": "DELETE FROM users WHERE id = 3"}),
    ("sql: DELETE … WHERE \"x\" (quirk: 4 dialects)", "run_sql", "execute", {"query": 'DELETE FROM users WHERE "id" = 3'}),
    ("sql: join + where (plain: default dialect)", "run_sql", "execute",
     {"query": "SELECT u.id, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total > 100"}),
)


def _cold(tool: str, kind: str, params: dict) -> Callable[[], object]:
    if tool == "read_file":
        return lambda: Operation(tool, kind, params).facts  # nothing to parse, so no cache to clear
    def run() -> object:
        parse_shell.cache_clear()
        parse_sql.cache_clear()
        return Operation(tool, kind, params).facts
    return run


def run(quick: bool = False, progress: Callable[[str], None] = print) -> list[Figures]:
    samples = 300 if quick else 3_000
    figures: list[Figures] = []
    baseline = CASES[0][3]
    progress("facts: baseline")
    figures.append(measure("facts baseline: build the Operation, facts not read", lambda: Operation("read_file", "read", baseline),
                           samples, warmup=20))
    for name, tool, kind, params in CASES:
        progress(f"facts: {name}")
        figures.append(measure(f"facts {name}", _cold(tool, kind, params), samples, warmup=20))
    progress("facts: declared dialect")
    declared = {"run_sql": {"query": "sql:postgres"}}
    query = {"query": "DELETE FROM users WHERE id = 3"}
    figures.append(measure("facts sql: DELETE … WHERE (declared postgres)",
                           lambda: (parse_sql.cache_clear(), derive_facts("run_sql", "execute", query, declared)), samples, warmup=20))
    op = Operation("run_shell", "execute", {"command": "rm -rf /"})
    figures.append(measure("facts shell: repeated command (cache hit)",
                           lambda: derive_facts(op.tool, op.kind.value, op.params), samples, warmup=20))
    return figures
