"""agt.action: the frozen action document, its JSON Schema validation, and building actions from tool calls."""

from __future__ import annotations

import copy
import dataclasses
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from agt.action import Action, Agent, Context, Kind, Operation, Resource, Stage, from_call, infer_kind, infer_resource, infer_resources
from agt.errors import ActionError
from agt.facts import derive_facts

FULL_DOC = {
    "agent": {"id": "alice", "roles": ["developer", "admin"], "trust_score": 720, "attributes": {"workspace": "/ws/alice", "team": "core"}},
    "action": {"tool": "write_file", "kind": "write", "params": {"path": "/ws/alice/notes.md", "content": "To Do", "lines": [1, 2]}},
    "resource": {"type": "file", "id": "/ws/alice/notes.md", "attributes": {"size": 3}},
    "context": {
        "session_id": "s1", "task_id": "t1", "stage": "post_tool", "tokens_used": 900, "tool_calls": 2,
        "files_changed": 1, "environment": "production", "timestamp": "2026-11-23T08:00:00.000000Z",
    },
}

# What to_dict gives back for FULL_DOC: roles sorted, params_text derived.
FULL_DICT = copy.deepcopy(FULL_DOC)
FULL_DICT["agent"]["roles"] = ["admin", "developer"]
FULL_DICT["action"]["params_text"] = "to do\n1 2\n/ws/alice/notes.md"  # keys in sorted order; a list of scalars is one line
FULL_DICT["action"]["facts"] = derive_facts("write_file", "write", {})  # no command or SQL param: the empty shape
FULL_DICT["action"]["type"] = "write_file"  # AGT's action type: the tool name when the caller sets none
FULL_DICT["context"]["attributes"] = {}  # free-form caller context, empty unless given


def minimal(**parts) -> dict:
    doc = {"agent": {"id": "a"}, "action": {"tool": "t"}}
    doc.update(parts)
    return doc


def field_of(doc) -> str:
    with pytest.raises(ActionError) as info:
        Action.from_dict(doc)
    return info.value.field


# --- frozen value objects ---------------------------------------------------------------------

FROZEN_CASES = [
    (Agent("a"), "trust_score", 1000),
    (Operation("t"), "tool", "other"),
    (Resource("file", "/x"), "id", "/etc/passwd"),
    (Context(), "environment", "production"),
    (Action(Agent("a"), Operation("t")), "agent", Agent("root")),
]


@pytest.mark.parametrize(("obj", "name", "value"), FROZEN_CASES, ids=lambda v: type(v).__name__ if not isinstance(v, (str, int)) else str(v))
def test_attribute_assignment_raises_frozen_error(obj, name, value):
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, name, value)


@pytest.mark.parametrize(
    ("mapping_of"),
    [lambda: Agent("a", attributes={"k": 1}).attributes, lambda: Operation("t", params={"k": 1}).params,
     lambda: Resource("table", "x", {"k": 1}).attributes],
    ids=["agent.attributes", "action.params", "resource.attributes"],
)
def test_top_level_mappings_reject_item_assignment(mapping_of):
    with pytest.raises(TypeError):
        mapping_of()["k"] = 2


# --- round trips --------------------------------------------------------------------------------


def test_from_dict_to_dict_gives_the_canonical_document():
    assert Action.from_dict(FULL_DOC).to_dict() == FULL_DICT


def test_to_dict_from_dict_round_trip_is_identity():
    first = Action.from_dict(FULL_DOC).to_dict()
    assert Action.from_dict(first).to_dict() == first


def test_to_json_from_json_round_trip_is_identity():
    action = Action.from_dict(FULL_DOC)
    assert Action.from_json(action.to_json()).to_dict() == action.to_dict()


def test_from_json_accepts_bytes():
    assert Action.from_json(json.dumps(FULL_DOC).encode("utf-8")).to_dict() == FULL_DICT


def test_to_json_is_the_document_with_sorted_keys():
    action = Action.from_dict(FULL_DOC)
    assert action.to_json() == json.dumps(FULL_DICT, sort_keys=True, ensure_ascii=False)


def test_to_dict_returns_a_copy_that_does_not_alias_the_action():
    action = Action.from_dict(FULL_DOC)
    out = action.to_dict()
    out["action"]["params"]["lines"].append(3)
    out["agent"]["attributes"]["team"] = "evil"
    assert action.to_dict() == FULL_DICT


def test_minimal_document_gets_defaults():
    d = Action.from_dict(minimal()).to_dict()
    assert ("trust_score" in d["agent"], d["agent"]["roles"], d["action"]["kind"], d["resource"], d["context"]["stage"],
            d["context"]["task_id"], "environment" in d["context"]) == (False, [], "execute", None, "pre_tool", "default", False)


def test_trust_score_is_absent_unless_set():
    # No invented 500 (issue 12): the caller or the Governor's TrustManager sets it.
    assert ("trust_score" in Action.from_dict(minimal()).document["agent"],
            Action.from_dict(minimal(agent={"id": "a", "trust_score": 3})).document["agent"]["trust_score"]) == (False, 3)


def test_environment_is_absent_unless_set():
    # No invented "development": a rule on environment must see a missing field (issue 12).
    assert "environment" not in Action.from_dict(minimal()).document["context"]


def test_action_type_is_the_callers_verb_else_the_tool_name():
    assert Action.from_dict(minimal(action={"tool": "sql", "type": "drop"})).document["action"]["type"] == "drop"
    assert Action.from_dict(minimal(action={"tool": "send_email"})).document["action"]["type"] == "send_email"


def test_context_attributes_are_carried_in_the_document():
    doc = Action.from_dict(minimal(context={"attributes": {"user": {"role": "admin"}}})).document
    assert doc["context"]["attributes"] == {"user": {"role": "admin"}}


def test_empty_timestamp_is_filled_with_utc_time():
    assert Action.from_dict(minimal()).context.timestamp.endswith("Z")


# --- JSON Schema validation: ActionError.field is the offending dotted path --------------------

INVALID = {
    "missing agent.id": (minimal(agent={}), "agent.id"),
    "missing agent": ({"action": {"tool": "t"}}, "agent"),
    "missing action.tool": (minimal(action={}), "action.tool"),
    "missing resource.id": (minimal(resource={"type": "file"}), "resource.id"),
    "bad kind": (minimal(action={"tool": "t", "kind": "destroy"}), "action.kind"),
    "bad stage": (minimal(context={"stage": "later"}), "context.stage"),
    "trust_score 1001": (minimal(agent={"id": "a", "trust_score": 1001}), "agent.trust_score"),
    "trust_score -1": (minimal(agent={"id": "a", "trust_score": -1}), "agent.trust_score"),
    "trust_score string": (minimal(agent={"id": "a", "trust_score": "700"}), "agent.trust_score"),
    "trust_score bool": (minimal(agent={"id": "a", "trust_score": True}), "agent.trust_score"),
    "negative tokens_used": (minimal(context={"tokens_used": -1}), "context.tokens_used"),
    "negative tool_calls": (minimal(context={"tool_calls": -5}), "context.tool_calls"),
    "negative files_changed": (minimal(context={"files_changed": -1}), "context.files_changed"),
    "string counter": (minimal(context={"tokens_used": "10"}), "context.tokens_used"),
    "bool counter": (minimal(context={"tool_calls": True}), "context.tool_calls"),
    "agent.id not a string": (minimal(agent={"id": 5}), "agent.id"),
    "empty agent.id": (minimal(agent={"id": ""}), "agent.id"),
    "roles not a list": (minimal(agent={"id": "a", "roles": "admin"}), "agent.roles"),
    "role not a string": (minimal(agent={"id": "a", "roles": ["admin", 1]}), "agent.roles.1"),
    "duplicate roles": (minimal(agent={"id": "a", "roles": ["x", "x"]}), "agent.roles"),
    "params not an object": (minimal(action={"tool": "t", "params": ["x"]}), "action.params"),
    "attributes not an object": (minimal(agent={"id": "a", "attributes": "x"}), "agent.attributes"),
    "resource not an object": (minimal(resource="file"), "resource"),
    "empty resource.type": (minimal(resource={"type": "", "id": "x"}), "resource.type"),
    "environment not a string": (minimal(context={"environment": 1}), "context.environment"),
    "document not an object": ([], "<document>"),
    "NaN param": (minimal(action={"tool": "t", "params": {"x": float("nan")}}), "action.params.x"),
}


@pytest.mark.parametrize(("doc", "field"), list(INVALID.values()), ids=list(INVALID))
def test_from_dict_error_names_the_offending_field(doc, field):
    assert field_of(doc) == field


UNKNOWN_KEYS = {
    "top level": (minimal(extra=1), "extra"),
    "agent": (minimal(agent={"id": "a", "name": "x"}), "agent.name"),
    "action": (minimal(action={"tool": "t", "args": {}}), "action.args"),
    "resource": (minimal(resource={"type": "file", "id": "/x", "owner": "y"}), "resource.owner"),
    "context": (minimal(context={"tokens_usd": 3}), "context.tokens_usd"),
}


@pytest.mark.parametrize(("doc", "key"), list(UNKNOWN_KEYS.values()), ids=list(UNKNOWN_KEYS))
def test_unknown_key_is_rejected_and_the_message_names_it(doc, key):
    with pytest.raises(ActionError) as info:
        Action.from_dict(doc)
    assert repr(key.rsplit(".", 1)[-1]) in info.value.message


@pytest.mark.parametrize(("doc", "path"), list(UNKNOWN_KEYS.values()), ids=list(UNKNOWN_KEYS))
def test_unknown_key_error_field_is_the_keys_dotted_path(doc, path):
    assert field_of(doc) == path


def test_supplied_params_text_is_ignored_and_recomputed():
    doc = minimal(action={"tool": "run_sql", "params": {"sql": "DROP TABLE users"}, "params_text": "select 1"})
    assert Action.from_dict(doc).action.params_text == "drop table users"


def test_supplied_params_text_does_not_reach_the_document():
    doc = minimal(action={"tool": "run_sql", "params": {"sql": "DROP TABLE users"}, "params_text": "select 1"})
    assert Action.from_json(json.dumps(doc)).to_dict()["action"]["params_text"] == "drop table users"


def test_supplied_facts_are_ignored_and_derived_again():
    doc = minimal(action={"tool": "run_shell", "kind": "execute", "params": {"command": "rm -fr /"},
                          "facts": {"shell": {"programs": ["ls"]}}})
    assert Action.from_dict(doc).to_dict()["action"]["facts"]["shell"]["programs"] == ["rm"]


def test_facts_are_derived_once_and_shared_by_the_document():
    action = from_call("run_shell", {"command": "rm -fr /"})
    assert action.action.facts is action.action.facts
    assert action.document["action"]["facts"] is action.action.facts
    assert action.document["action"]["facts"]["shell"]["program_flags"] == ["rm -f", "rm -r"]


def test_operation_has_no_params_text_argument():
    with pytest.raises(TypeError):
        Operation("t", params={"sql": "DROP TABLE x"}, params_text="fine")  # type: ignore[call-arg]


def test_integral_float_counter_becomes_int():
    assert Action.from_dict(minimal(context={"tokens_used": 5.0})).context.tokens_used == 5


# --- from_json ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["{bad", "", "\x00", "[1,", '{"agent": }'], ids=["brace", "empty", "nul", "open-list", "no-value"])
def test_from_json_invalid_json_raises_action_error(text):
    with pytest.raises(ActionError, match="not valid JSON"):
        Action.from_json(text)


def test_from_json_invalid_json_names_source_line_and_column():
    with pytest.raises(ActionError, match=r"^calls\.json:2:1: "):
        Action.from_json('{"agent": {"id": "a"},\n}', source="calls.json")


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, '{"a":' * 100_000, '{"agent": {"id": "a", "attributes": {"x": ' + "[" * 100_000],
    ids=["lists", "objects", "inside-attributes"],
)
def test_from_json_deeply_nested_raises_action_error_not_recursion_error(text):
    with pytest.raises(ActionError):
        Action.from_json(text)


def test_from_json_parseable_but_too_deep_attributes_raise_action_error():
    deep = "[" * 500 + "]" * 500
    with pytest.raises(ActionError):
        Action.from_json('{"agent": {"id": "a", "attributes": {"x": %s}}, "action": {"tool": "t"}}' % deep)


def test_from_json_deep_equal_arrays_in_roles_raise_action_error_not_recursion_error():
    deep = "[" * 500 + "]" * 500
    with pytest.raises(ActionError):
        Action.from_json('{"agent": {"id": "a", "roles": [%s, %s]}, "action": {"tool": "t"}}' % (deep, deep))


# --- from_call: kind and resource inference ------------------------------------------------------

KINDS = {
    "read_file": Kind.READ,
    "write_file": Kind.WRITE,
    "delete_x": Kind.DELETE,
    "run_shell": Kind.EXECUTE,
    "send_email": Kind.MESSAGE,
    "http_get": Kind.NETWORK,
    "delegate_task": Kind.DELEGATE,
    "Read-File": Kind.READ,
    "fs.delete": Kind.DELETE,  # a namespace word says where; the next word says what
    "WriteFile": Kind.WRITE,
    "net.frob": Kind.EXECUTE,
    "frobnicate": Kind.EXECUTE,
    "readme_lint": Kind.EXECUTE,
}


@pytest.mark.parametrize(("tool", "kind"), list(KINDS.items()))
def test_from_call_infers_kind_from_tool_name(tool, kind):
    assert from_call(tool, {}).action.kind is kind


def test_infer_kind_unknown_tool_is_execute():
    assert infer_kind("zzz") is Kind.EXECUTE


def test_from_call_explicit_kind_overrides_inference():
    assert from_call("read_file", {}, kind="delete").action.kind is Kind.DELETE


def test_from_call_invalid_kind_names_action_kind():
    with pytest.raises(ActionError) as info:
        from_call("read_file", {}, kind="nope")
    assert info.value.field == "action.kind"


@pytest.mark.parametrize("param", ["path", "file_path", "filepath", "filename", "file"])
def test_from_call_path_param_becomes_file_resource_with_canonical_path(param):
    action = from_call("read_file", {param: "/ws/a/../b//c.txt"})
    assert (action.resource.type, action.resource.id) == ("file", "/ws/b/c.txt")


@pytest.mark.parametrize(("param", "rtype"), [("table", "table"), ("database", "database"), ("url", "url"), ("to", "recipient")])
def test_from_call_named_param_becomes_typed_resource(param, rtype):
    action = from_call("tool", {param: "x/../y"})
    assert (action.resource.type, action.resource.id) == (rtype, "x/../y")


def test_from_call_path_param_wins_over_table():
    assert from_call("t", {"table": "users", "path": "/x"}).resource.type == "file"


def test_from_call_without_resource_params_has_no_resource():
    assert from_call("run_shell", {"cmd": "ls"}).resource is None


def test_from_call_empty_path_is_not_a_resource():
    assert from_call("read_file", {"path": ""}).resource is None


def test_from_call_explicit_resource_wins():
    res = Resource("table", "users")
    assert from_call("read_file", {"path": "/x"}, resource=res).resource is res


def test_from_call_string_agent_becomes_agent_with_that_id():
    assert from_call("t", {}, agent="bob").agent == Agent("bob")


def test_from_call_normalizes_params():
    assert dict(from_call("t", {"temperature": 0.5, "tags": ("a", "b")}).action.params) == {"temperature": Decimal("0.5"), "tags": ["a", "b"]}


# --- path canonicalisation ---------------------------------------------------------------------

PATHS = {
    "/ws/a/../b": "/ws/b",
    "//x": "/x",
    "///x//y/": "/x/y",
    "/ws/./a": "/ws/a",
    "/ws/alice/../../etc/passwd": "/etc/passwd",
    "/../../etc": "/etc",
}


@pytest.mark.parametrize("rtype", ["file", "directory"])
@pytest.mark.parametrize(("raw", "canonical"), list(PATHS.items()))
def test_file_resource_ids_are_canonical_paths(rtype, raw, canonical):
    assert Resource(rtype, raw).id == canonical


def test_non_file_resource_ids_are_left_alone():
    assert Resource("url", "https://x//a/../b").id == "https://x//a/../b"


@pytest.mark.parametrize(("raw", "canonical"), list(PATHS.items()))
def test_agent_workspace_is_a_canonical_path(raw, canonical):
    assert Agent("a", attributes={"workspace": raw}).attributes["workspace"] == canonical


def test_from_dict_canonicalises_workspace_and_resource():
    doc = minimal(agent={"id": "a", "attributes": {"workspace": "//ws/a/"}}, resource={"type": "file", "id": "/ws/a/../b/x"})
    action = Action.from_dict(doc)
    assert (action.agent.attributes["workspace"], action.resource.id) == ("/ws/a", "/ws/b/x")


# --- the Python constructors validate too --------------------------------------------------------

CONSTRUCTOR_ERRORS = {
    "agent.id": lambda: Agent(""),
    "agent.roles": lambda: Agent("a", roles="admin"),
    "agent.trust_score": lambda: Agent("a", trust_score=1001),
    "action.tool": lambda: Operation(""),
    "resource.type": lambda: Resource("", "x"),
    "context.tokens_used": lambda: Context(tokens_used=-1),
    "context.stage": lambda: Context(stage="never"),
    "agent": lambda: Action("a", Operation("t")),  # type: ignore[arg-type]
    "resource": lambda: Action(Agent("a"), Operation("t"), resource="x"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize(("field", "build"), list(CONSTRUCTOR_ERRORS.items()), ids=list(CONSTRUCTOR_ERRORS))
def test_constructor_error_names_the_field(field, build):
    with pytest.raises(ActionError) as info:
        build()
    assert info.value.field == field


def test_roles_are_sorted_and_deduplicated():
    assert Agent("a", roles=["b", "a", "b"]).roles == ("a", "b")


def test_stage_string_becomes_enum():
    assert Context(stage="post_tool").stage is Stage.POST_TOOL


# --- workspace, file-tool kinds and path-bearing params ----------------------------------------------


@pytest.mark.parametrize("workspace", [7, None, ["/ws/a"], {"path": "/ws/a"}, True])
def test_agent_refuses_a_workspace_that_is_not_text(workspace):
    with pytest.raises(ActionError, match="agent.attributes.workspace: must be a string"):
        Agent("a", attributes={"workspace": workspace})


def test_action_document_with_a_non_string_workspace_is_refused_by_the_schema():
    with pytest.raises(ActionError, match="workspace"):
        Action.from_dict({"agent": {"id": "a", "attributes": {"workspace": 5}}, "action": {"tool": "write_file"}})


def test_agent_keeps_an_empty_workspace_for_the_policy_to_refuse():
    assert Agent("a", attributes={"workspace": ""}).attributes["workspace"] == ""


@pytest.mark.parametrize(("tool", "kind"), [
    ("move_file", Kind.WRITE), ("rename_file", Kind.WRITE), ("copy_file", Kind.WRITE), ("create_file", Kind.WRITE),
    ("patch_file", Kind.WRITE), ("apply_patch", Kind.WRITE), ("edit_file", Kind.WRITE), ("write_file", Kind.WRITE),
    ("mkdir", Kind.WRITE), ("touch", Kind.WRITE), ("mv", Kind.WRITE), ("cp", Kind.WRITE),
    ("delete_file", Kind.DELETE), ("unlink", Kind.DELETE), ("rmdir", Kind.DELETE), ("remove_file", Kind.DELETE),
])
def test_infer_kind_counts_file_tools_as_writes_or_deletes(tool, kind):
    assert infer_kind(tool) is kind


def test_infer_kind_apply_alone_is_not_a_write():
    assert infer_kind("apply_discount") is Kind.EXECUTE


@pytest.mark.parametrize("param", ["dest", "destination", "dst", "target", "output_path", "src", "source", "new_path"])
def test_path_bearing_param_resolves_to_a_file_resource(param):
    assert infer_resource({param: "/etc/passwd"}) == Resource("file", "/etc/passwd")


def test_infer_resources_lists_every_file_once_in_param_order():
    found = infer_resources({"src": "/ws/a/x", "dest": "/etc/passwd", "path": "/ws/a/./x", "paths": ["/tmp/y", "/etc/passwd"]})
    assert [r.id for r in found] == ["/ws/a/x", "/etc/passwd", "/tmp/y"]


def test_infer_resource_prefers_the_destination_of_a_move():
    assert infer_resource({"src": "/ws/a/x", "dest": "/ws/a/y"}).id == "/ws/a/y"


def test_infer_resources_without_paths_names_the_other_resource():
    assert infer_resources({"to": "bob@example.com"}) == (Resource("recipient", "bob@example.com"),)


def test_from_json_reads_a_fraction_as_an_exact_decimal():
    text = json.dumps(minimal(action={"tool": "refund", "params": {"amount": 0}})).replace('"amount": 0', '"amount": 100.0000000000000000001')
    assert Action.from_json(text).action.params["amount"] == Decimal("100.0000000000000000001")


def test_to_json_writes_a_decimal_as_a_json_number_with_its_digits():
    action = from_call("refund", {"amount": Decimal("100.0000000000000000001")})
    assert '"amount": 100.0000000000000000001' in action.to_json()
    assert Action.from_json(action.to_json()).action.params["amount"] == action.action.params["amount"]


def test_from_agt_context_maps_well_known_names_and_keeps_the_rest_as_attributes():
    from agt.action import from_agt_context

    a = from_agt_context({"tool_name": "send_email", "agent_did": "did:x", "token_count": 7, "action": {"type": "send"},
                          "message": "hi", "user": {"role": "admin"}})
    doc = a.document
    assert (doc["action"]["tool"], doc["action"]["type"], doc["agent"]["id"], doc["context"]["tokens_used"],
            doc["context"]["attributes"]) == ("send_email", "send", "did:x", 7, {"message": "hi", "user": {"role": "admin"}})


def test_from_agt_context_invents_no_environment_and_no_trust_score():
    from agt.action import from_agt_context

    doc = from_agt_context({"tool_name": "t"}).document
    assert ("environment" in doc["context"], "trust_score" in doc["agent"]) == (False, False)


# --- the runtime's own constructors give what the public ones give ----------------------------------

_CALL_CONTEXTS = [
    ("s", "t", 0, 1, 0, None, None),
    ("s", "t", 5, 2, 1, "production", {"user": {"role": "admin"}, "n": 1.5}),
    ("sé", "t", 0, 1, 0, None, {}),  # not ASCII: the public constructor's path
    ("s", "t", 0, 1, 0, "prod\u00e9", None),
]


@pytest.mark.parametrize("args", _CALL_CONTEXTS)
def test_context_for_call_equals_the_public_constructor(args):
    session, task, tokens, calls, files, env, attrs = args
    made = Context._for_call(session, task, tokens, calls, files, env, attrs)
    public = Context(session, task, Stage.PRE_TOOL, tokens, calls, files, env, made.timestamp, attrs or {})
    assert made == public and made.to_dict() == public.to_dict()
    assert made.attributes == public.attributes and type(made.attributes) is type(public.attributes)


@pytest.mark.parametrize("args, field", [
    ((1, "t", 0, 1, 0, None, None), "context.session_id"),
    (("s", "\udc80", 0, 1, 0, None, None), "context.task_id"),
    (("s", "t", -1, 1, 0, None, None), "context.tokens_used"),
    (("s", "t", 0, True, 0, None, None), "context.tool_calls"),
    (("s", "t", 0, 1, 2**63, None, None), "context.files_changed"),
    (("s", "t", 0, 1, 0, 7, None), "context.environment"),
    (("s", "t", 0, 1, 0, None, {"x": object()}), "context.attributes.x"),
])
def test_context_for_call_refuses_what_the_public_constructor_refuses(args, field):
    with pytest.raises(ActionError) as err:
        Context._for_call(*args)
    assert err.value.field == field


_counts = st.one_of(st.sampled_from([0, 1, -1, 2**62, 2**63 - 1, 2**63, 2**64, -(2**63), -(2**64), 5.0, True]),
                    st.integers(-(2**65), 2**65))


@settings(max_examples=400, deadline=None)
@given(_counts, _counts, _counts)
def test_context_for_call_checks_the_counts_as_the_public_constructor_does(tokens, calls, files):
    # _for_call tests the three counts' range at once (their bitwise or): any one out of range, or not an exact int,
    # must take the public constructor's checks, and its refusal name the same field.
    def outcome(make):
        try:
            ctx = make()
        except ActionError as exc:
            return "refused", exc.field
        return "ok", (ctx.tokens_used, ctx.tool_calls, ctx.files_changed), tuple(map(type, (ctx.tokens_used, ctx.tool_calls,
                                                                                               ctx.files_changed)))

    got = outcome(lambda: Context._for_call("s", "t", tokens, calls, files, None, None))
    assert got == outcome(lambda: Context("s", "t", Stage.PRE_TOOL, tokens, calls, files, None))


# --- what Operation and Action work out when they are built ---------------------------------------

_param_names = st.sampled_from(["path", "Path", "dest", "paths", "table", "to", "command", "cmd", "args", "program", "sql",
                                "query", "script", "content", "x"])
_param_values = st.recursive(
    st.one_of(st.sampled_from(["/ws/a/../b", "ls -l /", "rm -rf /", "DROP TABLE t", "select 1", "", "it's \"x\"", "é"]),
              st.text(max_size=6), st.integers(-3, 3), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "path"]), inner, max_size=2)),
    max_leaves=6)
_params = st.one_of(st.none(), st.dictionaries(_param_names, _param_values, max_size=4))
_tools = st.sampled_from(["read_file", "run_shell", "run_db_query", "python_exec", "send_email"])


@settings(max_examples=300, deadline=None)
@given(_tools, st.sampled_from(list(Kind)), _params)
def test_operation_works_out_in_init_what_its_descriptors_work_out_on_first_use(tool, kind, params):
    from agt.facts import NO_FACTS, ROLE_NAMES

    op = Operation(tool, kind, params)
    lazily = {name: vars(Operation)[name].func(op) for name in ("params_text", "resources", "facts")}  # the descriptors' own
    assert (vars(op)["params_text"], vars(op)["resources"]) == (lazily["params_text"], lazily["resources"])
    # Facts are set in __init__ exactly when no param can hold a command or SQL, and are then derive_facts's shared shape.
    eager = "facts" in vars(op)
    assert eager == set(op.params).isdisjoint(ROLE_NAMES)
    assert op.facts == lazily["facts"] == derive_facts(tool, kind.value, dict(op.params))
    if eager:
        assert op.facts is NO_FACTS is derive_facts(tool, kind.value, dict(op.params))


def _reference_document(action: Action) -> dict:
    """Action.document as it was built before (on first use, through Context.to_dict)."""
    agent, op, res, ctx = action.agent, action.action, action.resource, action.context
    agent_doc = {"id": agent.id, "roles": list(agent.roles), "attributes": agent._attributes_dict}
    if agent.trust_score is not None:
        agent_doc["trust_score"] = agent.trust_score
    return {
        "agent": agent_doc,
        "action": {"tool": op.tool, "kind": op.kind._value_, "type": op.tool if op.type is None else op.type,
                   "params": op._params_dict, "params_text": op.params_text, "facts": op.facts},
        "resource": None if res is None else {"type": res.type, "id": res.id, "attributes": res._attributes_dict},
        "context": ctx.to_dict(),
    }


@settings(max_examples=300, deadline=None)
@given(_tools, st.sampled_from(list(Kind)), _params, st.sampled_from([None, 0, 720]), st.sampled_from([None, "prod"]),
       st.sampled_from([None, {"user": {"role": "admin"}}]), st.booleans(), st.booleans())
def test_document_built_with_the_action_is_the_one_built_on_first_use(tool, kind, params, score, env, attrs, stamped, typed):
    op = Operation(tool, kind, params, "verb" if typed else None)
    agent = Agent("alice", ("dev",), score, {"workspace": "/ws/a"})
    ctx = Context._for_call("s", "t", 1, 2, 0, env, attrs) if stamped else Context("s", "", Stage.POST_TOOL, environment=env,
                                                                                   attributes=attrs)
    action = Action(agent, op, op.resources[0] if op.resources else None, ctx)
    # Built with the action exactly when its facts are known: no parser runs outside the engine's guard.
    assert ("document" in vars(action)) == ("facts" in vars(op))
    doc = action.document
    want = _reference_document(action)
    assert json.dumps(doc, default=str) == json.dumps(want, default=str)  # same keys, same order, same values
    assert action.document is doc  # built once
    # The sharing contract: the action's own normalized params, attributes and facts, not copies.
    assert doc["action"]["params"] is op._params_dict and doc["action"]["facts"] is op.facts
    assert doc["agent"]["attributes"] is agent._attributes_dict
    assert doc["context"] is not ctx.to_dict() and doc["context"]["attributes"] is not ctx._attributes_dict
