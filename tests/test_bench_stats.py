"""The bench's statistics: a target figure is the median of its rounds, as issue 14 measured its figures."""

from __future__ import annotations

from bench.stats import ROUNDS, Figures, measure_rounds, median_of


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
