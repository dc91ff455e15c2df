import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Adapter tests need their framework, installed in its own virtualenv by scripts/adapter_tests.py
# (make test runs it after this suite); that script names the framework it runs.
collect_ignore = [] if os.environ.get("AGT_ADAPTER_FRAMEWORK") else ["adapters"]

# A loaded machine can keep OPA from answering within the production default (2 s); a fail-closed deny
# then reads as a parity failure. OPA-backed tests, CLI subprocesses included, get a generous deadline;
# fault tests pass their own small timeout explicitly.
os.environ.setdefault("AGT_OPA_TIMEOUT", "30")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def starter_yaml() -> str:
    return str(ROOT / "policies" / "starter.yaml")


@pytest.fixture(scope="session")
def starter_cedar() -> str:
    return str(ROOT / "cedar")


@pytest.fixture(scope="session")
def opa_binary() -> str:
    """The real opa binary. Missing opa skips locally, and fails in CI: OPA tests never skip silently there."""
    import os

    from agt.opa import OpaNotFound, find_opa

    try:
        return find_opa()
    except OpaNotFound as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the OPA tests: {exc}")
        pytest.skip(f"opa not installed: {exc}")


@pytest.fixture(scope="session")
def redis_binary() -> str:
    """The real redis-server binary. Missing, it skips locally and fails in CI, as opa does."""
    from redis_server import require_redis_server

    return require_redis_server()


@pytest.fixture(scope="session")
def redis_server(redis_binary, tmp_path_factory):
    """One real redis-server for the session, on a free loopback port. Give each test its own key prefix
    (``redis_server.unique_url()``, or the ``redis_url`` fixture) rather than flushing it."""
    from redis_server import RedisServer

    server = RedisServer(redis_binary, tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop(kill=False)


@pytest.fixture
def redis_url(redis_server) -> str:
    """A state URL on the session's redis-server with a key prefix of this test's own."""
    return redis_server.unique_url(timeout="10")
