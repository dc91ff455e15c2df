"""agt.runtime.audit: the in-memory sink keeps the newest records up to its limit."""

from __future__ import annotations

from agt.runtime.audit import AuditRecord, MemoryAuditSink


def rec(i: int) -> AuditRecord:
    return AuditRecord(f"d{i}", i, "decision", "a1")


def test_memory_sink_at_its_limit_keeps_the_newest_records_in_order():
    sink = MemoryAuditSink(limit=3)
    for i in range(10):
        sink.write(rec(i))
    assert [r.decision_id for r in sink.records] == ["d7", "d8", "d9"]


def test_memory_sink_without_a_limit_keeps_every_record():
    sink = MemoryAuditSink(limit=None)
    for i in range(1000):
        sink.write(rec(i))
    assert len(sink.records) == 1000


def test_memory_sink_reports_its_limit():
    assert MemoryAuditSink(limit=5).limit == 5


def test_memory_sink_records_are_a_copy():
    sink = MemoryAuditSink(limit=3)
    sink.write(rec(0))
    sink.records.clear()
    assert len(sink.records) == 1


def test_the_runtimes_record_constructor_equals_the_public_one():
    from agt.runtime.audit import AuditRecord

    values = ("d-1", 1_700_000_000_123_456_789, "decision", "alice", "policy", {"action": {"tool": "t"}},
              {"effect": "allow"}, {"engine": "yaml"}, {"latency_us": 1.5})
    made, public = AuditRecord._of(*values), AuditRecord(*values)
    assert made == public and made.timestamp == public.timestamp == "2023-11-14T22:13:20.123456Z"
