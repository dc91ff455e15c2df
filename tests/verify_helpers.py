"""Deployments on disk for the agt verify tests: a well-configured one, built from real parts (a real audit
log signed with its own key, a real approver registry of Ed25519 keys, the starter policy made default-deny),
which each test then breaks in one way."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import yaml

from agt.audit import AuditLog
from agt.identity import IdentityKeys
from agt.runtime.approvers import ApproverRegistry
from agt.verify import Deployment

ROOT = Path(__file__).resolve().parents[1]

OUTPUT_POLICY = """\
apiVersion: governance.toolkit/v1
name: output-check
default_action: allow
rules:
  - name: no-secrets-in-output
    condition: "params_text contains 'begin private key'"
    action: deny
"""


def default_deny_policy(directory: Path) -> Path:
    """The starter policy with ``default_action: deny`` and its catalog, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "policies" / "starter.yaml").read_text()
    assert "default_action: allow" in text
    policy = directory / "policy.yaml"
    policy.write_text(text.replace("default_action: allow", "default_action: deny"))
    shutil.copy(ROOT / "policies" / "catalog.yaml", directory / "catalog.yaml")
    return policy


def good_deployment(tmp: Path) -> Deployment:
    """Every fact holds: default deny, budgets, approvals with a registry, an audit log whose key and trusted public
    key live outside it and verify it, a witness, identity and delegation required, an output policy, MCP hide_denied."""
    etc = tmp / "etc"
    policy = default_deny_policy(etc / "policies")
    registry = etc / "approvers.json"
    ApproverRegistry({"comms-lead": IdentityKeys.generate("comms-lead").identity}).save(registry)
    (etc / "output.yaml").write_text(OUTPUT_POLICY)
    keys = tmp / "keys"
    keys.mkdir(mode=0o700)
    log_dir, key, witness = tmp / "log" / "audit", keys / "audit.key", tmp / "witness" / "checkpoints.jsonl"
    witness.parent.mkdir()
    with AuditLog(log_dir, key_path=key, witness=str(witness), checkpoint_every=2) as log:
        for n in range(4):
            log.append({"kind": "decision", "agent_id": "a", "input": {"n": n}, "result": {"effect": "allow"}})
        log.flush_witness()
    public = etc / "audit.pub"
    shutil.copy(key.with_suffix(".pub"), public)
    root = IdentityKeys.generate("ops-root").identity
    return Deployment(
        policy=policy, engine="yaml", state=f"sqlite:///{tmp / 'state' / 'state.db'}",
        approvals_store=tmp / "state" / "approvals.db", approvers=registry,
        audit_log=log_dir, audit_key=key, audit_public_key=public, audit_witness=str(witness),
        require_identity=True, require_delegation=True, trusted_roots={root.agent_id: root.did},
        output_policy=etc / "output.yaml", mcp_hide_denied=True,
    )


def write_config(path: Path, deployment: Deployment) -> Path:
    """``deployment`` as the deployment file ``agt verify --config`` reads."""
    d = deployment
    doc = {
        "engine": d.engine, "policy": str(d.policy), "state": d.state,
        "approvals": {"store": str(d.approvals_store), "registry": str(d.approvers)},
        "audit": {"log": str(d.audit_log), "key": str(d.audit_key), "public_key": str(d.audit_public_key),
                  "witness": d.audit_witness},
        "identity": {"require": d.require_identity, "require_delegation": d.require_delegation,
                     "trusted_roots": dict(d.trusted_roots)},
        "output": {"policy": str(d.output_policy)},
        "mcp": {"hide_denied": bool(d.mcp_hide_denied)},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def junit_report(path: Path, outcomes: dict[str, str], default: str = "passed", ids: tuple[str, ...] = ()) -> Path:
    """A JUnit report as pytest writes it, for ``ids`` (each ``default`` unless ``outcomes`` says otherwise)."""
    from agt.verify.junit import junit_name

    cases = []
    for node_id in dict.fromkeys((*ids, *outcomes)):
        classname, name = junit_name(node_id)
        body = {"passed": "", "failed": '<failure message="assert False">boom</failure>',
                "skipped": '<skipped type="pytest.skip" message="no opa">skip</skipped>',
                "error": '<error message="fixture">boom</error>'}[outcomes.get(node_id, default)]
        if outcomes.get(node_id, default) != "missing":
            cases.append(f'<testcase classname="{classname}" name="{name}" time="0.01">{body}</testcase>')
    path.write_text('<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="%d">%s'
                    "</testsuite></testsuites>" % (len(cases), "".join(cases)))
    return path


def without(deployment: Deployment, **changes: object) -> Deployment:
    return replace(deployment, **changes)
