"""The Rego library passes OPA's own gates: unit tests, strict checking, formatting."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REGO_DIRS = [ROOT / "rego", ROOT / "conformance" / "policies" / "secrets" / "rego"]


def _opa(opa_binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([opa_binary, *args], capture_output=True, text=True, timeout=120)


def test_opa_unit_tests_pass(opa_binary):
    result = _opa(opa_binary, "test", str(ROOT / "rego"), "-v")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def test_opa_test_runs_a_test_per_rule(opa_binary):
    result = _opa(opa_binary, "test", str(ROOT / "rego"), "-v")
    assert result.stdout.count("PASS") >= 15


@pytest.mark.parametrize("path", REGO_DIRS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_opa_check_strict_is_clean(opa_binary, path):
    result = _opa(opa_binary, "check", "--strict", str(ROOT / "rego"), str(path))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", REGO_DIRS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_opa_fmt_is_clean(opa_binary, path):
    result = _opa(opa_binary, "fmt", "--fail", "--list", str(path))
    assert result.returncode == 0, f"needs `opa fmt -w`: {result.stdout}"
