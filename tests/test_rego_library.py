"""The Rego library passes OPA's own gates: unit tests, strict checking, formatting."""

import os
import subprocess
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

import agt
from agt.action import from_call
from agt.decision import ENGINE_ERROR_ID

ROOT = Path(__file__).resolve().parents[1]
REGO_DIRS = [ROOT / "rego", ROOT / "conformance" / "policies" / "secrets" / "rego", ROOT / "conformance" / "policies" / "money" / "rego"]


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


# --- agt.compare on a real OPA: a type mismatch fails the query, so agt denies -----------------------

LIMIT_POLICY = """\
    package agt.policies.limits

    import data.agt

    default_action := "allow"

    approval["refund-approval"] := {"message": "over 100", "approvers": ["finance"]} if {
    	input.action.tool == "refund"
    	agt.greater(input.action.params.amount, 100)
    }

    deny["negative-refund"] := "negative" if {
    	input.action.tool == "refund"
    	agt.less(input.action.params.amount, 0)
    }
"""


@pytest.fixture(scope="module")
def limits(opa_binary, tmp_path_factory):
    d = tmp_path_factory.mktemp("limits")
    (d / "limits.rego").write_text(textwrap.dedent(LIMIT_POLICY), "utf-8")
    lib = ROOT / "rego" / "agt"
    engine = agt.create_engine("opa", os.pathsep.join(map(str, (lib / "decision.rego", lib / "compare.rego", d))), timeout=30)
    yield engine
    engine.close()


@pytest.mark.parametrize("amount, rules", [
    (Decimal("19.99"), ("default",)),
    (Decimal("100.00"), ("default",)),
    (Decimal("100.01"), ("refund-approval",)),
    (Decimal("100.0000000000000000001"), ("refund-approval",)),
    (Decimal("-0.01"), ("negative-refund",)),
])
def test_decimals_compare_exactly_in_opa(limits, amount, rules):
    assert limits.evaluate(from_call("refund", {"amount": amount})).rule_ids == rules


@pytest.mark.parametrize("amount", ["19.99", "-5", True, None], ids=["string", "negative-string", "bool", "null"])
def test_comparing_a_non_number_with_a_number_is_a_deny_in_opa(limits, amount):
    decision = limits.evaluate(from_call("refund", {"amount": amount}))
    assert decision.rule_ids == (ENGINE_ERROR_ID,)
    assert "cannot order" in decision.reasons[0].message


def test_missing_param_does_not_match_in_opa(limits):
    assert limits.evaluate(from_call("refund", {})).rule_ids == ("default",)
