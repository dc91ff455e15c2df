"""agt.engines.yaml_policy: loading Agent Governance Toolkit policy files into compiled rules."""

from __future__ import annotations

import textwrap

import pytest

import agt
from agt.conditions import parse
from agt.decision import Effect, RuleAction
from agt.engines.yaml_policy import GOVERNANCE_RULE_IDS, load_policy
from agt.errors import PolicyLoadError

HEADER = "apiVersion: governance.toolkit/v1\nname: p\n"


def write(tmp_path, text: str, name: str = "p.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")
    return path


def load_error(path) -> PolicyLoadError:
    with pytest.raises(PolicyLoadError) as info:
        load_policy(path)
    return info.value


def where(err: PolicyLoadError) -> tuple:
    return (err.file, err.line, err.rule)


def doc(tool="read_file", params=None, **context):
    return agt.from_call(tool, params or {}, agent=agt.Agent("a1", trust_score=context.pop("trust", 500)),
                         context=agt.Context(**context)).document


def rule(policy, rule_id):
    return next(r for r in policy.rules if r.id == rule_id)


# --- a valid policy ------------------------------------------------------------------------------

VALID = """
apiVersion: governance.toolkit/v1
name: my-policy
description: test
version: "1"
default_action: allow
rules:
  - name: block-drop
    condition: "tool_name in ['drop_table']"
    action: deny
    priority: 100
    critical: true
    message: no drops
  - name: email-approval
    condition: "tool_name == 'send_email'"
    action: require_approval
    approvers: [comms-lead, sec]
  - id: audit-reads
    condition: "action.type == 'read'"
    action: audit
    description: reads are logged
"""


def test_valid_policy_loads_name_default_and_rule_ids(tmp_path):
    policy = load_policy(write(tmp_path, VALID))
    assert (policy.name, policy.default, [r.id for r in policy.rules]) == (
        "my-policy", Effect.ALLOW, ["block-drop", "email-approval", "audit-reads"]
    )


def test_valid_policy_rule_fields(tmp_path):
    path = write(tmp_path, VALID)
    r = rule(load_policy(path), "block-drop")
    assert (r.action, r.priority, r.critical, r.message, r.condition_text, r.source, r.line) == (
        RuleAction.DENY, 100, True, "no drops", "tool_name in ['drop_table']", str(path), 7
    )


def test_approvers_are_kept_sorted(tmp_path):
    assert rule(load_policy(write(tmp_path, VALID)), "email-approval").approvers == ("comms-lead", "sec")


def test_a_single_approver_may_be_text(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - {name: r, condition: \"tool == 'x'\", action: require_approval, approvers: ops}\n")
    assert load_policy(path).rules[0].approvers == ("ops",)


def test_description_is_the_message_when_message_is_absent(tmp_path):
    assert rule(load_policy(write(tmp_path, VALID)), "audit-reads").message == "reads are logged"


def test_id_is_accepted_in_place_of_name(tmp_path):
    assert rule(load_policy(write(tmp_path, VALID)), "audit-reads").action is RuleAction.AUDIT


def test_rule_condition_is_compiled(tmp_path):
    r = rule(load_policy(write(tmp_path, VALID)), "block-drop")
    assert (r.evaluate(doc("drop_table")), r.evaluate(doc("read_file"))) == (True, False)


def test_default_is_deny_when_default_action_is_absent(tmp_path):
    assert load_policy(write(tmp_path, HEADER + "rules: []\n")).default is Effect.DENY


def test_revision_is_a_content_hash(tmp_path):
    first = load_policy(write(tmp_path, VALID, "a.yaml")).revision
    second = load_policy(write(tmp_path, VALID.replace("no drops", "no drops!"), "b.yaml")).revision
    assert first.startswith("sha256:") and first != second


def test_revision_is_stable_for_the_same_content(tmp_path):
    path = write(tmp_path, VALID)
    assert load_policy(path).revision == load_policy(path).revision


def test_starter_policy_loads(starter_yaml):
    policy = load_policy(starter_yaml)
    assert (policy.name, policy.default, len(policy.rules)) == ("agt-starter", Effect.ALLOW, 14)


def test_name_defaults_to_the_file_stem(tmp_path):
    assert load_policy(write(tmp_path, "default_action: deny\n", "guard.yaml")).name == "guard"


# --- structured conditions -----------------------------------------------------------------------

STRUCTURED = [
    # operator, field, value, equivalent text, matching document, non-matching document
    ("eq", "tool_name", "send_email", "tool_name == 'send_email'", doc("send_email"), doc("read_file")),
    ("ne", "tool_name", "send_email", "tool_name != 'send_email'", doc("read_file"), doc("send_email")),
    ("gt", "context.tokens_used", 100, "context.tokens_used > 100", doc(tokens_used=101), doc(tokens_used=100)),
    ("lt", "agent.trust_score", 500, "agent.trust_score < 500", doc(trust=499), doc(trust=500)),
    ("gte", "tokens_used", 100, "tokens_used >= 100", doc(tokens_used=100), doc(tokens_used=99)),
    ("lte", "tokens_used", 100, "tokens_used <= 100", doc(tokens_used=100), doc(tokens_used=101)),
    ("in", "tool_name", ["a", "b"], "tool_name in ['a', 'b']", doc("b"), doc("c")),
    ("not_in", "tool_name", ["a", "b"], "tool_name not in ['a', 'b']", doc("c"), doc("a")),
    ("matches", "params.url", "^https://", "params.url matches '^https://'",
     doc(params={"url": "https://x"}), doc(params={"url": "http://x"})),
    ("contains", "params_text", "secret", "params_text contains 'secret'",
     doc(params={"q": "a SECRET b"}), doc(params={"q": "public"})),
    ("startswith", "params.path", "/tmp/", "params.path startswith '/tmp/'",
     doc(params={"path": "/tmp/x"}), doc(params={"path": "/etc/x"})),
    ("endswith", "params.path", ".env", "params.path endswith '.env'",
     doc(params={"path": "/a/.env"}), doc(params={"path": "/a/env.txt"})),
]


def structured_policy(tmp_path, op, field, value):
    import json

    text = HEADER + textwrap.dedent(f"""\
        rules:
          - name: r
            condition: {{field: {field}, operator: {op}, value: {json.dumps(value)}}}
            action: deny
        """)
    return load_policy(write(tmp_path, text))


@pytest.mark.parametrize("op, field, value, text, _yes, _no", STRUCTURED, ids=[s[0] for s in STRUCTURED])
def test_structured_condition_parses_to_the_same_ast_as_its_text(tmp_path, op, field, value, text, _yes, _no):
    assert structured_policy(tmp_path, op, field, value).rules[0].condition == parse(text)


@pytest.mark.parametrize("op, field, value, _text, yes, no", STRUCTURED, ids=[s[0] for s in STRUCTURED])
def test_structured_condition_matches_and_does_not_match(tmp_path, op, field, value, _text, yes, no):
    evaluate = structured_policy(tmp_path, op, field, value).rules[0].evaluate
    assert (evaluate(yes), evaluate(no)) == (True, False)


def test_structured_condition_without_value_compares_with_null(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - {name: r, condition: {field: resource, operator: eq}, action: deny}\n")
    assert load_policy(path).rules[0].condition == parse("resource == null")


LIST_CONDITION = HEADER + """
rules:
  - name: r
    condition:
      - {field: action.kind, operator: eq, value: write}
      - {field: tokens_used, operator: gt, value: 10}
      - "tool_name startswith 'write'"
    action: deny
"""


def test_list_of_conditions_is_a_conjunction(tmp_path):
    r = load_policy(write(tmp_path, LIST_CONDITION)).rules[0]
    assert r.condition == parse("action.kind == 'write' and tokens_used > 10 and tool_name startswith 'write'")


@pytest.mark.parametrize(
    "tool, tokens, expected",
    [("write_file", 11, True), ("write_file", 10, False), ("read_file", 11, False), ("save_file", 11, False)],
)
def test_list_of_conditions_needs_every_item(tmp_path, tool, tokens, expected):
    r = load_policy(write(tmp_path, LIST_CONDITION)).rules[0]
    assert r.evaluate(doc(tool, tokens_used=tokens)) is expected


# --- the governance block ------------------------------------------------------------------------

GOVERNANCE = """
governance:
  enabled: true
  max_tokens_per_task: 8000
  max_tool_calls_per_task: 20
  max_files_changed: 15
  blocked_patterns: ["RM -RF /", "drop   table"]
  policy_mode: permissive
"""


def test_governance_block_generates_one_rule_per_setting(tmp_path):
    policy = load_policy(write(tmp_path, GOVERNANCE))
    assert sorted(r.id for r in policy.rules) == [
        "governance.blocked_patterns",
        "governance.max_files_changed",
        "governance.max_tokens_per_task",
        "governance.max_tool_calls_per_task",
    ]


def test_governance_rule_ids_are_the_shared_ids(tmp_path):
    policy = load_policy(write(tmp_path, GOVERNANCE))
    assert {r.id for r in policy.rules} == set(GOVERNANCE_RULE_IDS.values())


def test_governance_rules_deny(tmp_path):
    assert {r.action for r in load_policy(write(tmp_path, GOVERNANCE)).rules} == {RuleAction.DENY}


@pytest.mark.parametrize(
    "rule_id, text",
    [
        ("governance.max_tokens_per_task", "context.tokens_used > 8000"),
        ("governance.max_tool_calls_per_task", "context.tool_calls > 20"),
        ("governance.max_files_changed", "context.files_changed > 15"),
    ],
)
def test_governance_budget_rules_are_plain_comparisons(tmp_path, rule_id, text):
    r = rule(load_policy(write(tmp_path, GOVERNANCE)), rule_id)
    assert (r.condition_text, r.condition) == (text, parse(text))


@pytest.mark.parametrize(
    "rule_id, counter, limit",
    [
        ("governance.max_tokens_per_task", "tokens_used", 8000),
        ("governance.max_tool_calls_per_task", "tool_calls", 20),
        ("governance.max_files_changed", "files_changed", 15),
    ],
)
def test_governance_budget_rule_matches_only_over_the_limit(tmp_path, rule_id, counter, limit):
    r = rule(load_policy(write(tmp_path, GOVERNANCE)), rule_id)
    assert (r.evaluate(doc(**{counter: limit})), r.evaluate(doc(**{counter: limit + 1}))) == (False, True)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"cmd": "rm -rf /"}, True),
        ({"cmd": "sudo RM   -Rf  /home"}, True),
        ({"sql": "DROP TABLE users"}, True),
        ({"cmd": "rm -rf ./build"}, False),
        ({"cmd": "ls /"}, False),
    ],
)
def test_governance_blocked_patterns_match_folded_params_text(tmp_path, params, expected):
    r = rule(load_policy(write(tmp_path, GOVERNANCE)), "governance.blocked_patterns")
    assert r.evaluate(doc(params=params)) is expected


def test_governance_settings_are_kept(tmp_path):
    g = load_policy(write(tmp_path, GOVERNANCE)).governance
    assert (g.enabled, g.max_tokens_per_task, g.max_tool_calls_per_task, g.max_files_changed, g.blocked_patterns, g.policy_mode) == (
        True, 8000, 20, 15, ("RM -RF /", "drop   table"), "permissive"
    )


def test_policy_mode_is_exposed_on_the_policy(tmp_path):
    assert load_policy(write(tmp_path, GOVERNANCE)).mode == "permissive"


def test_policy_mode_defaults_to_strict(tmp_path):
    assert load_policy(write(tmp_path, "governance: {max_files_changed: 1}\n")).mode == "strict"


def test_governance_only_file_needs_no_api_version(tmp_path):
    assert load_policy(write(tmp_path, "governance: {max_files_changed: 1}\n")).rules[0].id == "governance.max_files_changed"


def test_governance_rules_come_after_the_written_rules(tmp_path):
    policy = load_policy(write(tmp_path, VALID + GOVERNANCE))
    assert [r.id for r in policy.rules][:3] == ["block-drop", "email-approval", "audit-reads"]


def test_governance_disabled_generates_no_rules(tmp_path):
    policy = load_policy(write(tmp_path, GOVERNANCE.replace("enabled: true", "enabled: false")))
    assert (policy.rules, policy.governance.enabled) == ((), False)


def test_governance_without_limits_generates_no_rules(tmp_path):
    assert load_policy(write(tmp_path, "governance: {policy_mode: audit}\n")).rules == ()


def test_governance_null_limit_generates_no_rule(tmp_path):
    policy = load_policy(write(tmp_path, "governance: {max_tokens_per_task: null, max_files_changed: 3}\n"))
    assert [r.id for r in policy.rules] == ["governance.max_files_changed"]


def test_governance_zero_limit_is_a_valid_limit(tmp_path):
    r = load_policy(write(tmp_path, "governance: {max_files_changed: 0}\n")).rules[0]
    assert (r.evaluate(doc(files_changed=0)), r.evaluate(doc(files_changed=1))) == (False, True)


# --- directories ---------------------------------------------------------------------------------


def test_directory_loads_every_yaml_and_yml_file_in_name_order(tmp_path):
    write(tmp_path, HEADER + "rules:\n  - {name: from-b, condition: \"tool == 'b'\", action: deny}\n", "b.yml")
    write(tmp_path, HEADER + "rules:\n  - {name: from-a, condition: \"tool == 'a'\", action: deny}\n", "a.yaml")
    write(tmp_path, "not: [a policy", "notes.txt")
    policy = load_policy(tmp_path)
    assert ([r.id for r in policy.rules], policy.sources) == (
        ["from-a", "from-b"], (str(tmp_path / "a.yaml"), str(tmp_path / "b.yml"))
    )


def test_directory_policy_is_named_after_the_directory(tmp_path):
    write(tmp_path, "default_action: allow\n", "a.yaml")
    write(tmp_path, "default_action: allow\n", "b.yaml")
    assert load_policy(tmp_path).name == tmp_path.name


def test_directory_files_agreeing_on_default_action_load(tmp_path):
    write(tmp_path, "default_action: allow\n", "a.yaml")
    write(tmp_path, "name: b\n", "b.yaml")
    assert load_policy(tmp_path).default is Effect.ALLOW


def test_directory_files_disagreeing_on_default_action_is_an_error(tmp_path):
    write(tmp_path, "default_action: allow\n", "a.yaml")
    write(tmp_path, "default_action: deny\n", "b.yaml")
    err = load_error(tmp_path)
    assert (err.file, "default_action" in err.message) == (str(tmp_path), True)


def test_directory_with_a_duplicate_rule_id_across_files_points_at_the_second(tmp_path):
    write(tmp_path, HEADER + "rules:\n  - {name: same, condition: \"tool == 'a'\", action: deny}\n", "a.yaml")
    second = write(tmp_path, HEADER + "rules:\n  - {name: other, condition: \"tool == 'a'\", action: deny}\n"
                   "  - {name: same, condition: \"tool == 'b'\", action: deny}\n", "b.yaml")
    assert where(load_error(tmp_path)) == (str(second), 5, "same")


def test_directory_with_two_governance_blocks_is_an_error(tmp_path):
    write(tmp_path, "governance: {max_files_changed: 1}\n", "a.yaml")
    second = write(tmp_path, "governance: {max_files_changed: 2}\n", "b.yaml")
    assert load_error(tmp_path).file == str(second)


def test_empty_directory_is_an_error(tmp_path):
    assert load_error(tmp_path).file == str(tmp_path)


# --- errors point at file, line and rule ---------------------------------------------------------


def test_malformed_yaml_names_the_line(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - name: a\n    condition: \"tool == 'x'\"\n    action: deny: now\n")
    err = load_error(path)
    assert (where(err), "malformed YAML" in err.message) == ((str(path), 6, None), True)


def test_unterminated_flow_list_names_the_line(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - name: a\n    condition: [unclosed\n    action: deny\n")
    assert where(load_error(path)) == (str(path), 6, None)


def test_python_yaml_tags_are_refused_and_never_run(tmp_path):
    sentinel = tmp_path / "pwned"
    path = write(tmp_path, f'name: p\nrules: !!python/object/apply:os.system ["touch {sentinel}"]\n')
    err = load_error(path)
    assert (where(err), sentinel.exists()) == ((str(path), 2, None), False)


def test_wrong_api_version_points_at_it(tmp_path):
    path = write(tmp_path, "name: p\napiVersion: governance.toolkit/v2\nrules: []\n")
    err = load_error(path)
    assert (where(err), "governance.toolkit/v1" in err.message) == ((str(path), 2, None), True)


def test_missing_api_version_with_rules_is_an_error_at_line_one(tmp_path):
    path = write(tmp_path, "name: p\nrules: []\n")
    assert where(load_error(path)) == (str(path), 1, None)


def test_unknown_top_level_key_points_at_it(tmp_path):
    path = write(tmp_path, HEADER + "default_action: deny\nrulez: []\n")
    err = load_error(path)
    assert (where(err), "rulez" in err.message) == ((str(path), 4, None), True)


def test_bad_default_action_points_at_it(tmp_path):
    path = write(tmp_path, HEADER + "default_action: require_approval\n")
    assert where(load_error(path)) == (str(path), 3, None)


def test_rules_that_are_not_a_list_point_at_the_key(tmp_path):
    path = write(tmp_path, HEADER + "rules: {name: a}\n")
    assert where(load_error(path)) == (str(path), 3, None)


def test_rule_that_is_not_a_mapping_is_an_error(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - just text\n")
    assert load_error(path).file == str(path)


def test_unknown_rule_key_points_at_it_and_names_the_rule(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - name: r1\n    action: deny\n    condtion: \"tool == 'x'\"\n")
    err = load_error(path)
    assert (where(err), "condtion" in err.message) == ((str(path), 6, "r1"), True)


def test_missing_name_points_at_the_rule(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - name: ok\n    condition: \"tool == 'a'\"\n    action: deny\n"
                 "  - condition: \"tool == 'x'\"\n    action: deny\n")
    err = load_error(path)
    assert (where(err), "#2" in err.message) == ((str(path), 7, None), True)


@pytest.mark.parametrize("name", ["''", "'   '", "42"])
def test_empty_or_non_text_name_is_an_error(tmp_path, name):
    path = write(tmp_path, HEADER + f"rules:\n  - name: {name}\n    condition: \"tool == 'x'\"\n    action: deny\n")
    assert where(load_error(path)) == (str(path), 4, None)


@pytest.mark.parametrize("name", ["default", "engine_error"])
def test_reserved_rule_ids_are_refused(tmp_path, name):
    path = write(tmp_path, HEADER + f"rules:\n  - name: {name}\n    condition: \"tool == 'x'\"\n    action: deny\n")
    err = load_error(path)
    assert (where(err), "reserved" in err.message) == ((str(path), 4, name), True)


def test_duplicate_rule_id_points_at_the_second_rule(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n"
                 "  - name: twice\n    condition: \"tool == 'a'\"\n    action: deny\n"
                 "  - name: twice\n    condition: \"tool == 'b'\"\n    action: allow\n")
    err = load_error(path)
    assert (where(err), f"{path}:4" in err.message) == ((str(path), 7, "twice"), True)


def test_duplicate_yaml_key_points_at_the_second_key(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - name: r\n    condition: \"tool == 'a'\"\n    action: deny\n    action: allow\n")
    err = load_error(path)
    assert (where(err), "duplicate key 'action'" in err.message) == ((str(path), 7, None), True)


def test_duplicate_top_level_key_points_at_the_second_key(tmp_path):
    path = write(tmp_path, "name: p\nname: q\n")
    assert where(load_error(path)) == (str(path), 2, None)


@pytest.mark.parametrize("value", ["Deny", "null", "[deny]", "reject"])
def test_unknown_action_value_points_at_the_action_key(tmp_path, value):
    path = write(tmp_path, HEADER + f"rules:\n  - name: r\n    condition: \"tool == 'a'\"\n    action: {value}\n")
    assert where(load_error(path)) == (str(path), 6, "r")


def test_rule_without_action_denies_as_in_agentmesh(tmp_path):
    # agentmesh's PolicyRule.action defaults to deny (issue 12: a rule with no action).
    path = write(tmp_path, HEADER + "rules:\n  - name: r\n    condition: \"tool == 'a'\"\n")
    assert load_policy(path).rules[0].action.value == "deny"


def test_missing_condition_points_at_the_rule(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - name: r\n    action: deny\n")
    assert where(load_error(path)) == (str(path), 4, "r")


CONDITION_AT_LINE_6 = HEADER + "rules:\n  - name: r\n    action: deny\n    condition: {cond}\n"


@pytest.mark.parametrize(
    "cond, words",
    [
        ("{field: tool_name, operator: equals, value: x}", "unknown operator"),
        ("{field: tool_name, value: x}", "operator"),
        ("{field: tool_name, operator: eq, value: x, extra: 1}", "extra"),
        ("{field: \"tool_name == 'x'\", operator: eq, value: x}", "field path"),
        ("{field: tool_nme, operator: eq, value: x}", "tool_nme"),
        ("{field: 3, operator: eq, value: x}", "field must be text"),
        ("{field: tool_name, operator: eq, value: {a: 1}}", "scalar"),
        ("{field: tool_name, operator: matches, value: 3}", "regular expression"),
        ("{field: tool_name, operator: matches, value: '('}", "does not compile"),
        ("\"params.text matches '[a-'\"", "does not compile"),
        ("[]", "must be text"),
        ("42", "must be text"),
        ("null", "must be text"),
        ("[\"tool == 'a'\", {field: tool, operator: nope}]", "unknown operator"),
    ],
)
def test_bad_condition_points_at_the_condition_key_and_names_the_rule(tmp_path, cond, words):
    path = write(tmp_path, CONDITION_AT_LINE_6.format(cond=cond))
    err = load_error(path)
    assert (where(err), words in err.message) == ((str(path), 6, "r"), True)


@pytest.mark.parametrize(
    "cond, column",
    [("tool_nme == 'x'", 1), ("tool == 'a' and", 16), ("(tool == 'a'", 13), ("1 < tokens_used < 3", 17)],
)
def test_condition_syntax_error_names_line_rule_and_column(tmp_path, cond, column):
    path = write(tmp_path, CONDITION_AT_LINE_6.format(cond=f'"{cond}"'))
    err = load_error(path)
    assert (where(err), f"column {column}" in err.message) == ((str(path), 6, "r"), True)


def test_condition_error_line_points_at_a_block_condition_key(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - name: r\n    action: deny\n    description: x\n    conditions:\n"
                 "      - \"tool == 'a'\"\n      - \"tool_nme == 'b'\"\n")
    assert where(load_error(path)) == (str(path), 7, "r")


@pytest.mark.parametrize(
    "cond",
    [
        "__import__('os').system('touch {sentinel}')",
        "open('{sentinel}', 'w').write('x')",
        "action.__class__.__init__.__globals__",
        "eval(\\\"open('{sentinel}', 'w')\\\")",
    ],
)
def test_code_injection_in_a_condition_is_a_load_error_and_never_runs(tmp_path, cond):
    sentinel = tmp_path / "pwned"
    path = write(tmp_path, CONDITION_AT_LINE_6.format(cond='"' + cond.format(sentinel=sentinel) + '"'))
    err = load_error(path)
    assert (where(err), sentinel.exists()) == ((str(path), 6, "r"), False)


@pytest.mark.parametrize("action", ["deny", "allow", "audit", "warn"])
def test_approvers_on_a_non_approval_rule_point_at_the_approvers_key(tmp_path, action):
    path = write(tmp_path, HEADER + f"rules:\n  - name: r\n    condition: \"tool == 'a'\"\n    action: {action}\n"
                 "    approvers: [ops]\n")
    err = load_error(path)
    assert (where(err), "require_approval" in err.message) == ((str(path), 7, "r"), True)


def test_approvers_that_are_not_names_point_at_the_key(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - name: r\n    condition: \"tool == 'a'\"\n    action: require_approval\n"
                 "    approvers: [1, 2]\n")
    assert where(load_error(path)) == (str(path), 7, "r")


@pytest.mark.parametrize("key, value", [("priority", "high"), ("priority", "true"), ("enabled", "'no'"),
                                        ("critical", "1"), ("message", "[a]")])
def test_badly_typed_rule_field_points_at_it(tmp_path, key, value):
    path = write(tmp_path, HEADER + f"rules:\n  - name: r\n    condition: \"tool == 'a'\"\n    action: deny\n    {key}: {value}\n")
    assert where(load_error(path)) == (str(path), 7, "r")


@pytest.mark.parametrize("mode", ["lenient", "STRICT", "1"])
def test_bad_policy_mode_points_at_it(tmp_path, mode):
    path = write(tmp_path, f"governance:\n  max_files_changed: 3\n  policy_mode: {mode}\n")
    err = load_error(path)
    assert (where(err), "policy_mode" in err.message) == ((str(path), 3, None), True)


@pytest.mark.parametrize("key", ["max_tokens_per_task", "max_tool_calls_per_task", "max_files_changed"])
@pytest.mark.parametrize("value", ["lots", "1.5", "true", "-1", "[1]"])
def test_non_integer_budget_points_at_it(tmp_path, key, value):
    path = write(tmp_path, f"governance:\n  enabled: true\n  {key}: {value}\n")
    err = load_error(path)
    assert (where(err), key in err.message) == ((str(path), 3, None), True)


@pytest.mark.parametrize(
    "body, line",
    [
        ("  blocked_patterns: rm\n", 2),
        ("  blocked_patterns: ['']\n", 2),
        ("  blocked_patterns: [1]\n", 2),
        ("  enabled: 'yes'\n", 2),
        ("  max_budget: 3\n", 2),
    ],
)
def test_bad_governance_setting_points_at_it(tmp_path, body, line):
    path = write(tmp_path, "governance:\n" + body)
    assert where(load_error(path)) == (str(path), line, None)


def test_governance_that_is_not_a_mapping_points_at_it(tmp_path):
    path = write(tmp_path, "name: p\ngovernance: [1]\n")
    assert where(load_error(path)) == (str(path), 2, None)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file_is_an_error(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    err = load_error(path)
    assert (err.file, "empty" in err.message) == (str(path), True)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_non_mapping_file_is_an_error_at_line_one(tmp_path, text):
    path = write(tmp_path, text)
    err = load_error(path)
    assert (where(err), "mapping" in err.message) == ((str(path), 1, None), True)


def test_missing_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "absent.yaml"
    err = load_error(path)
    assert (err.file, "does not exist" in err.message) == (str(path), True)


def test_file_that_is_not_utf8_is_an_error(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    assert load_error(path).file == str(path)


def test_error_message_starts_with_the_location(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - name: r1\n    action: deny\n    condition: \"tool_nme == 'x'\"\n")
    assert str(load_error(path)).startswith(f"{path}:6, rule 'r1': condition: unknown field 'tool_nme'")


def test_create_engine_raises_the_load_error(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - name: default\n    condition: \"tool == 'x'\"\n    action: deny\n")
    with pytest.raises(PolicyLoadError):
        agt.create_engine("yaml", str(path))


def test_disabled_rule_must_still_be_valid(tmp_path):
    path = write(tmp_path, HEADER + "rules:\n  - name: r\n    enabled: false\n    action: deny\n    condition: \"tool_nme == 1\"\n")
    assert where(load_error(path)) == (str(path), 7, "r")
