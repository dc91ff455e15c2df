"""agt.runtime.trust: tiers, rings, score signals, decay with an injected clock, and the kill switch, on each
backend: this process (MemoryTrust) and Redis (RedisTrust on a real redis-server)."""

from __future__ import annotations

import pytest

from agt.action import Kind
from agt.runtime.trust import RING_KINDS, TrustChange, TrustManager, ring, tier

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
