"""agt.engines.yaml: the YamlEngine's decisions, through agt.create_engine("yaml", path)."""

from __future__ import annotations

import itertools
import json
import random
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agt
from agt.decision import DEFAULT_RULE_ID, ENGINE_ERROR_ID, Effect, RuleMatch, combine
from agt.engines.yaml import YamlEngine
from agt.errors import ConditionEvalError


def engine_for(tmp_path, rules: list[dict], default: str | None = "allow", extra: str = "") -> YamlEngine:
    lines = ["apiVersion: governance.toolkit/v1", "name: t"]
    if default is not None:
        lines.append(f"default_action: {default}")
    lines.append("rules:" if rules else "rules: []")
    for r in rules:
        lines.append("  - " + json.dumps(r))  # JSON is YAML: one flow mapping per rule
    path = tmp_path / "policy.yaml"
    path.write_text("\n".join(lines) + "\n" + textwrap.dedent(extra))
    engine = agt.create_engine("yaml", str(path))
    assert isinstance(engine, YamlEngine)
    return engine


def call(tool="do_thing", params=None, *, roles=(), trust=500, **context):
    return agt.from_call(tool, params or {}, agent=agt.Agent("a1", roles=roles, trust_score=trust),
                         context=agt.Context(**context))


def r(name, condition, action, **more):
    return {"name": name, "condition": condition, "action": action, **more}


ON_X = "tool_name == 'x'"


# --- combining -----------------------------------------------------------------------------------


def test_deny_beats_approval_and_allow(tmp_path):
    e = engine_for(tmp_path, [r("al", ON_X, "allow"), r("ap", ON_X, "require_approval"), r("de", ON_X, "deny")])
    d = e.evaluate(call("x"))
    assert (d.effect, d.rule_ids) == (Effect.DENY, ("de",))


def test_approval_beats_allow(tmp_path):
    e = engine_for(tmp_path, [r("al", ON_X, "allow"), r("ap", ON_X, "require_approval", approvers=["ops"])], default="deny")
    d = e.evaluate(call("x"))
    assert (d.effect, d.rule_ids, d.approvers) == (Effect.REQUIRE_APPROVAL, ("ap",), ("ops",))


def test_allow_rule_beats_deny_default(tmp_path):
    e = engine_for(tmp_path, [r("al", ON_X, "allow")], default="deny")
    d = e.evaluate(call("x"))
    assert (d.effect, d.rule_ids) == (Effect.ALLOW, ("al",))


@pytest.mark.parametrize("default, effect", [("allow", Effect.ALLOW), ("deny", Effect.DENY), (None, Effect.DENY)])
def test_no_match_gives_the_policy_default(tmp_path, default, effect):
    e = engine_for(tmp_path, [r("de", ON_X, "deny")], default=default)
    d = e.evaluate(call("y"))
    assert (d.effect, d.rule_ids) == (effect, (DEFAULT_RULE_ID,))


def test_empty_policy_without_default_denies(tmp_path):
    d = engine_for(tmp_path, [], default=None).evaluate(call("y"))
    assert (d.effect, d.rule_ids) == (Effect.DENY, (DEFAULT_RULE_ID,))


def test_deny_reasons_are_every_matching_deny_sorted(tmp_path):
    e = engine_for(tmp_path, [
        r("z-deny", ON_X, "deny"), r("a-deny", "tool_name in ['x', 'w']", "deny"), r("m-deny", "tokens_used >= 0", "deny"),
        r("no-match", "tool_name == 'y'", "deny"), r("ap", ON_X, "require_approval"), r("al", ON_X, "allow"),
    ])
    assert e.evaluate(call("x")).rule_ids == ("a-deny", "m-deny", "z-deny")


def test_approval_reasons_are_every_matching_approval_sorted(tmp_path):
    e = engine_for(tmp_path, [
        r("b-ap", ON_X, "require_approval"), r("a-ap", "kind == 'execute'", "require_approval"),
        r("c-ap", "tool_name == 'y'", "require_approval"), r("al", ON_X, "allow"),
    ])
    assert e.evaluate(call("x")).rule_ids == ("a-ap", "b-ap")


def test_allow_reasons_are_every_matching_allow_sorted(tmp_path):
    e = engine_for(tmp_path, [r("b-al", ON_X, "allow"), r("a-al", "tokens_used == 0", "allow"), r("c", "tool == 'q'", "allow")],
                   default="deny")
    assert e.evaluate(call("x")).rule_ids == ("a-al", "b-al")


def test_reason_messages_are_the_rule_messages(tmp_path):
    e = engine_for(tmp_path, [r("de", ON_X, "deny", message="Nope.")])
    assert [(x.rule_id, x.message) for x in e.evaluate(call("x")).reasons] == [("de", "Nope.")]


def test_approvers_are_the_union_of_matching_approval_rules(tmp_path):
    e = engine_for(tmp_path, [
        r("ap1", ON_X, "require_approval", approvers=["sec", "ops"]),
        r("ap2", "kind == 'execute'", "require_approval", approvers=["ops", "lead"]),
        r("ap3", "tool_name == 'y'", "require_approval", approvers=["never"]),
    ])
    assert e.evaluate(call("x")).approvers == ("lead", "ops", "sec")


def test_deny_carries_no_approvers(tmp_path):
    e = engine_for(tmp_path, [r("ap", ON_X, "require_approval", approvers=["ops"]), r("de", ON_X, "deny")])
    assert e.evaluate(call("x")).approvers == ()


def test_matched_lists_every_deciding_rule_that_matched(tmp_path):
    e = engine_for(tmp_path, [r("de", ON_X, "deny"), r("al", ON_X, "allow"), r("au", ON_X, "audit"), r("no", "tool == 'q'", "deny")])
    assert e.evaluate(call("x")).matched == ("al", "de")


# --- audit and warn ------------------------------------------------------------------------------


def test_audit_and_warn_rules_are_notes(tmp_path):
    e = engine_for(tmp_path, [r("w", ON_X, "warn", message="careful"), r("au", ON_X, "audit"), r("de", ON_X, "deny")])
    assert [(n.rule_id, n.message) for n in e.evaluate(call("x")).notes] == [("au", ""), ("w", "careful")]


@pytest.mark.parametrize("default, effect", [("allow", Effect.ALLOW), ("deny", Effect.DENY)])
def test_audit_and_warn_rules_never_decide(tmp_path, default, effect):
    e = engine_for(tmp_path, [r("w", ON_X, "warn"), r("au", ON_X, "audit")], default=default)
    d = e.evaluate(call("x"))
    assert (d.effect, d.rule_ids) == (effect, (DEFAULT_RULE_ID,))


def test_audit_note_does_not_join_an_allow_decision(tmp_path):
    e = engine_for(tmp_path, [r("au", ON_X, "audit"), r("al", ON_X, "allow")], default="deny")
    d = e.evaluate(call("x"))
    assert (d.effect, d.rule_ids, [n.rule_id for n in d.notes]) == (Effect.ALLOW, ("al",), ["au"])


def test_unmatched_audit_rule_is_not_a_note(tmp_path):
    e = engine_for(tmp_path, [r("au", ON_X, "audit")])
    assert e.evaluate(call("y")).notes == ()


# --- fail closed ---------------------------------------------------------------------------------


def test_condition_that_errors_gives_engine_error_deny_naming_the_rule(tmp_path):
    e = engine_for(tmp_path, [r("size-limit", "params.size > 10", "deny"), r("al", "tokens_used >= 0", "allow")])
    d = e.evaluate(call("upload", {"size": "big"}))
    assert (d.effect, d.rule_ids, "size-limit" in d.reasons[0].message) == (Effect.DENY, (ENGINE_ERROR_ID,), True)


def test_erroring_allow_rule_still_fails_closed(tmp_path):
    e = engine_for(tmp_path, [r("big-ok", "params.size > 10", "allow")])
    d = e.evaluate(call("upload", {"size": "20"}))
    assert (d.effect, d.is_engine_error) == (Effect.DENY, True)


def test_engine_error_message_names_the_cause(tmp_path):
    e = engine_for(tmp_path, [r("size-limit", "params.size > 10", "deny")])
    message = e.evaluate(call("upload", {"size": "big"})).reasons[0].message
    assert "cannot order str" in message and "policy.yaml" in message


def test_float_param_compares_as_an_exact_decimal(tmp_path):
    e = engine_for(tmp_path, [r("size-limit", "params.size > 10", "deny")])
    assert e.evaluate(call("upload", {"size": 20.5})).rule_ids == ("size-limit",)
    assert e.evaluate(call("upload", {"size": 9.99})).rule_ids == ("default",)


def test_money_as_a_string_against_a_decimal_limit_fails_closed(tmp_path):
    e = engine_for(tmp_path, [r("refund-approval", "params.amount > 100.00", "require_approval")])
    decision = e.evaluate(call("refund", {"amount": "19.99"}))
    assert decision.is_engine_error and "cannot order str" in decision.reasons[0].message


def test_condition_that_does_not_error_on_other_actions_still_decides(tmp_path):
    e = engine_for(tmp_path, [r("size-limit", "params.size > 10", "deny")])
    d = e.evaluate(call("upload", {"size": 20}))
    assert (d.effect, d.rule_ids) == (Effect.DENY, ("size-limit",))


def test_matches_raises_the_condition_error_naming_the_rule(tmp_path):
    e = engine_for(tmp_path, [r("size-limit", "params.size > 10", "deny")])
    with pytest.raises(ConditionEvalError, match="size-limit"):
        e.matches(call("upload", {"size": "big"}))


# --- disabled rules and priority -----------------------------------------------------------------


def test_disabled_rule_never_matches(tmp_path):
    e = engine_for(tmp_path, [r("de", ON_X, "deny", enabled=False)])
    d = e.evaluate(call("x"))
    assert (d.effect, d.rule_ids, d.matched) == (Effect.ALLOW, (DEFAULT_RULE_ID,), ())


def test_disabled_rule_with_an_erroring_condition_does_not_fail_closed(tmp_path):
    e = engine_for(tmp_path, [r("size-limit", "params.size > 10", "deny", enabled=False)])
    assert e.evaluate(call("upload", {"size": "big"})).effect is Effect.ALLOW


def test_disabled_audit_rule_is_not_a_note(tmp_path):
    e = engine_for(tmp_path, [r("au", ON_X, "audit", enabled=False)])
    assert e.evaluate(call("x")).notes == ()


def test_priority_does_not_let_an_allow_override_a_deny(tmp_path):
    e = engine_for(tmp_path, [r("al", ON_X, "allow", priority=1000), r("de", ON_X, "deny", priority=1)])
    d = e.evaluate(call("x"))
    assert (d.effect, d.rule_ids) == (Effect.DENY, ("de",))


def test_priority_does_not_let_an_allow_override_an_approval(tmp_path):
    e = engine_for(tmp_path, [r("al", ON_X, "allow", priority=1000), r("ap", ON_X, "require_approval", priority=-5)])
    assert e.evaluate(call("x")).effect is Effect.REQUIRE_APPROVAL


def test_priority_does_not_drop_lower_priority_denies_from_the_reasons(tmp_path):
    e = engine_for(tmp_path, [r("hi", ON_X, "deny", priority=100), r("lo", ON_X, "deny", priority=1)])
    assert e.evaluate(call("x")).rule_ids == ("hi", "lo")


# --- the engine object ---------------------------------------------------------------------------


def test_decisions_carry_engine_name_and_revision(tmp_path):
    e = engine_for(tmp_path, [r("de", ON_X, "deny")])
    decisions = [e.evaluate(call("x")), e.evaluate(call("y"))]
    assert {(d.engine, d.revision) for d in decisions} == {("yaml", e.revision)}


def test_evaluate_many_matches_evaluate(tmp_path):
    e = engine_for(tmp_path, [r("de", ON_X, "deny"), r("ap", "tool == 'y'", "require_approval")])
    actions = [call("x"), call("y"), call("z")]
    assert e.evaluate_many(actions) == [e.evaluate(a) for a in actions]


def test_rule_looks_up_a_loaded_rule_by_id(tmp_path):
    e = engine_for(tmp_path, [r("de", ON_X, "deny")])
    assert (e.rule("de").condition_text, e.rule("nope")) == (ON_X, None)


def test_yaml_engine_takes_no_options(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("default_action: allow\n")
    with pytest.raises(TypeError):
        agt.create_engine("yaml", str(path), timeout=1)


def test_governance_block_rules_decide(tmp_path):
    e = engine_for(tmp_path, [r("al", "tokens_used >= 0", "allow")], default="deny",
                   extra="governance:\n  max_tokens_per_task: 100\n  blocked_patterns: ['rm -rf /']\n")
    decisions = [e.evaluate(call("x", tokens_used=100)), e.evaluate(call("x", tokens_used=101)),
                 e.evaluate(call("x", {"cmd": "RM -RF /"}, tokens_used=101))]
    assert [d.rule_ids for d in decisions] == [
        ("al",), ("governance.max_tokens_per_task",), ("governance.blocked_patterns", "governance.max_tokens_per_task"),
    ]


STARTER_CASES = [
    ("drop_table", {}, {}, Effect.DENY, ("block-destructive-db-tools",)),
    ("run_shell", {"cmd": "rm -rf /"}, {}, Effect.DENY, ("block-recursive-delete",)),
    ("run_shell", {"cmd": "rm -fr /"}, {}, Effect.DENY, ("block-recursive-delete",)),
    ("run_sql", {"sql": "DELETE FROM users WHERE id = 3"}, {}, Effect.ALLOW, (DEFAULT_RULE_ID,)),
    ("send_note", {"text": "rm -rf /"}, {}, Effect.DENY, ("block-destructive-patterns",)),
    ("read_file", {"path": "/ws/a1/x"}, {"tokens_used": 8001}, Effect.DENY, ("token-budget",)),
    ("send_email", {"to": "a@b.c"}, {}, Effect.REQUIRE_APPROVAL, ("email-approval",)),
    ("read_file", {"path": "/ws/a1/x"}, {}, Effect.ALLOW, (DEFAULT_RULE_ID,)),
    ("write_file", {"path": "/etc/passwd"}, {}, Effect.DENY, ("workspace-write-only",)),
]


@pytest.mark.parametrize("tool, params, context, effect, reasons", STARTER_CASES)
def test_starter_policy_decisions(starter_yaml, tool, params, context, effect, reasons):
    action = agt.from_call(tool, params, agent=agt.Agent("a1", attributes={"workspace": "/ws/a1"}),
                           context=agt.Context(**context))
    d = agt.create_engine("yaml", starter_yaml).evaluate(action)
    assert (d.effect, d.rule_ids) == (effect, reasons)


# --- the rule index agrees with evaluating every rule -------------------------------------------


def brute_force(engine: YamlEngine, action: agt.Action):
    """Evaluate every rule of the policy, no index; combine as the contract says."""
    doc = action.document
    matches = []
    for rule in engine.policy.rules:
        try:
            hit = rule.evaluate(doc)
        except ConditionEvalError:
            return (Effect.DENY, (ENGINE_ERROR_ID,), (), (), ())
        if hit:
            matches.append(RuleMatch(rule.id, rule.action, rule.message, rule.approvers))
    return summary(combine(matches, engine.policy.default))


def summary(d: agt.Decision):
    return (d.effect, d.rule_ids, d.approvers, tuple(n.rule_id for n in d.notes), d.matched)


TOOLS = ["read_file", "write_file", "send_email", "drop_table", "run_shell"]
ENVS = ["development", "staging", "production"]
WORDS = ["secret", "rm -rf", "hello"]
PATTERN_WORDS = [*WORDS, "", "Été", "été", "lo", "SECRET"]


def conjuncts():
    tool = st.sampled_from(TOOLS)
    n = st.integers(-2, 30)
    return st.one_of(
        tool.map(lambda t: f"tool_name == '{t}'"),
        st.lists(tool, min_size=1, max_size=3).map(lambda ts: f"tool_name in {ts!r}"),
        tool.map(lambda t: f"tool_name != '{t}'"),
        st.lists(tool, min_size=1, max_size=2).map(lambda ts: f"tool_name not in {ts!r}"),
        st.sampled_from(ENVS).map(lambda e: f"environment == '{e}'"),
        st.lists(st.sampled_from(ENVS), min_size=1, max_size=2).map(lambda es: f"context.environment in {es!r}"),
        st.sampled_from(["read", "write", "delete", "execute", "message"]).map(lambda k: f"action.type == '{k}'"),
        n.map(lambda v: f"context.tokens_used > {v}"),
        n.map(lambda v: f"tokens_used >= {v}"),
        n.map(lambda v: f"context.tool_calls > {v}"),
        n.map(lambda v: f"params.count >= {v}"),
        n.map(lambda v: f"agent.trust_score < {v * 40}"),
        st.sampled_from(WORDS).map(lambda w: f"params_text contains '{w}'"),
        st.sampled_from(["admin", "dev"]).map(lambda x: f"roles contains '{x}'"),
        tool.map(lambda t: f"not tool_name == '{t}'"),
        st.tuples(tool, n).map(lambda p: f"(tool_name == '{p[0]}' or tokens_used > {p[1]})"),
        # Pattern rules, which the index runs as one RE2 set per field: negated, OR-ed, case-insensitive, unicode,
        # empty, and one that raises on an integer (the fail-closed path).
        st.sampled_from(PATTERN_WORDS).map(lambda w: f"params.q startswith '{w}'"),
        st.sampled_from(PATTERN_WORDS).map(lambda w: f"params.q endswith '{w}'"),
        st.sampled_from(PATTERN_WORDS).map(lambda w: f"'{w}' in params_text"),
        st.sampled_from(PATTERN_WORDS).map(lambda w: f"not (params_text contains '{w}')"),
        st.sampled_from(["(?i)SECRET", "^rm\\\\s", "(?i)ÉTÉ", "o$", "^$", "x*"]).map(lambda x: f"params.q matches '{x}'"),
        st.tuples(st.sampled_from(PATTERN_WORDS), tool).map(lambda p: f"(params_text contains '{p[0]}' or tool_name == '{p[1]}')"),
        st.just("params.count contains 'x'"),
    )


RULES = st.lists(
    st.tuples(
        st.lists(conjuncts(), min_size=1, max_size=3).map(" and ".join),
        st.sampled_from(["allow", "deny", "require_approval", "audit", "warn"]),
        st.booleans(),
        st.sampled_from([["ops"], ["sec"], ["ops", "lead"], []]),
    ),
    min_size=1,
    max_size=12,
)
ACTIONS = st.builds(
    lambda tool, env, tokens, calls, count, word, roles, trust: call(
        tool, {"q": word} if count is None else {"q": word, "count": count},
        roles=roles, trust=trust, tokens_used=tokens, tool_calls=calls, environment=env,
    ),
    st.sampled_from(TOOLS), st.sampled_from(ENVS), st.integers(0, 30), st.integers(0, 30),
    st.one_of(st.none(), st.integers(-3, 30)), st.sampled_from(WORDS + ["nothing", "Été à Paris", "a SECRET"]),
    st.sampled_from([(), ("admin",), ("dev", "admin")]), st.integers(0, 1000),
)


def policy_from(rules, default) -> YamlEngine:
    specs = []
    for i, (cond, action, enabled, approvers) in enumerate(rules):
        spec = r(f"r{i:02d}", cond, action, enabled=enabled)
        if action == "require_approval" and approvers:
            spec["approvers"] = approvers
        specs.append(spec)
    with tempfile.TemporaryDirectory() as d:
        return engine_for(Path(d), specs, default=default)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=RULES, default=st.sampled_from(["allow", "deny", None]), actions=st.lists(ACTIONS, min_size=1, max_size=6))
def test_indexed_decisions_equal_brute_force_over_every_rule(rules, default, actions):
    engine = policy_from(rules, default)
    for action in actions:
        assert summary(engine.evaluate(action)) == brute_force(engine, action)


def test_indexed_decisions_equal_brute_force_on_many_tool_and_budget_rules(tmp_path):
    rng = random.Random(20240501)
    specs = []
    for i in range(300):
        shape = i % 4
        tool = rng.choice(TOOLS)
        if shape == 0:
            cond = f"tool_name == '{tool}' and tokens_used > {rng.randint(0, 30)}"
        elif shape == 1:
            cond = f"tool_calls > {rng.randint(0, 30)}"
        elif shape == 2:
            cond = f"environment == '{rng.choice(ENVS)}' and params.count >= {rng.randint(0, 30)}"
        else:
            cond = f"params_text contains '{rng.choice(WORDS)}' or tool_name == '{tool}'"
        specs.append(r(f"rule-{i:03d}", cond, rng.choice(["allow", "deny", "require_approval", "warn"])))
    engine = engine_for(tmp_path, specs, default="deny")
    actions = [
        call(tool, {"q": word, "count": count}, tokens_used=tokens, tool_calls=calls, environment=env)
        for tool, env, word, tokens, calls, count in itertools.product(
            TOOLS, ENVS, WORDS, (0, 15, 31), (0, 29), (0, 31)
        )
    ]
    mismatches = [a.document for a in actions if summary(engine.evaluate(a)) != brute_force(engine, a)]
    assert mismatches == []


def test_indexed_decisions_equal_brute_force_on_the_starter_policy(starter_yaml):
    engine = agt.create_engine("yaml", starter_yaml)
    actions = [
        agt.from_call(tool, params, agent=agt.Agent("a1", trust_score=trust, attributes={"workspace": "/ws"}),
                      context=agt.Context(tokens_used=tokens, environment=env))
        for tool, params, trust, tokens, env in itertools.product(
            ["drop_table", "run_shell", "write_file", "send_email", "read_file", "delete_file"],
            [{}, {"path": "/ws/a"}, {"path": "/etc/x"}, {"cmd": "rm -rf /"}],
            [100, 900], [0, 9000], ["development", "production"],
        )
    ]
    assert [summary(engine.evaluate(a)) for a in actions] == [brute_force(engine, a) for a in actions]


def test_rule_index_leaves_out_rules_whose_key_cannot_match(tmp_path):
    # The index must actually narrow: otherwise the comparisons above prove nothing about it.
    e = engine_for(tmp_path, [r("x", ON_X, "deny"), r("budget", "tokens_used > 100", "deny"), r("scan", "params_text contains 'a'", "deny"),
                              r("unless", "not (params_text contains 'a')", "deny")])
    assert [rule.id for rule in e._index.candidates(call("y", {"q": "bcd"}, tokens_used=5).document)] == ["unless"]
    assert [rule.id for rule in e._index.candidates(call("y", {"q": "xay"}, tokens_used=5).document)] == ["scan", "unless"]


def test_rule_index_keeps_non_integer_values_for_bound_rules(tmp_path):
    e = engine_for(tmp_path, [r("size-limit", "params.size > 10", "deny")])
    d = e.evaluate(call("upload", {"size": "big"}))
    assert d.is_engine_error


def test_index_does_not_hide_a_condition_error_written_before_the_indexed_conjunct(tmp_path):
    e = engine_for(tmp_path, [r("size-then-tool", "params.size > 10 and tool_name == 'upload'", "deny")])
    action = call("read_file", {"size": "20"})
    assert summary(e.evaluate(action)) == brute_force(e, action)


@pytest.mark.parametrize(
    "condition",
    ["params.size > 10 and tool_name == 'upload'", "tool_name == 'upload' and params.size > 10"],
    ids=["error-first", "false-first"],
)
def test_a_false_conjunct_decides_whatever_the_order_of_an_erroring_one(tmp_path, condition):
    """`and` is logic, not code: a false part makes it false even when another part errors."""
    e = engine_for(tmp_path, [r("size-and-tool", condition, "deny")])
    assert e.evaluate(call("read_file", {"size": "20"})).rule_ids == (DEFAULT_RULE_ID,)


def test_an_erroring_conjunct_with_no_false_part_still_fails_closed(tmp_path):
    e = engine_for(tmp_path, [r("size-and-tool", "params.size > 10 and tool_name == 'upload'", "deny")])
    assert e.evaluate(call("upload", {"size": "20"})).is_engine_error


def test_a_true_disjunct_decides_even_when_another_errors(tmp_path):
    e = engine_for(tmp_path, [r("size-or-tool", "params.size > 10 or tool_name == 'upload'", "deny")])
    assert e.evaluate(call("upload", {"size": "20"})).rule_ids == ("size-or-tool",)


def test_bare_field_condition_does_not_match_when_the_field_is_absent(tmp_path):
    e = engine_for(tmp_path, [r("dangerous", "params.dangerous", "deny")])
    d = e.evaluate(call("read_file", {"path": "/tmp/x"}))
    assert (d.effect, d.rule_ids) == (Effect.ALLOW, (DEFAULT_RULE_ID,))


def test_bare_field_condition_matches_when_the_field_is_true(tmp_path):
    e = engine_for(tmp_path, [r("dangerous", "params.dangerous", "deny")])
    assert e.evaluate(call("read_file", {"dangerous": True})).rule_ids == ("dangerous",)


def test_bare_field_condition_does_not_match_when_the_field_is_false(tmp_path):
    e = engine_for(tmp_path, [r("dangerous", "params.dangerous", "deny")])
    assert e.evaluate(call("read_file", {"dangerous": False})).effect is Effect.ALLOW


def test_one_decision_is_shared_by_every_action_that_matches_the_same_rules(tmp_path):
    e = engine_for(tmp_path, [r("x", ON_X, "deny"), r("big", "params.n > 5", "require_approval", approvers=["ops"])])
    first, again, other = e.evaluate(call("x", {"n": 1})), e.evaluate(call("x", {"n": 2})), e.evaluate(call("y", {"n": 9}))
    assert first is again and (other.effect, other.rule_ids) == (Effect.REQUIRE_APPROVAL, ("big",))
