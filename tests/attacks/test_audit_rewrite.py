"""Attacks on the audit log by an agent that can write its directory (it runs as agt's user).

The agent rewrites history and covers its tracks: re-chains the records, deletes checkpoint lines or
the whole checkpoints.jsonl, plants its own signing key or checkpoint.pub in the log directory, and
gets the honest writer to sign its rewritten tail. The auditor holds the public key (kept elsewhere)
and, optionally, a witness; each attack must be caught by them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agt.audit import AuditLog, load_public_key, verify_log
from agt.cli import cli
from agt.errors import AgtError

N, EVERY = 250, 100
FILE = "audit-000001.jsonl"


def event(i: int) -> dict:
    return {"decision_id": f"d{i:03d}", "kind": "decision", "agent_id": "agent-1", "path": "policy",
            "input": {"action": {"tool": "shell", "params": {"command": f"ls {i}"}}},
            "result": {"effect": "allow", "reasons": [{"id": "r-shell", "message": "m"}]}}


@pytest.fixture
def keys(tmp_path) -> Path:
    """The operator's key directory: out of the agent's reach in a real deployment."""
    return tmp_path / "operator"


@pytest.fixture
def log_dir(tmp_path, keys) -> Path:
    d = tmp_path / "log"
    with AuditLog(d, key_path=keys / "audit.key", checkpoint_every=EVERY, durability="none",
                  witness=keys / "witness.jsonl") as log:
        for i in range(N):
            log.append(event(i))
        assert log.flush_witness() is None
    return d


@pytest.fixture
def trusted(keys):
    return load_public_key(keys / "audit.pub")


def rechain_from(log_dir: Path, first: int, agent: str = "mallory") -> None:
    """What the agent does: change records from ``first`` on and recompute every hash after them."""
    path = log_dir / FILE
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    prev = recs[first - 1]["hash"] if first else "0" * 64
    for rec in recs[first:]:
        rec["agent_id"] = agent
        rec["prev_hash"] = prev
        body = {k: v for k, v in rec.items() if k != "hash"}
        rec["hash"] = prev = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
    path.write_text("".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in recs))


def checkpoint_lines(log_dir: Path) -> list[str]:
    return (log_dir / "checkpoints.jsonl").read_text().splitlines()


def keep_checkpoints(log_dir: Path, keep: list[str]) -> None:
    (log_dir / "checkpoints.jsonl").write_text("".join(line + "\n" for line in keep))


# --- the key -----------------------------------------------------------------------------------------


def test_a_writer_given_no_key_never_signs_with_a_key_planted_in_the_log_dir(log_dir):
    planted = Ed25519PrivateKey.generate()
    (log_dir / "checkpoint.key").write_bytes(planted.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(AgtError, match="no checkpoint signing key"):
        AuditLog(log_dir)


def test_a_writer_refuses_a_key_path_inside_the_log_dir(tmp_path):
    with pytest.raises(AgtError, match="inside the log directory"):
        AuditLog(tmp_path / "log", key_path=tmp_path / "log" / "audit.key")


def test_a_new_log_keeps_no_private_key_in_its_directory(log_dir):
    assert sorted(p.name for p in log_dir.iterdir() if p.suffix in (".key", ".pem", ".pub")) == []


def test_a_log_resigned_with_the_agents_key_fails_against_the_trusted_key(log_dir, trusted, tmp_path):
    rechain_from(log_dir, 17)
    (log_dir / "checkpoints.jsonl").unlink()
    forger = Ed25519PrivateKey.generate()
    with AuditLog(log_dir, signing_key=forger, allow_key_in_log_dir=True, durability="none"):
        pass  # the agent's own writer signs the forged history
    assert not verify_log(log_dir, trusted).ok


def test_a_replaced_checkpoint_pub_in_the_log_dir_fails_strict_verify(log_dir):
    rechain_from(log_dir, 17)
    (log_dir / "checkpoints.jsonl").unlink()
    forger = Ed25519PrivateKey.generate()
    with AuditLog(log_dir, signing_key=forger, durability="none"):
        pass
    (log_dir / "checkpoint.pub").write_bytes(forger.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    result = CliRunner().invoke(cli, ["audit", "verify", "--log", str(log_dir), "--strict"])
    assert result.exit_code == 1 and "checkpoint.pub" in result.output, result.output


# --- deleted checkpoints -----------------------------------------------------------------------------


def test_a_rewritten_rechained_log_without_its_checkpoints_fails_strict_verify(log_dir, trusted):
    rechain_from(log_dir, 17)
    (log_dir / "checkpoints.jsonl").unlink()
    report = verify_log(log_dir, trusted, strict=True)
    assert not report.ok and "no checkpoint covers" in str(report.first_problem)


def test_verify_reports_every_record_no_checkpoint_covers(log_dir, trusted):
    rechain_from(log_dir, 17)
    (log_dir / "checkpoints.jsonl").unlink()
    assert verify_log(log_dir, trusted).uncovered == (0, N - 1)


def test_a_deleted_middle_checkpoint_breaks_the_checkpoint_chain(log_dir, trusted):
    lines = checkpoint_lines(log_dir)
    keep_checkpoints(log_dir, lines[:2] + lines[3:])
    report = verify_log(log_dir, trusted)
    assert not report.ok and "does not chain to the checkpoint before it" in str(report.first_problem)


def test_a_deleted_first_checkpoint_breaks_the_checkpoint_chain(log_dir, trusted):
    keep_checkpoints(log_dir, checkpoint_lines(log_dir)[1:])
    assert not verify_log(log_dir, trusted).ok


def test_deleted_last_checkpoints_over_a_rewritten_tail_fail_strict_verify(log_dir, trusted):
    rechain_from(log_dir, 120)
    keep_checkpoints(log_dir, checkpoint_lines(log_dir)[:2])  # the empty log and 100 records remain
    report = verify_log(log_dir, trusted, strict=True)
    assert not report.ok and "more than the 100" in str(report.first_problem)


def test_moved_checkpoints_break_the_checkpoint_chain(log_dir, trusted):
    lines = checkpoint_lines(log_dir)
    keep_checkpoints(log_dir, [lines[0], lines[2], lines[1], *lines[3:]])
    assert not verify_log(log_dir, trusted).ok


# --- the honest writer must not sign the agent's rewrite ---------------------------------------------


def test_the_writer_refuses_to_continue_a_log_rewritten_under_its_last_checkpoint(log_dir, keys):
    rechain_from(log_dir, 17)
    with pytest.raises(AgtError, match="no longer match the last signed checkpoint"):
        AuditLog(log_dir, key_path=keys / "audit.key")


def test_the_witness_catches_a_tail_rewrite_the_honest_writer_signed_again(log_dir, keys, trusted):
    """Within a live writer's allowance the agent rewrites the tail, deletes the last checkpoint and
    lets the honest writer sign its version: only a copy kept elsewhere can tell."""
    rechain_from(log_dir, 210)
    keep_checkpoints(log_dir, checkpoint_lines(log_dir)[:-1])
    with AuditLog(log_dir, key_path=keys / "audit.key", durability="none"):
        pass  # reopened and closed: a fresh, validly signed checkpoint over 250 forged-tail records
    assert verify_log(log_dir, trusted, strict=True).ok  # the signature and the chain alone cannot see it ...
    report = verify_log(log_dir, trusted, witness=keys / "witness.jsonl")
    assert not report.ok and "differs from the witnessed one" in str(report.first_problem)  # ... the witness can


def test_the_witness_catches_deleted_checkpoints_and_records(log_dir, keys, trusted):
    lines = (log_dir / FILE).read_text().splitlines()
    (log_dir / FILE).write_text("".join(line + "\n" for line in lines[:150]))
    keep_checkpoints(log_dir, checkpoint_lines(log_dir)[:2])
    report = verify_log(log_dir, trusted, witness=keys / "witness.jsonl")
    assert not report.ok and "missing from the log" in str(report.first_problem)


def test_cli_verify_with_a_witness_exits_1_on_a_replaced_checkpoint(log_dir, keys):
    rechain_from(log_dir, 210)
    keep_checkpoints(log_dir, checkpoint_lines(log_dir)[:-1])
    with AuditLog(log_dir, key_path=keys / "audit.key", durability="none"):
        pass
    result = CliRunner().invoke(cli, ["audit", "verify", "--log", str(log_dir), "--key", str(keys / "audit.pub"),
                                      "--witness", str(keys / "witness.jsonl")])
    assert result.exit_code == 1, result.output
