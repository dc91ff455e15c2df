"""Attacks on numeric and recipient rules: an agent shapes its params so a rule misreads them.

Each test failed before typed params and exact decimals (issue 10, parts 2 and 3).
"""

from __future__ import annotations

import os
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

import agt
from agt.action import from_call
from agt.decision import ENGINE_ERROR_ID, Effect
from agt.errors import PolicyLoadError

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "rego" / "agt"


def opa_engine(tmp_path: Path, rego: str, *library: str):
    (tmp_path / "p.rego").write_text(textwrap.dedent(rego), "utf-8")
    paths = [str(LIB / "decision.rego"), *(str(LIB / name) for name in library), str(tmp_path)]
    return agt.create_engine("opa", os.pathsep.join(paths), timeout=30)


def test_negative_float_refund_is_a_number_to_rego_not_a_string(opa_binary, tmp_path):
    # Floats used to reach OPA as strings, and no string is < 0 in Rego: a negative refund slipped past.
    engine = opa_engine(tmp_path, """\
        package agt.policies.p

        default_action := "allow"

        deny["negative-refund"] := "no negative refunds" if input.action.params.amount < 0
        """)
    try:
        assert engine.evaluate(from_call("refund", {"amount": -5.5})).rule_ids == ("negative-refund",)
    finally:
        engine.close()


def test_string_amount_cannot_slip_under_a_rego_lower_bound(opa_binary, tmp_path):
    # "-500" as a string is above every number in Rego's ordering, so `amount < 0` was false: allowed.
    engine = opa_engine(tmp_path, """\
        package agt.policies.p

        import data.agt

        default_action := "allow"

        deny["negative-refund"] := "no negative refunds" if agt.less(input.action.params.amount, 0)
        """, "compare.rego")
    try:
        decision = engine.evaluate(from_call("refund", {"amount": "-500"}))
        assert decision.effect is Effect.DENY and decision.rule_ids == (ENGINE_ERROR_ID,)
    finally:
        engine.close()


CATALOG = {"tools": {"send_email": {"params": {"to": "string"}}, "refund": {"params": {"amount": "decimal"}}}}
MONEY = ROOT / "conformance" / "policies" / "money"  # the example policy, with its catalog.yaml


def cedar_engine(tmp_path: Path, policy: str):
    (tmp_path / "p.cedar").write_text(textwrap.dedent(policy), "utf-8")
    return agt.create_engine("cedar", str(tmp_path), catalog=CATALOG)


def test_extra_param_does_not_hide_the_recipient_from_cedar():
    # The params_text workaround (`like "*@example.com"`) matched carol@example.com in an invented param.
    decision = agt.create_engine("cedar", str(MONEY)).evaluate(
        from_call("send_email", {"to": "bob@evil.com", "zcc": "carol@example.com"}))
    assert decision.rule_ids == ("external-email-approval",)


def test_amount_with_more_digits_than_cedar_keeps_is_denied_not_rounded_under_the_limit():
    # 100.00004 would round to 100.0000, which is not over the limit.
    decision = agt.create_engine("cedar", str(MONEY)).evaluate(agt.Action.from_json(
        '{"agent": {"id": "a"}, "action": {"tool": "refund", "params": {"amount": 100.00004}}}'))
    assert decision.effect is Effect.DENY and decision.rule_ids == (ENGINE_ERROR_ID,)


def test_json_amount_just_over_the_limit_is_not_rounded_to_the_limit(tmp_path):
    # Parsed as a float, 100.0000000000000000001 is 100.0: not over a limit of 100.
    (tmp_path / "p.yaml").write_text(textwrap.dedent("""\
        apiVersion: governance.toolkit/v1
        name: p
        default_action: allow
        rules:
          - {name: refund-approval, condition: "params.amount > 100", action: require_approval}
        """), "utf-8")
    engine = agt.create_engine("yaml", str(tmp_path / "p.yaml"))
    action = agt.Action.from_json('{"agent": {"id": "a"}, "action": {"tool": "refund", "params": {"amount": 100.0000000000000000001}}}')
    assert engine.evaluate(action).rule_ids == ("refund-approval",)


def test_cedar_rule_guarding_an_undeclared_param_does_not_load_as_a_rule_that_never_matches(tmp_path):
    # `has zcc` on a closed record validates as always false: the forbid would load and never fire.
    with pytest.raises(PolicyLoadError, match=r"context\.params\.zcc.*declare it"):
        cedar_engine(tmp_path, """\
            @id("cc-check")
            forbid (principal, action, resource)
            when { context.params has zcc && context.params.zcc like "*@evil.com" };
            """)
