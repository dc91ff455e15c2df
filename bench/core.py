"""Engine latency: YAML and Cedar on policies of 10, 100 and 1,000 rules where no rule matches, and on
the starter policy. Also the cost of building an Action, which every governed call pays once.

:func:`scaling` adds the yaml engine's scaling tables (issue 14): 10, 100, 1k and 10k rules, tool-keyed and
pattern, an action that matches one rule and one that matches none, each figure beside its target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import agt
from agt.engines.cedar import bundled_schema_text
from bench.stats import ROUNDS, Figures, measure, measure_batch, measure_rounds

ROOT = Path(__file__).resolve().parents[1]


BUILD_ACTION_P50_US = 12.0  # issue 14


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
    return f'context.params_text like "*pattern_{i}*" || (context has environment && context.environment == "env_{i}")'


def _yaml_policy(n: int, condition: Callable[[int], str], name: str = "bench") -> str:
    """``n`` deny rules ``rule-0`` … ``rule-{n-1}``, rule ``i`` denying on ``condition(i)``, default allow."""
    lines = ["apiVersion: governance.toolkit/v1", f"name: {name}-{n}", "default_action: allow", "rules:"]
    for i in range(n):
        lines += [f"  - name: rule-{i}", f'    condition: "{condition(i)}"', "    action: deny"]
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
    figures.append(measure_rounds(f"build Action (from_call + document); target p50 ≤ {BUILD_ACTION_P50_US:g} µs "
                                  f"(median of {ROUNDS} rounds)", lambda: _no_match_action().document, samples_yaml))

    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            for shape in SHAPES:
                progress(f"yaml {n} rules {shape}")
                ypath = Path(tmp) / f"y{n}{shape}.yaml"
                ypath.write_text(_yaml_policy(n, lambda i, shape=shape: _yaml_condition(i, shape)))
                y = agt.create_engine("yaml", str(ypath))
                assert y.evaluate(action).effect is agt.Effect.ALLOW
                if shape == "budget":  # tool-keyed and pattern rules: see scaling()
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
        figures += cedar_ratios(c, action, samples_cedar)
        distinct = [
            agt.from_call("write_file", {"path": f"/ws/alice/f{i}.md", "content": "x"},
                          agent=agt.Agent(f"agent-{i % 50}", trust_score=600 + i % 300, attributes={"workspace": "/ws/alice"}))
            for i in range(samples_cedar + 200)
        ]
        it = iter(distinct)
        figures.append(measure("cedar starter policy, single, new entities each call", lambda: c.evaluate(next(it)), samples_cedar))
        batch = distinct[:100]
        # Both rows below measure these 100 actions with their entity handles parsed (as after any first pass, and
        # as the one-by-one row sees them from its second round on); the loop above has evicted them.
        for a in batch:
            c.evaluate(a)
        many = measure_batch("cedar starter policy, batch of 100 (per decision)", lambda: c.evaluate_many(batch), 100, 20 if quick else 60)
        one_by_one = measure_batch("cedar starter policy, the same 100 one by one (per decision)",
                                   lambda: [c.evaluate(a) for a in batch], 100, 20 if quick else 60)
        EXTRA["cedar_batch_over_single"] = many.p50_us / one_by_one.p50_us
        figures += [many, one_by_one, _ratio_row(
            f"cedar batch ÷ one by one: {many.p50_us / one_by_one.p50_us:.2f}× (≤ 0.6×)"), cedar_batch_floor(c, batch, 20 if quick else 60)]
        cv = agt.create_engine("cedar", str(ROOT / "cedar"), validate_requests=True)
        figures.append(measure("cedar starter policy, request re-validated by Cedar", lambda: cv.evaluate(action), samples_cedar))
    assert bundled_schema_text()
    return figures


CEDAR_SINGLE_TARGET = 1.05
EXTRA: dict[str, float] = {}
"""Ratios and wall times for the summary (bench/summary.py reads them from ``extra``)."""


def _ratio_row(name: str) -> Figures:
    nan = float("nan")
    return Figures(name, 0, nan, nan, nan, nan)


def cedar_ratios(engine, action, samples: int, rounds: int = 3) -> list[Figures]:
    """The cedar engine's single decision beside its floor: raw ``cedarpy.is_authorized`` with preparsed handles
    (PolicySet, Entities) on the very request the engine sends (issue 14: ≤ 1.05×). Interleaved in rounds; the
    median round is reported."""
    import cedarpy

    request, entities = engine._request(action)
    policies, schema = engine._policies, engine._eval_schema

    def floor() -> object:
        return cedarpy.is_authorized(request, policies, entities, schema)

    pairs = []
    for _ in range(rounds):
        f = measure("cedar floor: raw cedarpy, handles", floor, samples)
        e = measure("cedar starter policy, single decision", lambda: engine.evaluate(action), samples)
        pairs.append((e.p50_us / f.p50_us, f, e))
    ratio, f, e = sorted(pairs, key=lambda p: p[0])[len(pairs) // 2]
    EXTRA["cedar_single_over_raw"] = ratio
    return [f, e, _ratio_row(f"cedar single ÷ raw cedarpy: {ratio:.2f}× (≤ {CEDAR_SINGLE_TARGET}×)")]


def cedar_batch_floor(engine, actions, rounds: int) -> Figures:
    """What Cedar alone takes per decision for ``actions``: the requests the engine sends, one native
    ``is_authorized_batch`` call per entity handle the engine uses for them (each action's own, parsed beforehand),
    nothing of agt's. The batch target (÷ single ≤ 0.6×) is held against the single figure; this row shows how
    much of a decision no batching on agt's side can share."""
    from cedarpy._internal import is_authorized_batch

    groups: dict[int, tuple[list, object]] = {}
    for action in actions:
        request, handle = engine._request(action)
        wire = {**request, "context": json.dumps(request["context"])}
        groups.setdefault(id(handle), ([], handle))[0].append(wire)
    policies, schema = engine._policies, engine._eval_schema

    def floor() -> object:
        return [is_authorized_batch(reqs, policies, handle._inner, schema, False) for reqs, handle in groups.values()]

    return measure_batch("cedar floor: raw native batch, same requests and handles (per decision)", floor, len(actions), rounds)


# --- CLI start-up --------------------------------------------------------------------------------

STARTUP_TARGETS_S = {"agt --help": 0.25, "agt eval (yaml)": 0.5}


def startup(quick: bool = False, progress: Callable[[str], None] = print) -> list[Figures]:
    """Wall time of ``agt --help`` and ``agt eval`` on the yaml starter policy, each a fresh process (the console
    script's interpreter), several samples, beside the issue 14 targets. Figures are in µs like every row."""
    agt_bin = Path(sys.executable).with_name("agt")
    cmd = [str(agt_bin)] if agt_bin.exists() else [sys.executable, "-m", "agt.cli"]
    action = json.dumps({"agent": {"id": "a"}, "action": {"tool": "send_email", "params": {"to": "a@example.com"}}})
    runs = {"agt --help": (cmd + ["--help"], None),
            "agt eval (yaml)": (cmd + ["eval", "-p", str(ROOT / "policies" / "starter.yaml"), "-"], action)}
    samples = 5 if quick else 15
    out = []
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for name, (argv, stdin) in runs.items():
        progress(f"start-up: {name}")
        subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env)  # warm the page cache
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env)
            times.append((time.perf_counter() - t0) * 1e6)
        times.sort()
        p50 = times[len(times) // 2]
        target = STARTUP_TARGETS_S[name]
        EXTRA["cli_help_seconds" if name == "agt --help" else "cli_eval_seconds"] = p50 / 1e6
        out.append(Figures(f"{name} wall: {p50 / 1e6:.2f} s (≤ {target} s)", samples, p50, times[-1], sum(times) / len(times), 1e6 / p50))
    return out


# --- scaling tables ------------------------------------------------------------------------------

SCALING_SIZES = (10, 100, 1_000, 10_000)
TOOL_KEYED_P99_US = 3.0
PATTERN_NO_MATCH_P99_US = 10.0
PATTERN_GROWTH = 1.5  # the 1k-rule figure within this factor of the 10-rule one


def _scaling_condition(i: int, shape: str) -> str:
    if shape == "tool-keyed":  # equality and membership on the tool name, each with a second condition
        if i % 2:
            return f"tool_name in ['tool_{i}', 'alias_{i}'] and context.tokens_used > {i % 1000}"
        return f"tool_name == 'tool_{i}' and context.tokens_used > {i % 1000}"
    lit = f"pattern-{i}-x"  # delimited, so no rule's literal is inside another's
    return [
        f"params_text contains '{lit}' or context.environment == 'env_{i}'",
        f"params_text matches '(?i)pat+ern-{i}-x\\\\b'",
        f"params_text startswith '{lit}'",
        f"params_text endswith '{lit}' and context.tokens_used > {i % 1000}",
    ][i % 4]


def _scaling_action(n: int, shape: str, match: bool) -> agt.Action:
    hit = (n // 2) & ~3  # a rule of the first form of its shape
    if shape == "tool-keyed":
        tool, params = (f"tool_{hit}" if match else "read_file"), {"path": "/ws/alice/README.md", "encoding": "utf-8"}
    else:
        tool, params = "run_shell", {"cmd": f"echo pattern-{hit}-x > out.txt" if match else "echo hello > out.txt"}
    return agt.from_call(tool, params, agent=agt.Agent("alice", roles=("developer",), trust_score=720),
                         context=agt.Context(session_id="s", tokens_used=5000, tool_calls=4, files_changed=1))


@dataclass(frozen=True)
class Scaled:
    """One row of a scaling table: a figure, the target it is held to (None: none stated), and its growth."""

    shape: str
    rules: int
    match: bool
    figures: Figures
    target_p99_us: float | None
    growth: float | None  # p99 ÷ the 10-rule p99 of the same shape and case, measured in the same round; median round
    reference: Figures | None = None  # sum(range(100)) measured just before this shape's rows: the p99 floor

    @property
    def ratio(self) -> float | None:
        return None if self.target_p99_us is None else self.figures.p99_us / self.target_p99_us


SCALING_ROUNDS = 5


def scaling(quick: bool = False, progress: Callable[[str], None] = print) -> list[Scaled]:
    """The yaml engine at 10 … 10k rules: tool-keyed (indexed by tool name) and pattern rules (one RE2 set).

    Every size of a shape is measured in each of :data:`SCALING_ROUNDS` rounds, one after the other, so a burst of
    load from outside lands on one round rather than on one size; a row shows its median round (by p99), and its
    growth is the median over rounds of its p99 ÷ the 10-rule p99 of the same round."""
    samples = (3_000 if quick else 20_000) // SCALING_ROUNDS
    rows: list[Scaled] = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in ("tool-keyed", "pattern"):
            reference = measure("sum(range(100))", lambda: sum(range(100)), samples * SCALING_ROUNDS)
            cases = []
            for n in SCALING_SIZES:
                progress(f"yaml scaling: {n} {shape} rules, loading")
                path = Path(tmp) / f"{shape}-{n}.yaml"
                path.write_text(_yaml_policy(n, lambda i, shape=shape: _scaling_condition(i, shape), "scaling"))
                engine = agt.create_engine("yaml", str(path))
                for match in (False, True):
                    action = _scaling_action(n, shape, match)
                    action.document
                    d = engine.evaluate(action)
                    want = (agt.Effect.DENY, (f"rule-{(n // 2) & ~3}",)) if match else (agt.Effect.ALLOW, ("default",))
                    assert (d.effect, d.rule_ids) == want, (shape, n, match, d)
                    cases.append((n, match, engine, action))
            rounds: list[dict[tuple[int, bool], Figures]] = []
            for r in range(SCALING_ROUNDS):
                progress(f"yaml scaling: {shape} rules, round {r + 1} of {SCALING_ROUNDS}")
                rounds.append({(n, match): measure(
                    f"yaml {n:>6,} {shape} rules, {'match' if match else 'no match'}",
                    lambda engine=engine, action=action: engine.evaluate(action), samples)
                    for n, match, engine, action in cases})
            for n, match, _, _ in cases:
                by_round = sorted((f[(n, match)] for f in rounds), key=lambda f: f.p99_us)
                growths = sorted(f[(n, match)].p99_us / f[(SCALING_SIZES[0], match)].p99_us for f in rounds)
                target = TOOL_KEYED_P99_US if shape == "tool-keyed" else (None if match else PATTERN_NO_MATCH_P99_US)
                rows.append(Scaled(shape, n, match, by_round[len(by_round) // 2], target,
                                   growths[len(growths) // 2], reference))
    return rows


def scaling_table(rows: list[Scaled]):
    """The rows as one rich table: each figure beside its target, with the ratio and the growth from 10 rules."""
    from rich.table import Table

    table = Table(title="yaml engine scaling (targets: issue 14; ratio = p99 ÷ target, ≤ 1 meets it)")
    refs = {r.shape: r.reference for r in rows if r.reference is not None}
    if refs:
        table.caption = "machine reference sum(range(100)) in the same run, p50 / p99 µs: " + ", ".join(
            f"before {shape} {ref.p50_us:.2f} / {ref.p99_us:.2f}" for shape, ref in refs.items()) + (
            f"; each size measured in {SCALING_ROUNDS} interleaved rounds, the median round shown")
    for col in ("rules", "shape", "action", "p50 µs", "p99 µs", "target p99 µs", "ratio", "p99 ÷ 10 rules (median round)"):
        table.add_column(col, justify="left" if col in ("shape", "action") else "right")
    for r in rows:
        growth = f"{r.growth:.2f}×"
        if r.shape == "pattern" and not r.match and r.rules == 1_000:
            growth += f" (target ≤ {PATTERN_GROWTH}×)"
        table.add_row(f"{r.rules:,}", r.shape, "match" if r.match else "no match", f"{r.figures.p50_us:,.2f}",
                      f"{r.figures.p99_us:,.2f}", "-" if r.target_p99_us is None else f"{r.target_p99_us:g}",
                      "-" if r.ratio is None else f"{r.ratio:.2f}×", growth)
    return table
