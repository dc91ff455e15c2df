"""The audit records the dashboard shows, read incrementally from the log (or a Governor's memory sink).

A :class:`RecordFeed` keeps the newest ``keep`` records as :class:`Row` values. Each refresh reads only what
was appended since the last one (the backend's ``read_since``), so a page or an event stream costs the new
records, not the whole log. Lines that are not JSON objects are skipped here: ``agt audit verify`` (the audit
page) is what names them.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from agt.audit.backends import open_backend


@dataclass(frozen=True)
class Row:
    """One audit record, with the fields the pages filter and plot on pulled out of it."""

    seq: int
    at: float
    """Seconds since the epoch (from the record's RFC 3339 timestamp; 0 when unreadable)."""
    kind: str
    agent: str
    tool: str
    gate: str
    effect: str
    """The decision's effect (decision records), or '' for other kinds."""
    enforced: str
    rules: tuple[str, ...]
    latency_us: float | None
    outcome: str
    """decision records: ran, denied, failed or not run; '' for other kinds."""
    record: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def timestamp(self) -> str:
        return str(self.record.get("timestamp", ""))

    @property
    def params(self) -> Any:
        return _get(self.record, "input", "action", "params")

    @property
    def summary(self) -> str:
        """What happened, in a few words: the outcome of a decision, or what an approval, trust or kill switch
        record says (the stream and the pages show this one text)."""
        if self.kind == "decision":
            return self.outcome
        res = self.record.get("result") if isinstance(self.record.get("result"), Mapping) else {}
        if self.kind == "approval":
            return f"approval {_text(res.get('status'))} {_text(res.get('request'))}".strip()
        if self.kind == "trust":
            reason = f" ({_text(res.get('reason'))})" if res.get("reason") else ""
            return f"trust {_text(res.get('from'))} → {_text(res.get('to'))}{reason}"
        if self.kind == "kill_switch":
            return f"kill switch {'ON' if res.get('killed') is True else 'off'} ({_text(res.get('scope'))})"
        return self.kind

    @property
    def task(self) -> str:
        task = _get(self.record, "input", "context", "task_id")
        return task if isinstance(task, str) else ""

    def to_event(self) -> dict[str, Any]:
        """What the live stream sends for this row (the browser renders it as text)."""
        reasons = (self.record.get("result") or {}).get("reasons") or []
        return {
            "seq": self.seq, "timestamp": self.timestamp, "kind": self.kind, "agent": self.agent, "tool": self.tool,
            "gate": self.gate, "effect": self.effect, "enforced": self.enforced, "rules": list(self.rules),
            "outcome": self.outcome, "summary": self.summary, "latency_us": self.latency_us, "params": self.params,
            "messages": [str(r.get("message", "")) for r in reasons if isinstance(r, dict)][:5],
            "result": {k: v for k, v in (self.record.get("result") or {}).items() if k != "reasons"},
        }


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


def _seconds(timestamp: Any) -> float:
    if not isinstance(timestamp, str):
        return 0.0
    try:
        value = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else json.dumps(value, default=str)[:200])


def to_row(record: Mapping[str, Any], seq: int) -> Row:
    """A stored record as a Row; a record of any shape becomes one (fields it lacks are empty)."""
    result = record.get("result") if isinstance(record.get("result"), Mapping) else {}
    kind = _text(record.get("kind"))
    reasons = result.get("reasons") if isinstance(result.get("reasons"), list) else []
    rules = tuple(_text(r.get("id")) for r in reasons if isinstance(r, Mapping) and r.get("id") is not None)
    metrics = record.get("metrics") if isinstance(record.get("metrics"), Mapping) else {}
    latency = metrics.get("latency_us")
    latency_us = float(latency) if isinstance(latency, (int, float)) and not isinstance(latency, bool) else None
    enforced = _text(result.get("enforced"))
    outcome = ""
    if kind == "decision":
        error = result.get("tool_error")
        if enforced == "deny":
            outcome = "denied"
        elif isinstance(error, str) and error.startswith("not run"):
            outcome = "not run"
        elif error:
            outcome = "failed"
        else:
            outcome = "ran"
    stored_seq = record.get("seq")
    return Row(
        seq=stored_seq if isinstance(stored_seq, int) and not isinstance(stored_seq, bool) else seq,
        at=_seconds(record.get("timestamp")), kind=kind, agent=_text(record.get("agent_id")),
        tool=_text(_get(record, "input", "action", "tool")), gate=_text(record.get("path")),
        effect=_text(result.get("effect")) if kind == "decision" else "", enforced=enforced, rules=rules,
        latency_us=latency_us, outcome=outcome, record=record,
    )


class LogReader:
    """New records of a stored audit log (a JSONL directory or a .db file), through its own backend."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self._backend: Any = None
        self._position: object = None

    def __call__(self) -> list[dict[str, Any]]:
        if self._backend is None:
            if not Path(self.location).exists():
                return []  # no record yet: the audit page says there is no log
            self._backend = open_backend(self.location, create=False)
        lines, self._position = self._backend.read_since(self._position)
        out = []
        for line in lines:
            try:
                doc = json.loads(line.text)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


class MemoryReader:
    """New records of a Governor's in-memory sink (for a Governor without a stored log)."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self._last: str | None = None

    def __call__(self) -> list[dict[str, Any]]:
        from agt.audit.log import _event_of  # the one place an AuditRecord becomes a stored event

        records = self._sink.records
        start = 0
        if self._last is not None:
            ids = [r.decision_id for r in records]
            start = len(ids) - ids[::-1].index(self._last) if self._last in ids else 0
        if records:
            self._last = records[-1].decision_id
        return [_event_of(r) for r in records[start:]]

    def close(self) -> None:
        pass


class RecordFeed:
    """The newest ``keep`` rows, refreshed from ``read_new`` (a LogReader or MemoryReader)."""

    def __init__(self, read_new: Callable[[], list[dict[str, Any]]], keep: int = 20_000) -> None:
        self._read_new = read_new
        self._lock = threading.Lock()
        self._rows: collections.deque[Row] = collections.deque(maxlen=keep)
        self._next = 0

    def refresh(self) -> None:
        with self._lock:
            for record in self._read_new():
                row = to_row(record, self._next)
                self._next = row.seq + 1
                self._rows.append(row)

    def rows(self) -> list[Row]:
        self.refresh()
        with self._lock:
            return list(self._rows)

    def after(self, seq: int) -> list[Row]:
        """Rows newer than ``seq``, oldest first (read from the newest end: a live stream asks for a few)."""
        self.refresh()
        out = []
        with self._lock:
            for row in reversed(self._rows):
                if row.seq <= seq:
                    break
                out.append(row)
        return out[::-1]

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._rows[-1].seq if self._rows else 0

    def close(self) -> None:
        closer = getattr(self._read_new, "close", None)
        if closer is not None:
            closer()
