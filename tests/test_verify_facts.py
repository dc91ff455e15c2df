"""agt.verify.facts and agt.verify.assess: good and bad deployments get the right facts, statuses and reasons.

Every deployment is real: the policy is loaded by its engine and probed, the approver registry and keys are
Ed25519, the audit log was written and signed by agt.audit.AuditLog (OPA cases run the real opa)."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from agt.verify import COVERED, NOT_COVERED, PARTLY, verify_deployment
from agt.verify.facts import FACTS
from verify_helpers import ROOT, good_deployment, without


def facts_of(deployment):
    v = verify_deployment(deployment)
    return {f.id: f for f in v.assessment.facts}, {r.id: r for r in v.assessment.risks}


@pytest.fixture
def good(tmp_path):
    return good_deployment(tmp_path)


def test_a_well_configured_deployment_gets_every_fact(good):
    facts, _risks = facts_of(good)
    assert [f for f, fact in facts.items() if fact.ok is False] == []
    assert list(facts) == list(FACTS)
    assert facts["opa.control_plane"].ok is None  # a yaml deployment has no OPA


def test_a_well_configured_deployment_reaches_what_agt_can_give_for_every_risk(good):
    _facts, risks = facts_of(good)
    assert {r: risks[r].status for r in risks} == {
        "ASI01": PARTLY, "ASI02": COVERED, "ASI03": PARTLY, "ASI04": PARTLY, "ASI05": PARTLY,
        "ASI06": NOT_COVERED, "ASI07": PARTLY, "ASI08": PARTLY, "ASI09": PARTLY, "ASI10": PARTLY}
    assert all(r.at_ceiling for r in risks.values())
    assert risks["ASI06"].reasons[0].startswith("limit (agt's coverage is none)")


def test_the_starter_policy_is_not_default_deny(good):
    facts, risks = facts_of(without(good, policy=ROOT / "policies" / "starter.yaml"))
    assert facts["policy.default_deny"].ok is False
    assert "agt_verify_unlisted_tool" in facts["policy.default_deny"].detail
    assert risks["ASI02"].status == PARTLY
    assert any(r.startswith("policy-gate: policy.default_deny:") for r in risks["ASI02"].reasons)


def test_missing_approvers_leave_approvals_ineffective(good):
    facts, risks = facts_of(without(good, approvers=None))
    assert facts["approvals.registry"].ok is False
    assert "approval-unavailable" in facts["approvals.registry"].detail
    assert risks["ASI09"].status == PARTLY
    assert any(r.startswith("signed-approvals: approvals.registry:") for r in risks["ASI09"].reasons)


def test_an_approver_registry_that_does_not_load_is_named(good, tmp_path):
    bad = tmp_path / "approvers.json"
    bad.write_text('{"approvers": {"comms-lead": "did:key:nonsense"}}')
    facts, _ = facts_of(without(good, approvers=bad))
    assert facts["approvals.registry"].ok is False and str(bad) in facts["approvals.registry"].detail


def test_an_empty_approver_registry_approves_nothing(good, tmp_path):
    empty = tmp_path / "approvers.json"
    empty.write_text('{"approvers": {}}')
    facts, _ = facts_of(without(good, approvers=empty))
    assert facts["approvals.registry"].ok is False and "names no approver" in facts["approvals.registry"].detail


def test_a_policy_without_approval_rules_is_said_so(good, tmp_path):
    policy = tmp_path / "plain.yaml"
    policy.write_text("apiVersion: governance.toolkit/v1\nname: plain\ndefault_action: deny\nrules:\n"
                      "  - name: reads\n    condition: \"tool_name == 'read_file'\"\n    action: allow\n")
    facts, _ = facts_of(without(good, policy=policy, catalog=None))
    assert facts["policy.approval_rules"].ok is False
    assert facts["policy.budget_rules"].ok is False  # no counters rule either, and no rate limits


def test_rate_limits_count_as_a_budget(good, tmp_path):
    policy = tmp_path / "plain.yaml"
    policy.write_text("apiVersion: governance.toolkit/v1\nname: plain\ndefault_action: deny\nrules: []\n")
    facts, _ = facts_of(without(good, policy=policy, rate_limits={"agent:*": "100/minute"}))
    assert facts["policy.budget_rules"].ok is True and "agent:*=100/minute" in facts["policy.budget_rules"].detail


def test_a_signing_key_inside_the_log_directory_is_refused(good):
    inside = good.audit_log / "audit.key"
    inside.write_bytes(good.audit_key.read_bytes())
    inside.chmod(0o600)
    facts, risks = facts_of(without(good, audit_key=inside))
    assert facts["audit.key_outside_log"].ok is False
    assert "lies in the log directory" in facts["audit.key_outside_log"].detail
    assert any(r.startswith("audit-chain: audit.key_outside_log:") for r in risks["ASI10"].reasons)


def test_a_signing_key_others_can_read_is_not_protected(good):
    good.audit_key.chmod(0o644)
    facts, _ = facts_of(good)
    assert facts["audit.key_protected"].ok is False and "mode 644" in facts["audit.key_protected"].detail


def test_a_missing_signing_key_is_named(good, tmp_path):
    facts, _ = facts_of(without(good, audit_key=tmp_path / "gone.key"))
    assert facts["audit.key_outside_log"].ok is False and "no such file" in facts["audit.key_outside_log"].detail


def test_a_public_key_that_is_not_the_signing_keys_half_is_named(good, tmp_path):
    from agt.audit.log import load_or_create_key

    other = tmp_path / "other" / "k.key"
    load_or_create_key(other)
    facts, _ = facts_of(without(good, audit_public_key=other.with_suffix(".pub")))
    assert facts["audit.trusted_public_key"].ok is False
    assert "is not the public half of" in facts["audit.trusted_public_key"].detail
    assert facts["audit.verifies"].ok is False  # the log does not verify against that key either


def test_no_trusted_public_key_means_checkpoint_pub_would_be_trusted(good):
    facts, _ = facts_of(without(good, audit_public_key=None))
    assert facts["audit.trusted_public_key"].ok is False and "checkpoint.pub" in facts["audit.trusted_public_key"].detail


def test_an_edited_audit_record_fails_the_log_fact(good):
    first = sorted(good.audit_log.glob("*.jsonl"))[0]
    lines = first.read_text().splitlines()
    record = json.loads(lines[0])
    record["input"] = {"n": 99}
    lines[0] = json.dumps(record)
    first.write_text("\n".join(lines) + "\n")
    facts, _ = facts_of(good)
    assert facts["audit.verifies"].ok is False


def test_no_witness_leaves_the_witness_control_out(good):
    facts, risks = facts_of(without(good, audit_witness=None))
    assert facts["audit.witness"].ok is False
    assert any(r.startswith("audit-witness: audit.witness:") for r in risks["ASI10"].reasons)


def test_a_log_not_written_yet_is_not_a_failure(good, tmp_path):
    facts, _ = facts_of(without(good, audit_log=tmp_path / "fresh" / "audit"))
    assert facts["audit.verifies"].ok is None


def test_no_audit_log_at_all_makes_the_audit_chain_ineffective(good):
    facts, risks = facts_of(without(good, audit_log=None))
    assert facts["audit.log"].ok is False
    assert facts["audit.key_outside_log"].ok is None
    assert any(r.startswith("audit-chain: audit.log:") for r in risks["ASI09"].reasons)


def test_a_policy_file_others_can_write_is_named(good):
    good.policy.chmod(0o666)
    facts, risks = facts_of(good)
    assert facts["policy.files_protected"].ok is False and f"{good.policy} (mode 666)" in facts["policy.files_protected"].detail
    assert any(r.startswith("policy-integrity: policy.files_protected:") for r in risks["ASI04"].reasons)


def test_identity_not_required_leaves_inter_agent_communication_to_the_policy_alone(good):
    _facts, risks = facts_of(without(good, require_identity=False, require_delegation=False))
    assert risks["ASI07"].status == PARTLY and not risks["ASI07"].at_ceiling
    assert [r.split(":")[0] for r in risks["ASI07"].reasons[:2]] == ["identity", "delegation"]


def test_no_identity_and_no_default_deny_leave_inter_agent_communication_uncovered(good):
    _facts, risks = facts_of(without(good, require_identity=False, require_delegation=False,
                                     policy=ROOT / "policies" / "starter.yaml"))
    assert risks["ASI07"].status == NOT_COVERED


def test_delegation_without_trusted_roots_cannot_verify(good):
    facts, _ = facts_of(without(good, trusted_roots={}))
    assert facts["identity.delegation"].ok is False and "no trusted roots" in facts["identity.delegation"].detail


def test_audit_mode_relaxes_the_policy_gate(good):
    facts, risks = facts_of(without(good, mode="audit"))
    assert facts["mode.strict"].ok is False
    assert risks["ASI02"].status == PARTLY


def test_memory_state_resets_budgets_at_restart(good):
    facts, risks = facts_of(without(good, state=None))
    assert facts["state.persistent"].ok is False
    assert any(r.startswith("budgets-rates: state.persistent:") for r in risks["ASI02"].reasons)


def test_an_output_policy_that_does_not_load_is_named(good, tmp_path):
    broken = tmp_path / "out.yaml"
    broken.write_text("rules: [ {name: x, condition: 'tool_name ==', action: deny} ]\n")
    facts, _ = facts_of(without(good, output_policy=broken))
    assert facts["output.check"].ok is False and "does not load" in facts["output.check"].detail


def test_an_mcp_proxy_that_lists_every_tool_is_named(good):
    facts, _ = facts_of(without(good, mcp_hide_denied=False))
    assert facts["mcp.hide_denied"].ok is False


def test_a_policy_that_does_not_load_is_an_error_not_a_judgement(good, tmp_path):
    from agt.errors import PolicyLoadError

    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [ {name: x, condition: 'tool_name ==', action: deny} ]\n")
    with pytest.raises(PolicyLoadError):
        verify_deployment(without(good, policy=broken, catalog=None))


# --- real engines: Cedar and OPA ----------------------------------------------------------------


def test_the_cedar_starter_is_probed_like_the_yaml_one(good):
    facts, _ = facts_of(without(good, policy=ROOT / "cedar", engine="cedar"))
    assert facts["policy.default_deny"].ok is False  # the starter's permit-all default, as in YAML
    assert facts["policy.budget_rules"].ok is True
    assert "email-approval" in facts["policy.approval_rules"].detail


def test_a_managed_opa_is_locked_and_its_rego_rules_are_read(good, opa_binary):
    facts, _ = facts_of(without(good, policy=ROOT / "rego", engine="opa", catalog=ROOT / "policies" / "catalog.yaml"))
    assert facts["opa.control_plane"].ok is True
    assert "refuses policy and data writes" in facts["opa.control_plane"].detail
    assert facts["policy.default_deny"].ok is False  # the Rego starter's default_action is allow
    assert "refund-approval" in facts["policy.approval_rules"].detail


@pytest.fixture
def open_opa(opa_binary):
    """A real OPA without authentication or authorization, as many deployments run it."""
    from agt.opa.server import free_port

    port = free_port()
    proc = subprocess.Popen([opa_binary, "run", "--server", "--addr", f"127.0.0.1:{port}", "--skip-version-check",
                             str(ROOT / "rego")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=5) as client:
            while True:
                try:
                    if client.get(url + "/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, "opa exited"
                assert time.monotonic() < deadline, "opa did not become healthy"
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_opa_whose_policy_api_is_open_fails_the_control_plane_fact(good, open_opa):
    facts, risks = facts_of(without(good, policy=ROOT / "rego", engine="opa", opa_url=open_opa,
                                    catalog=ROOT / "policies" / "catalog.yaml"))
    assert facts["opa.control_plane"].ok is False and "replace" in facts["opa.control_plane"].detail
    assert any(r.startswith("opa-control-plane: opa.control_plane:") for r in risks["ASI10"].reasons)
