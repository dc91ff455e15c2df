"""examples/multi_agent_demo.py: the 11-agent run that `make demo` ends with."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_multi_agent_demo_blocks_the_misbehaving_agents():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "multi_agent_demo.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for agent, rule in [
        ("rogue-rm", "block-recursive-delete"),
        ("rogue-sql", "block-destructive-sql"),
        ("token-hog", "token-budget"),
        ("loop-bot", "tool-call-limit"),
        ("escaper", "workspace-write-only"),
        ("intern", "low-trust-no-shell"),
        ("flaky", "circuit-open"),
    ]:
        assert any(agent in line and rule in line for line in out.splitlines()), (agent, rule)
    assert any("mailer" in line and "approved" in line for line in out.splitlines())
    assert "summary: " in out
