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
