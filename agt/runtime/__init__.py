"""The governance runtime: govern() and the Governor's gate pipeline, with session state, trust,
circuit breakers, approvals, enforcement modes and an in-memory audit trail."""

from agt.runtime.approvals import ApprovalRequest, ApprovalStatus, MemoryApprovals, SqliteApprovals, Tally, cast_vote
from agt.runtime.approvers import ApproverRegistry
from agt.runtime.audit import AuditRecord, MemoryAuditSink
from agt.runtime.breaker import BreakerBoard, BreakerPolicy, BreakerState, CircuitBreaker
from agt.runtime.governor import Governor, govern
from agt.runtime.modes import Mode, apply_mode
from agt.runtime.state import Counters, MemoryStore, RateLimit, SqliteStore
from agt.runtime.trust import TrustManager, ring, tier

__all__ = [
    "ApprovalRequest", "ApprovalStatus", "ApproverRegistry", "AuditRecord", "BreakerBoard", "BreakerPolicy", "BreakerState",
    "CircuitBreaker", "Counters", "Governor", "MemoryApprovals", "MemoryAuditSink", "MemoryStore", "Mode",
    "RateLimit", "SqliteApprovals", "SqliteStore", "Tally", "TrustManager", "apply_mode", "cast_vote", "govern", "ring",
    "tier",
]
