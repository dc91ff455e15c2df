"""agt._schema: the compiled check (fastjsonschema) never accepts a document jsonschema, the authority, refuses.

Documents are generated around the action schema: its own fields with values of every JSON type (and the
Python values that reach from_dict: bools, floats that are whole, exact decimals, long and empty strings,
duplicate roles), plus unknown fields."""

from __future__ import annotations

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


def obj(fields: dict) -> st.SearchStrategy:
    """An object with any subset of ``fields`` (each a strategy), sometimes with an unknown field or not an object."""
    chosen = st.fixed_dictionaries({}, optional=fields)
    extra = st.dictionaries(st.sampled_from(["extra", "colour"]), VALUES, max_size=1)
    return st.one_of(st.builds(lambda a, b: {**a, **b}, chosen, extra), VALUES)


ROLES = st.one_of(st.lists(st.sampled_from(["dev", "ops", 1, True]), max_size=3), VALUES)
AGENT = obj({"id": VALUES, "roles": ROLES, "trust_score": VALUES, "attributes": obj({"workspace": VALUES})})
ACTION = obj({"tool": VALUES, "kind": VALUES, "type": VALUES, "params": VALUES, "params_text": VALUES, "facts": VALUES})
RESOURCE = st.one_of(st.none(), obj({"type": VALUES, "id": VALUES, "attributes": VALUES}))
CONTEXT = obj({k: VALUES for k in ("session_id", "task_id", "stage", "tokens_used", "tool_calls", "files_changed",
                                   "environment", "timestamp", "attributes")})
DOCUMENTS = obj({"agent": AGENT, "action": ACTION, "resource": RESOURCE, "context": CONTEXT})


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
