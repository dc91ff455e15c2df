"""The evidence document of ``agt verify --evidence``: signed with the audit checkpoint key, checked offline.

The document is one JSON object of sections (``header``, ``deployment``, ``policy``, ``facts``, ``tests``,
``risks``, ``summary``) and a ``signature``. The signature is agt's checkpoint signature (Ed25519 over
canonical JSON, :func:`agt.audit.log.sign`) of the format, the signer's public key and the SHA-256 of each
section; so :func:`check_evidence` can say *which* section was edited, not only that something was.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agt._canonical import canonical_json
from agt.audit.log import sign, signature_valid
from agt.errors import AgtError
from agt.verify.assess import STATUSES, Assessment
from agt.verify.facts import FACTS, policy_sources
from agt.verify.junit import STATUSES as TEST_STATUSES
from agt.verify.mapping import RISK_IDS, OwaspMapping

FORMAT = "agt-owasp-evidence/1"
SECTIONS = ("header", "deployment", "policy", "facts", "tests", "risks", "summary")


class EvidenceError(AgtError):
    """Evidence that does not check out; ``field`` names the section or field that is wrong."""

    def __init__(self, message: str, field: str | None = None, file: str | None = None) -> None:
        self.message, self.field, self.file = message, field, file
        super().__init__(f"{file + ': ' if file else ''}{field + ': ' if field else ''}{message}")


def policy_digests(policy: Path) -> list[dict[str, str]]:
    """Each policy file with its sha256, named relative to the policy (a file: its name), so the record compares
    with the files of a checkout wherever it lives."""
    root = policy if policy.is_dir() else policy.parent
    return [{"path": p.relative_to(root).as_posix(), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
            for p in policy_sources(policy)]


def compare_policy(doc: Mapping[str, Any], policy: Path) -> list[str]:
    """How the policy at ``policy`` differs from the one the evidence was made for: files changed, missing or added."""
    recorded = {f["path"]: f["sha256"] for f in doc["policy"]["files"]}
    current = {f["path"]: f["sha256"] for f in policy_digests(policy)}
    changed = [f"{p}: changed since the evidence was made" for p in sorted(recorded.keys() & current.keys())
               if recorded[p] != current[p]]
    missing = [f"{p}: in the evidence, not in {policy}" for p in sorted(recorded.keys() - current.keys())]
    added = [f"{p}: in {policy}, not in the evidence" for p in sorted(current.keys() - recorded.keys())]
    return changed + missing + added


def section_digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _raw(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def _signed_message(public_key: str, sections: Mapping[str, str]) -> bytes:
    return canonical_json({"format": FORMAT, "public_key": public_key, "sections": dict(sections)})


def build_evidence(assessment: Assessment, mapping: OwaspMapping, *, deployment: Mapping[str, Any], engine: str,
                   revision: str, policy: Path, junit_files: tuple[Mapping[str, str], ...] | None,
                   agt_version: str, created: str | None = None) -> dict[str, Any]:
    """The unsigned sections (pass them to :func:`sign_evidence`)."""
    risks = [r.to_dict() for r in assessment.risks]
    return {
        "header": {"agt_version": agt_version, "created": created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "mapping": {"version": mapping.version, "sha256": mapping.sha256, "source": dict(mapping.source)}},
        "deployment": dict(deployment),
        "policy": {"engine": engine, "revision": revision, "path": str(policy), "files": policy_digests(policy)},
        "facts": [f.to_dict() for f in assessment.facts],
        "tests": None if assessment.tests is None else {
            "reports": [dict(f) for f in junit_files or ()], "results": [t.to_dict() for t in assessment.tests]},
        "risks": risks,
        "summary": {**assessment.counts(), "accepted": sorted(r.id for r in assessment.risks if r.accepted),
                    "strict_ok": not assessment.strict_failures},
    }


def sign_evidence(sections: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    public_key = _raw(key.public_key())
    digests = {name: section_digest(sections[name]) for name in SECTIONS}
    return {"format": FORMAT, **{name: sections[name] for name in SECTIONS},
            "signature": {"algorithm": "Ed25519", "public_key": public_key, "sections": digests,
                          "value": sign(key, _signed_message(public_key, digests))}}


@dataclass(frozen=True)
class CheckedEvidence:
    document: Mapping[str, Any]

    @property
    def summary(self) -> Mapping[str, Any]:
        return self.document["summary"]


def load_evidence(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvidenceError(f"cannot read: {exc.strerror or exc}", file=str(p)) from None
    except ValueError as exc:
        raise EvidenceError(f"not JSON: {exc}", file=str(p)) from None
    if not isinstance(doc, dict):
        raise EvidenceError("expected a JSON object", file=str(p))
    return doc


def check_evidence(doc: Mapping[str, Any], key: Ed25519PublicKey, source: str | None = None) -> CheckedEvidence:
    """Verify the signature with ``key`` (the trusted public key, never the one the document carries),
    then every section's digest, then the structure. Raises EvidenceError naming what is wrong."""
    def fail(message: str, field: str | None = None) -> EvidenceError:
        return EvidenceError(message, field, source)

    if doc.get("format") != FORMAT:
        raise fail(f"expected {FORMAT!r}, got {doc.get('format')!r}", "format")
    sig = doc.get("signature")
    if not isinstance(sig, dict) or not isinstance(sig.get("sections"), dict) or not isinstance(sig.get("value"), str) \
            or not isinstance(sig.get("public_key"), str):
        raise fail("missing or malformed (expected algorithm, public_key, sections and value)", "signature")
    if sig.get("algorithm") != "Ed25519":
        raise fail(f"unsupported algorithm {sig.get('algorithm')!r}", "signature.algorithm")
    if sig["public_key"] != _raw(key):
        raise fail("signed with another key than the one given (--key): not evidence from this deployment's "
                   "audit key", "signature.public_key")
    if not signature_valid(key, sig["value"], _signed_message(sig["public_key"], sig["sections"])):
        raise fail("does not verify with the given key: the signature or the section digests were edited", "signature")
    if set(sig["sections"]) != set(SECTIONS):
        raise fail(f"signs sections {sorted(sig['sections'])}, expected {list(SECTIONS)}", "signature.sections")
    extra = set(doc) - {"format", "signature", *SECTIONS}
    if extra:
        raise fail("a field no signature covers was added", sorted(extra)[0])
    for name in SECTIONS:
        if name not in doc:
            raise fail("missing", name)
        if section_digest(doc[name]) != sig["sections"][name]:
            raise fail("changed after it was signed", name)
    _check_structure(doc, fail)
    return CheckedEvidence(doc)


def _check_structure(doc: Mapping[str, Any], fail: Any) -> None:
    """What a signed document must also be: an honest signer's output has this shape; anything else is a
    document this agt cannot vouch for (another format version, or a signer that is not agt)."""
    risks = doc["risks"]
    if not isinstance(risks, list) or sorted(r.get("id") for r in risks if isinstance(r, dict)) != list(RISK_IDS) \
            or len(risks) != len(RISK_IDS):
        raise fail("expected ASI01..ASI10, each exactly once", "risks")
    for r in risks:
        if r.get("status") not in STATUSES:
            raise fail(f"status {r.get('status')!r} is not one of {', '.join(STATUSES)}", f"risks.{r['id']}.status")
    summary = doc["summary"]
    if not isinstance(summary, dict):
        raise fail("expected an object", "summary")
    for status in STATUSES:
        if summary.get(status) != sum(r["status"] == status for r in risks):
            raise fail(f"{status} count does not match the risks", f"summary.{status}")
    facts = doc["facts"]
    if not isinstance(facts, list) or [f.get("id") if isinstance(f, dict) else None for f in facts] != list(FACTS):
        raise fail("expected every fact agt verify computes, in order", "facts")
    tests = doc["tests"]
    if tests is not None:
        results = tests.get("results") if isinstance(tests, dict) else None
        if not isinstance(results, list) or any(not isinstance(t, dict) or t.get("status") not in TEST_STATUSES for t in results):
            raise fail("expected results, each passed, failed, skipped or missing", "tests.results")
    policy = doc["policy"]
    if not isinstance(policy, dict) or not isinstance(policy.get("files"), list) or not all(
            isinstance(f, dict) and isinstance(f.get("sha256"), str) and len(f["sha256"]) == 64 for f in policy["files"]):
        raise fail("expected files, each with its sha256", "policy.files")
