"""agt.engines.cedar: loading and validating Cedar policies, reading Cedar's answer, and failing closed."""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal
from pathlib import Path

import cedarpy
import pytest

import agt
from agt.action import Agent, Context, Resource, from_call
from agt.decision import DEFAULT_RULE_ID, ENGINE_ERROR_ID, Effect
from agt.engines import cedar as cedar_module
from agt.engines.cedar import CedarEngine, _context_reads, _decision_key, _pruned
from agt.engines.cedar_request import ACTION_ENTITIES, cedar_entities, entities_key
from agt.errors import PolicyLoadError

ROOT = Path(__file__).resolve().parents[1]
STARTER_DIR = str(ROOT / "cedar")

STARTER_IDS = {
    "block-destructive-db-tools", "block-destructive-patterns", "token-budget", "tool-call-limit", "files-changed-limit",
    "low-trust-no-shell", "workspace-write-only", "email-approval", "production-write-approval",
    "block-recursive-delete", "block-disk-wipe", "block-destructive-sql", "block-unparsed-command", "refund-approval",
}

DEFAULT = '@id("default")\npermit (principal, action, resource);\n'

ALICE = Agent("alice", trust_score=720, attributes={"workspace": "/ws/alice"})


@pytest.fixture(scope="module")
def starter() -> CedarEngine:
    return agt.create_engine("cedar", STARTER_DIR)


def write(directory: Path, text: str, name: str = "p.cedar") -> Path:
    (directory / name).write_text(textwrap.dedent(text), "utf-8")
    return directory


def engine_for(tmp_path: Path, text: str, **options) -> CedarEngine:
    return agt.create_engine("cedar", str(write(tmp_path, text)), **options)


def load_error(tmp_path: Path, text: str) -> PolicyLoadError:
    with pytest.raises(PolicyLoadError) as info:
        engine_for(tmp_path, text)
    return info.value


# --- loading cedar/ ---------------------------------------------------------------------------------


def test_starter_loads_every_rule_id(starter):
    assert set(starter.rules) == STARTER_IDS


def test_starter_default_permit_makes_default_allow(starter):
    assert starter.default is Effect.ALLOW


def test_single_policy_file_loads_with_sibling_schema():
    assert set(agt.create_engine("cedar", str(ROOT / "cedar" / "starter.cedar")).rules) == STARTER_IDS


def test_revision_is_a_content_hash(starter):
    assert starter.revision == agt.create_engine("cedar", STARTER_DIR).revision


def test_revision_changes_with_policy_text(tmp_path, starter):
    assert engine_for(tmp_path, DEFAULT).revision != starter.revision


# --- decisions: @id values are the reasons ------------------------------------------------------------

DECISIONS = {
    "destructive db tool": (from_call("drop_table", {"table": "users"}), Effect.DENY, ("block-destructive-db-tools",)),
    "destructive sql": (from_call("run_sql", {"sql": "DROP TABLE users"}), Effect.DENY, ("block-destructive-sql",)),
    "full-width sql is a parse error and a pattern": (from_call("run_sql", {"sql": "ＤＲＯＰ　ＴＡＢＬＥ users"}), Effect.DENY,
                                                     ("block-destructive-patterns", "block-unparsed-command")),
    "pattern in text no parser reads": (from_call("send_note", {"note": "DROP TABLE users"}), Effect.DENY,
                                        ("block-destructive-patterns",)),
    "argv recursive delete": (from_call("run_shell", {"argv": ["rm", "-rf", "/"]}), Effect.DENY, ("block-recursive-delete",)),
    "refund over the limit": (from_call("refund", {"amount": 100.01}), Effect.REQUIRE_APPROVAL, ("refund-approval",)),
    "token budget": (from_call("read_file", {}, context=Context(tokens_used=8001)), Effect.DENY, ("token-budget",)),
    "token budget at limit": (from_call("read_file", {}, context=Context(tokens_used=8000)), Effect.ALLOW, (DEFAULT_RULE_ID,)),
    "two denies": (from_call("read_file", {}, context=Context(tokens_used=9000, tool_calls=21)), Effect.DENY,
                   ("token-budget", "tool-call-limit")),
    "files changed": (from_call("read_file", {}, context=Context(files_changed=16)), Effect.DENY, ("files-changed-limit",)),
    "low trust shell": (from_call("run_shell", {"cmd": "ls"}, agent=Agent("x", trust_score=499)), Effect.DENY, ("low-trust-no-shell",)),
    "trust 500 shell": (from_call("run_shell", {"cmd": "ls"}, agent=Agent("x", trust_score=500)), Effect.ALLOW, (DEFAULT_RULE_ID,)),
    "write outside workspace": (from_call("write_file", {"path": "/ws/bob/x"}, agent=ALICE), Effect.DENY, ("workspace-write-only",)),
    "write escaping workspace": (from_call("write_file", {"path": "/ws/alice/../bob/x"}, agent=ALICE), Effect.DENY, ("workspace-write-only",)),
    "write inside workspace": (from_call("write_file", {"path": "/ws/alice/a/x"}, agent=ALICE), Effect.ALLOW, (DEFAULT_RULE_ID,)),
    "write without workspace": (from_call("write_file", {"path": "/ws/alice/x"}), Effect.DENY, ("workspace-write-only",)),
    "email": (from_call("send_email", {"to": "a@example.com"}), Effect.REQUIRE_APPROVAL, ("email-approval",)),
    "production delete": (from_call("delete_file", {"path": "/ws/alice/x"}, agent=ALICE, context=Context(environment="production")),
                          Effect.REQUIRE_APPROVAL, ("production-write-approval",)),
    "deny beats approval": (from_call("drop_table", {}, context=Context(environment="production")), Effect.DENY,
                            ("block-destructive-db-tools",)),
    "nothing matches": (from_call("read_file", {"path": "/etc/hosts"}), Effect.ALLOW, (DEFAULT_RULE_ID,)),
}


@pytest.mark.parametrize(("action", "effect", "rule_ids"), list(DECISIONS.values()), ids=list(DECISIONS))
def test_starter_decision_effect_and_reason_ids(starter, action, effect, rule_ids):
    decision = starter.evaluate(action)
    assert (decision.effect, decision.rule_ids) == (effect, rule_ids)


def test_reason_message_is_the_message_annotation(starter):
    assert starter.evaluate(from_call("drop_table", {})).reasons[0].message == "Destructive database tools are blocked."


def test_approval_forbid_reports_approvers_annotation(starter):
    assert starter.evaluate(from_call("send_email", {"to": "x"})).approvers == ("comms-lead",)


def test_approvers_are_split_trimmed_sorted_and_deduplicated(tmp_path):
    engine = engine_for(tmp_path, '@id("ask")\n@approval\n@approvers(" sre ,lead,sre,")\nforbid (principal, action, resource);\n' + DEFAULT)
    assert engine.evaluate(from_call("t", {})).approvers == ("lead", "sre")


def test_approval_reasons_are_every_matching_approval(tmp_path):
    engine = engine_for(tmp_path, """\
        @id("ask-b")
        @approval
        @approvers("y")
        forbid (principal, action, resource);
        @id("ask-a")
        @approval
        @approvers("x")
        forbid (principal, action, resource);
        """)
    decision = engine.evaluate(from_call("t", {}))
    assert (decision.effect, decision.rule_ids, decision.approvers) == (Effect.REQUIRE_APPROVAL, ("ask-a", "ask-b"), ("x", "y"))


def test_explicit_permit_reason_is_its_id_not_default(tmp_path):
    engine = engine_for(tmp_path, '@id("reads")\npermit (principal, action == Action::"read", resource);\n' + DEFAULT)
    assert engine.evaluate(from_call("read_file", {})).rule_ids == ("reads",)


def test_without_default_permit_the_default_is_deny(tmp_path):
    assert engine_for(tmp_path, '@id("reads")\npermit (principal, action == Action::"read", resource);\n').default is Effect.DENY


def test_without_default_permit_nothing_matching_denies_with_default_reason(tmp_path):
    engine = engine_for(tmp_path, '@id("reads")\npermit (principal, action == Action::"read", resource);\n')
    decision = engine.evaluate(from_call("write_file", {}))
    assert (decision.effect, decision.rule_ids) == (Effect.DENY, (DEFAULT_RULE_ID,))


def test_without_default_permit_matching_permit_allows(tmp_path):
    engine = engine_for(tmp_path, '@id("reads")\npermit (principal, action == Action::"read", resource);\n')
    decision = engine.evaluate(from_call("read_file", {}))
    assert (decision.effect, decision.rule_ids) == (Effect.ALLOW, ("reads",))


def test_policies_in_several_files_combine(tmp_path):
    write(tmp_path, '@id("no-x")\nforbid (principal, action, resource) when { context.tool == "x" };\n', "a.cedar")
    engine = engine_for(tmp_path, DEFAULT)
    assert [engine.evaluate(from_call(t, {})).rule_ids for t in ("x", "y")] == [("no-x",), (DEFAULT_RULE_ID,)]


# --- load errors ------------------------------------------------------------------------------------

PARSE_ERROR_ADJACENT = """\
@id("a")
forbid (principal, action, resource);
@id("b")
forbid (principal, action, resource)
when { context.tool == };
"""

PARSE_ERROR_AFTER_BLANK_LINE = """\
@id("a")
forbid (principal, action, resource);

@id("b")
forbid (principal, action, resource)
when { context.tool == };
"""


def test_parse_error_is_a_load_error_naming_the_file(tmp_path):
    err = load_error(tmp_path, PARSE_ERROR_ADJACENT)
    assert (Path(err.file).name, "does not parse" in err.message) == ("p.cedar", True)


def test_parse_error_line_is_the_failing_statement(tmp_path):
    assert load_error(tmp_path, PARSE_ERROR_ADJACENT).line == 3


def test_parse_error_line_skips_blank_lines_before_the_failing_statement(tmp_path):
    assert load_error(tmp_path, PARSE_ERROR_AFTER_BLANK_LINE).line == 4


SCHEMA_TYPO = """\
@id("a")
forbid (principal, action, resource) when { context.tokens_used > 10 };

@id("b")
forbid (principal, action, resource)
when { context.tokens_usd > 5 };
"""


def test_schema_validation_failure_names_file_line_and_rule(tmp_path):
    err = load_error(tmp_path, SCHEMA_TYPO)
    # The line of the failing span (the misspelt attribute), not of the @id.
    assert (Path(err.file).name, err.line, err.rule) == ("p.cedar", 6, "b")
    assert (err.diagnostics[0].line, err.diagnostics[0].column) == (6, 16)


def test_schema_validation_failure_message_names_the_attribute(tmp_path):
    assert "tokens_usd" in load_error(tmp_path, SCHEMA_TYPO).message


FAIL_OPEN_TRAP = """\
@id("no-shell")
forbid (principal, action, resource)
when { context.tool in ["shell"] };
""" + DEFAULT


def test_fail_open_in_list_trap_is_a_load_error(tmp_path):
    assert load_error(tmp_path, FAIL_OPEN_TRAP).rule == "no-shell"


def test_contains_form_of_the_trap_loads_and_denies(tmp_path):
    engine = engine_for(tmp_path, FAIL_OPEN_TRAP.replace('context.tool in ["shell"]', '["shell"].contains(context.tool)'))
    decision = engine.evaluate(from_call("shell", {}))
    assert (decision.effect, decision.rule_ids) == (Effect.DENY, ("no-shell",))


@pytest.mark.parametrize(
    "text",
    ["forbid (principal, action, resource);\n", '@id("")\nforbid (principal, action, resource);\n',
     '@id\nforbid (principal, action, resource);\n', '@message("m")\npermit (principal, action, resource);\n'],
    ids=["no-annotation", "empty-id", "bare-id", "message-only"],
)
def test_policy_without_id_is_a_load_error(tmp_path, text):
    assert "@id" in load_error(tmp_path, text).message


DUPLICATE = """\
@id("a")
forbid (principal, action, resource);
@id("a")
forbid (principal, action, resource) when { context.tool == "x" };
"""


def test_duplicate_id_is_a_load_error_naming_the_rule(tmp_path):
    err = load_error(tmp_path, DUPLICATE)
    assert (err.rule, "duplicate" in err.message) == ("a", True)


def test_duplicate_id_error_line_is_the_duplicate(tmp_path):
    assert load_error(tmp_path, DUPLICATE).line == 3


def test_duplicate_id_across_files_names_the_second_file(tmp_path):
    write(tmp_path, '@id("a")\nforbid (principal, action, resource);\n', "a.cedar")
    write(tmp_path, '// again\n@id("a")\nforbid (principal, action, resource);\n', "b.cedar")
    with pytest.raises(PolicyLoadError) as info:
        agt.create_engine("cedar", str(tmp_path))
    assert (Path(info.value.file).name, info.value.line, info.value.rule) == ("b.cedar", 2, "a")


def test_duplicate_default_is_a_load_error(tmp_path):
    assert load_error(tmp_path, DEFAULT + DEFAULT).rule == DEFAULT_RULE_ID


def test_approval_on_permit_is_a_load_error(tmp_path):
    err = load_error(tmp_path, '@id("p")\n@approval\npermit (principal, action, resource);\n')
    assert (err.rule, "@approval" in err.message) == ("p", True)


def test_approvers_without_approval_is_a_load_error(tmp_path):
    err = load_error(tmp_path, '@id("f")\n@approvers("x")\nforbid (principal, action, resource);\n')
    assert (err.rule, "@approvers" in err.message) == ("f", True)


@pytest.mark.parametrize(
    "text",
    ['@id("default")\nforbid (principal, action, resource);\n',
     '@id("default")\npermit (principal, action, resource) when { context.tool == "x" };\n',
     '@id("default")\npermit (principal, action, resource) unless { context.tool == "x" };\n',
     '@id("default")\n@approval\npermit (principal, action, resource);\n'],
    ids=["forbid", "when", "unless", "approval"],
)
def test_non_permit_or_conditional_default_is_a_load_error(tmp_path, text):
    assert load_error(tmp_path, text).rule == DEFAULT_RULE_ID


@pytest.mark.parametrize(
    "text",
    ['@id("default")\npermit (principal in Role::"admin", action, resource);\n',
     '@id("default")\npermit (principal, action == Action::"read", resource);\n',
     '@id("default")\npermit (principal, action, resource is File);\n'],
    ids=["principal-scope", "action-scope", "resource-scope"],
)
def test_scoped_default_is_a_load_error(tmp_path, text):
    assert load_error(tmp_path, text).rule == DEFAULT_RULE_ID


def test_template_is_a_load_error(tmp_path):
    assert "template" in load_error(tmp_path, '@id("t")\npermit (principal == ?principal, action, resource);\n').message


def test_empty_directory_is_a_load_error(tmp_path):
    with pytest.raises(PolicyLoadError, match="no .cedar policy files"):
        agt.create_engine("cedar", str(tmp_path))


@pytest.mark.parametrize("name", ["absent.cedar", "absent"])
def test_missing_path_is_a_load_error(tmp_path, name):
    with pytest.raises(PolicyLoadError, match="does not exist"):
        agt.create_engine("cedar", str(tmp_path / name))


def test_two_schemas_in_directory_is_a_load_error(tmp_path):
    write(tmp_path, (ROOT / "cedar" / "agt.cedarschema").read_text("utf-8"), "a.cedarschema")
    write(tmp_path, (ROOT / "cedar" / "agt.cedarschema").read_text("utf-8"), "b.cedarschema")
    with pytest.raises(PolicyLoadError, match="more than one"):
        engine_for(tmp_path, DEFAULT)


def test_custom_schema_without_request_validation_is_a_load_error(tmp_path):
    write(tmp_path, (ROOT / "cedar" / "agt.cedarschema").read_text("utf-8") + "\nentity Extra;\n", "custom.cedarschema")
    with pytest.raises(PolicyLoadError, match="validate_requests=True"):
        engine_for(tmp_path, DEFAULT, validate_requests=False)


def test_unparseable_schema_is_a_load_error(tmp_path):
    write(tmp_path, "entity ;", "bad.cedarschema")
    with pytest.raises(PolicyLoadError, match="schema does not parse"):
        engine_for(tmp_path, DEFAULT)


# --- fail closed ------------------------------------------------------------------------------------


def _result(decision: str, reasons=(), errors=(), ids=None) -> str:
    """One response as Cedar's native batch entry point returns it (the engine calls that, not the wrapper)."""
    return json.dumps({"decision": decision, "diagnostics": {
        "reason": list(reasons), "errors": list(errors), "id_annotations_by_reason": ids or {}},
        "metrics": {"authz_duration_micros": 1}})


def _single(response):
    """A fake native entry point answering ``response`` (or raising it) for every request."""
    def native(requests, *args):
        if isinstance(response, BaseException):
            raise response
        return [response for _ in requests]
    return native


def _engine_error(decision) -> str:
    assert (decision.effect, decision.rule_ids) == (Effect.DENY, (ENGINE_ERROR_ID,)), decision
    return decision.reasons[0].message


def test_no_decision_fails_closed_naming_no_decision(starter, monkeypatch):
    monkeypatch.setattr(cedar_module, "_native_batch", _single(_result("NoDecision")))
    assert "NoDecision" in _engine_error(starter.evaluate(from_call("read_file", {})))


@pytest.mark.parametrize("verdict", ["Allow", "Deny"])
def test_diagnostics_error_fails_closed_naming_the_error(starter, monkeypatch, verdict):
    monkeypatch.setattr(cedar_module, "_native_batch", _single(_result(verdict, ["policy9"], ["policy1 exploded"], {"policy9": "default"})))
    assert "policy1 exploded" in _engine_error(starter.evaluate(from_call("read_file", {})))


def test_engine_exception_fails_closed_naming_the_exception(starter, monkeypatch):
    monkeypatch.setattr(cedar_module, "_native_batch", _single(RuntimeError("cedar crashed")))
    assert "RuntimeError: cedar crashed" in _engine_error(starter.evaluate(from_call("read_file", {})))


def test_reason_without_known_rule_fails_closed(starter, monkeypatch):
    monkeypatch.setattr(cedar_module, "_native_batch", _single(_result("Deny", ["policy42"], [], {"policy42": "ghost"})))
    assert "policy42" in _engine_error(starter.evaluate(from_call("read_file", {})))


def test_cedar_verdict_disagreeing_with_reasons_fails_closed(starter, monkeypatch):
    monkeypatch.setattr(cedar_module, "_native_batch", _single(_result("Allow", ["policy0"], [], {"policy0": "block-destructive-db-tools"})))
    assert "disagrees" in _engine_error(starter.evaluate(from_call("read_file", {})))


def test_entity_parse_failure_fails_closed(tmp_path, monkeypatch):
    engine = engine_for(tmp_path, DEFAULT)

    def bad(*args, **kwargs):
        raise ValueError("entities unreadable")

    monkeypatch.setattr(cedarpy.Entities, "with_added_json_str", bad)
    assert "entities unreadable" in _engine_error(engine.evaluate(from_call("read_file", {})))


def test_evaluate_many_batch_exception_fails_every_action_closed(starter, monkeypatch):
    monkeypatch.setattr(cedar_module, "_native_batch", _single(RuntimeError("batch crashed")))
    decisions = starter.evaluate_many([from_call("read_file", {}), from_call("run_shell", {}, agent=Agent("x", trust_score=1))])
    assert ["batch crashed" in _engine_error(d) for d in decisions] == [True, True]


def test_evaluate_many_no_decision_fails_closed(starter, monkeypatch):
    monkeypatch.setattr(cedar_module, "_native_batch", _single(_result("NoDecision")))
    decisions = starter.evaluate_many([from_call("read_file", {}), from_call("send_email", {})])
    assert ["NoDecision" in _engine_error(d) for d in decisions] == [True, True]


OVERFLOW = """\
@id("overflow")
forbid (principal, action, resource) when { context.tokens_used + 9223372036854775807 > 0 };
""" + DEFAULT


@pytest.mark.parametrize("validate", [True, False])
def test_real_runtime_error_in_forbid_fails_closed_not_open(tmp_path, validate):
    # Cedar skips a policy that errors; without the diagnostics check this forbid would become an allow.
    engine = engine_for(tmp_path, OVERFLOW, validate_requests=validate)
    assert "overflow" in _engine_error(engine.evaluate(from_call("read_file", {}, context=Context(tokens_used=1))))


@pytest.mark.parametrize("validate", [True, False])
def test_real_runtime_error_in_evaluate_many_fails_closed(tmp_path, validate):
    engine = engine_for(tmp_path, OVERFLOW, validate_requests=validate)
    decisions = engine.evaluate_many([from_call("read_file", {}, context=Context(tokens_used=t)) for t in (0, 1)])
    assert [d.rule_ids for d in decisions] == [("overflow",), (ENGINE_ERROR_ID,)]


# --- evaluate_many ------------------------------------------------------------------------------------


def _mixed_actions():
    same = "same-agent"
    return [
        from_call("run_shell", {"cmd": "ls"}, agent=Agent(same, trust_score=100)),
        from_call("run_shell", {"cmd": "ls"}, agent=Agent(same, trust_score=900)),
        from_call("run_shell", {"cmd": "ls"}, agent=Agent(same, trust_score=100)),
        from_call("write_file", {"path": "/ws/a/x"}, agent=Agent(same, trust_score=900, attributes={"workspace": "/ws/a"})),
        from_call("write_file", {"path": "/ws/a/x"}, agent=Agent(same, trust_score=900, attributes={"workspace": "/ws/b"})),
        from_call("write_file", {"path": "/ws/a/x"}, agent=Agent(same, trust_score=900)),
        from_call("send_email", {"to": "x"}, agent=Agent(same, roles=("r",))),
        from_call("drop_table", {"table": "users"}),
        from_call("read", {}, resource=Resource("table", "")),
        from_call("read", {}),
        from_call("delete_file", {"path": "/ws/a/x"}, context=Context(environment="production")),
        from_call("read_file", {}, context=Context(tokens_used=9000, tool_calls=50)),
        from_call("run_sql", {"sql": "DELETE FROM users"}, agent=Agent(same, trust_score=600)),
    ]


@pytest.mark.parametrize("validate", [True, False])
def test_evaluate_many_equals_evaluate_each(validate):
    engine = agt.create_engine("cedar", STARTER_DIR, validate_requests=validate)
    actions = _mixed_actions()
    assert engine.evaluate_many(actions) == [engine.evaluate(a) for a in actions]


@pytest.mark.parametrize("validate", [True, False])
def test_evaluate_many_keeps_same_agent_with_different_trust_apart(validate):
    engine = agt.create_engine("cedar", STARTER_DIR, validate_requests=validate)
    decisions = engine.evaluate_many(_mixed_actions()[:3])
    assert [d.effect for d in decisions] == [Effect.DENY, Effect.ALLOW, Effect.DENY]


@pytest.mark.parametrize("validate", [True, False])
def test_evaluate_many_with_some_handles_parsed_already_equals_evaluate_each(validate):
    engine = agt.create_engine("cedar", STARTER_DIR, validate_requests=validate)
    actions = _mixed_actions() * 2
    for action in actions[::3]:
        engine.evaluate(action)  # parses and caches these actions' entity handles
    assert len(engine._entities_for_key) < len({entities_key(a) for a in actions})  # some cached, some not
    fresh = agt.create_engine("cedar", STARTER_DIR, validate_requests=validate)
    assert engine.evaluate_many(actions) == [fresh.evaluate(a) for a in actions]


@pytest.mark.parametrize("validate", [True, False])
def test_evaluate_many_of_fuzzed_actions_whose_entities_conflict_everywhere_equals_evaluate_each(validate):
    # The fuzz varies each agent's trust, roles and workspace, so most actions conflict with most shared stores.
    from agt.conformance.fuzz import ActionGenerator, vocabulary_from_policy

    generator = ActionGenerator(vocabulary_from_policy(ROOT / "policies" / "starter.yaml"), seed=5)
    actions = []
    while len(actions) < 300:
        try:
            actions.append(agt.Action.from_dict(generator.document()))
        except agt.ActionError:
            continue
    engine = agt.create_engine("cedar", STARTER_DIR, validate_requests=validate)
    fresh = agt.create_engine("cedar", STARTER_DIR, validate_requests=validate)
    assert engine.evaluate_many(actions) == [fresh.evaluate(a) for a in actions]


def test_evaluate_many_of_nothing_is_empty(starter):
    assert starter.evaluate_many([]) == []


# A policy that looks into an entity it names finds it only where the store holds it: in a batch, another action's
# entities (the same Agent::"boss" as principal) must not answer for this one.
LOOKS_INTO_BOSS = [
    '@id("boss-present")\nforbid (principal, action, resource) when { Agent::"boss" has trust_score };\n' + DEFAULT,
    ('@id("trusted-boss")\npermit (principal, action, resource) when '
     '{ Agent::"boss" has trust_score && Agent::"boss".trust_score > 3 };\n'),
    '@id("under-b")\nforbid (principal, action, resource) when { Directory::"/ws/b/c" in resource };\n' + DEFAULT,
    ('@id("boss-present")\nforbid (principal, action, resource) when '
     '{ (if principal == Agent::"x" then principal else Agent::"boss") has trust_score };\n') + DEFAULT,
]


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("text", LOOKS_INTO_BOSS)
def test_evaluate_many_decides_each_action_with_its_own_entities_where_a_policy_looks_one_up(tmp_path, text, validate):
    actions = [from_call("read_file", {"path": "/ws/b"}, agent=Agent("alice"), resource=Resource("directory", "/ws/b")),
               from_call("read_file", {"path": "/ws/b/c/d"}, agent=Agent("boss", trust_score=5))]
    alone = [engine_for(tmp_path, text, validate_requests=validate).evaluate(a) for a in actions]  # alice's store
    # has no Agent::"boss" nor Directory::"/ws/b/c"; boss's has both
    assert engine_for(tmp_path, text, validate_requests=validate).evaluate_many(actions) == alone
    warm = engine_for(tmp_path, text, validate_requests=validate)
    warm.evaluate(actions[1])  # one handle cached already: the answer must not depend on it
    assert warm.evaluate_many(actions) == alone


@pytest.mark.parametrize("body, looks", [
    ('Agent::"boss" has trust_score && Agent::"boss".trust_score > 3', True),
    ('Agent::"boss" has trust_score', True),
    ('Directory::"/x" in resource', True),
    ('{a: Agent::"boss"}.a has trust_score', True),
    ('(if context.tokens_used > 1 then principal else Agent::"boss") has trust_score', True),
    ('principal == Agent::"boss"', False),
    ('principal in Role::"ops" || resource in [Directory::"/ws", Directory::"/tmp"]', False),
    ('[Agent::"a", Agent::"b"].contains(principal) && action == Action::"execute"', False),
    ('principal is Agent in Role::"ops"', False),
    ('context.tokens_used > 1', False),
])
def test_which_policies_look_into_an_entity_they_name(tmp_path, body, looks):
    write(tmp_path, f'@id("r")\nforbid (principal, action, resource) when {{ {body} }};\n' + DEFAULT)
    assert CedarEngine(tmp_path)._own_entity_sets is looks


def test_the_starter_policy_names_no_entity_it_looks_into(starter):
    assert starter._own_entity_sets is False  # its batches still share one entity store


# --- the lexical guard before cedarpy ---------------------------------------------------------------


def test_brackets_inside_strings_and_comments_do_not_count_toward_the_nesting_bound(tmp_path):
    (tmp_path / "p.cedar").write_text(
        "// " + "(" * 200 + "\n"
        '@id("odd-text")\nforbid (principal, action, resource) when { context.tool == "' + "[" * 200 + '" };\n')
    assert "odd-text" in CedarEngine(tmp_path).rules


def test_brackets_past_the_bound_are_refused_with_their_line(tmp_path):
    (tmp_path / "p.cedar").write_text('@id("deep")\nforbid (principal, action, resource)\nwhen { ' + "(" * 70 + "true" + ")" * 70 + " };\n")
    with pytest.raises(PolicyLoadError, match="nest deeper than 64") as info:
        CedarEngine(tmp_path)
    assert info.value.line == 3


# --- typed params from the catalog ---------------------------------------------------------------------

EMAIL_CATALOG = {"tools": {
    "refund": {"params": {"amount": "decimal"}},
    "send_email": {"params": {"to": {"type": "string", "required": True}}},
}}

REFUND_POLICY = """\
    @id("refund-approval")
    @approval
    @approvers("finance-lead")
    forbid (principal, action, resource)
    when { context.tool == "refund" && context.params has amount && context.params.amount.greaterThan(decimal("100.00")) };

    @id("external-email-approval")
    @approval
    forbid (principal, action, resource)
    when { context.tool == "send_email" && context.params has to && !(context.params.to like "*@example.com") };

    @id("default")
    permit (principal, action, resource);
"""


@pytest.fixture(scope="module")
def typed(tmp_path_factory) -> CedarEngine:
    return engine_for(tmp_path_factory.mktemp("typed"), REFUND_POLICY, catalog=EMAIL_CATALOG)


@pytest.mark.parametrize("amount, effect", [
    (Decimal("100.00"), Effect.ALLOW), (Decimal("100.01"), Effect.REQUIRE_APPROVAL), (100, Effect.ALLOW),
    (101, Effect.REQUIRE_APPROVAL), (Decimal("99.9999"), Effect.ALLOW), (Decimal("100.0001"), Effect.REQUIRE_APPROVAL),
])
def test_cedar_compares_a_declared_decimal_param(typed, amount, effect):
    assert typed.evaluate(from_call("refund", {"amount": amount})).effect is effect


def test_cedar_reads_the_declared_recipient_not_the_folded_text(typed):
    # The params_text workaround matched "*@example.com" anywhere; the typed param is the recipient itself.
    decision = typed.evaluate(from_call("send_email", {"to": "bob@evil.com", "zcc": "carol@example.com"}))
    assert decision.rule_ids == ("external-email-approval",)


def test_cedar_denies_a_declared_param_that_does_not_fit(typed):
    decision = typed.evaluate(from_call("refund", {"amount": "100.01"}))
    assert decision.rule_ids == (ENGINE_ERROR_ID,) and "declares it decimal" in decision.reasons[0].message


def test_cedar_batch_denies_a_declared_param_that_does_not_fit(typed):
    decisions = typed.evaluate_many([from_call("refund", {"amount": "1"}), from_call("refund", {"amount": Decimal("150.5")})])
    assert [d.rule_ids for d in decisions] == [(ENGINE_ERROR_ID,), ("refund-approval",)]


def test_typed_engine_validating_requests_decides_the_same(tmp_path):
    engine = engine_for(tmp_path, REFUND_POLICY, catalog=EMAIL_CATALOG, validate_requests=True)
    assert engine.evaluate(from_call("refund", {"amount": Decimal("100.01")})).effect is Effect.REQUIRE_APPROVAL


@pytest.mark.parametrize("condition", [
    'context.params.zcc like "*@evil.com"',
    'context.params has zcc && context.params.zcc like "*@evil.com"',
    'context.params["zcc"] like "*@evil.com"',
], ids=["attribute", "has-guard", "index"])
def test_policy_reading_an_undeclared_param_fails_to_load_naming_it(tmp_path, condition):
    write(tmp_path, f'@id("cc-check")\nforbid (principal, action, resource) when {{ {condition} }};\n')
    with pytest.raises(PolicyLoadError) as info:
        agt.create_engine("cedar", str(tmp_path), catalog=EMAIL_CATALOG)
    err = info.value
    assert (err.rule, err.line) == ("cc-check", 1)
    assert "context.params.zcc" in err.message and "declare it" in err.message and "tools:" in err.message


def test_policy_reading_a_param_without_any_catalog_says_to_add_catalog_yaml(tmp_path):
    err = load_error(tmp_path, '@id("r")\nforbid (principal, action, resource) when { context.params has amount };\n')
    assert "context.params.amount" in err.message and "catalog.yaml" in err.message


def test_decimal_ordered_with_an_operator_fails_to_load_with_a_hint(tmp_path):
    write(tmp_path, '@id("r")\nforbid (principal, action, resource)\n'
                    'when { context.params has amount && context.params.amount > decimal("100.00") };\n')
    with pytest.raises(PolicyLoadError, match=r"greaterThan"):
        agt.create_engine("cedar", str(tmp_path), catalog=EMAIL_CATALOG)


def test_catalog_beside_the_cedar_policy_is_used(tmp_path):
    write(tmp_path, REFUND_POLICY)
    (tmp_path / "catalog.yaml").write_text("tools: {refund: {params: {amount: decimal}}, send_email: {params: {to: string}}}\n", "utf-8")
    engine = agt.create_engine("cedar", str(tmp_path))
    assert engine.evaluate(from_call("refund", {"amount": Decimal("250")})).effect is Effect.REQUIRE_APPROVAL


def test_custom_schema_without_the_params_line_and_a_catalog_fails_to_load(tmp_path):
    schema = (ROOT / "cedar" / "agt.cedarschema").read_text("utf-8").replace("type Params = {};", "type Params = {\"x\": Long};")
    write(tmp_path, schema, "custom.cedarschema")
    write(tmp_path, '@id("r")\nforbid (principal, action, resource) when { context.tool == "x" };\n')
    with pytest.raises(PolicyLoadError, match=r"no `type Params = \{\};` line"):
        agt.create_engine("cedar", str(tmp_path), catalog=EMAIL_CATALOG)


def test_catalog_changes_the_cedar_revision(tmp_path):
    write(tmp_path, REFUND_POLICY.replace("context.params has amount && context.params.amount.greaterThan(decimal(\"100.00\"))", "true")
          .replace('context.params has to && !(context.params.to like "*@example.com")', "true"))
    plain = agt.create_engine("cedar", str(tmp_path))
    typed = agt.create_engine("cedar", str(tmp_path), catalog=EMAIL_CATALOG)
    assert plain.revision != typed.revision


# --- the fast path: what is sent is what the policies read; the native call answers as the public API -----------


def _reads(text: str):
    return _context_reads([json.loads(cedarpy.policies_to_json_str(text))])


@pytest.mark.parametrize("body, reads", [
    ("context.facts.shell.eval", {"facts": {"shell": {"eval": None}}}),
    ("context has facts.shell.eval", {"facts": {"shell": {"eval": None}}}),
    ('context.facts.shell.programs.contains("rm") && context.tool == "x"', {"facts": {"shell": {"programs": None}}, "tool": None}),
    ("context.facts.shell.eval || context.facts == {}", {"facts": None}),
    ("(if true then context.facts else context.facts).shell.eval", {"facts": None}),
    ('context.attributes.hasTag("a")', {"attributes": None}),
    ("context == {}", None),
    ("true", {}),
])
def test_context_reads_cover_every_part_a_policy_can_see(body, reads):
    assert _reads(f"permit (principal, action, resource) when {{ {body} }};") == reads


def test_pruning_never_cuts_into_entity_references_or_extension_values():
    tree = {"a": {"b": None}, "e": {"x": None}, "d": {"y": None}, "gone": None}
    value = {"a": {"b": 1, "c": 2}, "e": {"__entity": {"type": "T", "id": "t"}}, "d": {"__extn": {"fn": "decimal", "arg": "1.0"}}}
    assert _pruned(value, tree) == {"a": {"b": 1}, "e": value["e"], "d": value["d"]}


WIRE_ACTIONS = [
    from_call("read_file", {"path": "/ws/a/x.md"}, agent=Agent("a", trust_score=700, attributes={"workspace": "/ws/a"})),
    from_call("run_shell", {"cmd": "rm -rf / && echo $(id)"}, context=Context(environment="prod", tokens_used=5)),
    from_call("db_query", {"sql": "DELETE FROM users"}),
    from_call("send_email", {"to": "x@example.com", "body": "hi"}, context=Context(attributes={"user": {"role": "admin"}})),
    from_call("pay", {"amount": Decimal("12.50")}),
]


@pytest.mark.parametrize("validate", [False, True])
@pytest.mark.parametrize("action", WIRE_ACTIONS, ids=lambda a: a.action.tool)
def test_the_wire_request_is_the_request(starter_cedar, action, validate):
    engine = CedarEngine(starter_cedar, validate_requests=validate)
    wire = engine._wire(action)
    context = json.loads(wire["context"])
    if context.get("facts") == {"__entity": cedar_module.SHARED_FACTS}:  # by reference: the entity's attributes
        (shared,) = [e for e in json.loads(str(engine._entities(action))) if e["uid"] == cedar_module.SHARED_FACTS]
        context["facts"] = shared["attrs"]
    assert {**wire, "context": context} == engine._cedar_request(action)


def test_the_public_api_path_decides_as_the_native_one(starter_cedar, monkeypatch):
    native = CedarEngine(starter_cedar)
    want = [native.evaluate(a) for a in WIRE_ACTIONS] + native.evaluate_many(WIRE_ACTIONS)
    monkeypatch.setattr(cedar_module, "_native_batch", None)
    public = CedarEngine(starter_cedar)
    got = [public.evaluate(a) for a in WIRE_ACTIONS] + public.evaluate_many(WIRE_ACTIONS)
    assert [d.parity_key for d in got] == [d.parity_key for d in want]
    assert {d.effect for d in want} >= {Effect.ALLOW, Effect.DENY}


def test_the_decision_key_drops_only_the_metrics():
    base = '{"decision":"Allow","diagnostics":{"reason":[],"errors":[]}'
    assert _decision_key(base + ',"metrics":{"a":1,"b":2}}') == _decision_key(base + ',"metrics":{"a":7,"b":9}}') == base + "}"
    assert _decision_key(base + ',"metrics":{"a":{"n":1},"b":2}}') != _decision_key(base + ',"metrics":{"a":{"n":1},"b":3}}')
    assert _decision_key('{"decision":"Deny"}') == '{"decision":"Deny"}'


# --- the shared facts by reference (CedarEngine._facts_by_reference) ---------------------------------------------


def _generated_actions(n: int, seed: int) -> list:
    from agt.action import Action
    from agt.conformance.fuzz import ActionGenerator, vocabulary_from_policy

    gen = ActionGenerator(vocabulary_from_policy(ROOT / "policies" / "starter.yaml"), seed)
    return [Action.from_dict(gen.document()) for _ in range(n)] + WIRE_ACTIONS


def test_the_shared_facts_by_reference_decide_as_the_facts_record(starter_cedar):
    fast = CedarEngine(starter_cedar)
    slow = CedarEngine(starter_cedar)
    slow._set_facts_by_reference(False)
    assert fast._facts_by_reference and not slow._facts_by_reference
    actions = _generated_actions(1500, 14)
    checked = [a for a in actions if fast.catalog.denial(a, "cedar", "r") is None]
    by_reference = [a for a in checked if json.loads(fast._wire(a)["context"]).get("facts") == {"__entity": cedar_module.SHARED_FACTS}]
    assert 100 < len(by_reference) < len(actions)  # both forms are exercised
    want = [slow.evaluate(a).parity_key for a in actions]
    cold = CedarEngine(starter_cedar)  # evaluate_many before any single decision: merged entity stores
    assert [d.parity_key for d in cold.evaluate_many(actions)] == want
    assert [fast.evaluate(a).parity_key for a in actions] == want
    assert [d.parity_key for d in fast.evaluate_many(actions)] == want  # now with the handles single decisions parsed
    assert {k[0] for k in want} >= {Effect.ALLOW, Effect.DENY, Effect.REQUIRE_APPROVAL}


@pytest.mark.parametrize("body, on", [
    ("context.facts.shell.eval", True),
    ("context has facts && context.facts has shell && context.facts.sql.parsed", True),
    ("context.facts.shell == context.facts.shell", True),  # `shell` is read whole; it is still an attribute
    ("context.facts == context.facts", False),  # an entity is not equal to a record: facts go as the record
    ("context == context", False),
])
def test_the_shared_facts_go_by_reference_only_where_an_entity_answers_as_the_record(tmp_path, body, on):
    write(tmp_path, f'@id("r")\nforbid (principal, action, resource) when {{ {body} }};\n' + DEFAULT)
    assert CedarEngine(tmp_path)._facts_by_reference is on
    assert CedarEngine(tmp_path, validate_requests=True)._facts_by_reference is False


def test_a_request_whose_shared_facts_entity_is_missing_fails_closed(starter_cedar):
    engine = CedarEngine(starter_cedar)
    action = from_call("read_file", {"path": "/ws/alice/a.md"}, agent=ALICE)
    assert engine.evaluate(action).effect is Effect.ALLOW
    entities = cedarpy.Entities.from_json_str(json.dumps(ACTION_ENTITIES + cedar_entities(action)))  # no SHARED_FACTS
    (response,) = cedar_module._authorize_batch([engine._wire(action)], engine._policies, entities, None)
    decision = engine._decide(response)
    assert decision.effect is Effect.DENY and decision.rule_ids == (ENGINE_ERROR_ID,)
