"""agt.runtime.trust: tiers, rings, score signals, decay with an injected clock, and the kill switch, on each
backend: this process (MemoryTrust) and Redis (RedisTrust on a real redis-server)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agt.action import Kind
from agt.runtime.trust import RING_KINDS, MemoryTrust, TrustChange, TrustManager, TrustRules, ring, tier

DAY = 86400.0


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture(params=["memory", "redis"])
def make(request):
    """Builds TrustManagers on this test's backend; the Redis ones share one key prefix, like replicas."""
    made: list[TrustManager] = []

    def build(**kw) -> TrustManager:
        if request.param == "redis":
            from agt.runtime.redis_trust import RedisTrust

            kw["backend"] = RedisTrust(request.getfixturevalue("redis_url"))
        made.append(TrustManager(**kw))
        return made[-1]

    yield build
    for tm in made:
        tm.close()


# --- tiers and rings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0, "untrusted"), (299, "untrusted"), (300, "limited"), (499, "limited"), (500, "standard"),
        (699, "standard"), (700, "trusted"), (899, "trusted"), (900, "privileged"), (1000, "privileged"),
    ],
)
def test_tier_boundaries(score, expected):
    assert tier(score) == expected


@pytest.mark.parametrize(
    ("score", "expected"),
    [(0, 3), (299, 3), (300, 2), (699, 2), (700, 1), (899, 1), (900, 0), (1000, 0)],
)
def test_ring_boundaries(score, expected):
    assert ring(score) == expected


def test_ring_kinds_widen_toward_ring_zero():
    assert RING_KINDS[3] == {Kind.READ, Kind.MESSAGE}
    assert RING_KINDS[2] == {Kind.READ, Kind.WRITE, Kind.EXECUTE, Kind.NETWORK, Kind.MESSAGE}
    assert RING_KINDS[1] == set(Kind) - {Kind.DELEGATE}
    assert RING_KINDS[0] == set(Kind)


# --- signals ---------------------------------------------------------------------------------------


def test_unknown_agent_starts_at_initial_score(make):
    assert make(initial=420, baseline=420).score("new") == 420


def test_record_allowed_adds_promotion(make):
    tm = make(promotion=3, clock=Clock())
    assert tm.record_allowed("a") == 503
    assert tm.score("a") == 503


def test_record_denied_subtracts_demotion(make):
    tm = make(demotion=40, clock=Clock())
    assert tm.record_denied("a") == 460
    assert tm.score("a") == 460


def test_record_denied_clamps_at_zero(make):
    tm = make(demotion=25, clock=Clock())
    tm.set_score("a", 10)
    assert tm.record_denied("a") == 0
    assert tm.score("a") == 0


def test_record_allowed_clamps_at_1000(make):
    tm = make(promotion=5, clock=Clock())
    tm.set_score("a", 998)
    assert tm.record_allowed("a") == 1000
    assert tm.record_allowed("a") == 1000


def test_set_score_clamps_to_range(make):
    tm = make(clock=Clock())
    tm.set_score("low", -50)
    tm.set_score("high", 5000)
    assert (tm.score("low"), tm.score("high")) == (0, 1000)


# --- decay -----------------------------------------------------------------------------------------


def test_score_above_baseline_decays_per_idle_day(make):
    clock = Clock()
    tm = make(baseline=500, decay_per_day=10, clock=clock)
    tm.set_score("a", 600)
    clock.advance(DAY)
    assert tm.score("a") == 590
    clock.advance(3 * DAY)
    assert tm.score("a") == 560


def test_decay_never_goes_below_baseline(make):
    clock = Clock()
    tm = make(baseline=500, decay_per_day=10, clock=clock)
    tm.set_score("a", 600)
    clock.advance(365 * DAY)
    assert tm.score("a") == 500


def test_score_below_baseline_does_not_decay(make):
    clock = Clock()
    tm = make(baseline=500, decay_per_day=10, clock=clock)
    tm.set_score("a", 400)
    clock.advance(30 * DAY)
    assert tm.score("a") == 400


def test_positive_signal_restarts_decay_from_the_decayed_score(make):
    clock = Clock()
    tm = make(baseline=500, promotion=2, decay_per_day=10, clock=clock)
    tm.set_score("a", 600)
    clock.advance(2 * DAY)
    assert tm.record_allowed("a") == 582  # 600 - 20 + 2
    clock.advance(DAY)
    assert tm.score("a") == 572


# --- kill switch -----------------------------------------------------------------------------------


def test_kill_one_agent_blocks_only_that_agent(make):
    tm = make()
    tm.kill("a")
    assert tm.is_killed("a") is True
    assert tm.is_killed("b") is False


def test_kill_all_blocks_every_agent(make):
    tm = make()
    tm.kill()
    assert tm.is_killed("a") and tm.is_killed("never-seen")


def test_revive_agent_releases_it(make):
    tm = make()
    tm.kill("a")
    tm.revive("a")
    assert tm.is_killed("a") is False


def test_revive_all_releases_the_global_switch(make):
    tm = make()
    tm.kill()
    tm.revive()
    assert tm.is_killed("a") is False


# --- on_change -------------------------------------------------------------------------------------


def test_on_change_receives_trust_changes(make):
    clock = Clock(5000.0)
    seen: list[TrustChange] = []
    tm = make(promotion=2, demotion=25, clock=clock, on_change=seen.append)
    tm.record_allowed("a")
    tm.record_denied("a")
    assert seen == [
        TrustChange("a", 500, 502, "compliant call", 5000.0),
        TrustChange("a", 502, 477, "denied call", 5000.0),
    ]


def test_on_change_not_called_when_score_does_not_move(make):
    seen: list[TrustChange] = []
    tm = make(clock=Clock(), on_change=seen.append)
    tm.set_score("a", 1000)
    seen.clear()
    tm.record_allowed("a")
    assert seen == []


# --- decay skipped within the still time: the same scores as the arithmetic it skips ------------------------------


class ArithmeticRules(TrustRules):
    """TrustRules.decayed as it was before the still time: the arithmetic on every read."""

    def decayed(self, stored: tuple[float, float] | None, now: float) -> int:
        if stored is None:
            return int(self.initial)
        score, at = stored
        if score > self.baseline:
            idle_days = (now - at) / 86400
            score = max(float(self.baseline), score - int(idle_days * self.decay_per_day))
        return int(score)


def _outcome(fn):
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - both must fail alike (int() of an infinite or NaN decay)
        return type(exc)


_decays = st.one_of(st.sampled_from([10.0, 10, 1, 0, 0.0, -10.0, -3, 0.5, 1e-300, 5e-324, 1e300, 1e308,
                                     float("inf"), float("-inf"), float("nan"), 10**400, Decimal(10)]),
                    st.floats(allow_nan=True, allow_infinity=True))


@st.composite
def _idle(draw, decay_per_day):
    """Idle seconds anywhere, and close to where a point (or a quarter of one) of decay is reached."""
    anywhere = st.floats(allow_nan=True, allow_infinity=True)
    if not isinstance(decay_per_day, float | int) or decay_per_day == 0 or not abs(decay_per_day) < float("inf"):
        return draw(anywhere)
    point = 86400 / abs(decay_per_day)
    near = st.builds(lambda k, nudge, sign: sign * k * point * (1 + nudge), st.sampled_from([0.25, 0.5, 1, 2, 3]),
                     st.sampled_from([-1e-12, -1e-16, 0.0, 1e-16, 1e-12]), st.sampled_from([1, -1]))
    return draw(st.one_of(anywhere, near, st.just(0.0)))


@settings(max_examples=3000, deadline=None)
@given(st.data(), _decays, st.one_of(st.integers(0, 1000).map(float), st.floats(0, 1000)), st.integers(0, 1000),
       st.sampled_from([0.0, 1_000_000.0, 1.7e9]))
def test_decayed_equals_the_arithmetic_on_every_read(data, decay_per_day, score, baseline, at):
    idle = data.draw(_idle(decay_per_day))
    now = at + idle
    rules = TrustRules(baseline=baseline, decay_per_day=decay_per_day)
    reference = ArithmeticRules(baseline=baseline, decay_per_day=decay_per_day)
    assert _outcome(lambda: rules.decayed((score, at), now)) == _outcome(lambda: reference.decayed((score, at), now))


_ops = st.lists(st.one_of(
    st.tuples(st.just("wait"), st.sampled_from([0.0, 0.0, 1.0, 2159.0, 2160.0, 8640.0, 86400.0, 5 * 86400.0, -8640.0])),
    st.tuples(st.just("allowed"), st.sampled_from(["a", "b"])),
    st.tuples(st.just("denied"), st.sampled_from(["a", "b"])),
    st.tuples(st.just("set"), st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([0, 450, 501, 699, 998, 1000]))),
    st.tuples(st.just("score"), st.sampled_from(["a", "b", "never"])),
), max_size=60)


@settings(max_examples=500, deadline=None)
@given(_ops, st.sampled_from([10.0, 1.0, 0.0, 250.0, -10.0]), st.sampled_from([2, 7]))
def test_manager_keeps_the_scores_and_times_the_arithmetic_kept(ops, decay_per_day, promotion):
    clock = Clock()
    seen: list[TrustChange] = []
    expected: list[TrustChange] = []
    tm = TrustManager(decay_per_day=decay_per_day, promotion=promotion, clock=clock, on_change=seen.append)
    ref = TrustManager(decay_per_day=decay_per_day, promotion=promotion, clock=clock, on_change=expected.append)
    ref.rules = ArithmeticRules(ref.initial, ref.baseline, ref.promotion, ref.demotion, ref.decay_per_day)
    for op, arg in ops:
        if op == "wait":
            clock.advance(arg)
        elif op == "allowed":
            assert tm.record_allowed(arg) == ref.record_allowed(arg)
        elif op == "denied":
            assert tm.record_denied(arg) == ref.record_denied(arg)
        elif op == "set":
            tm.set_score(*arg)
            ref.set_score(*arg)
        else:
            assert tm.score(arg) == ref.score(arg)
        assert isinstance(tm.backend, MemoryTrust) and tm.backend._scores == ref.backend._scores
        assert seen == expected
