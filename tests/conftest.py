from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
