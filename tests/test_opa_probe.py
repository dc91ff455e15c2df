"""agt.opa.probe and `agt doctor --opa-url`: is a user-run OPA's policy API open to anyone?"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from agt.cli import cli
from agt.opa import ManagedOpa
from agt.opa.probe import probe_policy_api
from agt.opa.server import free_port

REGO = Path(__file__).resolve().parents[1] / "rego"


@pytest.fixture
def open_opa(opa_binary):
    """A real OPA run the way many deployments run it: no authentication, no authorization."""
    port = free_port()
    proc = subprocess.Popen([opa_binary, "run", "--server", "--addr", f"127.0.0.1:{port}", "--skip-version-check",
                             str(REGO)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=5) as client:
            for _ in range(600):
                try:
                    if client.get(url + "/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                proc.poll()
                assert proc.returncode is None, "opa exited"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_opa_without_authorization_is_reported_open(open_opa):
    probe = probe_policy_api(open_opa)
    assert (probe.reachable, probe.open, probe.status) == (True, True, 200)
    assert "replace" in probe.detail


def test_the_managed_opa_is_reported_closed(opa_binary):
    with ManagedOpa([REGO], ready_timeout=60) as server:
        probe = probe_policy_api(server.url)
    assert (probe.reachable, probe.open, probe.status) == (True, False, 401)


def test_an_unreachable_opa_is_neither_open_nor_closed():
    probe = probe_policy_api(f"http://127.0.0.1:{free_port()}")
    assert (probe.reachable, probe.open) == (False, None)


def test_doctor_json_reports_the_policy_api(open_opa):
    result = CliRunner().invoke(cli, ["doctor", "--json", "--opa-url", open_opa])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["opa_policy_api"]["open"] is True


def test_doctor_says_open_in_words(open_opa):
    result = CliRunner().invoke(cli, ["doctor", "--opa-url", open_opa])
    assert result.exit_code == 0 and "OPEN" in result.output
