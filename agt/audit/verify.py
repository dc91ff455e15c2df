"""Checking an audit log, and proving one record is in it.

``verify_log`` walks every record: each must parse, carry the next sequence number, point at the hash
of the record before it, and hash to what it claims. Every checkpoint's signature must verify with the
expected public key, its Merkle root must match the records it covers, and it may not cover more records
than the log still has (truncation). The first problem found is named with its file and line.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agt import _json
from agt.audit import merkle
from agt.audit.backends import JsonlBackend, open_backend
from agt.audit.log import GENESIS, checkpoint_message, record_hash
from agt.errors import AgtError


class AuditVerifyError(AgtError):
    pass


@dataclass(frozen=True)
class Problem:
    where: str
    seq: int | None
    message: str
    decision_id: str | None = None

    def __str__(self) -> str:
        who = f" (seq {self.seq}{', ' + self.decision_id if self.decision_id else ''})" if self.seq is not None else ""
        return f"{self.where}{who}: {self.message}"


@dataclass(frozen=True)
class VerifyReport:
    records: int
    checkpoints: int
    problems: tuple[Problem, ...]
    warnings: tuple[str, ...] = field(default=())
    covered: int = 0
    """Records covered by a valid signed checkpoint; later ones are only chained."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "records": self.records, "checkpoints": self.checkpoints, "covered_by_checkpoint": self.covered,
            "first_problem": str(self.first_problem) if self.first_problem else None,
            "problems": [str(p) for p in self.problems], "warnings": list(self.warnings),
        }


def load_public_key(path_or_pem: str | Path | bytes) -> Ed25519PublicKey:
    data = path_or_pem if isinstance(path_or_pem, bytes) else Path(path_or_pem).read_bytes()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise AuditVerifyError("the checkpoint key must be an Ed25519 public key")
    return key


def default_public_key(location: str | Path) -> Ed25519PublicKey:
    p = Path(location)
    pub = (p if p.is_dir() else p.parent) / "checkpoint.pub"
    if not pub.exists():
        raise AuditVerifyError(f"no public key given and no {pub}; pass --key")
    return load_public_key(pub)


def _signature_ok(key: Ed25519PublicKey, cp: dict[str, Any]) -> bool:
    try:
        key.verify(base64.b64decode(cp["signature"]), checkpoint_message(cp))
        return True
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False


def verify_log(location: str | Path, public_key: Ed25519PublicKey | None = None) -> VerifyReport:
    if not Path(location).exists():
        raise AuditVerifyError(f"no audit log at {location}")
    key = public_key or default_public_key(location)
    backend = open_backend(location, create=False)
    try:
        lines, _ = backend.read_since(None)
        cp_lines = backend.checkpoints()
        warnings = []
        if isinstance(backend, JsonlBackend):
            files = backend.files()
            if files and files[-1].stat().st_size and not files[-1].read_bytes().endswith(b"\n"):
                warnings.append(f"{files[-1].name}: the last line is incomplete (a writer stopped mid-record); it is not counted")
    finally:
        backend.close()

    problems: list[Problem] = []
    leaves: list[bytes] = []
    hashes: list[str] = []
    prev = GENESIS
    for i, line in enumerate(lines):
        try:
            # Decimals read back exactly, so the recomputed hash covers the digits that were written.
            rec = _json.loads(line.text)
            if not isinstance(rec, dict):
                raise ValueError("not an object")
        except ValueError:
            problems.append(Problem(line.where, i, "not a JSON record"))
            break
        did = rec.get("decision_id")
        if rec.get("seq") != i:
            problems.append(Problem(line.where, i, f"sequence number {rec.get('seq')!r} where {i} belongs: a record was inserted, deleted or moved", did))
            break
        if rec.get("prev_hash") != prev:
            problems.append(Problem(line.where, i, "does not chain to the record before it: a record before this one was changed, removed or inserted", did))
            break
        if record_hash(rec) != rec.get("hash"):
            problems.append(Problem(line.where, i, "its content does not match its hash: the record was edited", did))
            break
        prev = rec["hash"]
        hashes.append(prev)
        leaves.append(merkle.leaf_hash(bytes.fromhex(prev)))

    covered = 0
    for cp_line in cp_lines:
        try:
            cp = json.loads(cp_line.text)
        except ValueError:
            problems.append(Problem(cp_line.where, None, "checkpoint is not JSON"))
            continue
        if not _signature_ok(key, cp):
            problems.append(Problem(cp_line.where, None, "checkpoint signature does not verify with the expected key"))
            continue
        size = int(cp.get("size", 0))
        if size > len(lines):
            problems.append(Problem(cp_line.where, len(lines), f"signed checkpoint covers {size} records but the log has {len(lines)}: records were cut off the end"))
            continue
        if size > len(leaves):
            continue  # the chain already broke before this point; that problem is reported
        if merkle.root(leaves[:size]).hex() != cp.get("root") or hashes[size - 1] != cp.get("last_hash"):
            problems.append(Problem(cp_line.where, size - 1, f"the first {size} records no longer match the signed Merkle root: the log was rewritten"))
            continue
        covered = max(covered, size)
    problems.sort(key=lambda p: (p.seq if p.seq is not None else 1 << 62))
    return VerifyReport(len(lines), len(cp_lines), tuple(problems), tuple(warnings), covered)


def prove(location: str | Path, decision_id: str) -> dict[str, Any]:
    """A Merkle inclusion proof for the record with ``decision_id``, against the newest signed
    checkpoint that covers it. Verifiable with :func:`verify_proof` and the log's public key."""
    backend = open_backend(location, create=False)
    try:
        lines, _ = backend.read_since(None)
        cps = [json.loads(c.text) for c in backend.checkpoints()]
    finally:
        backend.close()
    recs = [json.loads(line.text) for line in lines]
    index = next((i for i, r in enumerate(recs) if r.get("decision_id") == decision_id), None)
    if index is None:
        raise AuditVerifyError(f"no record with decision_id {decision_id!r}")
    covering = [c for c in cps if int(c.get("size", 0)) > index and int(c["size"]) <= len(recs)]
    if not covering:
        raise AuditVerifyError(f"record {decision_id} is not covered by a checkpoint yet; run `agt audit checkpoint` first")
    cp = max(covering, key=lambda c: int(c["size"]))
    leaves = [merkle.leaf_hash(bytes.fromhex(r["hash"])) for r in recs[: int(cp["size"])]]
    return {
        "decision_id": decision_id,
        "record": recs[index],
        "leaf_index": index,
        "tree_size": int(cp["size"]),
        "path": [h.hex() for h in merkle.inclusion_path(index, leaves)],
        "checkpoint": cp,
    }


def verify_proof(proof: dict[str, Any], public_key: Ed25519PublicKey) -> None:
    """Raise AuditVerifyError unless the record, its hash, the path and the signed checkpoint agree."""
    cp = proof.get("checkpoint") or {}
    if not _signature_ok(public_key, cp):
        raise AuditVerifyError("the checkpoint signature does not verify with the given key")
    record = proof.get("record") or {}
    if record_hash(record) != record.get("hash"):
        raise AuditVerifyError("the record does not match its own hash")
    if proof.get("decision_id") != record.get("decision_id"):
        raise AuditVerifyError("the proof names a decision_id other than its record's")
    leaf = merkle.leaf_hash(bytes.fromhex(record["hash"]))
    path = [bytes.fromhex(h) for h in proof.get("path", [])]
    if int(cp.get("size", -1)) != int(proof.get("tree_size", -2)):
        raise AuditVerifyError("the proof's tree size differs from the checkpoint's")
    if not merkle.verify_inclusion(leaf, int(proof["leaf_index"]), int(proof["tree_size"]), path, bytes.fromhex(cp["root"])):
        raise AuditVerifyError("the inclusion path does not lead to the signed root")
