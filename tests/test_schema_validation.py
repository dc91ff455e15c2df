"""agt._schema: the compiled check (fastjsonschema) never accepts a document jsonschema, the authority, refuses.

Documents are valid ones with one field changed to a value of any JSON type or removed (and the
Python values that reach from_dict: bools, floats that are whole, exact decimals, long and empty strings,
duplicate roles), plus unknown fields."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agt._schema import _fast_check, _validator, validate_action_document
from agt.errors import ActionError

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 1005), st.sampled_from([0.0, 1.0, 2.5, -1.0]),
    st.sampled_from([Decimal("1"), Decimal("1.5"), Decimal("700")]), st.text(max_size=3),
    st.sampled_from(["", "a" * 256, "a" * 257, "read", "write", "pre_tool", "file"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                      max_leaves=6)


KINDS = ["read", "write", "delete", "execute", "network", "message", "delegate"]
TEXT = st.text(max_size=4)
NAME = st.text(min_size=1, max_size=4)
VALID = st.fixed_dictionaries(
    {
        "agent": st.fixed_dictionaries({"id": NAME}, optional={
            "roles": st.lists(TEXT, unique=True, max_size=3), "trust_score": st.integers(0, 1000),
            "attributes": st.fixed_dictionaries({}, optional={"workspace": TEXT})}),
        "action": st.fixed_dictionaries({"tool": NAME}, optional={
            "kind": st.sampled_from(KINDS), "type": NAME, "params": st.dictionaries(TEXT, VALUES, max_size=2),
            "params_text": TEXT, "facts": st.dictionaries(TEXT, VALUES, max_size=2)}),
    },
    optional={
        "resource": st.one_of(st.none(), st.fixed_dictionaries({"type": NAME, "id": TEXT},
                                                                optional={"attributes": st.dictionaries(TEXT, VALUES, max_size=2)})),
        "context": st.fixed_dictionaries({}, optional={
            "session_id": TEXT, "task_id": TEXT, "stage": st.sampled_from(["pre_input", "pre_tool", "post_tool", "pre_output"]),
            "tokens_used": st.integers(0, 10**6), "tool_calls": st.integers(0, 50), "files_changed": st.integers(0, 50),
            "environment": TEXT, "timestamp": TEXT, "attributes": st.dictionaries(TEXT, VALUES, max_size=2)}),
    },
)
PATHS = [
    ("agent",), ("agent", "id"), ("agent", "roles"), ("agent", "trust_score"), ("agent", "attributes"),
    ("agent", "attributes", "workspace"), ("agent", "colour"), ("action",), ("action", "tool"), ("action", "kind"),
    ("action", "type"), ("action", "params"), ("action", "params_text"), ("action", "facts"), ("action", "colour"),
    ("resource",), ("resource", "type"), ("resource", "id"), ("resource", "attributes"), ("resource", "colour"),
    ("context",), ("context", "stage"), ("context", "tokens_used"), ("context", "tool_calls"),
    ("context", "files_changed"), ("context", "session_id"), ("context", "attributes"), ("context", "colour"), ("colour",),
]
DELETE = object()


def mutate(doc: dict, path: tuple[str, ...], value: object) -> dict:
    """``doc`` with the value at ``path`` replaced (or removed, for DELETE); the parents are made as needed."""
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value is DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return out


# A valid document with one field changed to a value of any type, or removed: near the schema's boundary, where
# the two validators could disagree. About a fifth of them are still valid.
DOCUMENTS = st.builds(mutate, VALID, st.sampled_from(PATHS), st.one_of(VALUES, st.just(DELETE)))


def fast_accepts(doc) -> bool:
    try:
        _fast_check()(doc)
        return True
    except Exception:  # noqa: BLE001
        return False


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_the_compiled_check_accepts_only_what_jsonschema_accepts(doc):
    if fast_accepts(doc):
        assert _validator().is_valid(doc), doc


@settings(max_examples=300, deadline=None)
@given(VALID)
def test_the_compiled_check_accepts_valid_documents(doc):
    assert fast_accepts(doc), doc  # else the property above would hold vacuously, and every call go the slow way


@pytest.mark.parametrize("doc", [
    {"agent": {"id": "a", "trust_score": True}, "action": {"tool": "x"}},
    {"agent": {"id": "a", "roles": ["x", "x"]}, "action": {"tool": "x"}},
    {"agent": {"id": ""}, "action": {"tool": "x"}},
    {"agent": {"id": "a"}, "action": {"tool": "x"}, "context": {"tool_calls": -1}},
    {"agent": {"id": "a"}, "action": {"tool": "x", "kind": "nope"}},
    {"agent": {"id": "a"}, "action": {"tool": "x"}, "colour": 1},
])
def test_an_invalid_document_is_refused_naming_the_field(doc):
    with pytest.raises(ActionError):
        validate_action_document(doc)


def test_the_compiled_check_refuses_duplicate_roles():
    # uniqueItems is checked by a set beside the compiled schema (see _fast_check), not by fastjsonschema
    assert not fast_accepts({"agent": {"id": "a", "roles": ["x", "y", "x"]}, "action": {"tool": "t"}})
    assert fast_accepts({"agent": {"id": "a", "roles": ["x", "y"]}, "action": {"tool": "t"}})


def test_the_compiled_check_leaves_no_reference_cycles():
    import gc

    doc = {"agent": {"id": "a", "roles": ["x", "y"]}, "action": {"tool": "t", "params": {"p": [1, {"q": "r"}]}}}
    _fast_check()(doc)
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(50):
            _fast_check()(doc)
        assert gc.collect() == 0  # garbage that only the collector frees: it would run every ~140 decisions
    finally:
        if was:
            gc.enable()
