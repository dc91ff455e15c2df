"""The agent against `agt verify`: it runs the real `agt` CLI, can read the deployment file and write files, but
cannot read the audit checkpoint key. Every forged or replayed evidence file must fail `agt verify --check`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from verify_helpers import good_deployment, write_config

AGT = str(Path(sys.executable).parent / "agt")


def agt(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AGT, "verify", *map(str, args)], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def deployment(tmp_path):
    d = good_deployment(tmp_path)
    return d, write_config(tmp_path / "agt.yaml", d)


def test_evidence_the_agent_signs_with_a_key_of_its_own_fails_against_the_trusted_key(deployment, tmp_path):
    from agt.audit.log import load_or_create_key

    d, config = deployment
    load_or_create_key(tmp_path / "agent" / "mine.key")
    out = tmp_path / "forged.json"
    assert agt("--config", config, "--audit-key", tmp_path / "agent" / "mine.key", "--evidence", out).returncode == 0
    result = agt("--check", out, "--key", d.audit_public_key, "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["field"] == "signature.public_key"


def test_raised_statuses_with_recomputed_digests_fail_the_signature(deployment, tmp_path):
    from agt.verify.evidence import section_digest

    d, config = deployment
    out = tmp_path / "owasp.json"
    assert agt("--config", config, "--evidence", out).returncode == 0
    doc = json.loads(out.read_text())
    for risk in doc["risks"]:
        risk["status"], risk["reasons"] = "covered", []
    doc["summary"].update({"covered": 10, "partly": 0, "not covered": 0, "strict_ok": True})
    for name in ("risks", "summary"):
        doc["signature"]["sections"][name] = section_digest(doc[name])
    out.write_text(json.dumps(doc))
    result = agt("--check", out, "--key", d.audit_public_key, "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["field"] == "signature"


def test_old_evidence_replayed_after_the_policy_was_weakened_fails_against_the_deployed_policy(deployment, tmp_path):
    d, config = deployment
    out = tmp_path / "owasp.json"
    assert agt("--config", config, "--evidence", out).returncode == 0
    assert agt("--check", out, "--key", d.audit_public_key, "--policy", d.policy).returncode == 0
    d.policy.write_text(d.policy.read_text().replace("default_action: deny", "default_action: allow"))
    result = agt("--check", out, "--key", d.audit_public_key, "--policy", d.policy, "--json")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["field"] == "policy.files" and "policy.yaml: changed since the evidence was made" in doc["error"]


def test_agt_verify_never_makes_a_signing_key_for_the_agent(deployment, tmp_path):
    _d, config = deployment
    key = tmp_path / "agent" / "new.key"
    result = agt("--config", config, "--audit-key", key, "--evidence", tmp_path / "e.json", "--json")
    assert result.returncode == 1 and "cannot read the signing key" in json.loads(result.stdout)["error"]
    assert not key.exists() and not (tmp_path / "e.json").exists()
