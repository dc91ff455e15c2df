"""Where the runtime keeps its state, named by one URL: ``memory`` (this process), ``sqlite:///path/state.db``
(one host: processes sharing the file), or ``redis://host:port/db`` (many hosts).

The Governor, ``agt serve --state`` and the CLI open state through :func:`open_state`, so every entry point
reads the same URL the same way. An unknown or malformed URL is an :class:`~agt.errors.AgtError` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agt.errors import AgtError
from agt.runtime.approvals import ApprovalStore, MemoryApprovals, SqliteApprovals
from agt.runtime.state import MemoryStore, SqliteStore, StateStore
from agt.runtime.trust import TrustManager


@dataclass(frozen=True)
class RuntimeState:
    """The three stores a Governor takes: counters and rate windows, approvals, and trust (scores and the kill switch)."""

    url: str
    store: StateStore
    approvals: ApprovalStore
    trust: TrustManager

    def close(self) -> None:
        for part in (self.store, self.approvals, self.trust):
            close = getattr(part, "close", None)
            if close is not None:
                close()


def open_state(url: str | None = None, **redis_options: Any) -> RuntimeState:
    """Open the runtime state ``url`` names (default ``memory``). ``redis_options`` (``prefix``, ``timeout``,
    ...: :class:`agt.runtime._redis.RedisConfig`) override a Redis URL's query parameters. For Redis,
    ``RuntimeState.url`` is the URL with its password redacted."""
    url = "memory" if url in (None, "", "memory", "memory://") else url
    if redis_options and not str(url).startswith(("redis", "unix")):
        raise AgtError(f"options {', '.join(redis_options)} apply to a Redis state URL only, not {url!r}")
    if url == "memory":
        return RuntimeState(url, MemoryStore(), MemoryApprovals(), TrustManager())
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = parts.path if not parts.netloc else f"{parts.netloc}{parts.path}"
        if not path or path.endswith("/"):
            raise AgtError(f"state URL {url!r}: give a file, as sqlite:///var/lib/agt/state.db")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Trust and the kill switch stay in this process with SQLite: they are shared only through Redis.
        return RuntimeState(url, SqliteStore(path), SqliteApprovals(path), TrustManager())
    if parts.scheme in ("redis", "rediss", "unix"):
        from agt.runtime._redis import RedisConfig
        from agt.runtime.redis_state import RedisApprovals, RedisStore
        from agt.runtime.redis_trust import RedisTrust

        config = RedisConfig.from_url(url, **redis_options)
        client = config.client()  # one connection pool for the three stores; the kill-switch listener has its own
        return RuntimeState(config.display, RedisStore(config, client=client), RedisApprovals(config, client=client),
                            TrustManager(backend=RedisTrust(config, client=client)))
    raise AgtError(f"state URL {url!r}: expected memory, sqlite:///path/state.db or redis://host:port/db")
