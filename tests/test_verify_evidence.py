"""agt.verify.evidence: evidence signed with the audit checkpoint key; any edit fails the check, naming what."""

from __future__ import annotations

import copy
import json

import pytest

import agt
from agt.audit import load_public_key
from agt.audit.log import load_or_create_key
from agt.verify import EvidenceError, check_evidence, load_evidence, verify_deployment, write_evidence
from agt.verify.evidence import SECTIONS
from verify_helpers import good_deployment


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evidence")
    deployment = good_deployment(tmp)
    out = tmp / "owasp.json"
    write_evidence(verify_deployment(deployment), out, agt.__version__)
    return load_evidence(out), load_public_key(deployment.audit_public_key), deployment


def test_signed_evidence_checks_out_with_the_trusted_key(signed):
    doc, key, _ = signed
    checked = check_evidence(doc, key)
    assert checked.summary["covered"] == 1 and checked.summary["not covered"] == 1


def test_the_evidence_records_what_a_reviewer_needs(signed):
    doc, _key, deployment = signed
    assert set(SECTIONS) <= set(doc)
    assert doc["header"]["agt_version"] == agt.__version__
    assert doc["header"]["mapping"]["version"] == "2026.1" and len(doc["header"]["mapping"]["sha256"]) == 64
    import hashlib

    assert doc["policy"]["path"] == str(deployment.policy)
    assert doc["policy"]["files"] == [{"path": "policy.yaml", "sha256": hashlib.sha256(deployment.policy.read_bytes()).hexdigest()}]
    assert doc["tests"] is None  # no --junit given
    assert [r["id"] for r in doc["risks"]] == [f"ASI{n:02d}" for n in range(1, 11)]
    assert doc["deployment"]["audit_key"] == str(deployment.audit_key)


def test_the_evidence_is_signed_with_the_audit_checkpoint_key(signed):
    doc, key, _deployment = signed
    import base64

    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert doc["signature"]["public_key"] == base64.b64encode(raw).decode()


@pytest.mark.parametrize(("section", "edit"), [
    ("risks", lambda d: d["risks"][5].update(status="covered")),
    ("summary", lambda d: d["summary"].update(strict_ok=True)),
    ("facts", lambda d: d["facts"][0].update(ok=True, detail="default deny, promise")),
    ("tests", lambda d: d.update(tests={"reports": [], "results": []})),
    ("policy", lambda d: d["policy"]["files"][0].update(sha256="0" * 64)),
    ("deployment", lambda d: d["deployment"].update(require_identity=False)),
    ("header", lambda d: d["header"].update(created="2030-01-01T00:00:00Z")),
])
def test_an_edited_section_fails_the_check_naming_it(signed, section, edit):
    doc, key, _ = signed
    forged = copy.deepcopy(doc)
    edit(forged)
    with pytest.raises(EvidenceError, match="changed after it was signed") as info:
        check_evidence(forged, key)
    assert info.value.field == section


def test_edited_section_digests_fail_the_signature(signed):
    doc, key, _ = signed
    forged = copy.deepcopy(doc)
    forged["risks"][5]["status"] = "covered"
    from agt.verify.evidence import section_digest

    forged["signature"]["sections"]["risks"] = section_digest(forged["risks"])
    with pytest.raises(EvidenceError, match="does not verify") as info:
        check_evidence(forged, key)
    assert info.value.field == "signature"


def test_a_field_no_signature_covers_is_named(signed):
    doc, key, _ = signed
    forged = {**copy.deepcopy(doc), "reviewer_note": "all good"}
    with pytest.raises(EvidenceError, match="no signature covers") as info:
        check_evidence(forged, key)
    assert info.value.field == "reviewer_note"


def test_a_removed_section_is_named(signed):
    doc, key, _ = signed
    forged = copy.deepcopy(doc)
    del forged["facts"]
    with pytest.raises(EvidenceError, match="missing") as info:
        check_evidence(forged, key)
    assert info.value.field == "facts"


def test_another_key_fails_the_check(signed, tmp_path):
    doc, _key, _ = signed
    other = load_or_create_key(tmp_path / "other.key").public_key()
    with pytest.raises(EvidenceError, match="signed with another key") as info:
        check_evidence(doc, other)
    assert info.value.field == "signature.public_key"


def test_evidence_re_signed_by_another_key_claiming_the_trusted_one_fails(signed, tmp_path):
    # The agent cannot read the audit key, so it signs with its own and copies the trusted public key in.
    from agt.audit.log import sign
    from agt.verify.evidence import _signed_message

    doc, key, _ = signed
    forged = copy.deepcopy(doc)
    mine = load_or_create_key(tmp_path / "agent.key")
    forged["signature"]["value"] = sign(mine, _signed_message(forged["signature"]["public_key"], forged["signature"]["sections"]))
    with pytest.raises(EvidenceError, match="does not verify"):
        check_evidence(forged, key)


def test_a_wrong_format_is_named(signed):
    doc, key, _ = signed
    with pytest.raises(EvidenceError) as info:
        check_evidence({**doc, "format": "agt-owasp-evidence/0"}, key)
    assert info.value.field == "format"


def test_a_file_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "owasp.json"
    path.write_text("{not json")
    with pytest.raises(EvidenceError, match="not JSON") as info:
        load_evidence(path)
    assert info.value.file == str(path)


def test_evidence_without_the_signing_key_is_refused(tmp_path):
    from dataclasses import replace

    from agt.verify import ConfigError

    deployment = replace(good_deployment(tmp_path), audit_key=None)
    with pytest.raises(ConfigError, match="signed with the audit checkpoint key"):
        write_evidence(verify_deployment(deployment), tmp_path / "e.json", agt.__version__)


def test_evidence_is_never_signed_with_a_key_made_on_the_spot(tmp_path):
    from dataclasses import replace

    deployment = replace(good_deployment(tmp_path), audit_key=tmp_path / "nope.key")
    with pytest.raises(agt.errors.AgtError, match="cannot read the signing key"):
        write_evidence(verify_deployment(deployment), tmp_path / "e.json", agt.__version__)
    assert not (tmp_path / "nope.key").exists()


def test_the_written_file_is_plain_json(signed, tmp_path):
    doc, _key, _ = signed
    assert json.loads(json.dumps(doc)) == doc


def test_a_signed_document_of_the_wrong_shape_is_named(signed, tmp_path):
    # Signed by the right key but not by this agt (another version, or a hand-made signer): the shape is checked too.
    from agt.audit.log import load_signing_key
    from agt.verify.evidence import sign_evidence

    doc, key, deployment = signed
    sections = {name: copy.deepcopy(doc[name]) for name in SECTIONS}
    sections["risks"] = sections["risks"][:9]
    with pytest.raises(EvidenceError, match="ASI01..ASI10") as info:
        check_evidence(sign_evidence(sections, load_signing_key(deployment.audit_key)), key)
    assert info.value.field == "risks"


def test_the_policy_compares_equal_to_the_one_it_was_made_for(signed):
    from agt.verify.evidence import compare_policy

    doc, _key, deployment = signed
    assert compare_policy(doc, deployment.policy) == []


def test_a_changed_policy_is_named_against_the_evidence(signed, tmp_path):
    from agt.verify.evidence import compare_policy

    doc, _key, deployment = signed
    changed = tmp_path / "policy.yaml"
    changed.write_text(deployment.policy.read_text().replace("default_action: deny", "default_action: allow"))
    assert compare_policy(doc, changed) == ["policy.yaml: changed since the evidence was made"]
    other = tmp_path / "other.yaml"
    other.write_text("x")
    assert compare_policy(doc, other) == [f"policy.yaml: in the evidence, not in {other}",
                                          f"other.yaml: in {other}, not in the evidence"]
