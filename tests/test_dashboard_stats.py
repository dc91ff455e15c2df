"""What the dashboard counts and plots, from rows built as the audit log stores records."""

from __future__ import annotations

from typing import Any

from agt.serve.dashboard.feed import to_row
from agt.serve.dashboard.stats import (
    Filters, killed_in_log, latency_percentiles, per_minute, percentile, top_denying, trust_history,
)

T0 = 1_796_000_040.0  # a whole minute


def _ts(seconds: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decision(seq: int, at: float, effect: str, rules: list[str], tool: str = "t", agent: str = "a", latency: float = 100.0,
             enforced: str | None = None, error: str | None = None) -> Any:
    result: dict[str, Any] = {"effect": effect, "reasons": [{"id": r, "message": ""} for r in rules],
                              "enforced": enforced or effect}
    if error:
        result["tool_error"] = error
    return to_row({"seq": seq, "timestamp": _ts(at), "kind": "decision", "agent_id": agent, "path": "policy",
                   "input": {"action": {"tool": tool, "params": {}}}, "result": result, "metrics": {"latency_us": latency}}, seq)


def test_per_minute_counts_each_effect_in_its_minute() -> None:
    rows = [decision(0, T0 + 1, "allow", ["default"]), decision(1, T0 + 59, "deny", ["r"]), decision(2, T0 + 61, "deny", ["r"])]
    buckets = per_minute(rows, now=T0 + 61, minutes=2)
    assert [(start, c["allow"], c["deny"]) for start, c in buckets] == [(T0, 1, 1), (T0 + 60, 0, 1)]


def test_per_minute_leaves_out_decisions_older_than_the_window() -> None:
    buckets = per_minute([decision(0, T0 - 3600, "deny", ["r"])], now=T0, minutes=30)
    assert sum(c["deny"] for _, c in buckets) == 0


def test_top_denying_ranks_rules_by_denials_and_ignores_allows() -> None:
    rows = [decision(0, T0, "deny", ["a"]), decision(1, T0, "deny", ["b", "a"]), decision(2, T0, "allow", ["b"])]
    assert top_denying(rows) == [("a", 2), ("b", 1)]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile([7.0], 99)) == (50.0, 99.0, 7.0)


def test_latency_percentiles_are_per_gate_and_overall() -> None:
    rows = [decision(i, T0, "allow", ["default"], latency=float(i + 1)) for i in range(10)]
    lat = latency_percentiles(rows)
    assert lat["all"]["p50"] == 5.0 and lat["policy"]["p90"] == 9.0 and lat["all"]["count"] == 10


def test_outcome_tells_a_tool_that_ran_from_one_that_was_denied_or_failed() -> None:
    assert decision(0, T0, "allow", []).outcome == "ran"
    assert decision(0, T0, "deny", []).outcome == "denied"
    assert decision(0, T0, "allow", [], error="ValueError: x").outcome == "failed"
    assert decision(0, T0, "allow", [], error="not run: skipped").outcome == "not run"
    assert decision(0, T0, "require_approval", [], enforced="require_approval").outcome == "ran"


def test_filters_match_agent_tool_effect_and_rule_together() -> None:
    row = decision(0, T0, "deny", ["block-x"], tool="drop_table", agent="bot")
    assert Filters(agent="bot", tool="drop_table", effect="deny", rule="block-x").matches(row)
    assert not Filters(rule="other").matches(row)
    assert not Filters(agent="someone").matches(row)


def test_a_record_of_any_shape_becomes_a_row() -> None:
    row = to_row({"kind": 7, "result": "not a mapping", "metrics": {"latency_us": True}, "input": ["x"]}, 3)
    assert (row.seq, row.kind, row.effect, row.latency_us, row.tool) == (3, "7", "", None, "")


def test_trust_history_and_the_kill_switch_come_from_their_records() -> None:
    def rec(seq: int, kind: str, result: dict, agent: str = "a") -> Any:
        return to_row({"seq": seq, "timestamp": _ts(T0 + seq), "kind": kind, "agent_id": agent, "result": result}, seq)

    rows = [rec(0, "trust", {"from": 500, "to": 750}), rec(1, "trust", {"from": 750, "to": 725}),
            rec(2, "kill_switch", {"killed": True, "scope": "a"}, agent="a")]
    assert [s for _, s in trust_history(rows, "a")] == [750, 725]
    assert killed_in_log(rows, "a") is True
    assert killed_in_log(rows, "b") is None
    rows.append(rec(3, "kill_switch", {"killed": True, "scope": "all"}, agent="*"))
    assert killed_in_log(rows, "b") is True
