"""agt.audit.health and `agt doctor --audit-log`: what an operator sees from outside a writer."""

from __future__ import annotations

import json
import shutil
from unittest import mock

from click.testing import CliRunner

from agt.audit import AuditLog, load_public_key
from agt.audit.health import check_log
from agt.cli import cli


def make_log(tmp_path, **kwargs):
    with AuditLog(tmp_path / "log", durability="none", **kwargs) as log:
        log.append({"decision_id": "d"})
    return tmp_path / "log"


def test_a_good_log_with_its_key_is_ok(tmp_path):
    log = make_log(tmp_path, key_path=tmp_path / "audit.key")
    assert check_log(log, load_public_key(tmp_path / "audit.pub"))["ok"] is True


def test_a_private_key_in_the_log_directory_is_a_problem(tmp_path):
    log = make_log(tmp_path, allow_key_in_log_dir=True)
    assert any("private checkpoint key lies in the log directory" in p for p in check_log(log)["problems"])


def test_a_missing_log_is_a_problem(tmp_path):
    assert check_log(tmp_path / "nope")["problems"] == [f"no audit log at {tmp_path / 'nope'}"]


def test_a_nearly_full_disk_is_a_problem(tmp_path):
    log = make_log(tmp_path, key_path=tmp_path / "audit.key")
    with mock.patch("agt.audit.health.shutil.disk_usage", return_value=shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000)):
        problems = check_log(log, load_public_key(tmp_path / "audit.pub"))["problems"]
    assert problems == ["only 1000 bytes free on the log's disk"]


def test_doctor_reports_the_audit_log_and_exits_1_on_a_problem(tmp_path):
    log = make_log(tmp_path, allow_key_in_log_dir=True)
    result = CliRunner().invoke(cli, ["doctor", "--json", "--audit-log", str(log)])
    assert (result.exit_code, json.loads(result.output)["audit"]["ok"]) == (1, False)


def test_doctor_exits_0_on_a_healthy_audit_log(tmp_path):
    log = make_log(tmp_path, key_path=tmp_path / "audit.key")
    result = CliRunner().invoke(cli, ["doctor", "--audit-log", str(log), "--audit-public-key", str(tmp_path / "audit.pub")])
    assert result.exit_code == 0, result.output
