"""Respelling a destructive command or statement so the starter's text patterns miss it.

Every spelling here passed yaml, cedar and opa alike when the starter matched text (`rm -rf /`,
`drop table`, `delete from` substrings of params_text). On facts (issue 10, section 4) each is denied
by all three engines with the same rule id.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import agt
from agt.action import Agent, from_call
from agt.decision import Effect

ROOT = Path(__file__).resolve().parents[2]
ALICE = Agent("alice", trust_score=720, attributes={"workspace": "/ws/alice"})

SHELL = [
    ("run_shell", {"command": "rm -fr /"}),
    ("run_shell", {"command": "rm -r -f /"}),
    ("run_shell", {"command": "rm --recursive --force /"}),
    ("run_shell", {"command": "/bin/rm -R -f //"}),
    ("run_shell", {"command": "sudo -u root rm -rf /etc/*"}),
    ("run_shell", {"command": "cd /tmp && r\\m -rf ~/"}),
    ("exec", {"program": "rm", "args": ["-rf", "/"]}),
    ("exec", {"argv": ["env", "X=1", "rm", "-fr", "/usr"]}),
]
SQL = [
    ("query_db", {"sql": "DROP/**/TABLE users"}),
    ("query_db", {"sql": "DELETE u FROM users u"}),
    ("query_db", {"sql": "drop -- nothing to see\ntable users"}),
    ("query_db", {"sql": "SELECT 1; TRUNCATE users"}),
    ("query_db", {"sql": "UPDATE users SET admin = true WHERE 1 = 1"}),
]


@pytest.fixture(scope="module")
def engines(opa_binary):
    made = {
        "yaml": agt.create_engine("yaml", str(ROOT / "policies" / "starter.yaml")),
        "cedar": agt.create_engine("cedar", str(ROOT / "cedar")),
        "opa": agt.create_engine("opa", str(ROOT / "rego"), timeout=30),
    }
    yield made
    made["opa"].close()


CASES = [(t, p, "block-recursive-delete") for t, p in SHELL] + [(t, p, "block-destructive-sql") for t, p in SQL]


@pytest.mark.parametrize(("tool", "params", "rule"), CASES, ids=[str(p) for _, p, _ in CASES])
def test_destructive_command_is_denied_with_one_rule_id_by_every_engine_however_it_is_spelt(engines, tool, params, rule):
    action = from_call(tool, params, agent=ALICE)
    decisions = {name: engine.evaluate(action) for name, engine in engines.items()}
    assert {n: (d.effect, d.rule_ids) for n, d in decisions.items()} == {n: (Effect.DENY, (rule,)) for n in engines}
