"""End to end with real processes: agt serves a signed bundle, a real OPA configured by `opa_config`
pulls it with long polling, answers the conformance suite like agt's own engines, picks up a policy
edit within seconds, and sends its decision logs back into agt's audit log, which verifies."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agt.audit import AuditLog, select, verify_log
from agt.bundle.opa_config import opa_config
from agt.bundle.server import BundleServer, BundleService, BundleSource
from agt.conformance import load_suite
from agt.engines.opa import OpaEngine
from agt.opa import ManagedOpa

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "fleet-secret"


@pytest.fixture(scope="module")
def fleet(opa_binary, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    rego = tmp / "rego"
    shutil.copytree(ROOT / "rego", rego, ignore=shutil.ignore_patterns("*_test.rego"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    audit = AuditLog(tmp / "audit", durability="always", checkpoint_every=5, allow_key_in_log_dir=True)
    service = BundleService([BundleSource("agt", [rego], signing_key=private, keyid="agt")], audit=audit, token=TOKEN,
                            watch_interval=0.2)
    server = BundleServer(service).start()
    (tmp / "config.yaml").write_text(opa_config(server.url, token=TOKEN, verification_key=public.decode(),
                                                 long_poll_seconds=5, log_min_delay=1, log_max_delay=1))
    opa = ManagedOpa([], extra_args=["--config-file", str(tmp / "config.yaml")], ready_timeout=60).start()
    engine = OpaEngine(url=opa.url, token=opa.token)
    yield {"tmp": tmp, "rego": rego, "service": service, "server": server, "opa": opa, "engine": engine, "audit": audit}
    engine.close()
    opa.stop()
    server.stop()
    audit.close()


def test_opa_activated_the_bundle(fleet):
    assert httpx.get(fleet["opa"].url + "/health", params={"bundles": ""}).status_code == 200


def test_opa_from_the_bundle_agrees_with_the_conformance_suite(fleet):
    suite = load_suite(ROOT / "conformance" / "starter.yaml")
    wrong = [c.name for c in suite.cases
             if (d := fleet["engine"].evaluate(c.action)) and (d.effect, d.rule_ids) != (c.expect.effect, c.expect.rules)]
    assert wrong == []


def test_a_policy_edit_reaches_opa_within_seconds(fleet):
    extra = fleet["rego"] / "agt" / "policies" / "freeze.rego"
    extra.write_text('package agt.policies.freeze\n\ndeny["change-freeze"] := "Changes are frozen." if input.action.kind == "write"\n')
    action = load_suite(ROOT / "conformance" / "starter.yaml").cases[0].action  # a harmless read
    write = next(c.action for c in load_suite(ROOT / "conformance" / "starter.yaml").cases if c.name == "write in workspace")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if fleet["engine"].evaluate(write).rule_ids == ("change-freeze",):
            break
        time.sleep(0.2)
    assert fleet["engine"].evaluate(write).rule_ids == ("change-freeze",)
    assert fleet["engine"].evaluate(action).rule_ids == ("default",)


def test_decision_logs_flow_back_into_a_verifying_audit_log(fleet):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and fleet["service"].received_events < 20:
        time.sleep(0.3)
    assert fleet["service"].received_events >= 20
    fleet["audit"].checkpoint()
    assert verify_log(fleet["tmp"] / "audit").ok
    logged = select(fleet["tmp"] / "audit", kind="opa_decision")
    assert logged and logged[0]["path"] == "agt/decision"


def test_status_reports_arrive(fleet):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not fleet["service"].status:
        time.sleep(0.3)
    assert fleet["service"].status


def test_requests_without_the_token_are_refused(fleet):
    assert httpx.get(fleet["server"].url + "/bundles/agt").status_code == 401


def test_same_flow_against_the_opa_image(tmp_path):
    """The fleet test with the openpolicyagent/opa image instead of the binary (testcontainers)."""
    from agt.opa.container import docker_unavailable_reason, opa_container

    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(f"testcontainers path skipped: {reason}")
    rego = tmp_path / "rego"
    shutil.copytree(ROOT / "rego", rego, ignore=shutil.ignore_patterns("*_test.rego"))
    audit = AuditLog(tmp_path / "audit", durability="always", allow_key_in_log_dir=True)
    service = BundleService([BundleSource("agt", [rego])], audit=audit)
    with BundleServer(service) as server:
        (tmp_path / "config.yaml").write_text(opa_config(server.url, log_min_delay=1, log_max_delay=1))
        with opa_container(config_file=tmp_path / "config.yaml") as url:
            engine = OpaEngine(url=url)
            try:
                case = load_suite(ROOT / "conformance" / "starter.yaml").cases[0]
                assert engine.evaluate(case.action).effect is case.expect.effect
            finally:
                engine.close()
    audit.close()
