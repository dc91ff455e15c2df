"""Engine latency: YAML and Cedar on policies of 10, 100 and 1,000 rules where no rule matches, and on
the starter policy. Also the cost of building an Action, which every governed call pays once."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import agt
from agt.engines.cedar import bundled_schema_text
from bench.stats import Figures, measure, measure_batch

ROOT = Path(__file__).resolve().parents[1]


# Three rule shapes: keyed on the tool name (the common case), budget thresholds (indexed by a
# lower bound), and pattern rules that nothing can index, so every rule is scanned.
SHAPES = ("tool-keyed", "budget", "scan")


def _yaml_condition(i: int, shape: str) -> str:
    if shape == "tool-keyed":
        return f"tool_name == 'tool_{i}' and context.tokens_used > {i}"
    if shape == "budget":
        return f"context.tokens_used > {100_000 + i} and params_text contains 'pattern_{i}'"
    return f"params_text contains 'pattern_{i}' or context.environment == 'env_{i}'"


def _cedar_condition(i: int, shape: str) -> str:
    if shape == "tool-keyed":
        return f'context.tool == "tool_{i}" && context.tokens_used > {i}'
    if shape == "budget":
        return f'context.tokens_used > {100_000 + i} && context.params_text like "*pattern_{i}*"'
    return f'context.params_text like "*pattern_{i}*" || context.environment == "env_{i}"'


def _yaml_policy(n: int, shape: str) -> str:
    lines = ["apiVersion: governance.toolkit/v1", f"name: bench-{n}", "default_action: allow", "rules:"]
    for i in range(n):
        cond = _yaml_condition(i, shape)
        lines += [f"  - name: rule-{i}", f'    condition: "{cond}"', "    action: deny"]
    return "\n".join(lines) + "\n"


def _cedar_policy(n: int, shape: str) -> str:
    out = []
    for i in range(n):
        cond = _cedar_condition(i, shape)
        out.append(f'@id("rule-{i}")\nforbid (principal, action, resource)\nwhen {{ {cond} }};\n')
    out.append('@id("default")\npermit (principal, action, resource);\n')
    return "\n".join(out)


def _no_match_action() -> agt.Action:
    return agt.from_call(
        "read_file",
        {"path": "/ws/alice/README.md", "encoding": "utf-8"},
        agent=agt.Agent("alice", roles=("developer",), trust_score=720, attributes={"workspace": "/ws/alice"}),
        context=agt.Context(session_id="s", tokens_used=1200, tool_calls=4, files_changed=1),
    )


def run(quick: bool = False, progress: Callable[[str], None] = print) -> list[Figures]:
    samples_yaml = 2_000 if quick else 20_000
    samples_cedar = 500 if quick else 5_000
    sizes = (10, 100) if quick else (10, 100, 1000)
    figures: list[Figures] = []
    action = _no_match_action()
    action.document  # built once, as the runtime does before the gates

    progress("action construction")
    figures.append(measure("build Action (from_call + document)", lambda: _no_match_action().document, samples_yaml))

    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            for shape in SHAPES:
                progress(f"yaml {n} rules {shape}")
                ypath = Path(tmp) / f"y{n}{shape}.yaml"
                ypath.write_text(_yaml_policy(n, shape))
                y = agt.create_engine("yaml", str(ypath))
                assert y.evaluate(action).effect is agt.Effect.ALLOW
                figures.append(measure(f"yaml {n:>5} rules, no match ({shape})", lambda: y.evaluate(action), samples_yaml))
                progress(f"cedar {n} rules {shape}")
                cdir = Path(tmp) / f"c{n}{shape}"
                cdir.mkdir()
                (cdir / "bench.cedar").write_text(_cedar_policy(n, shape))
                c = agt.create_engine("cedar", str(cdir))
                assert c.evaluate(action).effect is agt.Effect.ALLOW
                figures.append(measure(f"cedar {n:>5} rules, no match ({shape})", lambda: c.evaluate(action), samples_cedar))

        progress("starter policy")
        y = agt.create_engine("yaml", str(ROOT / "policies" / "starter.yaml"))
        c = agt.create_engine("cedar", str(ROOT / "cedar"))
        figures.append(measure("yaml  starter policy", lambda: y.evaluate(action), samples_yaml))
        figures.append(measure("cedar starter policy, single decision", lambda: c.evaluate(action), samples_cedar))
        distinct = [
            agt.from_call("write_file", {"path": f"/ws/alice/f{i}.md", "content": "x"},
                          agent=agt.Agent(f"agent-{i % 50}", trust_score=600 + i % 300, attributes={"workspace": "/ws/alice"}))
            for i in range(samples_cedar + 200)
        ]
        it = iter(distinct)
        figures.append(measure("cedar starter policy, single, new entities each call", lambda: c.evaluate(next(it)), samples_cedar))
        batch = distinct[:100]
        figures.append(measure_batch("cedar starter policy, batch of 100 (per decision)", lambda: c.evaluate_many(batch), 100, 20 if quick else 60))
        cv = agt.create_engine("cedar", str(ROOT / "cedar"), validate_requests=True)
        figures.append(measure("cedar starter policy, request re-validated by Cedar", lambda: cv.evaluate(action), samples_cedar))
    assert bundled_schema_text()
    return figures
