"""The bench's statistics: a target figure is the median of its rounds, as issue 14 measured its figures."""

from __future__ import annotations

import math
from dataclasses import replace

from bench.stats import ROUNDS, Figures, measure, measure_rounds, median_of
from bench.summary import _beside, rows


def _round(p50: float, p99: float, mean: float, rate: float) -> Figures:
    return Figures("r", 100, p50, p99, mean, rate)


def test_median_of_takes_the_round_with_the_median_p50() -> None:
    out = median_of([_round(30, 60, 31, 900), _round(90, 200, 95, 300), _round(40, 70, 41, 800)], "x")
    assert out.p50_us == 40  # not the slow round's 90, nor the mean of the three


def test_median_of_takes_each_other_statistic_as_its_own_median() -> None:
    out = median_of([_round(30, 75, 31, 900), _round(90, 200, 95, 300), _round(40, 70, 41, 800)], "x")
    assert (out.p99_us, out.mean_us, out.per_second) == (75, 41, 800)


def test_median_of_names_the_figure_and_sums_the_samples() -> None:
    out = median_of([_round(1, 2, 1, 1)] * 3, "governed call")
    assert (out.name, out.samples) == ("governed call", 300)


def test_measure_rounds_runs_the_function_every_round() -> None:
    calls = []
    out = measure_rounds("count", lambda: calls.append(1), samples=50)
    warmups = 200 * ROUNDS  # measure()'s default warmup, once a round
    assert len(calls) == 50 * ROUNDS + warmups
    assert out.samples == 50 * ROUNDS


def test_measure_rounds_keeps_the_reference_taken_beside_it() -> None:
    out = measure_rounds("noop", lambda: None, samples=10)
    assert out.reference_us > 0  # a number, not the NaN of a figure measured without one


def test_median_of_takes_the_median_reference() -> None:
    rounds = [replace(_round(1, 2, 1, 1), reference_us=r) for r in (0.9, 1.8, 1.0)]
    assert median_of(rounds, "x").reference_us == 1.0


def test_the_summary_note_names_the_reference_beside_the_figure() -> None:
    assert _beside(60.0, 2.0) == "ref 2.00 µs beside it"


def test_the_summary_note_is_empty_without_a_reference() -> None:
    assert _beside(60.0, float("nan")) == ""
    assert _beside(None, 1.0) == ""


def test_the_summary_judges_the_figure_as_measured_whatever_the_reference() -> None:
    slow_machine = Figures("runtime: governed call, yaml engine, memory store", 1, 50.0, 70.0, 50.0, 1.0, 2.0)
    row = next(r for r in rows([slow_machine], {}) if r.workload == "governed call, yaml, memory p50")
    assert row.met is False  # a slow machine explains a figure, it does not pass it
    assert row.note == "ref 2.00 µs beside it"


def test_a_reference_is_interleaved_only_when_asked_for() -> None:
    assert math.isnan(measure("plain", lambda: None, 10).reference_us)
    assert measure("beside", lambda: None, 10, with_reference=True).reference_us > 0
