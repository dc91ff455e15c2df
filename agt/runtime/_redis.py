"""Connecting the runtime state to Redis: one URL (credentials, TLS or a unix socket, a key prefix), bounded
timeouts, every failure as :class:`~agt.runtime.state.StateUnavailable`, and the writes that must still happen
once Redis is back (:class:`Deferred`).

    redis://[user:password@]host:port/db?prefix=agt&timeout=1.0
    rediss://user:password@host:port/0?ssl_ca_certs=/etc/ssl/ca.pem     (TLS)
    unix:///run/redis/redis.sock?db=0&prefix=agt
    redis://agt@host:6379/0?password_file=/run/secrets/agt-redis        (the password kept out of argv)

agt's own query parameters (``prefix``, ``timeout``, ``horizon``, ``kill_staleness``, ``counter_ttl``,
``approval_retention``, ``password_file``) are taken out before redis-py sees the URL; the rest are redis-py's.
The key layout and the Lua scripts are in docs/scale-out.md ("The Redis data model").
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from agt.errors import AgtError
from agt.runtime.state import StateUnavailable

if TYPE_CHECKING:  # redis is imported when a Redis store is opened, never at `agt` start-up
    import redis

_log = logging.getLogger("agt.runtime.redis")

SCHEMES = ("redis", "rediss", "unix")
_FLOATS = ("timeout", "horizon", "kill_staleness", "counter_ttl", "approval_retention")


@dataclass(frozen=True)
class RedisConfig:
    """Where the state lives and how long agt waits for it.

    ``timeout`` bounds each connect and each reply (a call waits at most about twice this, with the one retry).
    ``horizon`` is how long an operation's once-marker lives in Redis, hence how late a write deferred during an
    outage can still be applied exactly once. ``kill_staleness`` is how old the pub/sub-fed view of the kill
    switch may be before a decision reads Redis instead (0: read on every decision). ``counter_ttl`` expires a
    task's counters that long after their last change (None: never). ``approval_retention`` keeps a request
    that long after its deadline."""

    url: str = field(repr=False)
    display: str
    prefix: str = "agt"
    timeout: float = 1.0
    horizon: float = 300.0
    kill_staleness: float = 0.5
    counter_ttl: float | None = None
    approval_retention: float = 7 * 86400.0
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> "RedisConfig":
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise AgtError(f"state URL {redact(url)!r}: a Redis URL starts with redis://, rediss:// or unix://")
        if parts.scheme != "unix" and not parts.hostname:
            raise AgtError(f"state URL {redact(url)!r}: name the Redis host, as redis://127.0.0.1:6379/0")
        if parts.scheme == "unix" and not parts.path:
            raise AgtError(f"state URL {redact(url)!r}: name the socket, as unix:///run/redis/redis.sock")
        ours: dict[str, Any] = {}
        theirs = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in _FLOATS or key in ("prefix", "password_file"):
                ours[key] = value
            else:
                theirs.append((key, value))
        options: dict[str, Any] = {}
        for key in _FLOATS:
            if key in ours:
                try:
                    options[key] = float(ours[key])
                except ValueError:
                    raise AgtError(f"state URL {redact(url)!r}: {key} must be a number of seconds, not {ours[key]!r}") from None
        if "prefix" in ours:
            options["prefix"] = ours["prefix"]
        if "password_file" in ours:
            options["password"] = _read_password(ours["password_file"], url)
        options.update(overrides)
        query = urlencode(theirs)
        # urlunsplit would drop the // of unix:///path (no netloc), which redis-py needs.
        target = (f"unix://{parts.path}{'?' + query if query else ''}" if parts.scheme == "unix"
                  else urlunsplit(parts._replace(query=query)))
        config = cls(target, redact(url), **options)
        config.check()
        return config

    def check(self) -> None:
        if not self.prefix or any(c.isspace() for c in self.prefix) or "{" in self.prefix:
            raise AgtError(f"state URL {self.display!r}: prefix must be a non-empty word, not {self.prefix!r}")
        for name in ("timeout", "horizon", "approval_retention"):
            value = getattr(self, name)
            if not 0 < value < float("inf"):
                raise AgtError(f"state URL {self.display!r}: {name} must be more than 0 seconds, not {value!r}")
        if not 0 <= self.kill_staleness < float("inf"):
            raise AgtError(f"state URL {self.display!r}: kill_staleness must be 0 or more seconds, not {self.kill_staleness!r}")
        if self.counter_ttl is not None and not 0 < self.counter_ttl < float("inf"):
            raise AgtError(f"state URL {self.display!r}: counter_ttl must be more than 0 seconds, not {self.counter_ttl!r}")

    def client(self, retries: int = 1) -> "redis.Redis":
        """A client with bounded waits. One retry, on a fresh connection, covers a pooled connection that died
        with a restarted server; every script is safe to run twice (docs/scale-out.md)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        kwargs: dict[str, Any] = {"socket_timeout": self.timeout, "socket_connect_timeout": self.timeout,
                                  "retry": Retry(NoBackoff(), retries), "decode_responses": False}
        if self.password is not None:
            kwargs["password"] = self.password
        return redis.Redis.from_url(self.url, **kwargs)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))


def connect(config: RedisConfig | str, client: Any = None) -> tuple[RedisConfig, Any]:
    """The configuration (parsed from a URL if need be) and a client: the one given, to share a pool, or a new one."""
    config = config if isinstance(config, RedisConfig) else RedisConfig.from_url(config)
    return config, client if client is not None else config.client()


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``: for messages, logs and ``RuntimeState.url``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _read_password(path: str, url: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise AgtError(f"state URL {redact(url)!r}: cannot read password_file {path}: {exc.strerror or exc}") from None


def unavailable(config: RedisConfig, exc: BaseException, doing: str) -> NoReturn:
    """Raise the StateUnavailable every Redis failure becomes: the store, what agt was doing, the cause."""
    raise StateUnavailable(f"state store unavailable: {config.display}: {doing}: {type(exc).__name__}: {exc}") from exc


def redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.RedisError, OSError)


def token() -> str:
    """A once-marker's name: unique per operation, reused by that operation's retries."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class ScriptCall:
    """One run of a registered script: what a deferred write does when Redis is back."""

    script: Any  # redis.commands.core.Script
    keys: tuple[str, ...]
    args: tuple[Any, ...]


@dataclass
class _Item:
    what: str
    call: ScriptCall
    deadline: float | None  # monotonic; past it the item is dropped (its once-marker may be gone)


class Deferred:
    """Writes that failed while Redis was away and must still happen, each exactly once: releases of
    reservations, undoing reservations whose reply was lost, tokens, trust signals. Every item is an idempotent
    script run under its own once-marker, so applying it again after an ambiguous failure changes nothing.

    Applied in order, in pipelined batches of ``batch`` (so a long outage's backlog costs a few round trips, not
    one per item), before the next operation that reaches Redis. An item whose deadline passed (the marker's
    ``horizon``) is dropped: for a release or a trust signal, applying it then could apply it twice; a dropped
    release leaves the counter high, which only ever denies sooner. Bounded: past ``limit`` items, the oldest is
    dropped, with the same effect. Items live in this process: a process that exits with items still deferred
    leaves those counters high (over-counted, never under-counted)."""

    def __init__(self, client: Any, limit: int = 100_000, batch: int = 500) -> None:
        self.client, self.limit, self.batch = client, limit, batch
        self.dropped = 0
        self._items: deque[_Item] = deque()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def defer(self, what: str, call: ScriptCall, horizon: float | None) -> None:
        deadline = None if horizon is None else time.monotonic() + horizon * 0.9
        with self._lock:
            if not self._items:  # once per outage, not once per write
                _log.warning("Redis unavailable: writes are kept until it returns, first: %s", what)
            if len(self._items) >= self.limit:
                self._drop(self._items.popleft(), f"more than {self.limit} waiting")
            self._items.append(_Item(what, call, deadline))

    def _drop(self, item: _Item, why: str) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 10_000 == 0:
            _log.error("deferred Redis write dropped (%s; %d so far): %s", why, self.dropped, item.what)

    def flush(self) -> None:
        """Apply what is waiting. Raises the first Redis error (the batch stays, to run again: it is idempotent);
        another thread already flushing is left to it (the writes commute)."""
        if not self._items or not self._flushing.acquire(blocking=False):
            return
        try:
            while True:
                with self._lock:
                    batch = [self._items[i] for i in range(min(self.batch, len(self._items)))]
                if not batch:
                    return
                now = time.monotonic()
                live = []
                for item in batch:
                    if item.deadline is not None and now > item.deadline:
                        self._drop(item, "older than its once-marker")
                    else:
                        live.append(item)
                if live:
                    pipe = self.client.pipeline(transaction=False)
                    for item in live:
                        item.call.script(keys=list(item.call.keys), args=list(item.call.args), client=pipe)
                    pipe.execute()  # raises while Redis is still away: the batch stays first in line
                with self._lock:
                    for _ in batch:
                        self._items.popleft()
                    if not self._items:
                        _log.warning("Redis is back: every kept write is applied")
        finally:
            self._flushing.release()
