"""Concurrent writers: threads sharing one AuditLog, and processes each with their own AuditLog on the
same log (multiprocessing, spawn context). Whatever the interleaving, the log must be one unbroken chain
with every record exactly once, and verify."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from unittest import mock

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agt.audit import AuditLog, records, verify_log

from audit_writer_helper import append_worker, event

THREADS, PER_THREAD = 8, 200
PROCESSES, PER_PROCESS = 2, 300


def fresh_location(tmp_path_factory, backend: str) -> Path:
    base = tmp_path_factory.mktemp(backend)
    return base / "log" if backend == "jsonl" else base / "a.db"


@pytest.fixture(scope="module", params=["jsonl", "sqlite"])
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="module", params=["batch", "none"])
def durability(request) -> str:
    """``none`` makes every writer chain and write under the lock itself; ``batch`` goes through each
    log's writer thread."""
    return request.param


def stored(location: Path) -> list[dict]:
    out = []
    for where, rec, _ in records(location):
        assert rec is not None, f"{where} is not a JSON record"
        out.append(rec)
    return out


# --- threads ---------------------------------------------------------------------------------------


def run_threads(location: Path, durability: str) -> None:
    log = AuditLog(location, durability=durability, allow_key_in_log_dir=True)
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(PER_THREAD):
                log.append(event(f"t{t}", i))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    log.close()
    assert errors == []


@pytest.fixture(scope="module")
def threaded(tmp_path_factory, backend, durability) -> Path:
    """8 threads x 200 appends on one AuditLog, once per backend and durability; the tests only read it."""
    location = fresh_location(tmp_path_factory, backend)
    run_threads(location, durability)
    return location


def test_threads_store_exactly_1600_records(threaded):
    assert len(stored(threaded)) == THREADS * PER_THREAD


def test_threads_records_are_numbered_0_to_1599(threaded):
    assert [r["seq"] for r in stored(threaded)] == list(range(THREADS * PER_THREAD))


def test_threads_every_append_is_stored_once(threaded):
    ids = sorted(r["decision_id"] for r in stored(threaded))
    assert ids == sorted(f"t{t}-{i:07d}" for t in range(THREADS) for i in range(PER_THREAD))


def test_threads_keep_each_threads_own_order(threaded):
    recs = stored(threaded)
    for t in range(THREADS):
        mine = [r["decision_id"] for r in recs if r["agent_id"] == f"t{t}"]
        assert mine == [f"t{t}-{i:07d}" for i in range(PER_THREAD)], t


def test_threads_log_verifies(threaded):
    report = verify_log(threaded)
    assert report.ok, report.first_problem
    assert report.covered == THREADS * PER_THREAD


# --- processes -------------------------------------------------------------------------------------


def run_processes(location: Path, durability: str, max_bytes: int = 64 * 1024 * 1024, *, processes: int = PROCESSES,
                  per_process: int = PER_PROCESS, create_first: bool = True) -> None:
    if create_first:
        AuditLog(location, allow_key_in_log_dir=True).close()  # the key exists before the writers start (the race has its own tests)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=append_worker, args=(str(location), durability, f"p{k}", per_process, start, max_bytes))
             for k in range(processes)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    assert codes == [0] * processes


@pytest.fixture(scope="module")
def multiprocess(tmp_path_factory, backend, durability) -> Path:
    """2 processes x 300 appends, once per backend and durability; the tests only read it."""
    location = fresh_location(tmp_path_factory, backend)
    run_processes(location, durability)
    return location


def test_processes_store_exactly_600_records(multiprocess):
    assert len(stored(multiprocess)) == PROCESSES * PER_PROCESS


def test_processes_records_are_numbered_0_to_599(multiprocess):
    assert [r["seq"] for r in stored(multiprocess)] == list(range(PROCESSES * PER_PROCESS))


def test_processes_form_one_unbroken_chain(multiprocess):
    recs = stored(multiprocess)
    assert [r["prev_hash"] for r in recs] == ["0" * 64] + [r["hash"] for r in recs[:-1]]


def test_processes_each_keep_their_own_order(multiprocess):
    recs = stored(multiprocess)
    for k in range(PROCESSES):
        mine = [r["decision_id"] for r in recs if r["agent_id"] == f"p{k}"]
        assert mine == [f"p{k}-{i:07d}" for i in range(PER_PROCESS)], k


def test_processes_log_verifies_with_every_checkpoint(multiprocess):
    report = verify_log(multiprocess)
    assert report.ok, report.first_problem
    assert (report.records, report.covered) == (PROCESSES * PER_PROCESS, PROCESSES * PER_PROCESS)


def test_processes_share_a_rotating_jsonl_log(tmp_path):
    run_processes(tmp_path / "log", "none", max_bytes=16 * 1024)
    report = verify_log(tmp_path / "log")
    assert report.ok, report.first_problem
    assert report.records == PROCESSES * PER_PROCESS
    assert len(list((tmp_path / "log").glob("audit-*.jsonl"))) > 3


# --- the checkpoint key on a fresh log ------------------------------------------------------------


def test_a_writer_that_loses_the_race_to_create_the_key_uses_the_winners_key(tmp_path):
    """Regression (HEAD 30fb7fb, log.py:61-70: exists() then os.open(O_EXCL) outside any lock, so the loser
    died with FileExistsError, or read a half-written key). Fault injection: the moment this writer has
    decided to make a key, another writer creates checkpoint.key and checkpoint.pub first."""
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    winner = Ed25519PrivateKey.generate()
    real_generate = Ed25519PrivateKey.generate

    def generate_after_the_rival() -> Ed25519PrivateKey:
        if not (log_dir / "checkpoint.key").exists():
            (log_dir / "checkpoint.key").write_bytes(winner.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            (log_dir / "checkpoint.pub").write_bytes(winner.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return real_generate()

    with mock.patch.object(Ed25519PrivateKey, "generate", staticmethod(generate_after_the_rival)):
        log = AuditLog(log_dir, durability="none", allow_key_in_log_dir=True)
    log.append({"decision_id": "x"})
    log.close()
    report = verify_log(log_dir, winner.public_key())
    assert (report.ok, report.covered) == (True, 1)


def test_processes_opening_a_fresh_log_at_once_agree_on_one_key(tmp_path):
    """Four processes open a log nobody created yet and write at once: one key wins, every checkpoint
    (each writer signs on close) verifies under it."""
    run_processes(tmp_path / "log", "none", processes=4, per_process=50, create_first=False)
    report = verify_log(tmp_path / "log")
    assert report.ok, report.first_problem
    assert (report.records, report.covered) == (200, 200)
