"""Audit records of the runtime, in an in-memory sink. Field names follow OPA's decision-log event
(decision_id, path, input, result, timestamp, labels, metrics) so one reader handles both."""

from __future__ import annotations

import collections
import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class AuditRecord:
    decision_id: str
    time_ns: int
    """When, in nanoseconds since the epoch; ``timestamp`` is the RFC 3339 form OPA logs use."""
    kind: str
    """decision | approval | trust | kill_switch"""
    agent_id: str
    path: str = ""
    """The gate that decided: trust, policy, rate, reliability, approval, output."""
    input: dict[str, Any] | None = field(default=None, repr=False)
    result: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


    @classmethod
    def _of(cls, decision_id: str, time_ns: int, kind: str, agent_id: str, path: str, input: dict[str, Any] | None,  # noqa: A002
            result: dict[str, Any], labels: dict[str, str], metrics: dict[str, float]) -> AuditRecord:
        """``AuditRecord(...)`` with every field given, without the frozen dataclass's setattr per field: the runtime
        makes one per governed call. Frozen: each field is written once, here, as the generated __init__ would."""
        record = object.__new__(cls)
        record.__dict__.update(decision_id=decision_id, time_ns=time_ns, kind=kind, agent_id=agent_id, path=path,
                               input=input, result=result, labels=labels, metrics=metrics)
        return record

    @property
    def timestamp(self) -> str:
        seconds, ns = divmod(self.time_ns, 1_000_000_000)
        return _second_text(seconds) + f".{ns // 1000:06d}Z"


_last_second: tuple[int, str] = (-1, "")


def _second_text(seconds: int) -> str:
    """RFC 3339 to the second, formatted once per second: records come many to a second. The cache is one
    tuple, read and replaced whole, so a thread never pairs one second's number with another's text."""
    global _last_second
    cached = _last_second
    if cached[0] == seconds:
        return cached[1]
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    _last_second = (seconds, text)
    return text


_PREFIX = uuid.uuid4().hex[:16]
_SEQUENCE = itertools.count(1)


def new_decision_id() -> str:
    """Unique across processes (a random per-process prefix) and ordered within one (a sequence)."""
    return f"{_PREFIX}-{next(_SEQUENCE):012x}"


class AuditSink(Protocol):
    """Where the runtime's records go. A sink that can fail may also offer ``health() -> str | None``:
    None while it can record, otherwise why not. The Governor asks before each tool runs and denies
    the call (``audit-unavailable``) rather than run a tool it cannot audit."""

    def write(self, record: AuditRecord) -> None: ...


def sink_health(sink: object) -> str | None:
    """Why ``sink`` cannot record now, or None; a sink without ``health`` is taken to be healthy."""
    health = getattr(sink, "health", None)
    if health is None:
        return None
    try:
        problem = health()
    except Exception as exc:  # noqa: BLE001 - a health check that fails is itself the fault
        return f"its health check raised {type(exc).__name__}: {exc}"
    return None if problem is None else str(problem)


class MemoryAuditSink:
    """The newest ``limit`` records (all of them with None). At the cap the oldest record drops out of a
    bounded deque: O(1) per write, where deleting the head of a list moves every record after it."""

    def __init__(self, limit: int | None = 100_000) -> None:
        self._lock = threading.Lock()
        self._records: collections.deque[AuditRecord] = collections.deque(maxlen=limit)

    @property
    def limit(self) -> int | None:
        return self._records.maxlen

    def write(self, record: AuditRecord) -> None:
        with self._lock:
            self._records.append(record)  # a full deque drops its oldest

    @property
    def records(self) -> list[AuditRecord]:
        with self._lock:
            return list(self._records)
