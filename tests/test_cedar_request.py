"""agt.engines.cedar_request: the Action -> Cedar request and entity mapping, checked against real cedarpy."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import cedarpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agt
from agt.action import Action, Agent, Context, Kind, Operation, Resource, Stage, from_call
from agt.catalog import Catalog
from agt.engines.cedar import _schema_with_params, bundled_schema_text
from agt.engines.cedar_request import ACTION_ENTITIES, ancestor_dirs, cedar_entities, cedar_request, entities_key, to_cedar

ROOT = Path(__file__).resolve().parents[1]
STARTER_TEXT = (ROOT / "cedar" / "starter.cedar").read_text("utf-8")
SCHEMA = cedarpy.Schema.from_str(bundled_schema_text())
STARTER = cedarpy.PolicySet.from_str(STARTER_TEXT)

ALICE = Agent("alice", roles=("dev", "ops"), trust_score=720, attributes={"workspace": "/ws/alice", "team": "core"})


def entity(entities, etype, eid):
    found = [e for e in entities if e["uid"] == {"type": etype, "id": eid}]
    assert len(found) == 1, f"{etype}::{eid!r} appears {len(found)} times"
    return found[0]


def uids(entities, etype):
    return {e["uid"]["id"] for e in entities if e["uid"]["type"] == etype}


def parents(entities, etype, eid):
    return entity(entities, etype, eid)["parents"]


# --- principal ------------------------------------------------------------------------------------


def test_principal_is_agent_uid():
    assert cedar_request(from_call("t", {}, agent=ALICE))["principal"] == {"type": "Agent", "id": "alice"}


def test_agent_entity_carries_trust_score():
    assert entity(cedar_entities(from_call("t", {}, agent=ALICE)), "Agent", "alice")["attrs"]["trust_score"] == 720


def test_roles_become_role_parents_of_the_agent():
    assert parents(cedar_entities(from_call("t", {}, agent=ALICE)), "Agent", "alice") == [
        {"type": "Role", "id": "dev"}, {"type": "Role", "id": "ops"}]


def test_each_role_is_an_entity():
    assert uids(cedar_entities(from_call("t", {}, agent=ALICE)), "Role") == {"dev", "ops"}


def test_workspace_becomes_directory_entity_attribute():
    attrs = entity(cedar_entities(from_call("t", {}, agent=ALICE)), "Agent", "alice")["attrs"]
    assert attrs["workspace"] == {"__entity": {"type": "Directory", "id": "/ws/alice"}}


def test_workspace_directory_entity_has_ancestor_chain():
    ents = cedar_entities(from_call("t", {}, agent=ALICE))
    assert (parents(ents, "Directory", "/ws/alice"), parents(ents, "Directory", "/ws")) == ([{"type": "Directory", "id": "/ws"}], [])


def test_agent_without_workspace_has_only_trust_score():
    assert entity(cedar_entities(from_call("t", {}, agent=Agent("bob", trust_score=500))), "Agent", "bob")["attrs"] == {"trust_score": 500}


def test_agent_without_a_trust_score_sends_none_to_cedar():
    # Never an invented 500 (issue 12): policies test `principal has trust_score`.
    assert entity(cedar_entities(from_call("t", {}, agent=Agent("bob"))), "Agent", "bob")["attrs"] == {}


def test_context_attributes_become_string_tags():
    action = from_call("t", {}, context=Context(attributes={"user": {"role": "admin", "level": 3}, "message": "hi"}))
    assert entity(cedar_entities(action), "Attributes", "")["tags"] == {"user.role": "admin", "message": "hi"}


def test_other_agent_attributes_are_not_sent_to_cedar():
    assert "team" not in entity(cedar_entities(from_call("t", {}, agent=ALICE)), "Agent", "alice")["attrs"]


def test_principal_in_role_holds_in_cedar():
    action = from_call("read_file", {}, agent=ALICE)
    result = cedarpy.is_authorized(cedar_request(action), 'permit (principal in Role::"ops", action, resource);',
                                   cedar_entities(action) + ACTION_ENTITIES)
    assert result.decision is cedarpy.Decision.Allow


def test_resource_in_principal_workspace_holds_in_cedar():
    action = from_call("write_file", {"path": "/ws/alice/a/b.txt"}, agent=ALICE)
    result = cedarpy.is_authorized(cedar_request(action), "permit (principal, action, resource) when { resource in principal.workspace };",
                                   cedar_entities(action), SCHEMA)
    assert result.decision is cedarpy.Decision.Allow


# --- action ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Kind))
def test_action_is_the_kind(kind):
    assert cedar_request(from_call("t", {}, kind=kind))["action"] == {"type": "Action", "id": kind.value}


MUTATE_POLICY = 'permit (principal, action in Action::"mutate", resource);'


@pytest.mark.parametrize("kind", list(Kind))
def test_action_entities_put_exactly_write_and_delete_in_mutate(kind):
    action = from_call("t", {}, kind=kind)
    result = cedarpy.is_authorized(cedar_request(action), MUTATE_POLICY, cedar_entities(action) + ACTION_ENTITIES)
    assert (result.decision is cedarpy.Decision.Allow) == (kind in (Kind.WRITE, Kind.DELETE))


@pytest.mark.parametrize("kind", list(Kind))
def test_bundled_schema_puts_exactly_write_and_delete_in_mutate(kind):
    action = from_call("t", {}, kind=kind)
    result = cedarpy.is_authorized(cedar_request(action), MUTATE_POLICY, cedar_entities(action), SCHEMA)
    assert (result.decision is cedarpy.Decision.Allow) == (kind in (Kind.WRITE, Kind.DELETE))


def test_action_entities_cover_every_kind():
    assert {e["uid"]["id"] for e in ACTION_ENTITIES} == {k.value for k in Kind} | {"mutate"}


# --- resource -------------------------------------------------------------------------------------


def test_file_resource_is_file_uid():
    assert cedar_request(from_call("read_file", {"path": "/ws/a/b.txt"}))["resource"] == {"type": "File", "id": "/ws/a/b.txt"}


def test_file_resource_has_directory_ancestor_chain():
    ents = cedar_entities(from_call("read_file", {"path": "/ws/a/b.txt"}))
    chain = (parents(ents, "File", "/ws/a/b.txt"), parents(ents, "Directory", "/ws/a"), parents(ents, "Directory", "/ws"))
    assert chain == ([{"type": "Directory", "id": "/ws/a"}], [{"type": "Directory", "id": "/ws"}], [])


@pytest.mark.parametrize("path", ["/ws/a/b.txt", "/x", "/"])
def test_root_directory_is_never_an_entity(path):
    assert "/" not in uids(cedar_entities(from_call("t", {}, resource=Resource("directory", path))), "Directory")


def test_file_at_root_has_no_parents():
    assert parents(cedar_entities(from_call("read_file", {"path": "/x"})), "File", "/x") == []


def test_directory_resource_is_directory_uid_with_chain():
    action = from_call("t", {}, resource=Resource("directory", "/ws/a/d"))
    ents = cedar_entities(action)
    assert (cedar_request(action)["resource"], parents(ents, "Directory", "/ws/a/d")) == (
        {"type": "Directory", "id": "/ws/a/d"}, [{"type": "Directory", "id": "/ws/a"}])


def test_workspace_and_resource_chains_share_directories_without_duplicates():
    ents = cedar_entities(from_call("read_file", {"path": "/ws/alice/a/b"}, agent=ALICE))
    assert sorted(uids(ents, "Directory")) == ["/ws", "/ws/alice", "/ws/alice/a"]


def test_resource_under_directory_holds_in_cedar():
    action = from_call("read_file", {"path": "/ws/a/b/c.txt"})
    result = cedarpy.is_authorized(cedar_request(action), 'permit (principal, action, resource in Directory::"/ws");',
                                   cedar_entities(action), SCHEMA)
    assert result.decision is cedarpy.Decision.Allow


@pytest.mark.parametrize(("path", "ancestors"), [("/a/b/c", ["/a/b", "/a"]), ("/a", []), ("/", []), ("a/b", ["a"]), ("", [])])
def test_ancestor_dirs_are_nearest_first_without_root(path, ancestors):
    assert ancestor_dirs(path) == ancestors


def test_other_resource_is_resource_uid_with_type():
    action = from_call("query", {"table": "users"})
    assert (cedar_request(action)["resource"], entity(cedar_entities(action), "Resource", "users")["attrs"]) == (
        {"type": "Resource", "id": "users"}, {"type": "table"})


def test_no_resource_is_empty_resource_of_empty_type():
    action = from_call("run_shell", {"cmd": "ls"})
    assert (cedar_request(action)["resource"], entity(cedar_entities(action), "Resource", "")["attrs"]) == (
        {"type": "Resource", "id": ""}, {"type": ""})


# --- context --------------------------------------------------------------------------------------


def test_context_mapping():
    ctx = Context(session_id="s", task_id="t", stage="post_tool", tokens_used=5, tool_calls=6, files_changed=7,
                  environment="production", timestamp="2026-01-01T00:00:00Z")
    action = Action(Agent("a"), Operation("run_sql", Kind.WRITE, {"sql": "DROP  TABLE x"}), None, ctx)
    context = cedar_request(action)["context"]
    facts = context.pop("facts")
    assert context == {
        "tool": "run_sql", "params": {}, "params_text": "drop table x", "session_id": "s", "task_id": "t", "stage": "post_tool",
        "environment": "production", "action_type": "run_sql", "attributes": {"__entity": {"type": "Attributes", "id": ""}}, "tokens_used": 5, "tool_calls": 6, "files_changed": 7,
    }
    assert (facts["sql"]["types"], facts["sql"]["parsed"], facts["parse_error"]) == (["drop"], True, False)


def test_context_facts_are_the_flat_fields_without_the_lists_of_records():
    facts = cedar_request(from_call("run_shell", {"command": "sudo rm -fr /etc/*"}))["context"]["facts"]
    assert "commands" not in facts["shell"] and "statements" not in facts["sql"]
    assert (facts["shell"]["recursive_deletes"], facts["shell"]["deletes_system_path"]) == (["/etc"], True)
    assert "rm -r" in facts["shell"]["program_flags"] and "sudo" in facts["shell"]["programs"]


def test_context_task_id_defaults_to_session():
    assert cedar_request(from_call("t", {}, context=Context(session_id="s9")))["context"]["task_id"] == "s9"


def test_to_cedar_is_request_and_entities():
    action = from_call("read_file", {"path": "/ws/x"}, agent=ALICE)
    assert to_cedar(action) == (cedar_request(action), cedar_entities(action))


def test_cedar_schema_file_is_the_bundled_schema():
    assert (ROOT / "cedar" / "agt.cedarschema").read_text("utf-8") == bundled_schema_text()


# --- property: every request fits the bundled schema, and validation never changes a decision ------

_text = st.text(max_size=12)
_segments = st.lists(st.sampled_from(["ws", "alice", "bob", "..", ".", "", "a b", "é", "x.txt"]), max_size=5)
_paths = st.builds(lambda absolute, segs: ("/" if absolute else "") + "/".join(segs), st.booleans(), _segments)


def _params(depth: int):
    leaf = st.one_of(_text, st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none(),
                     st.sampled_from(["DROP TABLE users", "rm -rf /", "delete from t", "ｒｍ －ｒｆ /"]))
    if depth == 0:
        return leaf
    inner = _params(depth - 1)
    return st.one_of(leaf, st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3))


_agents = st.builds(
    Agent,
    id=st.one_of(st.sampled_from(["alice", "bob"]), st.text(min_size=1, max_size=10)),
    roles=st.lists(st.one_of(st.sampled_from(["admin", "dev"]), _text), max_size=3),
    trust_score=st.integers(0, 1000),
    attributes=st.one_of(st.just({}), st.fixed_dictionaries({"workspace": _paths}),
                         st.fixed_dictionaries({"workspace": st.just(""), "x": _text})),
)
_operations = st.builds(
    Operation,
    tool=st.one_of(st.sampled_from(["drop_table", "send_email", "write_file", "run_shell", "read_file"]), st.text(min_size=1, max_size=10)),
    kind=st.sampled_from(list(Kind)),
    params=st.dictionaries(st.sampled_from(["path", "cmd", "sql", "q", "args"]), _params(3), max_size=4),
)
_resources = st.one_of(
    st.none(),
    st.builds(Resource, type=st.sampled_from(["file", "directory"]), id=_paths),
    st.builds(Resource, type=st.one_of(st.sampled_from(["table", "url", "recipient"]), st.text(min_size=1, max_size=8)), id=_text),
)
_contexts = st.builds(
    Context,
    session_id=_text, task_id=_text, stage=st.sampled_from(list(Stage)),
    tokens_used=st.one_of(st.integers(0, 20_000), st.just(2**63 - 1)), tool_calls=st.integers(0, 40),
    files_changed=st.integers(0, 30), environment=st.one_of(st.sampled_from(["development", "production"]), _text),
    timestamp=st.just("2026-01-01T00:00:00Z"),
)
_actions = st.builds(Action, agent=_agents, action=_operations, resource=_resources, context=_contexts)

VALIDATING = agt.create_engine("cedar", str(ROOT / "cedar"), validate_requests=True)
FAST = agt.create_engine("cedar", str(ROOT / "cedar"), validate_requests=False)


@settings(max_examples=150, deadline=None, database=None)
@given(_actions)
def test_property_request_fits_bundled_schema_without_diagnostics_errors(action):
    result = cedarpy.is_authorized(cedar_request(action), STARTER, cedar_entities(action), SCHEMA)
    assert (result.decision, result.diagnostics.errors) in ((cedarpy.Decision.Allow, []), (cedarpy.Decision.Deny, []))


@settings(max_examples=150, deadline=None, database=None)
@given(_actions)
def test_property_validate_requests_does_not_change_the_decision(action):
    validated, fast = VALIDATING.evaluate(action), FAST.evaluate(action)
    assert (fast.effect, fast.rule_ids) == (validated.effect, validated.rule_ids)


@settings(max_examples=100, deadline=None, database=None)
@given(_actions, _operations, _contexts, _text)
def test_property_entities_depend_only_on_the_cache_key(action, other_op, other_ctx, extra):
    # The engine caches parsed entities by entities_key(); anything outside the key must not change them.
    twin = Action(
        Agent(action.agent.id, action.agent.roles, action.agent.trust_score, {**action.agent.attributes, "extra": extra}),
        other_op, action.resource, other_ctx,
    )
    assert (entities_key(twin), cedar_entities(twin)) == (entities_key(action), cedar_entities(action))


# --- typed params from the catalog ------------------------------------------------------------------

CATALOG = Catalog.from_dict({"tools": {
    "refund": {"params": {"amount": "decimal", "order_id": "string", "count": "long", "urgent": "bool", "tags": "set<string>"}},
    "send_email": {"params": {"to": "string", "cc": "set<string>"}},
}})
TYPED_SCHEMA = cedarpy.Schema.from_str(_schema_with_params(bundled_schema_text(), CATALOG, "test"))


def test_declared_params_become_typed_cedar_values():
    action = from_call("refund", {"amount": Decimal("19.99"), "order_id": "o1", "count": 2, "urgent": True, "tags": ["a"]})
    assert cedar_request(action, CATALOG)["context"]["params"] == {
        "amount": {"__extn": {"fn": "decimal", "arg": "19.99"}}, "order_id": "o1", "count": 2, "urgent": True, "tags": ["a"]}


def test_declared_decimal_given_as_an_integer_is_a_cedar_decimal():
    assert cedar_request(from_call("refund", {"amount": 150}), CATALOG)["context"]["params"] == {
        "amount": {"__extn": {"fn": "decimal", "arg": "150.0"}}}


def test_undeclared_params_are_not_sent_to_cedar():
    action = from_call("send_email", {"to": "bob@example.com", "zcc": "carol@evil.com", "amount": 5})
    assert cedar_request(action, CATALOG)["context"]["params"] == {"to": "bob@example.com"}


def test_params_of_a_tool_the_catalog_does_not_list_are_not_sent():
    assert cedar_request(from_call("other", {"amount": Decimal("1.5")}), CATALOG)["context"]["params"] == {}


_typed_params = st.fixed_dictionaries({}, optional={
    "amount": st.one_of(st.integers(-(10**14), 10**14), st.decimals(-(10**14), 10**14, places=4, allow_nan=False)),
    "order_id": _text, "count": st.integers(-(2**63), 2**63 - 1), "urgent": st.booleans(), "tags": st.lists(_text, max_size=3),
    "extra": _params(1),
})
_typed_actions = st.builds(
    Action, agent=_agents,
    action=st.builds(Operation, tool=st.sampled_from(["refund", "send_email", "other"]), kind=st.sampled_from(list(Kind)), params=_typed_params),
    resource=_resources, context=_contexts,
)


@settings(max_examples=150, deadline=None, database=None)
@given(_typed_actions)
def test_property_request_with_catalog_params_fits_the_generated_schema(action):
    CATALOG.check(action)  # the generator only makes params that fit their declared types
    policies = cedarpy.PolicySet.from_str(
        '@id("big") forbid (principal, action, resource) when '
        '{ context.params has amount && context.params.amount.greaterThan(decimal("100.00")) };'
        '@id("default") permit (principal, action, resource);'
    )
    result = cedarpy.is_authorized(cedar_request(action, CATALOG), policies, cedar_entities(action), TYPED_SCHEMA)
    assert result.diagnostics.errors == [] and result.decision in (cedarpy.Decision.Allow, cedarpy.Decision.Deny)


@pytest.mark.parametrize("params", [
    {"command": "sudo rm -fr /etc/* && dd if=/dev/zero of=/dev/sda"}, {"command": 'echo "unterminated'},
    {"argv": ["mkfs.ext4", "/dev/sda1"]}, {"sql": "DELETE u FROM users u; DROP/**/TABLE t"}, {"sql": "DELETE FROM WHERE"},
])
def test_requests_with_facts_fit_the_bundled_schema(params):
    decision = VALIDATING.evaluate(from_call("run_shell", params, agent=ALICE))
    assert not decision.is_engine_error, [r.message for r in decision.reasons]
