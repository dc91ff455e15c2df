"""Tampering with a stored audit log, and inclusion proofs.

A JSONL log of 45 records with checkpoints at 10, 20, 30, 40 and 45 (on close) is edited the way an
attacker with write access could edit it; verify_log must fail and its first problem must name the right
place. The verifier's key is read before any tampering (an out-of-band copy), as an auditor keeps it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agt.audit import AuditLog, AuditVerifyError, load_public_key, prove, verify_log, verify_proof
from agt.audit import merkle
from agt.cli import cli
from agt.errors import AgtError

N, EVERY = 45, 10
FILE = "audit-000001.jsonl"


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def rehash(rec: dict) -> dict:
    rec = {k: v for k, v in rec.items() if k != "hash"}
    rec["hash"] = hashlib.sha256(canonical(rec)).hexdigest()
    return rec


def event(i: int) -> dict:
    return {"decision_id": f"d{i:03d}", "timestamp": f"2026-11-23T08:00:{i:02d}.000000Z", "kind": "decision",
            "agent_id": "agent-1", "path": "policy", "input": {"action": {"tool": "read_doc", "params": {"n": i}}},
            "result": {"effect": "allow", "reasons": [{"id": "r-read", "message": "m"}]}}


def build(base: Path, name: str) -> Path:
    with AuditLog(base / name, checkpoint_every=EVERY, durability="none", allow_key_in_log_dir=True) as log:
        for i in range(N):
            log.append(event(i))
    return base


@pytest.fixture(scope="module")
def jsonl_template(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("jsonl-template"), "log")


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("sqlite-template"), "a.db")


@pytest.fixture
def log_dir(jsonl_template, tmp_path) -> Path:
    """A fresh copy of the template log: each test tampers with its own."""
    shutil.copytree(jsonl_template / "log", tmp_path / "log")
    return tmp_path / "log"


@pytest.fixture
def key(log_dir):
    """The auditor's copy of the public key, taken before anyone tampers with the log."""
    return load_public_key((log_dir / "checkpoint.pub").read_bytes())


@pytest.fixture
def key_file(log_dir, tmp_path) -> Path:
    out = tmp_path / "auditor.pub"
    out.write_bytes((log_dir / "checkpoint.pub").read_bytes())
    return out


def lines(log_dir: Path, name: str = FILE) -> list[str]:
    return (log_dir / name).read_text("utf-8").splitlines()


def write_lines(log_dir: Path, new: list[str], name: str = FILE) -> None:
    (log_dir / name).write_text("".join(line + "\n" for line in new), "utf-8")


def recs(log_dir: Path) -> list[dict]:
    return [json.loads(line) for line in lines(log_dir)]


def write_recs(log_dir: Path, rs: list[dict]) -> None:
    write_lines(log_dir, [json.dumps(r, sort_keys=True, separators=(",", ":")) for r in rs])


def checkpoints(log_dir: Path) -> list[dict]:
    return [json.loads(line) for line in lines(log_dir, "checkpoints.jsonl")]


def write_checkpoints(log_dir: Path, cps: list[dict]) -> None:
    write_lines(log_dir, [json.dumps(c, sort_keys=True, separators=(",", ":")) for c in cps], "checkpoints.jsonl")


def first(log_dir: Path, key) -> tuple[str, int | None]:
    report = verify_log(log_dir, key)
    assert not report.ok, "tampering went undetected"
    return report.first_problem.where, report.first_problem.seq


def sign(cp: dict, signer: Ed25519PrivateKey) -> dict:
    cp = dict(cp)
    signed = [k for k in ("size", "root", "last_hash", "time", "prev_checkpoint", "checkpoint_every") if k in cp]
    cp["signature"] = base64.b64encode(signer.sign(canonical({k: cp[k] for k in signed}))).decode()
    return cp


# --- the untouched log -----------------------------------------------------------------------------


def test_the_intact_log_verifies(log_dir, key):
    report = verify_log(log_dir, key)
    assert report.ok, report.first_problem
    assert (report.records, report.checkpoints, report.covered) == (N, 6, N)


def test_the_intact_log_has_the_expected_checkpoints(log_dir):
    assert [c["size"] for c in checkpoints(log_dir)] == [0, 10, 20, 30, 40, 45]  # 0: the log's creation


# --- each kind of tampering ------------------------------------------------------------------------


def test_an_edited_record_is_named(log_dir, key):
    rs = recs(log_dir)
    rs[17]["agent_id"] = "mallory"  # the hash is left as it was
    write_recs(log_dir, rs)
    assert first(log_dir, key) == (f"{FILE}:18", 17)


def test_an_edited_record_is_reported_as_edited(log_dir, key):
    rs = recs(log_dir)
    rs[17]["result"]["effect"] = "deny"
    write_recs(log_dir, rs)
    assert "edited" in verify_log(log_dir, key).first_problem.message


def test_an_edited_record_with_its_hash_recomputed_breaks_the_next_link(log_dir, key):
    rs = recs(log_dir)
    rs[17]["agent_id"] = "mallory"
    rs[17] = rehash(rs[17])
    write_recs(log_dir, rs)
    assert first(log_dir, key) == (f"{FILE}:19", 18)


def test_a_consistently_rewritten_chain_fails_the_first_signed_root_covering_the_edit(log_dir, key):
    rs = recs(log_dir)
    rs[17]["agent_id"] = "mallory"
    prev = rs[16]["hash"]
    for i in range(17, N):
        rs[i]["prev_hash"] = prev
        rs[i] = rehash(rs[i])
        prev = rs[i]["hash"]
    write_recs(log_dir, rs)
    # every link holds; the checkpoint over 20 records (line 2) is the first whose root no longer matches
    assert first(log_dir, key) == ("checkpoints.jsonl:3", 19)


def test_a_consistently_rewritten_chain_leaves_earlier_checkpoints_valid(log_dir, key):
    rs = recs(log_dir)
    rs[17]["agent_id"] = "mallory"
    prev = rs[16]["hash"]
    for i in range(17, N):
        rs[i]["prev_hash"] = prev
        rs[i] = rehash(rs[i])
        prev = rs[i]["hash"]
    write_recs(log_dir, rs)
    report = verify_log(log_dir, key)
    assert sorted(p.where for p in report.problems) == [f"checkpoints.jsonl:{i}" for i in (3, 4, 5, 6)]


def test_a_deleted_record_is_named_where_it_is_missing(log_dir, key):
    ls = lines(log_dir)
    del ls[17]
    write_lines(log_dir, ls)
    assert first(log_dir, key) == (f"{FILE}:18", 17)


def test_an_inserted_duplicate_record_is_named(log_dir, key):
    ls = lines(log_dir)
    ls.insert(18, ls[17])
    write_lines(log_dir, ls)
    assert first(log_dir, key) == (f"{FILE}:19", 18)


def test_two_swapped_records_are_named(log_dir, key):
    ls = lines(log_dir)
    ls[17], ls[18] = ls[18], ls[17]
    write_lines(log_dir, ls)
    assert first(log_dir, key) == (f"{FILE}:18", 17)


def test_a_rewritten_and_renumbered_deletion_fails_the_signed_roots(log_dir, key):
    """Delete record 17, then renumber and rechain everything after it: only the checkpoints can tell."""
    rs = recs(log_dir)
    del rs[17]
    prev = rs[16]["hash"]
    for i in range(17, len(rs)):
        rs[i]["seq"], rs[i]["prev_hash"] = i, prev
        rs[i] = rehash(rs[i])
        prev = rs[i]["hash"]
    write_recs(log_dir, rs)
    assert first(log_dir, key) == ("checkpoints.jsonl:3", 19)


def test_records_cut_off_below_the_last_checkpoint_are_reported(log_dir, key):
    write_lines(log_dir, lines(log_dir)[:33])
    # the checkpoint over 40 records (line 4) is the first that covers more than the log still has
    assert first(log_dir, key) == ("checkpoints.jsonl:5", 33)


def test_records_cut_off_are_reported_as_truncation(log_dir, key):
    write_lines(log_dir, lines(log_dir)[:33])
    assert "cut off" in verify_log(log_dir, key).first_problem.message


def test_a_forged_checkpoint_signed_with_another_key_is_named(log_dir, key):
    cps = checkpoints(log_dir)
    cps.append(sign(cps[-1], Ed25519PrivateKey.generate()))
    write_checkpoints(log_dir, cps)
    assert first(log_dir, key) == ("checkpoints.jsonl:7", None)


def test_a_checkpoint_with_a_raised_size_is_named(log_dir, key):
    cps = checkpoints(log_dir)
    cps[2]["size"] = 21
    write_checkpoints(log_dir, cps)
    assert first(log_dir, key) == ("checkpoints.jsonl:3", None)


def test_a_checkpoint_with_a_replaced_root_is_named(log_dir, key):
    cps = checkpoints(log_dir)
    cps[2]["root"] = cps[3]["root"]
    write_checkpoints(log_dir, cps)
    assert first(log_dir, key) == ("checkpoints.jsonl:3", None)


def test_a_log_rewritten_and_resigned_with_a_new_key_fails_against_the_auditors_key(log_dir, key):
    """The attacker rewrites a record, rechains, re-signs every checkpoint and replaces checkpoint.pub."""
    rs = recs(log_dir)
    rs[17]["agent_id"] = "mallory"
    prev = rs[16]["hash"]
    for i in range(17, N):
        rs[i]["prev_hash"] = prev
        rs[i] = rehash(rs[i])
        prev = rs[i]["hash"]
    write_recs(log_dir, rs)
    forger = Ed25519PrivateKey.generate()
    leaves = [merkle.leaf_hash(bytes.fromhex(r["hash"])) for r in rs]
    cps, prev_cp = [], "0" * 64
    for c in checkpoints(log_dir):
        last = rs[c["size"] - 1]["hash"] if c["size"] else "0" * 64
        cps.append(sign(dict(c, root=merkle.root(leaves[: c["size"]]).hex(), last_hash=last, prev_checkpoint=prev_cp), forger))
        prev_cp = hashlib.sha256(json.dumps(cps[-1], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    write_checkpoints(log_dir, cps)
    (log_dir / "checkpoint.pub").write_bytes(forger.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert verify_log(log_dir).ok  # the forgery is self-consistent ...
    assert first(log_dir, key) == ("checkpoints.jsonl:1", None)  # ... but not under the auditor's key


def test_a_line_that_is_not_json_is_named(log_dir, key):
    ls = lines(log_dir)
    ls[17] = ls[17][:-5]
    write_lines(log_dir, ls)
    assert first(log_dir, key) == (f"{FILE}:18", 17)


def test_the_first_problem_names_the_decision_id(log_dir, key):
    rs = recs(log_dir)
    rs[17]["agent_id"] = "mallory"
    write_recs(log_dir, rs)
    assert verify_log(log_dir, key).first_problem.decision_id == "d017"


def test_verifying_a_missing_log_is_not_ok(tmp_path, key):
    """Regression (HEAD 30fb7fb, verify.py:93 + backends.py:58): open_backend created the missing directory
    and verify_log reported the empty log as ok."""
    try:
        report = verify_log(tmp_path / "no-such-log", key)
    except AgtError:
        return
    assert not report.ok


# --- SQLite ----------------------------------------------------------------------------------------


@pytest.fixture
def db(sqlite_template, tmp_path) -> Path:
    for p in sqlite_template.iterdir():
        shutil.copy(p, tmp_path / p.name)
    return tmp_path / "a.db"


def test_sqlite_intact_log_verifies(db):
    report = verify_log(db)
    assert report.ok, report.first_problem
    assert (report.records, report.covered) == (N, N)


def test_sqlite_an_edited_row_is_named(db):
    key = load_public_key(db.parent / "checkpoint.pub")
    con = sqlite3.connect(db)
    (line,) = con.execute("SELECT line FROM records WHERE seq = 18").fetchone()
    rec = json.loads(line)
    assert rec["seq"] == 17
    rec["agent_id"] = "mallory"
    con.execute("UPDATE records SET line = ? WHERE seq = 18", (json.dumps(rec),))
    con.commit()
    con.close()
    report = verify_log(db, key)
    assert not report.ok
    assert (report.first_problem.where, report.first_problem.seq) == ("a.db#row18", 17)


def test_sqlite_a_deleted_row_is_named(db):
    key = load_public_key(db.parent / "checkpoint.pub")
    con = sqlite3.connect(db)
    con.execute("DELETE FROM records WHERE seq = 18")
    con.commit()
    con.close()
    report = verify_log(db, key)
    assert (report.first_problem.where, report.first_problem.seq) == ("a.db#row19", 17)


# --- the CLI ---------------------------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_cli_verify_exits_0_on_an_intact_log(log_dir, key_file):
    result = run("audit", "verify", "--log", str(log_dir), "--key", str(key_file))
    assert result.exit_code == 0, result.output


def test_cli_verify_reports_the_counts_of_an_intact_log(log_dir, key_file):
    result = run("audit", "verify", "--log", str(log_dir), "--key", str(key_file))
    assert f"{N} records chained, {N} covered by 6 signed checkpoints" in result.output


def test_cli_verify_exits_1_on_a_tampered_log(log_dir, key_file):
    rs = recs(log_dir)
    rs[17]["agent_id"] = "mallory"
    write_recs(log_dir, rs)
    assert run("audit", "verify", "--log", str(log_dir), "--key", str(key_file)).exit_code == 1


def test_cli_verify_names_the_first_bad_record(log_dir, key_file):
    rs = recs(log_dir)
    rs[17]["agent_id"] = "mallory"
    write_recs(log_dir, rs)
    result = run("audit", "verify", "--log", str(log_dir), "--key", str(key_file))
    assert f"first bad record at {FILE}:18 (seq 17, d017)" in result.output


def test_cli_verify_json_names_the_first_bad_record(log_dir, key_file):
    ls = lines(log_dir)
    del ls[17]
    write_lines(log_dir, ls)
    result = run("audit", "verify", "--log", str(log_dir), "--key", str(key_file), "--json")
    out = json.loads(result.output)
    assert (out["ok"], out["first_problem"].split(": ")[0]) == (False, f"{FILE}:18 (seq 17, d018)")


def test_cli_verify_uses_the_key_beside_the_log_by_default(log_dir):
    assert run("audit", "verify", "--log", str(log_dir)).exit_code == 0


# --- proofs ----------------------------------------------------------------------------------------


@pytest.fixture
def proof(log_dir) -> dict:
    return prove(log_dir, "d017")


def test_a_proof_verifies(proof, key):
    verify_proof(proof, key)


def test_a_proof_is_against_the_newest_covering_checkpoint(proof):
    assert (proof["leaf_index"], proof["tree_size"], proof["checkpoint"]["size"]) == (17, N, N)


def test_a_proof_for_every_record_verifies(log_dir, key):
    for i in range(N):
        verify_proof(prove(log_dir, f"d{i:03d}"), key)


def test_a_proof_with_a_modified_record_fails(proof, key):
    bad = copy.deepcopy(proof)
    bad["record"]["result"]["effect"] = "deny"
    with pytest.raises(AuditVerifyError, match="its own hash"):
        verify_proof(bad, key)


def test_a_proof_with_a_modified_and_rehashed_record_fails(proof, key):
    bad = copy.deepcopy(proof)
    bad["record"]["result"]["effect"] = "deny"
    bad["record"] = rehash(bad["record"])
    with pytest.raises(AuditVerifyError, match="inclusion path"):
        verify_proof(bad, key)


@pytest.mark.parametrize("element", [0, 1, -1])
def test_a_proof_with_a_modified_path_element_fails(proof, key, element):
    bad = copy.deepcopy(proof)
    h = bytes.fromhex(bad["path"][element])
    bad["path"][element] = (bytes([h[0] ^ 1]) + h[1:]).hex()
    with pytest.raises(AuditVerifyError, match="inclusion path"):
        verify_proof(bad, key)


def test_a_proof_with_a_shortened_path_fails(proof, key):
    bad = copy.deepcopy(proof)
    bad["path"] = bad["path"][:-1]
    with pytest.raises(AuditVerifyError):
        verify_proof(bad, key)


def test_a_proof_claiming_another_leaf_index_fails(proof, key):
    bad = dict(proof, leaf_index=18)
    with pytest.raises(AuditVerifyError):
        verify_proof(bad, key)


def test_a_proof_claiming_another_tree_size_fails(proof, key):
    bad = dict(proof, tree_size=40)
    with pytest.raises(AuditVerifyError, match="tree size"):
        verify_proof(bad, key)


def test_a_proof_checked_with_another_key_fails(proof):
    with pytest.raises(AuditVerifyError, match="signature"):
        verify_proof(proof, Ed25519PrivateKey.generate().public_key())


def test_a_proof_with_a_checkpoint_resigned_by_another_key_fails(proof, key):
    bad = copy.deepcopy(proof)
    bad["checkpoint"] = sign(bad["checkpoint"], Ed25519PrivateKey.generate())
    with pytest.raises(AuditVerifyError, match="signature"):
        verify_proof(bad, key)


def test_a_proof_relabelled_for_another_decision_fails(proof, key):
    """Regression (HEAD 30fb7fb, verify.py:189-202): proof['decision_id'] was never compared with the
    record's, and `agt audit verify-proof` printed the unchecked one as valid."""
    bad = dict(proof, decision_id="d999-never-logged")
    with pytest.raises(AuditVerifyError):
        verify_proof(bad, key)


def test_prove_refuses_an_unknown_decision_id(log_dir):
    with pytest.raises(AuditVerifyError, match="no record"):
        prove(log_dir, "nope")


def test_prove_refuses_a_record_no_checkpoint_covers_yet(log_dir):
    with AuditLog(log_dir, checkpoint_every=0, durability="none", allow_key_in_log_dir=True) as log:
        log.append(event(N))
        with pytest.raises(AuditVerifyError, match="not covered"):
            prove(log_dir, f"d{N:03d}")


def test_cli_prove_and_verify_proof_round_trip(log_dir, key_file, tmp_path):
    out = tmp_path / "proof.json"
    assert run("audit", "prove", "--log", str(log_dir), "d017", "--out", str(out)).exit_code == 0
    result = run("audit", "verify-proof", str(out), "--key", str(key_file))
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "d017" in result.output


def test_cli_prove_prints_the_proof_to_stdout(log_dir, key):
    result = run("audit", "prove", "--log", str(log_dir), "d017")
    verify_proof(json.loads(result.output), key)


def test_cli_verify_proof_rejects_a_modified_proof(log_dir, key_file, tmp_path):
    out = tmp_path / "proof.json"
    assert run("audit", "prove", "--log", str(log_dir), "d017", "--out", str(out)).exit_code == 0
    p = json.loads(out.read_text())
    p["record"]["agent_id"] = "mallory"
    out.write_text(json.dumps(p))
    result = run("audit", "verify-proof", str(out), "--key", str(key_file))
    assert result.exit_code not in (0, None) and "invalid proof" in result.output


def test_cli_verify_proof_rejects_another_key(log_dir, tmp_path):
    out = tmp_path / "proof.json"
    other = tmp_path / "other.pub"
    other.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert run("audit", "prove", "--log", str(log_dir), "d017", "--out", str(out)).exit_code == 0
    assert run("audit", "verify-proof", str(out), "--key", str(other)).exit_code not in (0, None)


# --- strict verification ---------------------------------------------------------------------------


def test_the_intact_log_verifies_strictly(log_dir, key):
    report = verify_log(log_dir, key, strict=True)
    assert report.ok, report.first_problem


def test_strict_verify_without_a_trusted_key_fails(log_dir):
    report = verify_log(log_dir, strict=True)
    assert not report.ok and "checkpoint.pub" in str(report.first_problem)


def test_a_live_writers_tail_within_checkpoint_every_passes_strict_verify(tmp_path):
    with AuditLog(tmp_path / "log", checkpoint_every=10, durability="none", allow_key_in_log_dir=True) as log:
        for i in range(19):
            log.append(event(i))
        report = verify_log(tmp_path / "log", load_public_key(tmp_path / "log" / "checkpoint.pub"), strict=True)
    assert (report.ok, report.uncovered) == (True, (10, 18))


def test_checkpoints_from_before_the_chain_are_a_warning(log_dir, key):
    signer = serialization.load_pem_private_key((log_dir / "checkpoint.key").read_bytes(), None)
    legacy = [{k: v for k, v in c.items() if k not in ("prev_checkpoint", "checkpoint_every")} for c in checkpoints(log_dir)]
    write_checkpoints(log_dir, [sign(c, signer) for c in legacy])
    report = verify_log(log_dir, key)
    assert report.ok and any("predate the checkpoint chain" in w for w in report.warnings)


def test_checkpoints_from_before_the_chain_fail_strict_verify(log_dir, key):
    signer = serialization.load_pem_private_key((log_dir / "checkpoint.key").read_bytes(), None)
    legacy = [{k: v for k, v in c.items() if k not in ("prev_checkpoint", "checkpoint_every")} for c in checkpoints(log_dir)]
    write_checkpoints(log_dir, [sign(c, signer) for c in legacy])
    assert not verify_log(log_dir, key, strict=True).ok


def test_cli_verify_strict_exits_1_when_checkpoints_are_gone(log_dir, key_file):
    (log_dir / "checkpoints.jsonl").unlink()
    assert run("audit", "verify", "--log", str(log_dir), "--key", str(key_file), "--strict").exit_code == 1


def test_cli_verify_prints_the_records_no_checkpoint_covers(log_dir, key_file):
    (log_dir / "checkpoints.jsonl").unlink()
    result = run("audit", "verify", "--log", str(log_dir), "--key", str(key_file))
    assert f"records 0..{N - 1}" in result.output
