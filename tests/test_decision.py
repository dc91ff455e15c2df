"""agt.decision: the combining rules and the fail-closed constructor."""

import pytest

from agt.decision import DEFAULT_RULE_ID, ENGINE_ERROR_ID, Effect, RuleAction, RuleMatch, combine, fail_closed

DENY_A = RuleMatch("a-deny", RuleAction.DENY, "no")
DENY_B = RuleMatch("b-deny", RuleAction.DENY, "no")
APPROVE_X = RuleMatch("x-approve", RuleAction.REQUIRE_APPROVAL, "ask", ("ops", "sec"))
APPROVE_Y = RuleMatch("y-approve", RuleAction.REQUIRE_APPROVAL, "ask", ("ops",))
ALLOW = RuleMatch("ok", RuleAction.ALLOW, "fine")
WARN = RuleMatch("w", RuleAction.WARN, "careful")
AUDIT = RuleMatch("au", RuleAction.AUDIT, "logged")


def test_deny_beats_approval_and_allow():
    d = combine([ALLOW, APPROVE_X, DENY_A])
    assert (d.effect, d.rule_ids) == (Effect.DENY, ("a-deny",))


def test_deny_reasons_are_every_matching_deny_sorted():
    assert combine([DENY_B, DENY_A]).rule_ids == ("a-deny", "b-deny")


def test_approval_beats_allow_and_unions_approvers():
    d = combine([ALLOW, APPROVE_Y, APPROVE_X])
    assert (d.effect, d.rule_ids, d.approvers) == (Effect.REQUIRE_APPROVAL, ("x-approve", "y-approve"), ("ops", "sec"))


def test_allow_rule_beats_deny_default():
    d = combine([ALLOW], Effect.DENY)
    assert (d.effect, d.rule_ids) == (Effect.ALLOW, ("ok",))


@pytest.mark.parametrize("default", [Effect.ALLOW, Effect.DENY])
def test_no_match_gives_policy_default_with_default_reason(default):
    d = combine([], default)
    assert (d.effect, d.rule_ids) == (default, (DEFAULT_RULE_ID,))


def test_default_is_deny_when_unstated():
    assert combine([]).effect is Effect.DENY


def test_audit_and_warn_are_notes_not_reasons():
    d = combine([WARN, AUDIT], Effect.ALLOW)
    assert d.rule_ids == (DEFAULT_RULE_ID,)
    assert [n.rule_id for n in d.notes] == ["au", "w"]


def test_warn_alone_does_not_allow_under_deny_default():
    assert combine([WARN], Effect.DENY).effect is Effect.DENY


def test_require_approval_is_not_a_valid_default():
    with pytest.raises(ValueError):
        combine([], Effect.REQUIRE_APPROVAL)


def test_duplicate_rule_ids_collapse_to_one_reason():
    assert combine([DENY_A, DENY_A]).rule_ids == ("a-deny",)


def test_fail_closed_is_deny_with_engine_error_and_cause():
    d = fail_closed("opa: connection refused", engine="opa")
    assert d.effect is Effect.DENY
    assert d.rule_ids == (ENGINE_ERROR_ID,)
    assert d.reasons[0].message == "opa: connection refused"
    assert d.is_engine_error


def test_to_dict_shape():
    d = combine([APPROVE_X], engine="yaml", revision="r1").to_dict()
    assert d == {
        "effect": "require_approval",
        "reasons": [{"id": "x-approve", "message": "ask"}],
        "approvers": ["ops", "sec"],
        "engine": "yaml",
        "revision": "r1",
    }
