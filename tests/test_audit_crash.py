"""Crash safety: a real writer process (tests/audit_writer_helper.py) appends records in a loop and is
killed with SIGKILL mid-stream. What it left must verify, hold every record it acknowledged, and a new
AuditLog on the same directory must repair the tail and continue the chain.

A torn last line cannot be produced on demand by SIGKILL (one write() of a small line is not split by a
signal), so it is injected as a fault into a copy of the crashed log: what a power cut or a full disk
leaves behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner

import agt.audit.backends as backends
from agt.audit import AuditLog, load_public_key, records, verify_log
from agt.audit.backends import AuditStorageError
from agt.cli import cli
from agt.errors import AgtError

HELPER = Path(__file__).resolve().parent / "audit_writer_helper.py"
ROOT = Path(__file__).resolve().parents[1]
KILL_AFTER_LINES = 200
DURABILITIES = ["batch", "always"]


@dataclass(frozen=True)
class Crash:
    dir: Path
    durability: str
    acked: int
    """How many records the writer acknowledged (indexes 0 .. acked-1)."""


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def run_and_kill(base: Path, durability: str) -> Crash:
    log_dir, ack, errors = base / "log", base / "ack", base / "stderr"
    with open(errors, "wb") as err:
        proc = subprocess.Popen([sys.executable, str(HELPER), str(log_dir), durability, str(ack)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 60  # a guard against a hung writer, not a measurement
        while count_lines(log_dir / "audit-000001.jsonl") <= KILL_AFTER_LINES:
            assert proc.poll() is None, f"the writer exited early: {errors.read_text()}"
            assert time.monotonic() < deadline, "the writer never reached 200 records"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    acked_lines = [line for line in ack.read_bytes().split(b"\n")[:-1]]  # a torn last ack line is not counted
    acked = int(acked_lines[-1]) + 1 if acked_lines else 0
    return Crash(log_dir, durability, acked)


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """crashed(durability) -> Crash: one killed writer per durability, shared by this module's tests
    (tests that write copy the directory first)."""
    runs: dict[str, Crash] = {}

    def get(durability: str) -> Crash:
        if durability not in runs:
            runs[durability] = run_and_kill(tmp_path_factory.mktemp(f"crash-{durability}"), durability)
        return runs[durability]

    return get


def copy_of(crash: Crash, tmp_path: Path) -> Path:
    shutil.copytree(crash.dir, tmp_path / "log")
    return tmp_path / "log"


def stored_ids(location: Path) -> list[str]:
    return [rec["decision_id"] for _, rec, _ in records(location)]


def tear_last_line(log_dir: Path) -> bytes:
    """Append the first half of a would-be next record, with no newline: a torn write."""
    last = sorted(log_dir.glob("audit-*.jsonl"))[-1]
    line = last.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    torn = line[: len(line) // 2]
    with open(last, "ab") as f:
        f.write(torn)
    return torn


# --- what the killed writer left -------------------------------------------------------------------


@pytest.mark.parametrize("durability", DURABILITIES)
def test_killed_writer_left_more_than_200_records(crashed, durability):
    assert verify_log(crashed(durability).dir).records > KILL_AFTER_LINES


@pytest.mark.parametrize("durability", DURABILITIES)
def test_log_of_a_killed_writer_verifies(crashed, durability):
    report = verify_log(crashed(durability).dir)
    assert report.ok, report.first_problem


@pytest.mark.parametrize("durability", DURABILITIES)
def test_checkpoints_signed_before_the_kill_still_verify(crashed, durability):
    assert verify_log(crashed(durability).dir).covered >= KILL_AFTER_LINES


@pytest.mark.parametrize("durability", DURABILITIES)
def test_killed_writer_lost_no_acknowledged_record(crashed, durability):
    crash = crashed(durability)
    assert crash.acked > 0
    assert stored_ids(crash.dir)[: crash.acked] == [f"c-{i:07d}" for i in range(crash.acked)]


@pytest.mark.parametrize("durability", DURABILITIES)
def test_killed_writer_left_records_in_append_order(crashed, durability):
    ids = stored_ids(crashed(durability).dir)
    assert ids == [f"c-{i:07d}" for i in range(len(ids))]


def test_killed_always_writer_left_at_most_the_record_in_flight_unacknowledged(crashed):
    """With durability=always a record is on disk when append returns: the log holds what was
    acknowledged, plus at most the one record whose acknowledgement the kill cut off."""
    crash = crashed("always")
    assert crash.acked <= len(stored_ids(crash.dir)) <= crash.acked + 1


@pytest.mark.parametrize("durability", DURABILITIES)
def test_reopening_a_killed_writers_log_continues_the_chain(crashed, durability, tmp_path):
    log_dir = copy_of(crashed(durability), tmp_path)
    before = [rec for _, rec, _ in records(log_dir)]
    with AuditLog(log_dir, durability=durability, allow_key_in_log_dir=True) as log:
        for i in range(20):
            log.append({"decision_id": f"after-{i}"})
    after = [rec for _, rec, _ in records(log_dir)]
    assert after[: len(before)] == before
    assert (after[len(before)]["seq"], after[len(before)]["prev_hash"]) == (len(before), before[-1]["hash"])


@pytest.mark.parametrize("durability", DURABILITIES)
def test_reopened_log_verifies_with_more_records(crashed, durability, tmp_path):
    log_dir = copy_of(crashed(durability), tmp_path)
    n = verify_log(log_dir).records
    with AuditLog(log_dir, durability=durability, allow_key_in_log_dir=True) as log:
        for i in range(20):
            log.append({"decision_id": f"after-{i}"})
    report = verify_log(log_dir)
    assert report.ok, report.first_problem
    assert (report.records, report.covered) == (n + 20, n + 20)


# --- a torn last line (injected) -------------------------------------------------------------------


@pytest.mark.parametrize("durability", DURABILITIES)
def test_a_torn_last_line_is_a_warning_not_a_problem(crashed, durability, tmp_path):
    log_dir = copy_of(crashed(durability), tmp_path)
    tear_last_line(log_dir)
    report = verify_log(log_dir, load_public_key(log_dir / "checkpoint.pub"))
    assert report.ok, report.first_problem
    assert len(report.warnings) == 1 and "incomplete" in report.warnings[0]


@pytest.mark.parametrize("durability", DURABILITIES)
def test_a_torn_last_line_is_not_counted(crashed, durability, tmp_path):
    crash = crashed(durability)
    n = verify_log(crash.dir).records
    log_dir = copy_of(crash, tmp_path)
    tear_last_line(log_dir)
    assert verify_log(log_dir).records == n


@pytest.mark.parametrize("durability", DURABILITIES)
def test_reopening_cuts_a_torn_last_line_and_continues(crashed, durability, tmp_path):
    crash = crashed(durability)
    n = verify_log(crash.dir).records
    log_dir = copy_of(crash, tmp_path)
    tear_last_line(log_dir)
    with AuditLog(log_dir, durability=durability, allow_key_in_log_dir=True) as log:
        for i in range(5):
            log.append({"decision_id": f"after-{i}"})
    report = verify_log(log_dir, load_public_key(log_dir / "checkpoint.pub"))
    assert (report.ok, report.records, report.warnings) == (True, n + 5, ())


def test_reopening_removes_exactly_the_torn_bytes(crashed, tmp_path):
    log_dir = copy_of(crashed("always"), tmp_path)
    last = sorted(log_dir.glob("audit-*.jsonl"))[-1]
    intact = last.read_bytes()
    tear_last_line(log_dir)
    AuditLog(log_dir, durability="none", allow_key_in_log_dir=True).close()
    assert last.read_bytes() == intact


def test_cli_verify_warns_about_a_torn_last_line_and_exits_0(crashed, tmp_path):
    log_dir = copy_of(crashed("always"), tmp_path)
    tear_last_line(log_dir)
    result = CliRunner().invoke(cli, ["audit", "verify", "--log", str(log_dir)])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "incomplete" in result.output


# --- a short write (injected) ----------------------------------------------------------------------


def short_write_once():
    """os.write that writes only half of the first audit line it is given (a disk filling up)."""
    real = os.write
    state = {"done": False}

    def write(fd: int, data: bytes) -> int:
        if not state["done"] and data.startswith(b'{"decision_id":"torn"'):
            state["done"] = True
            return real(fd, data[: len(data) // 2])
        return real(fd, data)

    return mock.patch.object(backends.os, "write", write)


def test_a_short_write_is_reported_to_the_caller(tmp_path):
    log = AuditLog(tmp_path / "log", durability="none", allow_key_in_log_dir=True)
    try:
        log.append({"decision_id": "a"})
        with short_write_once(), pytest.raises(AuditStorageError, match="short write"):
            log.append({"decision_id": "torn"})
    finally:
        log.close()


def test_the_writer_keeps_a_verifying_log_after_a_short_write(tmp_path):
    """Regression (HEAD 30fb7fb, backends.py:167-174): a short write left half a line in the file and
    repair_tail runs only when a log is opened, so the same writer's next record was glued onto it."""
    log = AuditLog(tmp_path / "log", durability="none", allow_key_in_log_dir=True)
    try:
        log.append({"decision_id": "a"})
        with short_write_once(), pytest.raises(AuditStorageError):
            log.append({"decision_id": "torn"})
    finally:
        log.close()
    with AuditLog(tmp_path / "log", durability="none", allow_key_in_log_dir=True) as log:
        log.append({"decision_id": "b"})
    report = verify_log(tmp_path / "log")
    assert report.ok, report.first_problem


def test_after_a_short_write_the_writer_refuses_more_records(tmp_path):
    """Fail closed: a log that failed to write once reports it until it is opened again."""
    log = AuditLog(tmp_path / "log", durability="none", allow_key_in_log_dir=True)
    try:
        with short_write_once(), pytest.raises(AuditStorageError):
            log.append({"decision_id": "torn"})
        with pytest.raises(AgtError, match="audit writer stopped"):
            log.append({"decision_id": "b"})
    finally:
        log.close()


@pytest.mark.parametrize("durability", DURABILITIES)
def test_after_cutting_a_torn_line_the_tree_head_is_rebuilt_from_the_records_left(crashed, durability, tmp_path):
    """Reopening replays the records once (the torn half is not one of them) and the checkpoints the
    continued log signs are the Merkle roots recomputed over every record."""
    from agt.audit import merkle

    log_dir = copy_of(crashed(durability), tmp_path)
    tear_last_line(log_dir)
    with AuditLog(log_dir, durability="none", checkpoint_every=7, allow_key_in_log_dir=True) as log:
        for i in range(20):
            log.append({"decision_id": f"after-{i}"})
    leaves = [merkle.leaf_hash(bytes.fromhex(rec["hash"])) for _, rec, _ in records(log_dir)]
    backend = backends.open_backend(log_dir, create=False)
    try:
        checkpoints = [json.loads(line.text) for line in backend.checkpoints()]
    finally:
        backend.close()
    assert [cp["root"] for cp in checkpoints] == [merkle.root(leaves[: cp["size"]]).hex() for cp in checkpoints]
