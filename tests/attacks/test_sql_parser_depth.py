"""SQL nested as deep as a param may be long, hiding a destructive statement, sent to a read tool.

The SQL facts come from sqlglot, compiled (sqlglotc): compiled code that recursed without a depth check would take
the whole process down (a segfault, not an exception), and every gate with it. Each case runs in its own interpreter,
so a crash fails this test instead of ending the run. The process must live, and the call must be denied: by
block-destructive-sql when the parser followed the nesting, by block-unparsed-command when it gave up (the text
patterns miss a comment-spelt DROP, and `query_db` infers kind read, not execute).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agt._normalize import MAX_STRING_LENGTH

ROOT = Path(__file__).resolve().parents[2]

DECIDE = """
import json, sys
import agt
from agt.action import Agent, from_call
engine = agt.create_engine("yaml", sys.argv[1])
action = from_call("query_db", {"sql": sys.stdin.read()}, agent=Agent("alice", trust_score=720))
decision = engine.evaluate(action)
print(json.dumps({"kind": action.action.kind.value, "parse_error": action.document["action"]["facts"]["sql"]["parse_error"],
                  "effect": decision.effect.value, "rules": list(decision.rule_ids)}))
"""

HIDDEN = "DROP/**/TABLE users; "
SHAPES = {
    "parentheses": lambda n: "SELECT " + "(" * n + "1" + ")" * n,
    "subqueries": lambda n: "SELECT*FROM" + "(SELECT*FROM" * n + " t" + ")" * n,
    "in-subqueries": lambda n: "SELECT 1 WHERE a IN" + "(SELECT a FROM t WHERE a IN" * n + "(1)" + ")" * n,
    "not": lambda n: "SELECT " + "NOT " * n + "1",
    "case": lambda n: "SELECT " + "CASE WHEN 1 THEN " * n + "1" + " END" * n,
    "calls": lambda n: "SELECT " + "f(" * n + "1" + ")" * n,
    "unclosed": lambda n: "SELECT " + "(" * n,
}


def _deepest(shape) -> str:
    """The deepest nesting of ``shape`` that still fits in one param, the hidden DROP first."""
    lo, hi = 1, MAX_STRING_LENGTH
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if len(HIDDEN + shape(mid)) <= MAX_STRING_LENGTH else (lo, mid)
    return HIDDEN + shape(lo)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_deep_sql_hiding_a_drop_is_denied_and_the_deciding_process_survives(shape):
    sql = _deepest(shape)
    done = subprocess.run([sys.executable, "-c", DECIDE, str(ROOT / "policies" / "starter.yaml")], input=sql,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, f"the deciding process died ({done.returncode}): {done.stderr[-2000:]}"
    got = json.loads(done.stdout)
    rule = "block-unparsed-command" if got["parse_error"] else "block-destructive-sql"
    assert (got["kind"], got["effect"], got["rules"]) == ("read", "deny", [rule])
