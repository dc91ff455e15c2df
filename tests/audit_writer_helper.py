"""Writers for the audit crash and concurrency tests (not a test module).

As a script: ``python audit_writer_helper.py LOG DURABILITY ACK_FILE`` appends records to the audit log
LOG forever, until it is killed. After each acknowledged record it appends that record's index to
ACK_FILE, one line each: with ``always`` and ``none`` a record is acknowledged when ``append`` returns;
with ``batch`` (where append only queues) after every tenth record, once ``flush()`` has returned.

As a module: :func:`append_worker` is a ``multiprocessing`` target that appends ``n`` records of its own.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from agt.audit import AuditLog


def event(tag: str, i: int) -> dict[str, Any]:
    return {
        "decision_id": f"{tag}-{i:07d}",
        "timestamp": "2026-11-23T08:00:00.000000Z",
        "kind": "decision",
        "agent_id": tag,
        "path": "policy",
        "input": {"agent": {"id": tag}, "action": {"tool": "read_doc", "params": {"n": i, "text": "lorem ipsum " * 8}}},
        "result": {"effect": "allow", "reasons": [{"id": "r-read", "message": "reading is fine"}]},
        "labels": {"engine": "yaml"},
        "metrics": {"latency_us": 10.0},
    }


def append_worker(location: str, durability: str, tag: str, n: int, start: Any, max_bytes: int) -> None:
    start.wait(60)  # every worker opens the log at the same moment, then writes
    log = AuditLog(location, durability=durability, max_bytes=max_bytes, allow_key_in_log_dir=True)
    try:
        for i in range(n):
            log.append(event(tag, i))
    finally:
        log.close()


def write_forever(location: str, durability: str, ack_path: str) -> None:
    log = AuditLog(location, durability=durability, checkpoint_every=50, allow_key_in_log_dir=True)
    ack = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    i = 0
    while True:
        log.append(event("c", i))
        if durability != "batch":
            os.write(ack, f"{i}\n".encode())
        elif i % 10 == 9:
            log.flush()
            os.write(ack, f"{i}\n".encode())
        i += 1


if __name__ == "__main__":
    write_forever(*sys.argv[1:4])
