"""Counters, rate windows and approvals in Redis, shared by every replica (docs/scale-out.md).

Every write is one Lua script (atomic in Redis, registered once and called by EVALSHA; redis-py reloads it
after NOSCRIPT, as after a server restart). Counter writes run under a once-marker, so a write retried after an
ambiguous failure (the reply lost with the connection) is applied at most once, and a reservation whose reply
was lost can be undone exactly. What fails while Redis is away:

* ``reserve``, ``hit_rate``, ``counters`` and the approval operations raise
  :class:`~agt.runtime.state.StateUnavailable`; the Governor denies the call naming it. A reservation that may
  have been applied (its reply was lost) is undone when Redis returns.
* ``release`` never raises: the release is deferred and applied, exactly once, when Redis returns.
* ``add_tokens`` defers the tokens (they are added when Redis returns) and raises, so the caller knows.
"""

from __future__ import annotations

import json
from typing import Any

from agt import _json
from agt.runtime._redis import (
    Deferred,
    RedisConfig,
    ScriptCall,
    connect,
    redis_errors,
    token,
    unavailable,
)
from agt.runtime.approvals import MAX_VOTES, ApprovalError, ApprovalRequest
from agt.runtime.state import Counters, RateLimit, StateUnavailable
from agt.runtime.votes import SignedVote

_FIELDS = ("tokens_used", "tool_calls", "files_changed")

# KEYS: counters hash, once-marker. ARGV: tokens, calls, files (deltas), marker ttl ms, counters ttl ms (0: none).
ADD_ONCE = """
if redis.call('SET', KEYS[2], 'applied', 'NX', 'PX', ARGV[4]) then
  if ARGV[1] ~= '0' then redis.call('HINCRBY', KEYS[1], 'tokens_used', ARGV[1]) end
  if ARGV[2] ~= '0' then redis.call('HINCRBY', KEYS[1], 'tool_calls', ARGV[2]) end
  if ARGV[3] ~= '0' then redis.call('HINCRBY', KEYS[1], 'files_changed', ARGV[3]) end
  if ARGV[5] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
end
return redis.call('HMGET', KEYS[1], 'tokens_used', 'tool_calls', 'files_changed')
"""

# Undo a reservation whose reply was lost. KEYS: counters hash, the reservation's once-marker.
# ARGV: the reservation's tokens, calls, files; marker ttl ms. Returns 1 when it undid an applied reservation.
CANCEL = """
local state = redis.call('GET', KEYS[2])
if not state then
  redis.call('SET', KEYS[2], 'cancelled', 'PX', ARGV[4])
  return 0
end
if state == 'applied' then
  redis.call('SET', KEYS[2], 'undone', 'KEEPTTL')
  if ARGV[1] ~= '0' then redis.call('HINCRBY', KEYS[1], 'tokens_used', -tonumber(ARGV[1])) end
  if ARGV[2] ~= '0' then redis.call('HINCRBY', KEYS[1], 'tool_calls', -tonumber(ARGV[2])) end
  if ARGV[3] ~= '0' then redis.call('HINCRBY', KEYS[1], 'files_changed', -tonumber(ARGV[3])) end
  return 1
end
return 0
"""

# Sliding window. KEYS: the window's sorted set. ARGV: now ('' = the Redis server's clock), window seconds,
# limit, this event's member (unique; a retry with the same member is not counted twice).
HIT_RATE = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return {1, redis.call('ZCARD', KEYS[1])} end
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.17g', now - window))
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[3]) then return {0, n} end
redis.call('ZADD', KEYS[1], string.format('%.17g', now), ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return {1, n + 1}
"""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _counters(reply: list[Any]) -> Counters:
    return Counters(*(int(v or 0) for v in reply))


class RedisStore:
    """The :class:`~agt.runtime.state.StateStore` for many replicas: one Redis, atomic Lua scripts."""

    def __init__(self, config: RedisConfig | str, *, client: Any = None) -> None:
        self.config, self._redis = connect(config, client)
        self._add_once = self._redis.register_script(ADD_ONCE)
        self._cancel = self._redis.register_script(CANCEL)
        self._hit_rate = self._redis.register_script(HIT_RATE)
        self._errors = redis_errors()
        self.deferred = Deferred(self._redis)

    def _key(self, task: str) -> str:
        return self.config.key("counters", task)

    def _add_call(self, task: str, tokens: int, calls: int, files: int, once: str) -> ScriptCall:
        ttl = _ms(self.config.counter_ttl) if self.config.counter_ttl else 0
        return ScriptCall(self._add_once, (self._key(task), self.config.key("op", once)),
                          (tokens, calls, files, _ms(self.config.horizon), ttl))

    def _add(self, task: str, tokens: int, calls: int, files: int, once: str) -> Counters:
        call = self._add_call(task, tokens, calls, files, once)
        return _counters(call.script(keys=list(call.keys), args=list(call.args)))

    def _flush(self, doing: str) -> None:
        try:
            self.deferred.flush()
        except self._errors as exc:
            unavailable(self.config, exc, doing)

    def reserve(self, task: str, tool_calls: int, files_changed: int) -> Counters:
        self._flush("reserving counters")
        once = token()
        try:
            return self._add(task, 0, tool_calls, files_changed, once)
        except self._errors as exc:
            # The script may have run with its reply lost: undo it when Redis is back (exactly, by its marker).
            undo = ScriptCall(self._cancel, (self._key(task), self.config.key("op", once)),
                              (0, tool_calls, files_changed, _ms(self.config.horizon)))
            self.deferred.defer(f"undo a reservation of {tool_calls} call(s) for task {task!r}", undo, None)
            unavailable(self.config, exc, f"reserving counters for task {task!r}")

    def release(self, task: str, tool_calls: int, files_changed: int) -> None:
        once = token()
        try:
            self.deferred.flush()
            self._add(task, 0, -tool_calls, -files_changed, once)
        except self._errors:
            self.deferred.defer(f"release {tool_calls} call(s) for task {task!r}",
                                self._add_call(task, 0, -tool_calls, -files_changed, once), self.config.horizon)

    def add_tokens(self, task: str, tokens: int) -> Counters:
        once = token()
        try:
            self.deferred.flush()
            return self._add(task, tokens, 0, 0, once)
        except self._errors as exc:
            self.deferred.defer(f"add {tokens} tokens for task {task!r}", self._add_call(task, tokens, 0, 0, once),
                                self.config.horizon)
            unavailable(self.config, exc, f"adding {tokens} tokens for task {task!r} (kept: added when Redis returns)")

    def counters(self, task: str) -> Counters:
        self._flush("reading counters")
        try:
            return _counters(self._redis.hmget(self._key(task), _FIELDS))
        except self._errors as exc:
            unavailable(self.config, exc, f"reading counters for task {task!r}")

    def hit_rate(self, key: str, limit: RateLimit, now: float | None = None) -> tuple[bool, int]:
        self._flush("counting a rate window")
        try:
            admitted, count = self._hit_rate(keys=[self.config.key("rate", key)],
                                             args=["" if now is None else repr(float(now)), repr(limit.window_seconds),
                                                   limit.count, token()])
        except self._errors as exc:
            unavailable(self.config, exc, f"counting rate window {key!r}")
        return bool(admitted), int(count)

    def reconcile(self) -> int:
        """Apply the writes deferred while Redis was away; returns how many still wait. Raises
        StateUnavailable while Redis is still away."""
        self._flush("applying deferred writes")
        return len(self.deferred)

    def close(self) -> None:
        try:
            self.deferred.flush()
        except self._errors:
            pass  # Redis is still away: what is left stays over-counted (docs/scale-out.md)
        self._redis.close()


# KEYS: request, index. ARGV: body, ttl ms, created_at, id. 1 when stored (or already stored, identically).
CREATE = """
local current = redis.call('GET', KEYS[1])
if current then
  if current == ARGV[1] then return 1 end
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""

# KEYS: request, votes. ARGV: vote, most votes kept. -1: no such request; 0: full; 1: added.
ADD_VOTE = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return -1 end
if redis.call('LLEN', KEYS[2]) > tonumber(ARGV[2]) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
"""

# KEYS: request, used. ARGV: when. -1: no such request; 0: already used; 1: used now.
CONSUME = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return -1 end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX') then return 0 end
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
"""


class RedisApprovals:
    """The :class:`~agt.runtime.approvals.ApprovalStore` for many replicas. Untrusted like every store: it
    holds requests, the raw signed votes and the mark of use, never a status. At most ``MAX_VOTES + 1``
    votes are kept and read per request, so a flood of junk votes cannot make a tally slow."""

    def __init__(self, config: RedisConfig | str, *, client: Any = None) -> None:
        self.config, self._redis = connect(config, client)
        self._create = self._redis.register_script(CREATE)
        self._add_vote = self._redis.register_script(ADD_VOTE)
        self._consume = self._redis.register_script(CONSUME)
        self._errors = redis_errors()
        self._index = self.config.key("approval", "index")

    def _keys(self, request_id: str) -> tuple[str, str, str]:
        k = self.config.key
        return k("approval", "req", request_id), k("approval", "votes", request_id), k("approval", "used", request_id)

    def create(self, req: ApprovalRequest) -> None:
        import time

        body = _json.dumps(req.to_dict())
        # Kept ``approval_retention`` past its deadline (at least that long from now), for the CLI and the audit.
        ttl = _ms(max(0.0, req.expires_at - time.time()) + self.config.approval_retention)
        try:
            stored = self._create(keys=[self._keys(req.id)[0], self._index], args=[body, ttl, repr(req.created_at), req.id])
        except self._errors as exc:
            unavailable(self.config, exc, f"storing approval request {req.id}")
        if not stored:
            raise ApprovalError(f"approval request {req.id} already exists in {self.config.display}")

    def _load(self, request_id: str, body: bytes | None, votes: list[bytes], used: bytes | None) -> ApprovalRequest:
        if body is None:
            raise ApprovalError(f"no approval request {request_id!r} in {self.config.display}")
        try:
            doc = _json.loads(body.decode())  # exact decimals, for the action's params
        except (UnicodeDecodeError, TypeError, ValueError, RecursionError) as exc:
            raise ApprovalError(f"malformed approval request {request_id!r} in {self.config.display}: {exc}") from None
        parsed: list[Any] = []
        for raw in votes:
            try:
                parsed.append(json.loads(raw))
            except (UnicodeDecodeError, TypeError, ValueError, RecursionError):
                parsed.append(raw.decode("utf-8", "replace"))  # tally reports it as malformed
        try:
            used_at = float(used) if used is not None else None
        except ValueError:
            used_at = 0.0  # an unreadable mark of use still means used: never a second use
        req = ApprovalRequest.from_dict(doc, tuple(parsed), used_at)
        if req.id != request_id:
            raise ApprovalError(f"malformed approval request {request_id!r} in {self.config.display}: it says it is {req.id!r}")
        return req

    def _read(self, ids: list[str]) -> list[tuple[str, Any, Any, Any]]:
        try:
            pipe = self._redis.pipeline(transaction=True)
            for rid in ids:
                req, votes, used = self._keys(rid)
                pipe.get(req)
                pipe.lrange(votes, 0, MAX_VOTES)
                pipe.get(used)
            replies = pipe.execute()
        except self._errors as exc:
            unavailable(self.config, exc, "reading approval requests")
        return [(rid, *replies[3 * i: 3 * i + 3]) for i, rid in enumerate(ids)]

    def get(self, request_id: str) -> ApprovalRequest:
        if not isinstance(request_id, str) or not request_id:
            raise ApprovalError(f"no approval request {request_id!r}")
        return self._load(*self._read([request_id])[0])

    def list(self) -> list[ApprovalRequest]:
        try:
            ids = [i.decode() for i in self._redis.zrange(self._index, 0, -1)]
        except self._errors as exc:
            unavailable(self.config, exc, "listing approval requests")
        found, gone = [], []
        for rid, body, votes, used in self._read(ids) if ids else []:
            if body is None:
                gone.append(rid)  # expired past its retention
            else:
                found.append(self._load(rid, body, votes, used))
        if gone:
            try:
                self._redis.zrem(self._index, *gone)
            except self._errors:
                pass  # pruning the index can wait for the next list
        return sorted(found, key=lambda r: r.created_at)

    def add_vote(self, request_id: str, vote: SignedVote) -> None:
        req, votes, _ = self._keys(request_id)
        try:
            added = self._add_vote(keys=[req, votes], args=[json.dumps(vote.to_dict()), MAX_VOTES])
        except self._errors as exc:
            unavailable(self.config, exc, f"adding a vote to approval request {request_id}")
        if added == -1:
            raise ApprovalError(f"no approval request {request_id!r} in {self.config.display}")
        if added == 0:
            raise ApprovalError(f"approval request {request_id} already holds {MAX_VOTES + 1} votes; no more are kept")

    def consume(self, request_id: str, at: float) -> bool:
        req, _, used = self._keys(request_id)
        try:
            done = self._consume(keys=[req, used], args=[repr(float(at))])
        except self._errors as exc:
            unavailable(self.config, exc, f"recording the use of approval {request_id}")
        if done == -1:
            raise ApprovalError(f"no approval request {request_id!r} in {self.config.display}")
        return done == 1

    def close(self) -> None:
        self._redis.close()


__all__ = ["RedisApprovals", "RedisStore", "StateUnavailable"]
