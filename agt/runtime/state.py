"""Session state the runtime keeps and engines cannot: per-task counters and rate windows.

Counters are *reserved* before a call is decided (the action's context shows the count including this
call) and *released* if the call does not run, so concurrent callers can never overshoot a budget:
with a limit of 20, exactly 20 calls run, whatever the interleaving. Stores are thread-safe; the SQLite
store keeps counters across restarts and across processes sharing the file.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

from agt._sqlite import ThreadConnections, write_transaction
from agt.errors import AgtError


class Counters(NamedTuple):
    """A task's counters as one store read them. Immutable like a frozen dataclass, but a named tuple: every
    governed call makes one, and a tuple is built in C where a frozen dataclass sets each field in Python."""

    tokens_used: int = 0
    tool_calls: int = 0
    files_changed: int = 0


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``count`` events per ``window_seconds``, written ``"100/hour"``."""

    count: int
    window_seconds: float

    _UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}

    def __post_init__(self) -> None:
        # A window of zero holds no past events and a count of zero admits nothing: both would be read as
        # "limited" while meaning "unlimited" or "blocked". Say what you mean (a deny rule blocks).
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise AgtError(f"a rate limit needs a count of at least 1, got {self.count!r}")
        if isinstance(self.window_seconds, bool) or not isinstance(self.window_seconds, (int, float)) or not 0 < self.window_seconds < float("inf"):
            raise AgtError(f"a rate limit needs a window longer than 0 seconds, got {self.window_seconds!r}")

    @classmethod
    def parse(cls, text: str) -> "RateLimit":
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*", text) if isinstance(text, str) else None
        if not m or m.group(3) not in cls._UNITS:
            raise AgtError(f"rate limit {text!r} is not like '100/hour', '5/minute' or '10/30s'")
        try:
            return cls(int(m.group(1)), float(int(m.group(2) or 1) * cls._UNITS[m.group(3)]))
        except OverflowError:
            raise AgtError(f"rate limit {text!r}: the window is too long") from None
        except AgtError as exc:
            raise AgtError(f"rate limit {text!r}: {exc}") from None


class StateUnavailable(AgtError):
    """A shared store (Redis) could not be read or written: the Governor denies the call, naming this.

    The message starts with ``state store unavailable:`` and names the store and the cause."""


class StateStore(Protocol):
    def reserve(self, task: str, tool_calls: int, files_changed: int) -> Counters:
        """Atomically add to the task's counters and return them, including this reservation."""
        ...

    def release(self, task: str, tool_calls: int, files_changed: int) -> None:
        """Undo a reservation for a call that did not run. A shared store that cannot be reached keeps the
        release and applies it once it can (it never raises for that): the call is already denied."""
        ...

    def add_tokens(self, task: str, tokens: int) -> Counters: ...

    def counters(self, task: str) -> Counters: ...

    def hit_rate(self, key: str, limit: RateLimit, now: float | None = None) -> tuple[bool, int]:
        """Count one event for ``key`` if the window has room. Returns (admitted, events in window)."""
        ...

    def close(self) -> None: ...


_NONE_YET = Counters()
_counters = tuple.__new__
"""``_counters(Counters, (tokens, calls, files))`` is ``Counters(tokens, calls, files)`` without the named tuple's
Python-level __new__: the memory store makes one per governed call."""


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Each task's counters as one immutable value, replaced whole under the lock: the value reserve()
        # returns is the one stored, and nobody can change it.
        self._counters: dict[str, Counters] = {}
        self._rates: dict[str, deque[float]] = {}

    def reserve(self, task: str, tool_calls: int, files_changed: int) -> Counters:
        with self._lock:
            tokens, calls, files = self._counters.get(task, _NONE_YET)
            now = self._counters[task] = _counters(Counters, (tokens, calls + tool_calls, files + files_changed))
        return now

    def release(self, task: str, tool_calls: int, files_changed: int) -> None:
        with self._lock:
            tokens, calls, files = self._counters.get(task, _NONE_YET)
            self._counters[task] = _counters(Counters, (tokens, calls - tool_calls, files - files_changed))

    def add_tokens(self, task: str, tokens: int) -> Counters:
        with self._lock:
            used, calls, files = self._counters.get(task, _NONE_YET)
            now = self._counters[task] = _counters(Counters, (used + tokens, calls, files))
        return now

    def counters(self, task: str) -> Counters:
        with self._lock:
            return self._counters.get(task, _NONE_YET)

    def hit_rate(self, key: str, limit: RateLimit, now: float | None = None) -> tuple[bool, int]:
        now = time.time() if now is None else now
        with self._lock:
            window = self._rates.setdefault(key, deque())
            while window and window[0] <= now - limit.window_seconds:
                window.popleft()
            if len(window) >= limit.count:
                return False, len(window)
            window.append(now)
            return True, len(window)

    def close(self) -> None:
        pass


class SqliteStore:
    """Counters and rate windows in SQLite (WAL), safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._connections = ThreadConnections(path, synchronous="NORMAL")
        with self._conn() as db:
            db.executescript(
                """
                CREATE TABLE IF NOT EXISTS counters (
                    task TEXT PRIMARY KEY, tokens_used INTEGER NOT NULL DEFAULT 0,
                    tool_calls INTEGER NOT NULL DEFAULT 0, files_changed INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE IF NOT EXISTS rate_events (key TEXT NOT NULL, at REAL NOT NULL);
                CREATE INDEX IF NOT EXISTS rate_events_key_at ON rate_events (key, at);
                """
            )

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def _update(self, task: str, tokens: int, tool_calls: int, files_changed: int) -> Counters:
        with write_transaction(self._conn()) as db:
            db.execute(
                "INSERT INTO counters (task, tokens_used, tool_calls, files_changed) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(task) DO UPDATE SET tokens_used = tokens_used + excluded.tokens_used, "
                "tool_calls = tool_calls + excluded.tool_calls, files_changed = files_changed + excluded.files_changed",
                (task, tokens, tool_calls, files_changed),
            )
            row = db.execute("SELECT tokens_used, tool_calls, files_changed FROM counters WHERE task = ?", (task,)).fetchone()
        return Counters(*row)

    def reserve(self, task: str, tool_calls: int, files_changed: int) -> Counters:
        return self._update(task, 0, tool_calls, files_changed)

    def release(self, task: str, tool_calls: int, files_changed: int) -> None:
        self._update(task, 0, -tool_calls, -files_changed)

    def add_tokens(self, task: str, tokens: int) -> Counters:
        return self._update(task, tokens, 0, 0)

    def counters(self, task: str) -> Counters:
        row = self._conn().execute(
            "SELECT tokens_used, tool_calls, files_changed FROM counters WHERE task = ?", (task,)
        ).fetchone()
        return Counters(*row) if row else Counters()

    def hit_rate(self, key: str, limit: RateLimit, now: float | None = None) -> tuple[bool, int]:
        now = time.time() if now is None else now
        with write_transaction(self._conn()) as db:
            db.execute("DELETE FROM rate_events WHERE key = ? AND at <= ?", (key, now - limit.window_seconds))
            (count,) = db.execute("SELECT COUNT(*) FROM rate_events WHERE key = ?", (key,)).fetchone()
            admitted = count < limit.count
            if admitted:
                db.execute("INSERT INTO rate_events (key, at) VALUES (?, ?)", (key, now))
                count += 1
        return admitted, count

    def close(self) -> None:
        self._connections.close()
