"""The testcontainers path: the starter suite against the openpolicyagent/opa image.

Runs only where a Docker engine is reachable; elsewhere it skips and says why. CI here has no Docker
engine and covers the same decisions with the pinned binary (tests/test_conformance_suites.py).
"""

from pathlib import Path

import pytest

from agt.conformance import load_suite
from agt.engines.opa import OpaEngine
from agt.opa.container import ContainerUnavailable, docker_unavailable_reason, opa_container

ROOT = Path(__file__).resolve().parents[1]


def test_unavailable_reason_is_none_or_actionable():
    reason = docker_unavailable_reason()
    assert reason is None or "testcontainers" in reason or "Docker" in reason


def test_opa_container_refuses_cleanly_without_docker():
    if docker_unavailable_reason() is None:
        pytest.skip("a Docker engine is reachable here; the refusal path cannot be observed")
    with pytest.raises(ContainerUnavailable):
        with opa_container(ROOT / "rego"):
            pass


def test_starter_suite_on_the_opa_image():
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(f"testcontainers path skipped: {reason}")
    suite = load_suite(ROOT / "conformance" / "starter.yaml")
    with opa_container(ROOT / "rego") as url:
        engine = OpaEngine(url=url)
        try:
            for case in suite.cases:
                d = engine.evaluate(case.action)
                assert (d.effect, d.rule_ids) == (case.expect.effect, case.expect.rules), case.name
        finally:
            engine.close()


def test_engine_container_option_without_docker_is_a_clear_error():
    if docker_unavailable_reason() is None:
        pytest.skip("a Docker engine is reachable here; the refusal path cannot be observed")
    with pytest.raises(ContainerUnavailable, match="Docker|testcontainers"):
        OpaEngine(ROOT / "rego", container=True)
