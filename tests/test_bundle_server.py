"""agt.bundle.server on its own: ETags and 304s, long polling, auth, rebuilds, and the log receiver's
handling of bad bodies. A real HTTP server on loopback; the OPA side is in test_bundle_e2e.py."""

from __future__ import annotations

import gzip
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from agt.audit import AuditLog, select, verify_log
from agt.bundle.server import BUNDLE_CONTENT_TYPE, MAX_BODY_BYTES, BundleServer, BundleService, BundleSource
from agt.cli import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def served(tmp_path):
    rego = tmp_path / "rego"
    rego.mkdir()
    (rego / "p.rego").write_text("package agt.p\n\nx := 1\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "q.rego").write_text("package team.q\n\ny := 2\n")
    audit = AuditLog(tmp_path / "audit", durability="always", allow_key_in_log_dir=True)
    service = BundleService([BundleSource("agt", [rego]), BundleSource("team", [other])], audit=audit, token="t0k",
                            watch_interval=0.1)
    server = BundleServer(service).start()
    client = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer t0k"}, timeout=10)
    yield {"rego": rego, "server": server, "service": service, "client": client, "audit": audit, "tmp": tmp_path}
    client.close()
    server.stop()
    audit.close()


def test_bundle_is_served_with_etag_and_bundle_content_type(served):
    r = served["client"].get("/bundles/agt")
    assert r.status_code == 200 and r.headers["ETag"] and r.headers["Content-Type"] == BUNDLE_CONTENT_TYPE


def test_several_bundles_are_served(served):
    assert served["client"].get("/bundles/team").status_code == 200
    assert served["client"].get("/bundles/nope").status_code == 404


def test_matching_if_none_match_gets_304(served):
    etag = served["client"].get("/bundles/agt").headers["ETag"]
    assert served["client"].get("/bundles/agt", headers={"If-None-Match": etag}).status_code == 304


def test_long_poll_answers_when_the_policy_changes(served):
    etag = served["client"].get("/bundles/agt").headers["ETag"]

    def edit() -> None:
        time.sleep(0.5)
        (served["rego"] / "p.rego").write_text("package agt.p\n\nx := 2\n")

    threading.Thread(target=edit).start()
    r = served["client"].get("/bundles/agt", headers={"If-None-Match": etag, "Prefer": "wait=10"})
    assert r.status_code == 200 and r.headers["ETag"] != etag


def test_long_poll_times_out_with_304(served):
    etag = served["client"].get("/bundles/agt").headers["ETag"]
    r = served["client"].get("/bundles/agt", headers={"If-None-Match": etag, "Prefer": "wait=1"})
    assert r.status_code == 304


def test_a_broken_edit_keeps_the_last_good_bundle(served):
    before = served["client"].get("/bundles/agt").content
    (served["rego"] / "p.rego").unlink()
    served["service"].refresh()
    assert served["client"].get("/bundles/agt").content == before
    assert "no .rego" in served["service"].sources["agt"].error


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["missing", "wrong"])
def test_requests_without_the_right_token_get_401(served, headers):
    assert httpx.get(served["server"].url + "/bundles/agt", headers=headers).status_code == 401
    assert httpx.post(served["server"].url + "/logs", content=b"[]", headers=headers).status_code == 401


def _event(i: int) -> dict:
    return {"decision_id": f"opa-{i}", "path": "agt/decision", "timestamp": "2026-11-23T08:00:00Z",
            "input": {"agent": {"id": "a"}}, "result": {"effect": "allow"}, "labels": {"id": "opa-1"}}


def test_gzipped_decision_logs_land_in_the_audit_log(served):
    body = gzip.compress(json.dumps([_event(i) for i in range(3)]).encode())
    r = served["client"].post("/logs", content=body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200
    assert [x["decision_id"] for x in select(served["tmp"] / "audit", kind="opa_decision")] == ["opa-0", "opa-1", "opa-2"]


@pytest.mark.parametrize(
    "body,code",
    [(b"not json", 400), (json.dumps({"a": 1}).encode(), 400), (json.dumps([{"no": "id"}]).encode(), 400),
     (b"\x1f\x8b garbage", 400)],
    ids=["not-json", "not-array", "not-events", "bad-gzip"],
)
def test_malformed_log_bodies_get_400_and_nothing_is_appended(served, body, code):
    assert served["client"].post("/logs", content=body).status_code == code
    assert select(served["tmp"] / "audit", kind="opa_decision") == []


def test_oversized_body_gets_413(served):
    r = served["client"].post("/logs", content=b"[" + b" " * (MAX_BODY_BYTES + 1) + b"]")
    assert r.status_code == 413


def test_gzip_bomb_gets_413(served):
    bomb = gzip.compress(b"[" + b" " * (80 * 1024 * 1024) + b"]")
    assert served["client"].post("/logs", content=bomb, headers={"Content-Encoding": "gzip"}).status_code == 413


def test_accepted_events_survive_a_later_bad_batch(served):
    served["client"].post("/logs", content=json.dumps([_event(1)]).encode())
    served["client"].post("/logs", content=b"{broken")
    served["audit"].checkpoint()
    assert [x["decision_id"] for x in select(served["tmp"] / "audit", kind="opa_decision")] == ["opa-1"]
    assert verify_log(served["tmp"] / "audit").ok


def test_status_reports_are_kept_per_instance(served):
    served["client"].post("/status", content=json.dumps({"labels": {"id": "opa-7"}, "bundles": {}}).encode())
    assert "opa-7" in served["client"].get("/status").json()


def test_opa_config_cli_prints_services_bundles_logs_and_status(tmp_path):
    pub = tmp_path / "pub.pem"
    pub.write_text("-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n")
    import yaml

    out = CliRunner().invoke(cli, ["opa", "config", "--server", "http://127.0.0.1:8282", "--token", "t",
                                   "--verification-key", str(pub)]).output
    cfg = yaml.safe_load(out)
    assert cfg["services"]["agt"]["credentials"]["bearer"]["token"] == "t"
    assert cfg["bundles"]["agt"]["polling"]["long_polling_timeout_seconds"] == 10
    assert cfg["bundles"]["agt"]["signing"]["keyid"] == "agt" and "BEGIN PUBLIC KEY" in cfg["keys"]["agt"]["key"]
    assert cfg["decision_logs"]["service"] == "agt" and cfg["status"]["service"] == "agt"


# --- status reports --------------------------------------------------------------------------------


def test_status_keeps_the_latest_report_per_instance(served):
    for n in (1, 2):
        served["client"].post("/status", content=json.dumps({"labels": {"id": "opa-1"}, "n": n}))
    assert served["client"].get("/status").json() == {"opa-1": {"labels": {"id": "opa-1"}, "n": 2}}


# --- the checkpoint witness ------------------------------------------------------------------------


def _checkpoint(size: int) -> dict:
    return {"size": size, "root": "r", "last_hash": "h", "time": "t", "signature": "s", "public_key": "k"}


def test_a_posted_checkpoint_is_listed(served):
    assert served["client"].post("/logs/checkpoints", content=json.dumps(_checkpoint(3))).status_code == 200
    assert served["client"].get("/logs/checkpoints").json() == {"checkpoints": [_checkpoint(3)]}


def test_a_posted_checkpoint_lands_in_the_servers_audit_log(served):
    served["client"].post("/logs/checkpoints", content=json.dumps(_checkpoint(3)))
    assert [r["result"]["size"] for r in select(served["tmp"] / "audit", kind="audit_checkpoint")] == [3]


def test_a_body_that_is_not_a_checkpoint_gets_400(served):
    assert served["client"].post("/logs/checkpoints", content=json.dumps({"size": 1})).status_code == 400


def test_a_server_without_an_audit_log_cannot_witness(tmp_path):
    rego = tmp_path / "rego"
    rego.mkdir()
    (rego / "p.rego").write_text("package agt.p\n\nx := 1\n")
    with BundleServer(BundleService([BundleSource("agt", [rego])])) as server:
        r = httpx.post(server.url + "/logs/checkpoints", content=json.dumps(_checkpoint(1)), timeout=10)
    assert r.status_code == 503


def test_rego_that_does_not_compile_is_never_served_and_the_error_is_logged(served, caplog):
    before = served["client"].get("/bundles/agt")
    (served["rego"] / "p.rego").write_text("package agt.p\n\nx := {\n")
    with caplog.at_level("ERROR", logger="agt.bundle.server"):
        served["service"].refresh()
    after = served["client"].get("/bundles/agt")
    assert (after.headers["ETag"], after.content) == (before.headers["ETag"], before.content)
    assert "p.rego:4" in served["service"].sources["agt"].error
    assert any("p.rego:4" in r.getMessage() and before.headers["ETag"] in r.getMessage() for r in caplog.records)
