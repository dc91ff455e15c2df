"""Trust scores and the kill switch in Redis: the :class:`~agt.runtime.trust.TrustBackend` every replica shares.

Scores move by one Lua script that applies :class:`~agt.runtime.trust.TrustRules` atomically (decay, the signal,
the clamp), under a once-marker like the counters. The kill switch is two keys and a version; setting it
publishes on a channel.

**Checked on every decision.** Each replica keeps a local view of the switch, fed by pub/sub: a listener
thread subscribes, then reads the whole switch, and reads it again on every message. It sends a PING on the
subscription every ``kill_staleness / 4`` seconds. Redis answers on the same connection, after every message
published before the PING; so when the answer arrives, the view holds every change published before the PING
was sent. ``is_killed`` uses the view only while the last answered PING was sent less than ``kill_staleness``
seconds ago (0.5 s by default); otherwise (the subscription dropped, Redis stalled, the listener starved) it
reads Redis itself, and if Redis cannot be read it raises StateUnavailable, so the call is denied. A kill set
through one replica therefore stops calls on every other within ``kill_staleness`` plus one round trip.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from agt.runtime._redis import (
    Deferred,
    RedisConfig,
    ScriptCall,
    connect,
    redis_errors,
    token,
    unavailable,
)
from agt.runtime.trust import TrustRules

_log = logging.getLogger("agt.runtime.redis")

# Decay exactly as TrustRules.decayed: Python's int() truncates toward zero (idle time can be negative when
# clocks disagree), and scores are whole numbers. KEYS: trust hash, once-marker ('' for none).
# ARGV: mode ('put' | 'adjust'), value (score or delta), now, initial, baseline, decay_per_day, marker ttl ms.
# Returns {old, new}.
TRUST = """
local function trunc(x) if x >= 0 then return math.floor(x) else return math.ceil(x) end end
local now = tonumber(ARGV[3])
local stored = redis.call('HMGET', KEYS[1], 'score', 'at')
local old
if not stored[1] then
  old = trunc(tonumber(ARGV[4]))
else
  local score, baseline = tonumber(stored[1]), tonumber(ARGV[5])
  if score > baseline then
    local idle_days = (now - tonumber(stored[2])) / 86400
    score = math.max(baseline, score - trunc(idle_days * tonumber(ARGV[6])))
  end
  old = trunc(score)
end
if KEYS[2] ~= '' and not redis.call('SET', KEYS[2], 'applied', 'NX', 'PX', ARGV[7]) then
  return {old, old}
end
local new
if ARGV[1] == 'put' then new = tonumber(ARGV[2]) else new = math.max(0, math.min(1000, old + tonumber(ARGV[2]))) end
redis.call('HSET', KEYS[1], 'score', new, 'at', ARGV[3])
return {old, new}
"""

# KEYS: all-agents flag, killed-agents set, version. ARGV: channel, 'kill' | 'revive', agent id ('' = every agent).
KILL = """
if ARGV[3] == '' then
  if ARGV[2] == 'kill' then redis.call('SET', KEYS[1], '1') else redis.call('DEL', KEYS[1]) end
else
  if ARGV[2] == 'kill' then redis.call('SADD', KEYS[2], ARGV[3]) else redis.call('SREM', KEYS[2], ARGV[3]) end
end
local version = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[1], version)
return version
"""


class _KillView:
    """The local view of the switch, and how fresh it is (monotonic time it is known complete up to)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version = -1
        self.all = False
        self.agents: frozenset[str] = frozenset()
        self.fresh_as_of = float("-inf")

    def update(self, version: int, all_killed: bool, agents: frozenset[str]) -> None:
        with self.lock:
            if version >= self.version:  # a snapshot read before a newer change never undoes it
                self.version, self.all, self.agents = version, all_killed, agents


class RedisTrust:
    def __init__(self, config: RedisConfig | str, *, client: Any = None, listen: bool = True) -> None:
        self.config, self._redis = connect(config, client)
        self._trust = self._redis.register_script(TRUST)
        self._kill = self._redis.register_script(KILL)
        self._errors = redis_errors()
        self.deferred = Deferred(self._redis)
        self._last_seen: dict[str, int] = {}
        k = self.config.key
        self._kill_keys = [k("kill", "all"), k("kill", "agents"), k("kill", "version")]
        self._channel = k("kill")
        self.view = _KillView()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        if listen and self.config.kill_staleness > 0:
            self._listener = threading.Thread(target=self._listen, name="agt-kill-switch", daemon=True)
            self._listener.start()

    # scores -------------------------------------------------------------------------------------------
    def _key(self, agent_id: str) -> str:
        return self.config.key("trust", agent_id)

    def _call(self, agent_id: str, mode: str, value: int, rules: TrustRules, now: float, once: str) -> ScriptCall:
        return ScriptCall(self._trust, (self._key(agent_id), self.config.key("op", once) if once else ""),
                          (mode, value, repr(float(now)), rules.initial, rules.baseline, repr(float(rules.decay_per_day)),
                           max(1, int(self.config.horizon * 1000))))

    def _run(self, agent_id: str, mode: str, value: int, rules: TrustRules, now: float, once: str) -> tuple[int, int]:
        call = self._call(agent_id, mode, value, rules, now, once)
        old, new = call.script(keys=list(call.keys), args=list(call.args))
        self._last_seen[agent_id] = int(new)
        return int(old), int(new)

    def known(self, agent_id: str) -> bool:
        try:
            return bool(self._redis.exists(self._key(agent_id)))
        except self._errors as exc:
            unavailable(self.config, exc, f"reading the trust score of {agent_id!r}")

    def stored(self, agent_id: str) -> tuple[float, float] | None:
        try:
            self.deferred.flush()
            score, at = self._redis.hmget(self._key(agent_id), ["score", "at"])
        except self._errors as exc:
            unavailable(self.config, exc, f"reading the trust score of {agent_id!r}")
        if score is None or at is None:
            return None
        self._last_seen[agent_id] = int(float(score))
        return float(score), float(at)

    def put(self, agent_id: str, score: int, rules: TrustRules, now: float) -> int:
        try:
            return self._run(agent_id, "put", score, rules, now, "")[0]
        except self._errors as exc:
            unavailable(self.config, exc, f"setting the trust score of {agent_id!r}")

    def adjust(self, agent_id: str, delta: int, rules: TrustRules, now: float) -> tuple[int, int]:
        """Never raises: a signal that cannot reach Redis is deferred (applied once when Redis returns), and
        reported as no change now, so no trust change is recorded that has not happened."""
        once = token()
        try:
            self.deferred.flush()
            return self._run(agent_id, "adjust", delta, rules, now, once)
        except self._errors:
            self.deferred.defer(f"trust signal {delta:+d} for {agent_id!r}",
                                self._call(agent_id, "adjust", delta, rules, now, once), self.config.horizon)
            seen = self._last_seen.get(agent_id, rules.initial)
            return seen, seen

    # kill switch --------------------------------------------------------------------------------------
    def _switch(self, what: str, agent_id: str | None) -> None:
        try:
            version = self._kill(keys=self._kill_keys, args=[self._channel, what, agent_id or ""])
        except self._errors as exc:
            unavailable(self.config, exc, f"{'setting' if what == 'kill' else 'releasing'} the kill switch")
        with self.view.lock:  # this replica sees its own change at once, before the message comes back
            if int(version) > self.view.version:
                self.view.version = int(version)
                if agent_id is None:
                    self.view.all = what == "kill"
                else:
                    self.view.agents = self.view.agents | {agent_id} if what == "kill" else self.view.agents - {agent_id}

    def kill(self, agent_id: str | None) -> None:
        self._switch("kill", agent_id)

    def revive(self, agent_id: str | None) -> None:
        self._switch("revive", agent_id)

    def is_killed(self, agent_id: str) -> bool:
        view = self.view
        if time.monotonic() - view.fresh_as_of < self.config.kill_staleness:
            with view.lock:
                return view.all or agent_id in view.agents
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.exists(self._kill_keys[0])
            pipe.sismember(self._kill_keys[1], agent_id)
            all_killed, one = pipe.execute()
        except self._errors as exc:
            unavailable(self.config, exc, "reading the kill switch")
        return bool(all_killed) or bool(one)

    def _snapshot(self) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(self._kill_keys[2])
        pipe.exists(self._kill_keys[0])
        pipe.smembers(self._kill_keys[1])
        version, all_killed, agents = pipe.execute()
        self.view.update(int(version or 0), bool(all_killed), frozenset(a.decode() for a in agents))

    def _listen(self) -> None:
        """Subscribe, read the switch, then keep the view current and prove it fresh with PINGs; on any
        failure mark the view stale (decisions read Redis) and start again."""
        interval = self.config.kill_staleness / 4
        lost = False
        while not self._stop.is_set():
            client = pubsub = None
            try:
                client = self.config.client(retries=0)
                pubsub = client.pubsub()
                pubsub.subscribe(self._channel)
                deadline = time.monotonic() + self.config.timeout
                while (msg := pubsub.get_message(timeout=self.config.timeout)) is None or msg["type"] != "subscribe":
                    if time.monotonic() > deadline:
                        raise TimeoutError("no subscription confirmation")
                with self.view.lock:
                    # A new subscription may follow a Redis that restarted empty, its versions starting again from 0:
                    # the snapshot read now is the truth, whatever version the view held before.
                    self.view.version = -1
                self._snapshot()  # after the subscription is live: no change published from here on is missed
                if lost:
                    _log.warning("kill-switch subscription is back")
                    lost = False
                sent: dict[int, float] = {}
                seq, last_ping = 0, float("-inf")
                while not self._stop.is_set():
                    now = time.monotonic()
                    if now - last_ping >= interval:
                        seq, last_ping = seq + 1, now
                        sent[seq] = now
                        pubsub.ping(str(seq))
                    msg = pubsub.get_message(timeout=interval)
                    if msg is None:
                        continue
                    if msg["type"] == "message":
                        self._snapshot()
                    elif msg["type"] == "pong":
                        answered = int(msg["data"] or 0)
                        at = sent.pop(answered, None)
                        for old in [s for s in sent if s < answered]:
                            del sent[old]
                        if at is not None:
                            with self.view.lock:
                                self.view.fresh_as_of = max(self.view.fresh_as_of, at)
            except Exception as exc:  # noqa: BLE001 - any failure: stale view, reconnect
                with self.view.lock:
                    self.view.fresh_as_of = float("-inf")
                if not self._stop.is_set() and not lost:  # once per loss, not once per attempt
                    _log.warning("kill-switch subscription lost (%s: %s); decisions read Redis until it is back",
                                 type(exc).__name__, exc)
                lost = True
                self._stop.wait(min(1.0, self.config.timeout))
            finally:
                for part in (pubsub, client):
                    try:
                        if part is not None:
                            part.close()
                    except Exception as exc:  # noqa: BLE001 - closing a dead connection
                        _log.debug("closing the kill-switch subscription: %s", exc)
        with self.view.lock:
            self.view.fresh_as_of = float("-inf")

    @property
    def subscribed(self) -> bool:
        """Whether the local view is fresh now (decisions use it instead of reading Redis)."""
        return time.monotonic() - self.view.fresh_as_of < self.config.kill_staleness

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        try:
            self.deferred.flush()
        except self._errors:
            pass
        self._redis.close()
