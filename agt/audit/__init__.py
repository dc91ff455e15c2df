"""The tamper-evident audit log: hash-chained records, signed Merkle checkpoints, proofs."""

from agt.audit.log import AuditLog, Durability, records, select
from agt.audit.verify import AuditVerifyError, VerifyReport, load_public_key, prove, verify_log, verify_proof

__all__ = [
    "AuditLog", "AuditVerifyError", "Durability", "VerifyReport", "load_public_key", "prove", "records", "select",
    "verify_log", "verify_proof",
]
