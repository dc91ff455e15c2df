"""What the pages count and plot, computed from feed rows: filters, decisions per minute by effect, top
denying rules, latency percentiles, trust over time."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping

from agt.serve.dashboard.feed import Row

EFFECTS = ("allow", "require_approval", "deny")


@dataclass(frozen=True)
class Filters:
    """The stream's filters; an empty field matches everything."""

    agent: str = ""
    tool: str = ""
    effect: str = ""
    rule: str = ""
    kind: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> "Filters":
        return cls(*(str(query.get(name, "") or "")[:200] for name in ("agent", "tool", "effect", "rule", "kind")))

    def matches(self, row: Row) -> bool:
        return ((not self.agent or row.agent == self.agent) and (not self.tool or row.tool == self.tool)
                and (not self.effect or row.effect == self.effect) and (not self.rule or self.rule in row.rules)
                and (not self.kind or row.kind == self.kind))

    def query(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


def decisions(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if r.kind == "decision"]


def per_minute(rows: Iterable[Row], now: float, minutes: int = 30) -> list[tuple[float, dict[str, int]]]:
    """The last ``minutes`` whole minutes up to ``now``: (minute start, effect → decisions)."""
    end = math.floor(now / 60) * 60
    start = end - (minutes - 1) * 60
    buckets: list[tuple[float, dict[str, int]]] = [(start + i * 60, dict.fromkeys(EFFECTS, 0)) for i in range(minutes)]
    for row in decisions(rows):
        i = int((row.at - start) // 60)
        if 0 <= i < minutes and row.effect in EFFECTS:
            buckets[i][1][row.effect] += 1
    return buckets


def top_denying(rows: Iterable[Row], n: int = 10) -> list[tuple[str, int]]:
    """The rules behind the most denials, most first (a denial with several reasons counts for each)."""
    counts: Counter[str] = Counter()
    for row in decisions(rows):
        if row.effect == "deny":
            counts.update(set(row.rules))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (not empty)."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_percentiles(rows: Iterable[Row]) -> dict[str, dict[str, float]]:
    """Gate → {count, p50, p90, p99} of the decision records' latency (µs, from gates to the record)."""
    by_gate: dict[str, list[float]] = {}
    for row in decisions(rows):
        if row.latency_us is not None:
            by_gate.setdefault(row.gate or "?", []).append(row.latency_us)
            by_gate.setdefault("all", []).append(row.latency_us)
    out = {}
    for gate, values in sorted(by_gate.items()):
        values.sort()
        out[gate] = {"count": float(len(values)), **{f"p{p}": percentile(values, p) for p in (50, 90, 99)}}
    return out


def trust_history(rows: Iterable[Row], agent: str) -> list[tuple[float, int]]:
    """(time, score) after each recorded trust change of ``agent``, oldest first."""
    out = []
    for row in rows:
        if row.kind == "trust" and row.agent == agent:
            score = (row.record.get("result") or {}).get("to")
            if isinstance(score, int) and not isinstance(score, bool):
                out.append((row.at, score))
    return out


def killed_in_log(rows: Iterable[Row], agent: str) -> bool | None:
    """The kill switch for ``agent`` as the log last recorded it (the agent's own switch or the one for all),
    or None when the log records none."""
    state: dict[str, bool] = {}
    for row in rows:
        if row.kind == "kill_switch":
            result = row.record.get("result") or {}
            scope = result.get("scope")
            if isinstance(scope, str) and isinstance(result.get("killed"), bool):
                state[scope] = result["killed"]
    if agent not in state and "all" not in state:
        return None
    return state.get(agent, False) or state.get("all", False)


def agents(rows: Iterable[Row]) -> list[str]:
    return sorted({r.agent for r in rows if r.agent and r.agent != "*"})


def tasks_of(rows: Iterable[Row], agent: str) -> list[str]:
    """The agent's tasks, most recently used last."""
    seen: dict[str, None] = {}
    for row in rows:
        if row.agent == agent and row.task:
            seen.pop(row.task, None)
            seen[row.task] = None
    return list(seen)
