"""agt.runtime.redis_state, redis_trust and _redis: what only the Redis stores do, on a real redis-server.

The behaviours every store shares (counters, rate windows, approvals, trust) are tested once, over every
store, in test_runtime_state.py, test_runtime_approvals.py and test_runtime_trust.py."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from approval_helpers import Approvers, stored_call
from hypothesis import given, settings
from hypothesis import strategies as st
from redis_server import RedisServer

from agt.errors import AgtError, GovernanceDenied
from agt.runtime import Governor
from agt.runtime._redis import RedisConfig, redact, token
from agt.runtime.approvals import (
    MAX_VOTES,
    ApprovalError,
    ApprovalStatus,
    Terms,
    new_request,
    tally,
)
from agt.runtime.backends import open_state
from agt.runtime.redis_state import RedisApprovals, RedisStore
from agt.runtime.redis_trust import RedisTrust
from agt.runtime.state import Counters, RateLimit, StateUnavailable
from agt.runtime.trust import TrustManager, TrustRules

# --- the URL -----------------------------------------------------------------------------------------


def test_url_options_are_taken_out_before_redis_py_sees_the_url():
    c = RedisConfig.from_url("redis://h:6379/2?prefix=team-a&timeout=0.5&horizon=60&kill_staleness=0&counter_ttl=3600"
                             "&health_check_interval=5")
    assert (c.prefix, c.timeout, c.horizon, c.kill_staleness, c.counter_ttl) == ("team-a", 0.5, 60.0, 0.0, 3600.0)
    assert c.url == "redis://h:6379/2?health_check_interval=5"


def test_a_password_never_appears_in_what_is_shown():
    c = RedisConfig.from_url("redis://agt:s3cret@h:6379/0?prefix=p")
    assert "s3cret" not in c.display and "s3cret" not in repr(c)
    assert c.display == "redis://agt:***@h:6379/0?prefix=p"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"


def test_a_password_file_keeps_the_password_out_of_the_url(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    c = RedisConfig.from_url(f"redis://agt@h:6379/0?password_file={secret}")
    assert c.password == "from-a-file" and "from-a-file" not in c.display


@pytest.mark.parametrize(("url", "says"), [
    ("redis:///0", "name the Redis host"),
    ("unix://", "name the socket"),
    ("redis://h/0?timeout=soon", "timeout must be a number"),
    ("redis://h/0?timeout=0", "timeout must be more than 0"),
    ("redis://h/0?prefix=", "prefix must be a non-empty word"),
    ("redis://h/0?kill_staleness=-1", "kill_staleness must be 0 or more"),
    ("redis://h/0?password_file=/nonexistent/pw", "cannot read password_file"),
])
def test_a_bad_redis_url_is_an_error_naming_it(url, says):
    with pytest.raises(AgtError, match=says):
        RedisConfig.from_url(url)


def test_two_prefixes_on_one_redis_are_two_deployments(redis_server):
    a, b = RedisStore(redis_server.unique_url()), RedisStore(redis_server.unique_url())
    a.reserve("t", 3, 0)
    assert b.counters("t") == Counters(0, 0, 0)
    a.close()
    b.close()


def test_a_unix_socket_url_reaches_redis(redis_binary, tmp_path):
    sock = tmp_path / "redis.sock"
    server = RedisServer(redis_binary, tmp_path / "r", unix_socket=sock).start()
    try:
        store = RedisStore(f"unix://{sock}?db=0&prefix=u")
        assert store.reserve("t", 1, 0) == Counters(0, 1, 0)
        store.close()
    finally:
        server.stop()


# --- credentials: Redis AUTH and ACL users ------------------------------------------------------------


@pytest.fixture
def guarded(redis_binary, tmp_path):
    server = RedisServer(redis_binary, tmp_path / "auth", password="admin-secret").start()
    admin = server.client()
    # The sidecars' user may touch only its deployment's keys and channel; the agent has no credentials at all.
    admin.execute_command("ACL", "SETUSER", "agt", "on", ">sidecar-secret", "~agt:*", "&agt:*", "+@all", "-@admin",
                          "-@dangerous")  # as docs/scale-out.md recommends
    yield server
    admin.close()
    server.stop()


def test_the_recommended_acl_user_runs_every_store_from_its_url(guarded):
    state = open_state(f"redis://agt:sidecar-secret@127.0.0.1:{guarded.port}/0?prefix=agt")
    try:
        assert state.store.reserve("t", 1, 0) == Counters(0, 1, 0)
        assert state.store.hit_rate("k", RateLimit(1, 60.0)) == (True, 1)
        guarded.client().script_flush()  # scripts loaded again (SCRIPT LOAD) under this user
        assert state.store.reserve("t", 1, 0) == Counters(0, 2, 0)
        state.approvals.create(_request())
        assert len(state.approvals.list()) == 1
        state.trust.kill("a")
        assert state.trust.is_killed("a")
        deadline = time.monotonic() + 30
        while not state.trust.backend.subscribed:  # pub/sub on its own channel
            assert time.monotonic() < deadline, "no subscription under the ACL user"
            time.sleep(0.01)
    finally:
        state.close()


def test_without_credentials_a_guarded_redis_denies_the_call_naming_authentication(root, guarded):
    state = open_state(f"redis://127.0.0.1:{guarded.port}/0?prefix=agt")
    gov = Governor("yaml", str(root / "policies" / "starter.yaml"), store=state.store, approvals=state.approvals,
                   trust=state.trust)
    with pytest.raises(GovernanceDenied) as caught:
        gov.call(lambda: None, tool="read_doc", agent="a")
    assert caught.value.rule_ids == ("state-unavailable",) and "AuthenticationError" in str(caught.value)
    state.close()


def test_an_acl_user_cannot_write_outside_its_prefix(guarded):
    store = RedisStore(f"redis://agt:sidecar-secret@127.0.0.1:{guarded.port}/0?prefix=other")
    with pytest.raises(StateUnavailable, match="NoPermissionError"):
        store.reserve("t", 1, 0)
    store.close()


# --- the scripts: once-markers, retries, NOSCRIPT ------------------------------------------------------


@pytest.fixture
def store(redis_url):
    s = RedisStore(redis_url)
    yield s
    s.close()


def _marker(s: RedisStore, once: str) -> str:
    return s.config.key("op", once)


def test_a_counter_write_retried_under_its_marker_is_applied_once(store):
    once = token()
    store._add("t", 0, 1, 0, once)  # noqa: SLF001 - the script a retry runs again
    assert store._add("t", 0, 1, 0, once) == Counters(0, 1, 0)  # noqa: SLF001


def test_cancelling_an_applied_reservation_undoes_it_once(store):
    once = token()
    store._add("t", 0, 1, 1, once)  # noqa: SLF001
    for _ in range(2):
        store._cancel(keys=[store._key("t"), _marker(store, once)], args=[0, 1, 1, 60_000])  # noqa: SLF001
    assert store.counters("t") == Counters(0, 0, 0)


def test_a_cancelled_reservation_that_arrives_late_is_not_applied(store):
    once = token()
    store._cancel(keys=[store._key("t"), _marker(store, once)], args=[0, 1, 0, 60_000])  # noqa: SLF001
    store._add("t", 0, 1, 0, once)  # noqa: SLF001 - the reservation reaching Redis after its undo
    assert store.counters("t") == Counters(0, 0, 0)


def test_a_rate_event_retried_with_its_member_is_counted_once(store):
    key, limit = store.config.key("rate", "k"), RateLimit(2, 10.0)
    args = ["100.0", repr(limit.window_seconds), limit.count, "event-1"]
    assert store._hit_rate(keys=[key], args=args) == [1, 1]  # noqa: SLF001
    assert store._hit_rate(keys=[key], args=args) == [1, 1]  # noqa: SLF001
    assert store.hit_rate("k", limit, now=100.5) == (True, 2)


def test_without_a_given_time_the_rate_window_uses_the_redis_servers_clock(store):
    limit = RateLimit(2, 3600.0)
    assert [store.hit_rate("k", limit) for _ in range(3)] == [(True, 1), (True, 2), (False, 2)]


def test_scripts_are_loaded_again_after_redis_forgets_them(store, redis_server):
    store.reserve("t", 1, 0)
    redis_server.client().script_flush()
    assert store.reserve("t", 1, 0) == Counters(0, 2, 0)


def test_counter_ttl_expires_a_tasks_counters_after_their_last_change(redis_server):
    s = RedisStore(redis_server.unique_url(counter_ttl="60"))
    s.reserve("t", 1, 0)
    assert 0 < redis_server.client().pttl(s.config.key("counters", "t")) <= 60_000
    s.close()


def test_a_once_marker_lives_for_the_horizon(redis_server):
    s = RedisStore(redis_server.unique_url(horizon="30"))
    once = token()
    s._add("t", 0, 1, 0, once)  # noqa: SLF001
    assert 0 < redis_server.client().pttl(_marker(s, once)) <= 30_000
    s.close()


# --- approvals: an untrusted store, bounded reads ----------------------------------------------------

APPROVERS = Approvers("alice")


@pytest.fixture
def approvals(redis_url):
    s = RedisApprovals(redis_url)
    yield s
    s.close()


def _request(now: float | None = None):
    return new_request("agent", "send_email", ("email-approval",), ("alice",), 1, 60.0, stored_call("agent"),
                       time.time() if now is None else now)


def test_a_malformed_stored_request_is_an_approval_error(approvals, redis_server):
    req = _request()
    approvals.create(req)
    redis_server.client().set(approvals._keys(req.id)[0], b'{"id": "x"')  # noqa: SLF001 - an agent edits Redis
    with pytest.raises(ApprovalError, match="malformed"):
        approvals.get(req.id)


def test_a_request_stored_under_another_id_is_refused(approvals, redis_server):
    a, b = _request(), _request()
    approvals.create(a)
    approvals.create(b)
    client = redis_server.client()
    client.set(approvals._keys(b.id)[0], client.get(approvals._keys(a.id)[0]))  # noqa: SLF001
    with pytest.raises(ApprovalError, match="it says it is"):
        approvals.get(b.id)


def test_a_malformed_stored_vote_is_ignored_with_a_reason(approvals, redis_server):
    req = _request()
    approvals.create(req)
    redis_server.client().rpush(approvals._keys(req.id)[1], b"not json")  # noqa: SLF001
    stored = approvals.get(req.id)
    result = tally(Terms.of(stored), stored.votes, APPROVERS.registry, time.time())
    assert result.status is ApprovalStatus.PENDING and "malformed" in result.ignored[0]


def test_votes_are_bounded_when_read_and_when_written(approvals, redis_server):
    req = _request()
    approvals.create(req)
    junk = [json.dumps({"junk": i}) for i in range(MAX_VOTES + 1)]
    redis_server.client().rpush(approvals._keys(req.id)[1], *junk)  # noqa: SLF001 - a flood written straight to Redis
    redis_server.client().rpush(approvals._keys(req.id)[1], *junk)  # noqa: SLF001
    assert len(approvals.get(req.id).votes) == MAX_VOTES + 1
    with pytest.raises(ApprovalError, match="no more are kept"):
        APPROVERS.vote(approvals, req.id, "alice")


def test_an_unknown_or_odd_request_id_is_no_request(approvals):
    for rid in ("apr_missing", "x:votes", "*"):
        with pytest.raises(ApprovalError, match="no approval request"):
            approvals.get(rid)
        with pytest.raises(ApprovalError, match="no approval request"):
            approvals.consume(rid, time.time())


def test_creating_a_different_request_under_a_taken_id_is_refused(approvals):
    from dataclasses import replace

    req = _request()
    approvals.create(req)
    approvals.create(req)  # the same request again (a retried write) is fine
    with pytest.raises(ApprovalError, match="already exists"):
        approvals.create(replace(req, tool="other"))


def test_a_request_and_its_votes_expire_after_the_retention(redis_server):
    s = RedisApprovals(redis_server.unique_url(approval_retention="100"))
    req = _request()
    s.create(req)
    APPROVERS.vote(s, req.id, "alice")
    s.consume(req.id, time.time())
    client = redis_server.client()
    for key in s._keys(req.id):  # noqa: SLF001
        assert 0 < client.pttl(key) <= (60 + 100) * 1000
    s.close()


def test_list_forgets_requests_whose_retention_ended(approvals, redis_server):
    req, gone = _request(), _request()
    approvals.create(req)
    approvals.create(gone)
    redis_server.client().delete(approvals._keys(gone.id)[0])  # noqa: SLF001 - as its TTL would
    assert [r.id for r in approvals.list()] == [req.id]
    assert redis_server.client().zcard(approvals._index) == 1  # noqa: SLF001


# --- trust: the Lua decay is TrustRules.decayed --------------------------------------------------------


@pytest.fixture(scope="module")
def trust_backend(redis_server):
    backend = RedisTrust(redis_server.unique_url(), listen=False)
    yield backend
    backend.close()


@settings(max_examples=150, deadline=None)
@given(score=st.integers(0, 1000), idle=st.floats(-3 * 86400, 400 * 86400, allow_nan=False),
       baseline=st.integers(0, 1000), decay=st.floats(0, 100, allow_nan=False), delta=st.integers(-50, 50))
def test_the_redis_decay_and_clamp_agree_with_trust_rules(trust_backend, score, idle, baseline, decay, delta):
    rules, agent, at = TrustRules(initial=500, baseline=baseline, decay_per_day=decay), f"a{uuid.uuid4().hex}", 1_000_000.0
    trust_backend.put(agent, score, rules, at)
    expected_old = rules.decayed((float(score), at), at + idle)
    assert trust_backend.adjust(agent, delta, rules, at + idle) == (expected_old, max(0, min(1000, expected_old + delta)))


def test_a_trust_manager_on_redis_is_shared_by_replicas(redis_url):
    one, other = TrustManager(backend=RedisTrust(redis_url)), TrustManager(backend=RedisTrust(redis_url))
    one.record_denied("a")
    assert other.score("a") == 500 - other.demotion and other.known("a")
    one.close()
    other.close()
