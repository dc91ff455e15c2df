"""The Governor a stand-alone agt process runs (``agt mcp proxy``, ``agt serve``): built here once, so both
entry points sign their audit log, find their approver registry and take their state the same way.

* the policy, on the named engine;
* a signed audit log (``audit_log``), its checkpoint key outside the log directory;
* the approver registry votes are verified against: the file ``approvers``, else the public keys in the
  approver key store (as ``agt approvals`` does), else none, and then nothing can be approved;
* the runtime state: a :class:`~agt.runtime.backends.RuntimeState` (``agt serve --state URL``), or only an
  approval store (``agt mcp proxy --approvals DB``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agt.runtime.approvals import ApprovalStore
from agt.runtime.approvers import ApproverRegistry, approver_key_store
from agt.runtime.backends import RuntimeState
from agt.runtime.governor import Governor


def approver_registry(approvers: str | None = None, keys_dir: str | None = None) -> ApproverRegistry | None:
    """The registry file ``approvers``; else the public halves of the approver key store; else None (nothing
    can be approved, and the Governor says so when a rule asks for approval). A registry file that cannot be
    read raises: a deployment that named one must not run without it."""
    if approvers is not None:
        return ApproverRegistry.from_file(approvers)
    try:
        return ApproverRegistry.from_store(approver_key_store(keys_dir))
    except Exception:  # noqa: BLE001 - no key store: nothing can be approved, and the Governor says so
        return None


def build_governor(engine: str, policy: str, *, audit_log: str = ".agt/audit", audit_key: str | None = None,
                   state: RuntimeState | None = None, approvals: ApprovalStore | None = None,
                   approvers: str | None = None, keys_dir: str | None = None, approval_timeout: float = 300.0,
                   **options: Any) -> Governor:
    """The policy on ``engine``, a signed audit log at ``audit_log`` (key ``audit_key``, default ``audit.key``
    beside the log directory), ``state``'s stores (or just ``approvals``) and the approver registry.
    ``options`` go to the Governor. On any failure, what was opened is closed before the error propagates."""
    from agt.audit import AuditLog

    if state is not None and approvals is not None:
        raise ValueError("give state= or approvals=, not both: the state holds its own approval store")
    registry = approver_registry(approvers, keys_dir)
    key = audit_key if audit_key is not None else str(Path(audit_log).resolve().parent / "audit.key")
    audit = AuditLog(audit_log, key_path=key)
    stores: dict[str, Any] = {"approvals": approvals}
    if state is not None:
        stores = {"store": state.store, "approvals": state.approvals, "trust": state.trust}
    try:
        return Governor(engine, policy, audit=audit, approvers=registry, approval_timeout=approval_timeout,
                        **stores, **options)
    except BaseException:
        audit.close()
        raise
