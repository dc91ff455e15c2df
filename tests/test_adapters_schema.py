"""agt.adapters._schema: a tool's arguments must match its own schema strictly, and its defaults are what the policy sees."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agt.adapters._schema import SchemaMismatch, conform

SCHEMA = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "recursive": {"type": "boolean", "default": True},
                   "depth": {"type": "integer"}, "ratio": {"type": "number"}},
    "required": ["path"],
}


def test_no_schema_leaves_the_params_as_they_are():
    assert conform({"x": "1"}, None) == {"x": "1"}


def test_a_missing_argument_takes_its_default():
    assert conform({"path": "/tmp"}, SCHEMA)["recursive"] is True


def test_a_given_argument_keeps_its_value():
    assert conform({"path": "/tmp", "recursive": False}, SCHEMA)["recursive"] is False


@pytest.mark.parametrize("spelling", ["true", 1, "yes"])
def test_a_value_the_framework_would_coerce_is_refused(spelling):
    with pytest.raises(SchemaMismatch, match="recursive"):
        conform({"path": "/", "recursive": spelling}, SCHEMA)


def test_a_missing_required_argument_is_refused():
    with pytest.raises(SchemaMismatch, match="'path' is a required property"):
        conform({}, SCHEMA)


def test_an_integral_decimal_is_an_integer():
    assert conform({"path": "/", "depth": Decimal("5.0")}, SCHEMA)["depth"] == 5


def test_a_fractional_decimal_is_not_an_integer():
    with pytest.raises(SchemaMismatch, match="depth"):
        conform({"path": "/", "depth": Decimal("5.5")}, SCHEMA)


def test_a_decimal_is_a_number():
    assert conform({"path": "/", "ratio": Decimal("0.25")}, SCHEMA)["ratio"] == Decimal("0.25")


def test_a_schema_that_is_not_an_object_is_refused():
    with pytest.raises(SchemaMismatch, match="not a JSON Schema object"):
        conform({}, ["not", "a", "schema"])  # type: ignore[arg-type]


def test_a_broken_schema_is_refused():
    with pytest.raises(SchemaMismatch, match="cannot be applied"):
        conform({"a": 1}, {"type": "no-such-type"})


def test_the_default_is_a_copy():
    schema = {"type": "object", "properties": {"tags": {"type": "array", "default": []}}}
    conform({}, schema)["tags"].append("x")
    assert schema["properties"]["tags"]["default"] == []


def test_a_default_outside_its_own_type_is_still_filled_in():
    schema = {"type": "object", "properties": {"tag": {"type": "string", "default": None}}}
    assert conform({}, schema) == {"tag": None}


def test_a_value_outside_the_type_is_refused_even_when_it_equals_the_default():
    schema = {"type": "object", "properties": {"tag": {"type": "string", "default": None}}}
    with pytest.raises(SchemaMismatch, match="tag"):
        conform({"tag": None}, schema)


def test_a_filled_in_default_satisfies_required():
    schema = {"type": "object", "properties": {"tag": {"type": ["string", "null"], "default": None}}, "required": ["tag"]}
    assert conform({}, schema) == {"tag": None}
