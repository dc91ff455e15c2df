"""agt.audit.log: chaining, record fields, masking, checkpoints, durability, rotation, reopening, select().

Every test runs on real files (a JSONL directory or a SQLite database) with real Ed25519 keys; the
expected hashes and roots are computed here from the stored bytes, not taken from the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agt._normalize import params_text
from agt.action import from_call
from agt.audit import AuditLog, load_public_key, records, select, verify_log
from agt.audit import merkle
from agt.audit.backends import open_backend
from agt.audit.log import mask_input
from agt.errors import AgtError
from agt.facts import derive_facts
from agt.runtime import Governor

STARTER = str(Path(__file__).resolve().parents[1] / "policies" / "starter.yaml")
GENESIS = "0" * 64
SECRET = "hunter2-S3CR3T-7f1c"
SECRET_DEEP = "deep-S3CR3T-9a2e"


# --- helpers ---------------------------------------------------------------------------------------


@pytest.fixture(params=["jsonl", "sqlite"])
def location(request, tmp_path) -> Path:
    return tmp_path / "log" if request.param == "jsonl" else tmp_path / "a.db"


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def expected_hash(rec: dict) -> str:
    return hashlib.sha256(canonical({k: v for k, v in rec.items() if k != "hash"})).hexdigest()


def stored(location: Path) -> list[dict]:
    out = []
    for where, rec, _ in records(location):
        assert rec is not None, f"{where} is not a JSON record"
        out.append(rec)
    return out


def stored_checkpoints(location: Path) -> list[dict]:
    backend = open_backend(location)
    try:
        return [json.loads(line.text) for line in backend.checkpoints()]
    finally:
        backend.close()


def files_holding_a_secret(root: Path, *secrets: str) -> list[str]:
    """Every stored file (records, checkpoints, WAL, ...) containing a secret in any letter case."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                  and any(s.lower().encode() in p.read_bytes().lower() for s in secrets))


def key_dir(location: Path) -> Path:
    return location if location.suffix != ".db" else location.parent


def event(i: int, *, agent: str = "a1", effect: str = "allow", rule: str = "r-default", kind: str = "decision",
          ts: str | None = None, pad: int = 0) -> dict:
    return {
        "decision_id": f"d{i:04d}",
        "timestamp": ts or f"2026-11-23T08:00:{i % 60:02d}.000000Z",
        "kind": kind,
        "agent_id": agent,
        "path": "policy",
        "input": {"agent": {"id": agent}, "action": {"tool": "read_doc", "params": {"n": i, "pad": "x" * pad}}},
        "result": {"effect": effect, "reasons": [{"id": rule, "message": "m"}]},
        "labels": {"engine": "yaml"},
        "metrics": {"latency_us": 12.5},
    }


def write_log(location: Path, n: int, **kwargs: Any) -> None:
    with AuditLog(location, **kwargs, allow_key_in_log_dir=True) as log:
        for i in range(n):
            log.append(event(i))


# --- chaining --------------------------------------------------------------------------------------


def test_append_numbers_records_from_zero(location):
    write_log(location, 25)
    assert [r["seq"] for r in stored(location)] == list(range(25))


def test_first_record_points_at_64_zeros(location):
    write_log(location, 3)
    assert stored(location)[0]["prev_hash"] == GENESIS


def test_each_record_points_at_the_hash_of_the_record_before(location):
    write_log(location, 25)
    recs = stored(location)
    assert [r["prev_hash"] for r in recs[1:]] == [r["hash"] for r in recs[:-1]]


def test_each_record_hashes_its_canonical_form_without_the_hash(location):
    write_log(location, 25)
    for rec in stored(location):
        assert rec["hash"] == expected_hash(rec), rec["seq"]


def test_records_keep_the_events_in_append_order(location):
    write_log(location, 25)
    assert [r["decision_id"] for r in stored(location)] == [f"d{i:04d}" for i in range(25)]


@pytest.mark.parametrize("durability", ["always", "none"])
def test_synchronous_append_returns_the_stored_record(location, durability):
    log = AuditLog(location, durability=durability, allow_key_in_log_dir=True)
    returned = [log.append(event(i)) for i in range(3)]
    log.close()
    assert returned == stored(location)


def test_batch_flush_makes_every_queued_record_readable(location):
    log = AuditLog(location, durability="batch", allow_key_in_log_dir=True)
    try:
        for i in range(30):
            log.append(event(i))
        log.flush()
        assert [r["decision_id"] for r in stored(location)] == [f"d{i:04d}" for i in range(30)]
    finally:
        log.close()


# --- the runtime's records -------------------------------------------------------------------------


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def governed_records(location) -> list[dict]:
    """Records a real Governor (starter YAML policy) wrote for one allowed call."""
    gov = Governor("yaml", STARTER, audit=AuditLog(location, allow_key_in_log_dir=True))
    gov.call(lambda name: name, kwargs={"name": "notes.txt"}, tool="read_doc", agent="agent-7")
    gov.close()
    return stored(location)


def test_governor_records_carry_the_opa_decision_log_fields(governed_records):
    rec = next(r for r in governed_records if r["kind"] == "decision")
    assert {"decision_id", "timestamp", "path", "input", "result", "labels", "metrics"} <= rec.keys()


def test_governor_records_carry_agt_fields(governed_records):
    rec = next(r for r in governed_records if r["kind"] == "decision")
    assert {"kind", "agent_id", "seq", "prev_hash", "hash"} <= rec.keys()


def test_governor_decision_record_describes_the_call(governed_records):
    rec = next(r for r in governed_records if r["kind"] == "decision")
    assert (rec["agent_id"], rec["path"], rec["input"]["action"]["tool"], rec["result"]["effect"]) == (
        "agent-7", "policy", "read_doc", "allow")
    assert RFC3339.match(rec["timestamp"]), rec["timestamp"]
    assert rec["labels"]["engine"] == "yaml"
    assert rec["metrics"]["latency_us"] >= 0


def test_governor_log_verifies(governed_records, location):
    report = verify_log(location)
    assert report.ok, report.first_problem
    assert report.records == len(governed_records)


# --- masking ---------------------------------------------------------------------------------------


def secret_document() -> dict:
    action = from_call(
        "login",
        {"user": "bob", "password": SECRET, "options": {"retries": 2, "vault": [{"label": "x", "PassWord": SECRET_DEEP}]}},
        agent="agent-1",
    )
    return json.loads(json.dumps(action.document))


def write_masked(location: Path, durability: str = "batch") -> dict:
    doc = secret_document()
    # params_text holds the canonical (lower-cased) text of both secrets before masking
    assert {SECRET.lower(), SECRET_DEEP.lower()} <= set(doc["action"]["params_text"].split("\n"))
    with AuditLog(location, mask=["password"], durability=durability, allow_key_in_log_dir=True) as log:
        log.append({"decision_id": "m1", "kind": "decision", "agent_id": "agent-1", "input": doc, "result": {}})
    return doc


def test_mask_replaces_a_top_level_param(location):
    write_masked(location)
    assert stored(location)[0]["input"]["action"]["params"]["password"] == "***"


def test_mask_replaces_a_value_at_any_depth_case_insensitively(location):
    write_masked(location)
    assert stored(location)[0]["input"]["action"]["params"]["options"]["vault"][0]["PassWord"] == "***"


def test_mask_keeps_unmasked_values(location):
    write_masked(location)
    params = stored(location)[0]["input"]["action"]["params"]
    assert (params["user"], params["options"]["retries"], params["options"]["vault"][0]["label"]) == ("bob", 2, "x")


def test_mask_derives_params_text_again_from_the_masked_params(location):
    write_masked(location)
    action = stored(location)[0]["input"]["action"]
    assert action["params_text"] == params_text(action["params"])


def test_mask_derives_facts_again_from_the_masked_params(location):
    doc = secret_document()
    doc["action"] = {**doc["action"], "tool": "run_sql", "params": {"query": f"DROP TABLE \"{SECRET}\""}}
    doc["action"]["facts"] = derive_facts(doc["action"]["tool"], doc["action"]["kind"], doc["action"]["params"])
    assert SECRET.lower() in doc["action"]["facts"]["sql"]["objects"]
    with AuditLog(location, mask=["query"], allow_key_in_log_dir=True) as log:
        log.append({"decision_id": "m1", "kind": "decision", "agent_id": "agent-1", "input": doc, "result": {}})
    assert SECRET.lower() not in json.dumps(stored(location)[0]["input"]).lower()


@pytest.mark.parametrize("durability", ["always", "batch"])
def test_no_masked_secret_appears_in_any_stored_byte(location, durability, tmp_path):
    write_masked(location, durability)
    assert files_holding_a_secret(tmp_path, SECRET, SECRET_DEEP) == []


def test_input_digest_is_of_the_unmasked_input(location):
    doc = write_masked(location)
    assert stored(location)[0]["input_digest"] == "sha256:" + hashlib.sha256(canonical(doc)).hexdigest()


def test_masked_log_verifies(location):
    write_masked(location)
    assert verify_log(location).ok


def test_mask_does_not_change_the_callers_document(location):
    doc = secret_document()
    before = json.dumps(doc, sort_keys=True)
    with AuditLog(location, mask=["password"], durability="always", allow_key_in_log_dir=True) as log:
        log.append({"decision_id": "m1", "input": doc})
    assert json.dumps(doc, sort_keys=True) == before


def test_policy_audit_mask_added_by_the_runtime_masks_params(location, tmp_path):
    """Governor passes a policy's audit mask to the log through add_mask."""
    with AuditLog(location, durability="always", allow_key_in_log_dir=True) as log:
        log.add_mask(["password"])
        log.append({"decision_id": "m1", "input": secret_document()})
    assert stored(location)[0]["input"]["action"]["params"]["password"] == "***"


def test_masking_a_param_that_names_the_resource_keeps_it_out_of_the_stored_bytes(tmp_path):
    """Regression (HEAD 30fb7fb, log.py:101-115): infer_resource copies a url/path/to/table/database param
    into resource.id, and mask_input left that copy in clear."""
    url = f"https://api.example.com/v1?api_key={SECRET}"
    gov = Governor("yaml", STARTER, audit=AuditLog(tmp_path / "log", mask=["url"], allow_key_in_log_dir=True))
    gov.call(lambda url: None, kwargs={"url": url}, tool="fetch_page", agent="agent-1")
    gov.close()
    assert files_holding_a_secret(tmp_path / "log", SECRET) == []


def test_masking_params_as_a_whole_keeps_their_text_out_of_the_stored_bytes(tmp_path):
    """Regression (HEAD 30fb7fb, log.py:109): params_text was re-derived only while the masked params were
    still a dict, so masking 'params' itself left every value readable in params_text."""
    with AuditLog(tmp_path / "log", mask=["params"], durability="always", allow_key_in_log_dir=True) as log:
        log.append({"decision_id": "m1", "input": secret_document()})
    assert files_holding_a_secret(tmp_path / "log", SECRET) == []


def test_an_event_carrying_a_hash_field_never_makes_the_log_unverifiable(tmp_path):
    """Regression (HEAD 30fb7fb, log.py:199-202): the stored hash covered the caller's own 'hash' key and a
    second 'hash' key was appended, so the record read as edited. Refusing such an event is fine too."""
    with AuditLog(tmp_path / "log", durability="always", allow_key_in_log_dir=True) as log:
        log.append({"decision_id": "h0"})
        try:
            log.append({"decision_id": "h1", "hash": "sha256:of-some-artifact"})
        except AgtError:
            pass
    report = verify_log(tmp_path / "log")
    assert report.ok, report.first_problem


# --- checkpoints -----------------------------------------------------------------------------------


def test_checkpoints_appear_every_checkpoint_every_records(location):
    log = AuditLog(location, checkpoint_every=10, durability="none", allow_key_in_log_dir=True)
    try:
        for i in range(35):
            log.append(event(i))
        assert [c["size"] for c in stored_checkpoints(location)] == [0, 10, 20, 30]
    finally:
        log.close()


def test_close_writes_a_checkpoint_over_every_record(location):
    write_log(location, 35, checkpoint_every=10)
    assert [c["size"] for c in stored_checkpoints(location)] == [0, 10, 20, 30, 35]


def test_checkpoint_root_is_the_merkle_root_of_the_record_hashes(location):
    write_log(location, 35, checkpoint_every=10)
    leaves = [merkle.leaf_hash(bytes.fromhex(r["hash"])) for r in stored(location)]
    for cp in stored_checkpoints(location):
        assert cp["root"] == merkle.root(leaves[: cp["size"]]).hex(), cp["size"]


def test_checkpoint_last_hash_is_the_hash_of_its_last_record(location):
    write_log(location, 35, checkpoint_every=10)
    recs = stored(location)
    assert [c["last_hash"] for c in stored_checkpoints(location)] == [GENESIS] + [recs[s - 1]["hash"] for s in (10, 20, 30, 35)]


def test_checkpoint_signature_verifies_with_the_published_key(location):
    write_log(location, 12, checkpoint_every=10)
    key = load_public_key(key_dir(location) / "checkpoint.pub")
    for cp in stored_checkpoints(location):
        key.verify(base64.b64decode(cp["signature"]),
                   canonical({k: cp[k] for k in ("size", "root", "last_hash", "time", "prev_checkpoint", "checkpoint_every")}))


def test_checkpoint_key_file_is_private(location):
    write_log(location, 1)
    assert (key_dir(location) / "checkpoint.key").stat().st_mode & 0o077 == 0


def test_a_supplied_signing_key_signs_the_checkpoints(location):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    write_log(location, 12, checkpoint_every=10, signing_key=key)
    report = verify_log(location, key.public_key())
    assert (report.ok, report.covered) == (True, 12)


def test_a_new_log_gets_one_checkpoint_of_the_empty_log(location):
    AuditLog(location, allow_key_in_log_dir=True).close()
    assert [(c["size"], c["last_hash"], c["prev_checkpoint"]) for c in stored_checkpoints(location)] == [(0, GENESIS, GENESIS)]


def test_each_checkpoint_chains_to_the_stored_line_before_it(location):
    write_log(location, 35, checkpoint_every=10)
    backend = open_backend(location)
    try:
        lines = [line.text for line in backend.checkpoints()]
    finally:
        backend.close()
    assert [json.loads(t)["prev_checkpoint"] for t in lines[1:]] == [hashlib.sha256(t.encode()).hexdigest() for t in lines[:-1]]


def test_each_checkpoint_records_the_writers_checkpoint_every(location):
    write_log(location, 12, checkpoint_every=10)
    assert {c["checkpoint_every"] for c in stored_checkpoints(location)} == {10}


# --- durability ------------------------------------------------------------------------------------


@pytest.mark.parametrize("durability", ["always", "batch", "none"])
def test_every_durability_policy_produces_a_verifying_log(location, durability):
    write_log(location, 120, durability=durability, checkpoint_every=50)
    report = verify_log(location)
    assert report.ok, report.first_problem
    assert (report.records, report.covered) == (120, 120)


def test_unknown_durability_is_refused(location):
    with pytest.raises(ValueError):
        AuditLog(location, durability="sometimes", allow_key_in_log_dir=True)


def test_batch_fsyncs_written_records_when_the_log_goes_idle(tmp_path):
    """Regression (HEAD 30fb7fb, log.py:250-257): a batch written within batch_interval of the last fsync was
    not synced, and on queue.Empty the writer just continued, so the tail stayed unsynced until the next
    record or close(). A delegating wrapper around the backend's sync only observes it (the real fsync
    still runs); the deadline is a guard, not a measurement."""
    interval = 0.5
    log = AuditLog(tmp_path / "log", durability="batch", batch_interval=interval, allow_key_in_log_dir=True)
    synced_sizes: list[int] = []
    real_sync = log.backend.sync
    path = tmp_path / "log" / "audit-000001.jsonl"

    def observed_sync() -> None:
        real_sync()
        synced_sizes.append(path.stat().st_size if path.exists() else 0)

    log.backend.sync = observed_sync  # type: ignore[method-assign]
    try:
        log.append(event(0))
        deadline = time.monotonic() + 10 * interval
        while time.monotonic() < deadline and not (path.exists() and path.stat().st_size):
            time.sleep(0.01)
        written = path.stat().st_size
        while time.monotonic() < deadline and not any(s >= written for s in synced_sizes):
            time.sleep(0.02)
        assert any(s >= written for s in synced_sizes), "the written record was never fsynced"
    finally:
        log.close()


# --- rotation (JSONL) ------------------------------------------------------------------------------


@pytest.fixture
def rotated(tmp_path) -> Path:
    d = tmp_path / "log"
    with AuditLog(d, max_bytes=2000, checkpoint_every=20, durability="none", allow_key_in_log_dir=True) as log:
        for i in range(60):
            log.append(event(i, pad=150))
    return d


def audit_files(d: Path) -> list[Path]:
    return sorted(d.glob("audit-*.jsonl"))


def file_records(p: Path) -> list[dict]:
    return [json.loads(line) for line in p.read_text("utf-8").splitlines()]


def test_rotation_creates_consecutively_numbered_files(rotated):
    names = [p.name for p in audit_files(rotated)]
    assert len(names) >= 3
    assert names == [f"audit-{i:06d}.jsonl" for i in range(1, len(names) + 1)]


def test_rotation_starts_a_new_file_once_max_bytes_is_reached(rotated):
    files = audit_files(rotated)
    longest = max(len(line) + 1 for p in files for line in p.read_bytes().splitlines())
    for p in files[:-1]:
        assert 2000 <= p.stat().st_size < 2000 + longest, p.name


def test_rotated_log_verifies(rotated):
    report = verify_log(rotated)
    assert report.ok, report.first_problem
    assert (report.records, report.covered) == (60, 60)


def test_first_record_of_the_second_file_chains_to_the_last_of_the_first(rotated):
    first, second = audit_files(rotated)[:2]
    assert file_records(second)[0]["prev_hash"] == file_records(first)[-1]["hash"]


def test_chain_and_sequence_are_continuous_across_every_file(rotated):
    recs = [r for p in audit_files(rotated) for r in file_records(p)]
    assert [r["seq"] for r in recs] == list(range(60))
    assert [r["prev_hash"] for r in recs] == [GENESIS] + [r["hash"] for r in recs[:-1]]


def test_verify_names_records_in_later_files_by_their_own_file_and_line(rotated):
    files = audit_files(rotated)
    lines = files[1].read_text("utf-8").splitlines()
    rec = json.loads(lines[1])
    rec["agent_id"] = "mallory"
    lines[1] = json.dumps(rec)
    files[1].write_text("\n".join(lines) + "\n", "utf-8")
    problem = verify_log(rotated).first_problem
    assert (problem.where, problem.seq) == (f"{files[1].name}:2", rec["seq"])


def test_rotated_log_reopens_and_continues_in_the_newest_file(rotated):
    before = audit_files(rotated)
    with AuditLog(rotated, max_bytes=2000, durability="none", allow_key_in_log_dir=True) as log:
        log.append(event(60, pad=150))
    assert audit_files(rotated)[: len(before)] == before
    report = verify_log(rotated)
    assert (report.ok, report.records) == (True, 61)


# --- reopening -------------------------------------------------------------------------------------


def test_reopened_log_continues_the_sequence(location):
    write_log(location, 5)
    write_log(location, 5)
    assert [r["seq"] for r in stored(location)] == list(range(10))


def test_reopened_log_continues_the_chain(location):
    write_log(location, 5)
    last = stored(location)[-1]["hash"]
    write_log(location, 5)
    assert stored(location)[5]["prev_hash"] == last


def test_reopened_log_reports_its_size_and_last_hash(location):
    write_log(location, 7)
    recs = stored(location)
    log = AuditLog(location, allow_key_in_log_dir=True)
    try:
        assert (log.size, log.last_hash) == (7, recs[-1]["hash"])
    finally:
        log.close()


def test_reopened_log_keeps_its_key_and_verifies(location):
    write_log(location, 5, checkpoint_every=3)
    write_log(location, 5, checkpoint_every=3)
    report = verify_log(location)
    assert report.ok, report.first_problem
    assert (report.records, report.covered) == (10, 10)


# --- select ----------------------------------------------------------------------------------------


@pytest.fixture
def queried(location) -> Path:
    rows = [
        dict(agent="a1", effect="allow", rule="r-read", kind="decision", ts="2026-11-23T08:00:00.000000Z"),
        dict(agent="a2", effect="deny", rule="r-block", kind="decision", ts="2026-11-23T08:10:00.000000Z"),
        dict(agent="a1", effect="deny", rule="r-block", kind="decision", ts="2026-11-23T08:20:00.000000Z"),
        dict(agent="a2", effect="require_approval", rule="r-approve", kind="approval", ts="2026-11-23T08:30:00.000000Z"),
        dict(agent="a3", effect="allow", rule="r-read", kind="trust", ts="2026-11-23T08:40:00.000000Z"),
    ]
    with AuditLog(location, allow_key_in_log_dir=True) as log:
        for i, r in enumerate(rows):
            log.append(event(i, **r))
    return location


def ids(recs: list[dict]) -> list[str]:
    return [r["decision_id"] for r in recs]


def test_select_without_filters_returns_every_record(queried):
    assert ids(select(queried)) == ["d0000", "d0001", "d0002", "d0003", "d0004"]


def test_select_filters_by_agent(queried):
    assert ids(select(queried, agent="a2")) == ["d0001", "d0003"]


def test_select_filters_by_effect(queried):
    assert ids(select(queried, effect="deny")) == ["d0001", "d0002"]


def test_select_filters_by_rule(queried):
    assert ids(select(queried, rule="r-read")) == ["d0000", "d0004"]


def test_select_filters_by_kind(queried):
    assert ids(select(queried, kind="approval")) == ["d0003"]


def test_select_since_is_inclusive(queried):
    assert ids(select(queried, since="2026-11-23T08:20:00.000000Z")) == ["d0002", "d0003", "d0004"]


def test_select_until_is_inclusive(queried):
    assert ids(select(queried, until="2026-11-23T08:10:00.000000Z")) == ["d0000", "d0001"]


def test_select_combines_filters(queried):
    assert ids(select(queried, agent="a1", effect="deny")) == ["d0002"]


def test_select_with_a_time_window(queried):
    assert ids(select(queried, since="2026-11-23T08:05:00.000000Z", until="2026-11-23T08:35:00.000000Z")) == [
        "d0001", "d0002", "d0003"]


def test_select_with_no_match_returns_nothing(queried):
    assert select(queried, agent="nobody") == []


def test_select_until_excludes_a_record_later_in_the_same_second(tmp_path):
    """Regression (HEAD 30fb7fb, log.py:340): timestamps compared as strings, and '.' sorts before 'Z'."""
    with AuditLog(tmp_path / "log", allow_key_in_log_dir=True) as log:
        log.append(event(0, ts="2026-11-23T08:00:00.500000Z"))
    assert select(tmp_path / "log", until="2026-11-23T08:00:00Z") == []


def test_select_since_includes_a_record_at_that_instant(tmp_path):
    """Regression (HEAD 30fb7fb, log.py:338): as strings '...08:00:00.000000Z' < '...08:00:00Z', so a record
    at the very instant of since was dropped."""
    with AuditLog(tmp_path / "log", allow_key_in_log_dir=True) as log:
        log.append(event(0, ts="2026-11-23T08:00:00.000000Z"))
    assert ids(select(tmp_path / "log", since="2026-11-23T08:00:00Z")) == ["d0000"]


# --- the checkpoint key ----------------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path_factory) -> Path:
    """A key directory outside every log's directory (a .db's directory is the test's tmp_path)."""
    return tmp_path_factory.mktemp("keys")


def test_a_log_without_a_key_is_refused(tmp_path):
    with pytest.raises(AgtError, match="no checkpoint signing key"):
        AuditLog(tmp_path / "log")


def test_the_refusal_names_a_key_an_older_agt_left_in_the_log_dir(tmp_path):
    AuditLog(tmp_path / "log", allow_key_in_log_dir=True).close()
    with pytest.raises(AgtError, match="checkpoint.key was left by an older agt"):
        AuditLog(tmp_path / "log")


def test_a_key_path_inside_the_log_dir_is_refused(location):
    with pytest.raises(AgtError, match="inside the log directory"):
        AuditLog(location, key_path=key_dir(location) / "audit.key")


def test_a_key_path_inside_the_log_dir_through_a_symlink_is_refused(tmp_path):
    (tmp_path / "log").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "log")
    with pytest.raises(AgtError, match="inside the log directory"):
        AuditLog(tmp_path / "log", key_path=tmp_path / "alias" / "audit.key")


def test_a_key_path_outside_is_created_private_with_its_public_half(location, keys):
    AuditLog(location, key_path=keys / "audit.key").close()
    assert ((keys / "audit.key").stat().st_mode & 0o077, (keys / "audit.pub").exists()) == (0, True)


def test_a_key_path_outside_signs_the_checkpoints(location, keys):
    write_log(location, 12, key_path=keys / "audit.key", checkpoint_every=10)
    report = verify_log(location, load_public_key(keys / "audit.pub"), strict=True)
    assert (report.ok, report.covered) == (True, 12)


def test_signing_key_and_key_path_together_are_refused(location, keys):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with pytest.raises(ValueError, match="not both"):
        AuditLog(location, signing_key=Ed25519PrivateKey.generate(), key_path=keys / "a.key")


def test_a_log_whose_last_checkpoint_another_key_signed_is_refused(location, keys):
    write_log(location, 3, key_path=keys / "a.key")
    with pytest.raises(AgtError, match="not signed by this log's key"):
        AuditLog(location, key_path=keys / "b.key")


# --- health ----------------------------------------------------------------------------------------


def test_an_open_log_is_healthy(location, keys):
    with AuditLog(location, key_path=keys / "a.key") as log:
        assert log.health() is None


def test_a_closed_log_says_so(location, keys):
    log = AuditLog(location, key_path=keys / "a.key")
    log.close()
    assert log.health() == "the audit log is closed"


def test_an_event_json_cannot_hold_is_stored_in_its_safe_form(location, keys):
    with AuditLog(location, key_path=keys / "a.key", durability="batch") as log:
        log.append({"decision_id": "d", "result": {"value": object.__new__(Path), 3: "\ud800"}})
        log.flush()
        assert log.health() is None
    assert stored(location)[0]["result"]["3"] == "\\ud800"


# --- the tree head, kept incrementally -------------------------------------------------------------


def recomputed_roots(location: Path) -> list[tuple[int, str, str]]:
    """(size, signed root, root recomputed over every leaf of that prefix) for each checkpoint."""
    leaves = [merkle.leaf_hash(bytes.fromhex(r["hash"])) for r in stored(location)]
    return [(cp["size"], cp["root"], merkle.root(leaves[: cp["size"]]).hex()) for cp in stored_checkpoints(location)]


def assert_roots_recomputed(location: Path) -> None:
    for size, signed, full in recomputed_roots(location):
        assert signed == full, f"checkpoint over {size} records"


def test_a_checkpoint_at_every_size_signs_the_root_of_the_full_recomputation(location):
    write_log(location, 130, checkpoint_every=1)
    assert [s for s, _, _ in recomputed_roots(location)] == list(range(131))
    assert_roots_recomputed(location)


def test_a_reopened_log_continues_the_tree_head_it_rebuilt_from_the_records(location):
    write_log(location, 45, checkpoint_every=10)
    with AuditLog(location, checkpoint_every=10, durability="none", allow_key_in_log_dir=True) as log:
        for i in range(45, 77):
            log.append(event(i))
    assert [s for s, _, _ in recomputed_roots(location)] == [0, 10, 20, 30, 40, 45, 50, 60, 70, 77]
    assert_roots_recomputed(location)


def test_a_log_whose_last_checkpoint_is_behind_its_records_reopens_and_continues(location):
    """A writer that died (no close) after record 25 left its last checkpoint at 20: the root at 20 is
    checked on the way through the records, and the tree goes on to 25."""
    log = AuditLog(location, checkpoint_every=10, durability="none", allow_key_in_log_dir=True)
    for i in range(25):
        log.append(event(i))
    log.backend.close()  # the process is gone: no closing checkpoint
    with AuditLog(location, checkpoint_every=10, durability="none", allow_key_in_log_dir=True) as log:
        assert log.size == 25
        for i in range(25, 33):
            log.append(event(i))
    assert [s for s, _, _ in recomputed_roots(location)] == [0, 10, 20, 30, 33]
    assert_roots_recomputed(location)


def test_two_writers_on_one_log_each_catch_up_on_the_others_records(location):
    a = AuditLog(location, checkpoint_every=5, durability="none", allow_key_in_log_dir=True)
    b = AuditLog(location, checkpoint_every=5, durability="none", allow_key_in_log_dir=True)
    try:
        for i in range(40):
            (a if i % 3 else b).append(event(i))
    finally:
        a.close()
        b.close()
    assert [r["seq"] for r in stored(location)] == list(range(40))
    assert_roots_recomputed(location)


# --- batch durability: the queue -------------------------------------------------------------------


def test_batch_back_pressure_keeps_every_record_in_order(location):
    log = AuditLog(location, durability="batch", queue_limit=2, batch_interval=0.01, allow_key_in_log_dir=True)
    try:
        for i in range(200):
            log.append(event(i))
        log.flush()
        assert [r["decision_id"] for r in stored(location)] == [f"d{i:04d}" for i in range(200)]
    finally:
        log.close()


def test_a_runtime_record_is_stored_the_same_with_batch_and_synchronous_durability(tmp_path):
    """With batch durability the AuditRecord itself is queued and turned into an event by the writer."""
    from agt.runtime.audit import AuditRecord

    record = AuditRecord("d-1", 1_700_000_000_123_456_789, "decision", "a1", "policy", {"action": {"tool": "t"}},
                         {"effect": "allow"}, {"engine": "yaml"}, {"latency_us": 1.5})
    lines = []
    for durability in ("none", "batch"):
        with AuditLog(tmp_path / durability, durability=durability, allow_key_in_log_dir=True) as log:
            log.write(record)
        lines.append([text for _, _, text in records(tmp_path / durability)])
    assert lines[0] == lines[1]


def test_a_closed_batch_log_refuses_a_runtime_record(tmp_path):
    from agt.runtime.audit import AuditRecord

    log = AuditLog(tmp_path / "log", durability="batch", allow_key_in_log_dir=True)
    log.close()
    with pytest.raises(AgtError, match="closed"):
        log.write(AuditRecord("d-1", 0, "decision", "a1"))


# --- masking: one read walk and one rewrite walk, the same result as mask, collect, mask again ---------


def reference_mask_input(doc: Any, names: frozenset[str]) -> Any:
    """The masking as first written (three walks), kept here as the specification of the faster one."""
    def rewrite(d: Any, names: frozenset[str], secrets: frozenset[str]) -> Any:
        if isinstance(d, dict):
            out = None
            for k, v in d.items():
                nv = "***" if k.lower() in names else rewrite(v, names, secrets)
                if nv is not v:
                    out = dict(d) if out is None else out
                    out[k] = nv
            return d if out is None else out
        if isinstance(d, list):
            items = [rewrite(v, names, secrets) for v in d]
            return d if all(a is b for a, b in zip(items, d)) else items
        return "***" if isinstance(d, str) and d in secrets else d

    def collect(d: Any, found: set[str], inside: bool = False) -> None:
        if isinstance(d, dict):
            for k, v in d.items():
                collect(v, found, inside or k.lower() in names)
        elif isinstance(d, list):
            for v in d:
                collect(v, found, inside)
        elif inside and isinstance(d, str) and d:
            found.add(d)

    masked = rewrite(doc, names, frozenset()) if names else doc
    if masked is doc:
        return doc
    secrets: set[str] = set()
    collect(doc, secrets)
    masked = rewrite(masked, frozenset(), frozenset(secrets))
    action = masked.get("action") if isinstance(masked, dict) else None
    if isinstance(action, dict) and "params_text" in action:
        action = masked["action"] = dict(action)
        params = action.get("params")
        action["params_text"] = params_text(params) if isinstance(params, dict) else "***"
        if "facts" in action:
            tool, kind = action.get("tool"), action.get("kind")
            action["facts"] = (derive_facts(tool, kind, params) if isinstance(params, dict) and isinstance(tool, str)
                               and isinstance(kind, str) else "***")
    return masked


MASK_KEYS = ["token", "Token", "path", "id", "cmd", "facts", "params", "action", "other", "errors"]
MASK_VALUES = ["s3cret", "/ws/a", "rm -rf /", "", "***", "x"]
json_docs = st.recursive(
    st.one_of(st.sampled_from(MASK_VALUES), st.integers(-3, 3), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(MASK_KEYS), inner, max_size=5)),
    max_leaves=25,
)
mask_names = st.frozensets(st.sampled_from(["token", "path", "cmd", "facts", "params", "action", "errors", "id"]), max_size=3)


@given(doc=json_docs, names=mask_names)
@settings(max_examples=400, deadline=None)
def test_masking_any_document_equals_the_three_walk_reference(doc, names):
    assert mask_input(doc, names) == reference_mask_input(doc, names)


@given(names=mask_names, params=st.dictionaries(st.sampled_from(["path", "token", "cmd", "command", "sql", "n"]),
                                                st.sampled_from(MASK_VALUES + ["DROP TABLE t", "ls -la /ws/a"]), max_size=4))
@settings(max_examples=200, deadline=None)
def test_masking_an_action_document_equals_the_three_walk_reference(names, params):
    doc = from_call("run_shell", params).document
    assert mask_input(doc, names) == reference_mask_input(doc, names)


# Keys and strings that test reading masked keys off the canonical text: case, escapes, a key that ends in a quoted
# name, and strings holding what a key looks like in JSON.
TEXT_KEYS = MASK_KEYS + ["TOKEN", 'x"token', "token\n", "to\\ken", "tokens", "é", "tok"]
TEXT_VALUES = MASK_VALUES + ['"token":"s3cret"', ',"token":', '{"token":1}', "\\", "é-s3cret", "null", "1e-7"]
text_docs = st.recursive(
    st.one_of(st.sampled_from(TEXT_VALUES), st.integers(-3, 3), st.booleans(), st.floats(allow_nan=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(TEXT_KEYS), inner, max_size=5)),
    max_leaves=25,
)


@given(doc=text_docs, names=mask_names)
@settings(max_examples=600, deadline=None)
def test_masking_read_off_the_canonical_text_equals_the_three_walk_reference(doc, names):
    from agt._canonical import canonical_json_if_orjson

    assert mask_input(doc, names, canonical_json_if_orjson(doc)) == reference_mask_input(doc, names)


@given(names=mask_names, params=st.dictionaries(st.sampled_from(["path", "token", "Token", "cmd", "sql", "n"]),
                                                st.sampled_from(TEXT_VALUES + ["DROP TABLE t", "ls -la /ws/a"]), max_size=4))
@settings(max_examples=200, deadline=None)
def test_masking_an_action_read_off_its_text_equals_the_three_walk_reference(names, params):
    from agt._canonical import canonical_json_if_orjson

    doc = from_call("run_shell", params).document
    text = canonical_json_if_orjson(doc)
    assert mask_input(doc, names, text) == reference_mask_input(doc, names)


def test_a_key_that_only_ends_in_a_masked_name_is_not_masked_from_the_text():
    from agt._canonical import canonical_json_if_orjson

    doc = {'x"token': "kept", "s": '"token":"kept too"'}
    text = canonical_json_if_orjson(doc)
    assert text is not None and b'"token":' in text.replace(b'\\', b"")
    assert mask_input(doc, frozenset({"token"}), text) is doc


def test_a_masked_key_in_any_case_is_found_in_the_text():
    from agt._canonical import canonical_json_if_orjson

    doc = {"a": [{"ToKeN": {"deep": "s3cret"}}], "copy": "s3cret"}
    masked = mask_input(doc, frozenset({"token"}), canonical_json_if_orjson(doc))
    assert masked == {"a": [{"ToKeN": "***"}], "copy": "***"}


def test_masking_reaches_into_tuples_as_canonical_json_writes_them():
    doc = {"t": ({"token": "s3cret"}, "s3cret")}
    assert mask_input(doc, frozenset({"token"})) == {"t": [{"token": "***"}, "***"]}


def test_masking_leaves_a_document_without_masked_keys_as_it_is():
    doc = {"action": {"params": {"path": "/ws/a"}}, "list": [{"a": "b"}]}
    assert mask_input(doc, frozenset({"token"})) is doc


def test_batch_writer_keeps_order_across_many_holds_of_the_lock(tmp_path):
    """More records than one hold of the lock takes (BATCH_LOCKED), with a checkpoint due inside holds."""
    from agt.audit.log import BATCH_LOCKED

    log = AuditLog(tmp_path / "log", durability="batch", checkpoint_every=7, allow_key_in_log_dir=True)
    try:
        for i in range(3 * BATCH_LOCKED + 5):
            log.append(event(i))
        log.flush()
    finally:
        log.close()
    assert [r["seq"] for r in stored(tmp_path / "log")] == list(range(3 * BATCH_LOCKED + 5))
    assert_roots_recomputed(tmp_path / "log")


def test_backlog_counts_queued_records_and_ages_the_oldest(tmp_path):
    from agt.runtime.audit import AuditRecord

    log = AuditLog(tmp_path / "log", durability="batch", batch_interval=3600, allow_key_in_log_dir=True)  # writer sleeps
    try:
        assert log.backlog() == (0, 0.0)
        made = time.time_ns() - 2_000_000_000  # a record made two seconds ago
        log.write(AuditRecord("d-1", made, "decision", "alice"))
        log.write(AuditRecord("d-2", time.time_ns(), "decision", "alice"))
        depth, lag = log.backlog()
        assert depth == 2 and 2.0 <= lag < 60
        log.flush()
        assert log.backlog() == (0, 0.0)
    finally:
        log.close()


def test_backlog_is_empty_with_sync_durability(tmp_path):
    from agt.runtime.audit import AuditRecord

    with AuditLog(tmp_path / "log", durability="always", allow_key_in_log_dir=True) as log:
        log.write(AuditRecord("d-1", time.time_ns(), "decision", "alice"))
        assert log.backlog() == (0, 0.0)


@pytest.mark.parametrize("names", [{"token"}, {"path"}, {"types"}, {"programs", "token"}, {"parsed"}, {"sql"}, {"facts"}])
@pytest.mark.parametrize("params", [{"path": "/ws/a.md", "token": "s3cret"}, {"path": "/ws/a.md"},
                                    {"cmd": "cat /ws/a.md", "token": "s3cret"}])
def test_masking_an_action_with_the_shared_empty_facts_equals_masking_a_copy(names, params):
    # The shared empty facts shape is left unread when no mask name is one of its keys; a copy is always read.
    import copy

    doc = from_call("read_file", params).document
    copied = copy.deepcopy(dict(doc))
    assert copied["action"]["facts"] is not doc["action"]["facts"]
    assert mask_input(doc, frozenset(names)) == mask_input(copied, frozenset(names))


def _body_of(doc):
    return {"decision_id": "d", "timestamp": "t", "kind": "decision", "agent_id": "a", "path": "policy", "input": doc,
            "result": {"effect": "allow"}, "labels": {}, "metrics": {}, "seq": 3, "prev_hash": "0" * 64}


@pytest.mark.parametrize("params", [
    {"path": "/ws/a.md"},
    {"path": "/ws/a.md", "note": "\x00agt:shared-facts\x00"},  # an agent sending the mark itself: encoded whole
    {"cmd": "rm -rf /tmp/x"},  # facts of its own, not the shared shape
    {"path": "/ws/\u00e9t\u00e9.md", "n": 1.25},
])
def test_records_encode_to_the_canonical_bytes_whatever_their_params(params):
    from agt._canonical import canonical_json
    from agt.audit.log import _encode

    doc = from_call("read_file", params).document
    assert _encode(doc) == canonical_json(doc)
    assert _encode(_body_of(doc)) == canonical_json(_body_of(doc))
