"""`python -m bench --quick --only throughput --json` runs and reports what it should (about 6 s).

Shape only: no figure here is a speed assertion. Exactness of the shared counters is a property agt
promises, so that one flag is asserted."""

import json
import subprocess
import sys

from bench import summary
from bench.stats import Figures


def test_throughput_section_runs_and_reports_its_keys(root):
    out = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "throughput", "--json"],
                         cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert {"reference_us", "figures", "extra", "throughput", "summary"} <= report.keys()
    rows = {(r["kind"], r["workers"]): r for r in report["throughput"]}
    assert set(rows) == {("threads", n) for n in (1, 2, 4, 8, 32)} | {("processes", n) for n in (1, 2)}
    for r in rows.values():
        assert {"calls", "seconds", "per_second", "p50_us", "p99_us", "baseline_ratio", "counted", "exact"} <= r.keys()
        assert r["exact"], r  # every call counted exactly once, in the store and (threads) in the audit
    extra = report["extra"]
    for kind, n in rows:
        for suffix in ("calls_per_s", "p50_us", "p99_us", "ratio", "exact"):
            assert f"throughput_{kind}_{n}_{suffix}" in extra
    assert extra["throughput_counters_exact"] == 1.0
    assert rows[("threads", 1)]["baseline_ratio"] == 1.0


def test_summary_says_not_measured_rather_than_inventing():
    rows = summary.rows([], {}, [])
    assert rows and all(r.measured == summary.NOT_MEASURED and r.met is None for r in rows)
    fig = Figures("runtime: governed call, yaml engine, memory store", 10, 25.0, 70.0, 30.0, 1.0)
    by_name = {r.workload: r for r in summary.rows([fig], {"opa_single_over_floor_tcp": 1.5}, [])}
    assert by_name["governed call, yaml, memory p50"].met is True
    assert by_name["governed call, yaml, memory p99"].met is False
    assert by_name["opa single ÷ raw POST, TCP"].mark == "✗"


def test_exactness_check_sees_a_lost_update():
    from agt.runtime import MemoryStore
    from bench import throughput

    store = MemoryStore()
    expected = throughput._expected(31, 15)  # tasks of 15, 15 and 1 calls
    assert expected == {0: 15, 1: 15, 2: 1}
    for k, n in expected.items():
        for _ in range(n):
            store.reserve(f"x-{k}", 1, 0)
    assert throughput._check(store, "x", expected) == (31, 0)
    store.release("x-1", 1, 0)  # one update lost
    assert throughput._check(store, "x", expected) == (30, 1)
