"""The Governor a stand-alone agt process runs (``agt mcp proxy``, ``agt serve``): built here once, so both
entry points sign their audit log, find their approver registry and take their state the same way.

* the policy, on the named engine;
* a signed audit log (``audit_log``), its checkpoint key outside the log directory;
* the approver registry votes are verified against: the file ``approvers``, else the public keys in the
  approver key store (as ``agt approvals`` does), else none, and then nothing can be approved;
* the runtime state: a :class:`~agt.runtime.backends.RuntimeState` (``agt serve --state URL``), or only an
  approval store (``agt mcp proxy --approvals DB``);
* the agents it knows (``--agents FILE``, :func:`load_agents`): their roles, attributes and starting trust, which a
  remote caller can name but never state for itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agt.action import Agent
from agt.errors import ActionError, AgtError
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


_AGENT_KEYS = frozenset({"roles", "attributes", "trust_score"})


def load_agents(path: str | Path) -> list[Agent]:
    """The agents file: ``{"agents": {id: {"roles": [...], "attributes": {...}, "trust_score": n}}}`` (YAML or JSON).
    Anything malformed is an :class:`~agt.errors.AgtError` naming the file and the field."""
    import yaml

    source = str(path)
    try:
        doc = yaml.safe_load(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise AgtError(f"{source}: cannot read the agents file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise AgtError(f"{source}: not YAML or JSON: {exc}") from None
    agents = doc.get("agents") if isinstance(doc, dict) else None
    if not isinstance(agents, dict) or set(doc) != {"agents"}:
        raise AgtError(f"{source}: expected one key, agents: a mapping of agent id to its roles, attributes, trust_score")
    out = []
    for agent_id, spec in agents.items():
        spec = {} if spec is None else spec
        if not isinstance(spec, dict) or set(spec) - _AGENT_KEYS:
            unknown = sorted(set(spec) - _AGENT_KEYS) if isinstance(spec, dict) else ["(not a mapping)"]
            raise AgtError(f"{source}: agents.{agent_id}: unknown field {unknown[0]} (known: {', '.join(sorted(_AGENT_KEYS))})")
        try:
            out.append(Agent(str(agent_id), tuple(spec.get("roles") or ()), spec.get("trust_score"),
                             spec.get("attributes") or {}))
        except (ActionError, TypeError) as exc:
            raise AgtError(f"{source}: agents.{agent_id}: {exc}") from None
    return out


def build_governor(engine: str, policy: str, *, audit_log: str = ".agt/audit", audit_key: str | None = None,
                   state: RuntimeState | None = None, approvals: ApprovalStore | None = None,
                   approvers: str | None = None, keys_dir: str | None = None, approval_timeout: float = 300.0,
                   agents: str | Path | None = None, **options: Any) -> Governor:
    """The policy on ``engine``, a signed audit log at ``audit_log`` (key ``audit_key``, default ``audit.key``
    beside the log directory), ``state``'s stores (or just ``approvals``) and the approver registry.
    ``agents`` is an agents file (:func:`load_agents`) registered before any call. ``options`` go to the
    Governor. On any failure, what was opened is closed before the error propagates."""
    from agt.audit import AuditLog

    declared = load_agents(agents) if agents is not None else []

    if state is not None and approvals is not None:
        raise ValueError("give state= or approvals=, not both: the state holds its own approval store")
    registry = approver_registry(approvers, keys_dir)
    key = audit_key if audit_key is not None else str(Path(audit_log).resolve().parent / "audit.key")
    audit = AuditLog(audit_log, key_path=key)
    stores: dict[str, Any] = {"approvals": approvals}
    if state is not None:
        stores = {"store": state.store, "approvals": state.approvals, "trust": state.trust}
    try:
        governor = Governor(engine, policy, audit=audit, approvers=registry, approval_timeout=approval_timeout,
                            **stores, **options)
        for agent in declared:
            governor.register_agent(agent)  # its trust_score is a starting score: one the state holds is kept
        return governor
    except BaseException:
        audit.close()
        raise
