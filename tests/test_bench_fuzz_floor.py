"""The fuzz's CPU floor beside its wall (bench/opa.py): how much CPU the fuzz takes, in this process and in OPA's."""

from __future__ import annotations

import math
import os
import time

from bench.opa import fuzz_floor
from bench.stats import cpu_seconds
from bench.summary import rows

_NO_SUCH_PID = 2**31 - 1  # above any Linux pid_max


def test_cpu_seconds_counts_the_cpu_a_process_burns() -> None:
    before = cpu_seconds(os.getpid())
    start = time.process_time()
    while time.process_time() - start < 0.3:
        sum(range(1000))
    assert cpu_seconds(os.getpid()) - before >= 0.25  # /proc counts in clock ticks, 0.01 s here


def test_cpu_seconds_of_no_process_is_nan() -> None:
    assert math.isnan(cpu_seconds(_NO_SUCH_PID))
    assert math.isnan(cpu_seconds(None))


def test_the_floor_is_this_process_cpu_when_the_gil_bounds_the_wall() -> None:
    assert fuzz_floor(cpu=8.0, opa_cpu=4.0, cores=2) == 8.0


def test_the_floor_is_all_cpu_over_the_cores_when_the_cores_bound_the_wall() -> None:
    assert fuzz_floor(cpu=8.0, opa_cpu=10.0, cores=2) == 9.0


def test_the_floor_is_unknown_without_the_opa_servers_cpu() -> None:
    assert math.isnan(fuzz_floor(cpu=8.0, opa_cpu=float("nan"), cores=2))


def _fuzz_row(extra: dict[str, float]):
    return next(r for r in rows([], extra) if r.workload == "fuzz 10k × 3 engines, wall")


def test_the_summary_names_the_fuzz_floor_beside_the_wall() -> None:
    extra = {"fuzz_seconds": 9.0, "fuzz_actions": 10_000, "fuzz_cpu_seconds": 8.4, "fuzz_opa_cpu_seconds": 5.5,
             "fuzz_cores": 2, "fuzz_floor_seconds": 8.4}
    row = _fuzz_row(extra)
    assert "CPU: agt 8.4 s (one GIL) + opa 5.5 s on 2 cores: floor 8.4 s" in row.note
    assert row.met is False  # the floor explains the wall; it does not pass it


def test_the_summary_leaves_the_floor_out_when_it_was_not_measured() -> None:
    row = _fuzz_row({"fuzz_seconds": 5.0, "fuzz_actions": 10_000, "fuzz_floor_seconds": float("nan")})
    assert "floor" not in row.note
    assert row.met is True
