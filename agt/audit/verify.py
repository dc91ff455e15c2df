"""Checking an audit log, and proving one record is in it.

``verify_log`` walks every record: each must parse, carry the next sequence number, point at the hash
of the record before it, and hash to what it claims. Every checkpoint's signature must verify with the
expected public key, its Merkle root must match the records it covers, and it may not cover more records
than the log still has (truncation), and each checkpoint must chain to the one before it. The first
problem found is named with its file and line. ``strict`` also fails on missing coverage (see
:func:`verify_log`), and a witness's copies must all be in the log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agt import _json
from agt.audit import merkle
from agt.audit.backends import JsonlBackend, Line, open_backend
from agt.audit.log import GENESIS, checkpoint_hash, record_hash, signature_ok
from agt.audit.witness import Witness, WitnessError, open_witness
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
    uncovered: tuple[int, int] | None = None
    """The first and last seq no checkpoint covers, or None."""
    strict: bool = False
    witnessed: int = 0
    """Checkpoints the witness holds (signed with the key) that were compared with the log's."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "records": self.records, "checkpoints": self.checkpoints, "covered_by_checkpoint": self.covered,
            "uncovered": list(self.uncovered) if self.uncovered else None, "strict": self.strict, "witnessed": self.witnessed,
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
    """``checkpoint.pub`` beside the log. Not to be trusted: whoever rewrites the log can replace it."""
    p = Path(location)
    pub = (p if p.is_dir() else p.parent) / "checkpoint.pub"
    if not pub.exists():
        raise AuditVerifyError(f"no public key given and no {pub}; pass --key")
    return load_public_key(pub)


UNTRUSTED_KEY = ("no public key was given: checked against checkpoint.pub in the log directory, which whoever can "
                 "rewrite the log can replace; pass the key kept elsewhere (--key)")


def verify_log(
    location: str | Path, public_key: Ed25519PublicKey | None = None, *, strict: bool = False,
    witness: "str | Path | Witness | None" = None, witness_token: str | None = None,
) -> VerifyReport:
    """Check the record chain and the checkpoint chain against ``public_key``.

    Always problems: a broken record chain, a checkpoint that does not verify, does not match the records,
    or does not chain to the one before it, and, with ``witness``, a witnessed checkpoint the log lacks or
    holds in another form. With ``strict`` also: no trusted key, checkpoints from before the chain, a
    chain that does not start at the empty log, and more records after the last checkpoint than its
    ``checkpoint_every`` (a live writer's allowance)."""
    if not Path(location).exists():
        raise AuditVerifyError(f"no audit log at {location}")
    warnings: list[str] = []
    strict_failures: list[str] = []
    if public_key is None:
        public_key = default_public_key(location)
        warnings.append(UNTRUSTED_KEY)
        strict_failures.append(UNTRUSTED_KEY)
    key = public_key
    backend = open_backend(location, create=False)
    try:
        lines, _ = backend.read_since(None)
        cp_lines = backend.checkpoints()
        if isinstance(backend, JsonlBackend):
            files = backend.files()
            if files and files[-1].stat().st_size and not files[-1].read_bytes().endswith(b"\n"):
                warnings.append(f"{files[-1].name}: the last line is incomplete (a writer stopped mid-record); it is not counted")
    finally:
        backend.close()

    problems: list[Problem] = []
    leaves, hashes = _walk_records(lines, problems)
    checked = _walk_checkpoints(cp_lines, key, len(lines), leaves, hashes, problems, warnings, strict_failures)
    covered = checked.covered
    if covered < len(lines):
        note = f"records {covered}..{len(lines) - 1} ({len(lines) - covered}) are covered by no checkpoint"
        if not checked.valid:
            strict_failures.append(f"no checkpoint covers any of the {len(lines)} records: checkpoints.jsonl is missing or empty")
        elif len(lines) - covered > checked.allowance:
            strict_failures.append(f"{note}: more than the {checked.allowance} a live writer may leave after its last "
                                   "checkpoint, so checkpoints were deleted or records appended behind the writer's back")
    witnessed = 0
    if witness is not None:
        witnessed = _compare_witness(open_witness(witness, witness_token), key, checked.valid, problems, warnings, strict_failures)
    if strict:
        problems.extend(Problem("strict", None, f) for f in strict_failures)
    problems.sort(key=lambda p: (p.seq if p.seq is not None else 1 << 62))
    return VerifyReport(len(lines), len(cp_lines), tuple(problems), tuple(warnings), covered,
                        (covered, len(lines) - 1) if covered < len(lines) else None, strict, witnessed)


def _walk_records(lines: list[Line], problems: list[Problem]) -> tuple[list[bytes], list[str]]:
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
    return leaves, hashes


@dataclass(frozen=True)
class _Checked:
    covered: int
    allowance: int
    valid: list[dict[str, Any]]


def _walk_checkpoints(
    cp_lines: list[Line], key: Ed25519PublicKey, n_lines: int, leaves: list[bytes], hashes: list[str],
    problems: list[Problem], warnings: list[str], strict_failures: list[str],
) -> _Checked:
    covered, allowance, legacy, last_size = 0, 0, 0, -1
    valid: list[dict[str, Any]] = []
    prev = GENESIS
    roots = merkle.Roots(leaves)  # one pass over the leaves for all checkpoints, not one per checkpoint
    for index, cp_line in enumerate(cp_lines):
        expected_prev, prev = prev, checkpoint_hash(cp_line.text)
        try:
            cp = json.loads(cp_line.text)
            if not isinstance(cp, dict):
                raise ValueError("not an object")
        except ValueError:
            problems.append(Problem(cp_line.where, None, "checkpoint is not JSON"))
            continue
        if not signature_ok(key, cp):
            problems.append(Problem(cp_line.where, None, "checkpoint signature does not verify with the expected key"))
            continue
        size = cp.get("size")
        if not isinstance(size, int) or size < 0:
            problems.append(Problem(cp_line.where, None, f"checkpoint size {size!r} is not a record count"))
            continue
        if "prev_checkpoint" not in cp:
            legacy += 1
        elif cp["prev_checkpoint"] != expected_prev:
            problems.append(Problem(cp_line.where, None, "does not chain to the checkpoint before it: a checkpoint was deleted, "
                                    "replaced or moved" if index else "the first checkpoint left does not start the chain: "
                                    "the checkpoints before it were deleted"))
        elif index == 0 and size > 0:
            message = f"the checkpoint chain starts at {size} records, not at the empty log: earlier checkpoints are missing"
            warnings.append(message)
            strict_failures.append(message)
        if size < last_size:
            problems.append(Problem(cp_line.where, None, f"checkpoint over {size} records comes after one over {last_size}: out of order"))
        last_size = max(last_size, size)
        valid.append(cp)
        if "checkpoint_every" in cp:
            allowance = int(cp["checkpoint_every"]) if isinstance(cp["checkpoint_every"], int) else 0
        if size > n_lines:
            problems.append(Problem(cp_line.where, n_lines, f"signed checkpoint covers {size} records but the log has {n_lines}: records were cut off the end"))
            continue
        if size > len(leaves):
            continue  # the chain already broke before this point; that problem is reported
        if roots.at(size).hex() != cp.get("root") or (hashes[size - 1] if size else GENESIS) != cp.get("last_hash"):
            problems.append(Problem(cp_line.where, size - 1, f"the first {size} records no longer match the signed Merkle root: the log was rewritten"))
            continue
        covered = max(covered, size)
    if legacy:
        message = f"{legacy} checkpoints predate the checkpoint chain (no prev_checkpoint): a deletion among them cannot be seen"
        warnings.append(message)
        strict_failures.append(message)
    return _Checked(covered, allowance, valid)


def _compare_witness(
    witness: Witness, key: Ed25519PublicKey, in_log: list[dict[str, Any]], problems: list[Problem], warnings: list[str],
    strict_failures: list[str],
) -> int:
    """Every checkpoint the witness holds (signed with ``key``) must be in the log, exactly."""
    try:
        copies = witness.checkpoints()
    except WitnessError as exc:
        problems.append(Problem("witness", None, str(exc)))
        return 0
    by_size: dict[int, list[dict[str, Any]]] = {}
    for cp in in_log:
        by_size.setdefault(cp["size"], []).append(cp)
    seen: list[dict[str, Any]] = []
    foreign = 0
    for copy in copies:
        cp = copy.checkpoint
        if cp is None or not signature_ok(key, cp):
            foreign += 1
            continue
        seen.append(cp)
        if cp in by_size.get(cp.get("size"), []):  # type: ignore[arg-type]
            continue
        if cp.get("size") in by_size:
            problems.append(Problem(copy.where, None, f"the log's checkpoint over {cp['size']} records differs from the witnessed one: it was replaced"))
        else:
            problems.append(Problem(copy.where, None, f"the witnessed checkpoint over {cp.get('size')} records is missing from the log: it was deleted"))
    if foreign:
        warnings.append(f"{foreign} entries of the witness {witness} are not checkpoints signed with this key; ignored")
    unwitnessed = [cp for cp in in_log if cp not in seen]
    if unwitnessed:
        message = (f"{len(unwitnessed)} checkpoints of the log (sizes {', '.join(str(c['size']) for c in unwitnessed[:5])}"
                   f"{', ...' if len(unwitnessed) > 5 else ''}) are not in the witness {witness}: it was unreachable, or they are new")
        warnings.append(message)
        strict_failures.append(message)
    return len(seen)


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
    if not signature_ok(public_key, cp):
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
