"""agt._normalize: one portable form for every value, and the canonical params_text pattern rules read."""

from __future__ import annotations

import datetime as dt
import enum
import json
from decimal import Decimal
from pathlib import PurePosixPath
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agt import _json
from agt import _normalize as N
from agt.action import Operation, from_call
from agt.errors import ActionError

SETTINGS = settings(max_examples=150, deadline=None, database=None)


def nest(levels: int, container: str = "list"):
    """``levels`` containers, one inside the other, around a string."""
    value = "x"
    for _ in range(levels):
        value = [value] if container == "list" else {"k": value}
    return value


def rejected_field(value, field="action.params.x") -> str:
    with pytest.raises(ActionError) as info:
        N.normalize_value(value, field)
    return info.value.field


# --- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [(0.1, "0.1"), (0.7, "0.7"), (-2.5, "-2.5"), (19.99, "19.99"), (1e-7, "1E-7")])
def test_float_with_a_fraction_becomes_the_decimal_its_repr_prints(value, text):
    assert N.normalize_value(value, "f") == Decimal(text)
    assert type(N.normalize_value(value, "f")) is Decimal


@pytest.mark.parametrize(("value", "expected"), [(3.0, 3), (-0.0, 0), (1e18, 10**18), (Decimal("100.00"), 100), (Decimal("0.000"), 0)])
def test_number_without_a_fraction_becomes_an_int(value, expected):
    out = N.normalize_value(value, "f")
    assert out == expected and type(out) is int


def test_decimal_drops_trailing_zeros_of_its_fraction():
    assert str(N.normalize_value(Decimal("100.10"), "f")) == "100.1"


def test_decimal_keeps_every_digit():
    assert N.normalize_value(Decimal("100.0000000000000000000001"), "f") == Decimal("100.0000000000000000000001")


@pytest.mark.parametrize(
    "value",
    [Decimal("NaN"), Decimal("Infinity"), Decimal("1E-500"), Decimal("1" * 70 + ".5"), 1e300, Decimal("1E+19")],
    ids=["nan", "inf", "tiny", "too-many-digits", "huge-float", "huge-decimal"],
)
def test_decimal_that_cannot_be_kept_exactly_is_rejected(value):
    assert rejected_field(value) == "action.params.x"


def test_decimal_in_a_list_joins_params_text_with_its_digits():
    assert N.params_text({"argv": ["sleep", Decimal("1.5")]}) == "sleep 1.5"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_float_param_raises_naming_the_param(value):
    with pytest.raises(ActionError) as info:
        from_call("tool", {"x": value})
    assert info.value.field == "action.params.x"


def test_non_finite_float_nested_in_list_names_the_index():
    assert rejected_field({"y": [1, float("inf")]}, "action.params") == "action.params.y[1]"


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 0, True, False])
def test_int_in_signed_64_bit_range_is_kept(value):
    out = N.normalize_value(value, "f")
    assert (out, type(out)) == (value, type(value))


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30], ids=["max+1", "min-1", "huge"])
def test_int_outside_signed_64_bit_range_raises(value):
    assert rejected_field(value) == "action.params.x"


def test_int_subclass_outside_range_raises():
    class Big(int):
        pass

    assert rejected_field(Big(2**64)) == "action.params.x"


# --- bytes, containers, dates, other types --------------------------------------------------------


@pytest.mark.parametrize("value", [b"caf\xc3\xa9", bytearray(b"caf\xc3\xa9"), memoryview(b"caf\xc3\xa9")], ids=["bytes", "bytearray", "memoryview"])
def test_utf8_bytes_become_text(value):
    assert N.normalize_value(value, "f") == "café"


@pytest.mark.parametrize("value", [b"\xff\xfe", b"caf\xe9", bytearray(b"\x80")], ids=["bom16", "latin1", "bytearray"])
def test_non_utf8_bytes_raise(value):
    assert rejected_field(value) == "action.params.x"


def test_tuple_becomes_list():
    assert N.normalize_value((1, ("a", 2)), "f") == [1, ["a", 2]]


def test_set_becomes_sorted_list():
    assert N.normalize_value({3, 1, 2}, "f") == [1, 2, 3]


def test_frozenset_of_strings_becomes_sorted_list():
    assert N.normalize_value(frozenset({"b", "a", "c"}), "f") == ["a", "b", "c"]


def test_mixed_type_set_is_sorted_by_json_form_without_error():
    # json.dumps("a") == '"a"' sorts before json.dumps(1) == '1'.
    assert N.normalize_value({1, "a"}, "f") == ["a", 1]


@pytest.mark.parametrize(
    ("value", "text"),
    [(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "2026-01-02T03:04:05+00:00"), (dt.date(2026, 1, 2), "2026-01-02"),
     (dt.time(3, 4, 5), "03:04:05")],
    ids=["datetime", "date", "time"],
)
def test_dates_and_times_become_isoformat(value, text):
    assert N.normalize_value(value, "f") == text


def test_enum_becomes_its_value():
    class Color(enum.Enum):
        RED = "red"

    assert N.normalize_value(Color.RED, "f") == "red"


def test_path_object_becomes_string():
    assert N.normalize_value(PurePosixPath("/ws/a"), "f") == "/ws/a"


@pytest.mark.parametrize("value", [object(), 1 + 2j, len, Exception("x"), Ellipsis], ids=["object", "complex", "function", "exception", "ellipsis"])
def test_unknown_object_type_raises(value):
    assert rejected_field(value) == "action.params.x"


def test_unknown_object_type_nested_names_the_path():
    assert rejected_field({"a": {"b": [object()]}}, "action.params") == "action.params.a.b[0]"


# --- keys ---------------------------------------------------------------------------------------


def test_int_keys_become_strings():
    assert N.normalize_value({1: "a", "b": 2}, "f") == {"1": "a", "b": 2}


@pytest.mark.parametrize("key", [True, 1.5, (1, 2), None], ids=["bool", "float", "tuple", "none"])
def test_non_string_non_int_keys_raise(key):
    assert rejected_field({key: "v"}) == "action.params.x"


@pytest.mark.parametrize("mapping", [{1: "rm -rf /", "1": "ls"}, {"1": "ls", 1: "rm -rf /"}], ids=["int-first", "str-first"])
def test_int_key_colliding_with_string_key_raises(mapping):
    # Otherwise one value silently vanishes from the document (and params_text) while the tool still receives it.
    with pytest.raises(ActionError):
        N.normalize_value(mapping, "action.params.args")


def test_int_key_colliding_with_string_key_raises_for_other_mappings():
    with pytest.raises(ActionError):
        N.normalize_value(MappingProxyType({"2": "ls", 2: "rm -rf /"}), "action.params.args")


# --- depth limit (the outermost container is level 1) ---------------------------------------------


@pytest.mark.parametrize("container", ["list", "dict"])
def test_max_depth_containers_pass(container):
    assert N.normalize_value(nest(N.MAX_DEPTH, container), "f") == nest(N.MAX_DEPTH, container)


@pytest.mark.parametrize("container", ["list", "dict"])
def test_more_than_max_depth_containers_raise(container):
    with pytest.raises(ActionError, match="nesting deeper"):
        N.normalize_value(nest(N.MAX_DEPTH + 1, container), "f")


def test_params_object_counts_as_a_level_so_max_depth_minus_one_inside_passes():
    assert dict(Operation("t", params={"a": nest(N.MAX_DEPTH - 1)}).params) == {"a": nest(N.MAX_DEPTH - 1)}


def test_params_with_max_depth_levels_inside_raise_naming_the_param():
    with pytest.raises(ActionError) as info:
        Operation("t", params={"a": nest(N.MAX_DEPTH)})
    assert info.value.field.startswith("action.params.a[0]")


def _set_inside(levels: int):
    value = frozenset({"x"})
    for _ in range(levels):
        value = [value]
    return value


def test_set_inside_max_depth_minus_one_lists_passes():
    assert N.normalize_value(_set_inside(N.MAX_DEPTH - 1), "f") == nest(N.MAX_DEPTH)


def test_set_counts_as_a_level():
    with pytest.raises(ActionError, match="nesting deeper"):
        N.normalize_value(_set_inside(N.MAX_DEPTH), "f")


# --- string length ------------------------------------------------------------------------------


def test_string_of_exactly_max_length_passes():
    assert len(N.normalize_value("x" * N.MAX_STRING_LENGTH, "f")) == N.MAX_STRING_LENGTH


def test_string_one_over_max_length_raises():
    assert rejected_field("x" * (N.MAX_STRING_LENGTH + 1)) == "action.params.x"


def test_str_subclass_over_max_length_raises():
    class S(str):
        pass

    assert rejected_field(S("x" * (N.MAX_STRING_LENGTH + 1))) == "action.params.x"


def test_key_over_max_length_raises():
    with pytest.raises(ActionError, match="exceeds the limit"):
        N.normalize_value({"k" * (N.MAX_STRING_LENGTH + 1): 1}, "f")


def test_utf8_bytes_over_max_length_raise():
    assert rejected_field(b"x" * (N.MAX_STRING_LENGTH + 1)) == "action.params.x"


def test_tool_name_over_max_length_raises_naming_action_tool():
    with pytest.raises(ActionError) as info:
        Operation("t" * (N.MAX_STRING_LENGTH + 1))
    assert info.value.field == "action.tool"


def test_string_with_lone_surrogate_raises():
    # It has no UTF-8/JSON form: Cedar would fail to build the request while the yaml engine decided it.
    assert rejected_field("drop\ud800table") == "action.params.x"


def test_key_with_lone_surrogate_raises():
    with pytest.raises(ActionError):
        N.normalize_value({"k\udfff": 1}, "action.params")


def test_non_ascii_string_with_valid_pairs_passes():
    assert N.normalize_value("caf\u00e9 \U0001f600", "f") == "caf\u00e9 \U0001f600"


# --- canonical_text and params_text ---------------------------------------------------------------

CANONICAL = {
    "ascii": ("DROP TABLE users", "drop table users"),
    "full-width NFKC": ("ＤＲＯＰ　ＴＡＢＬＥ", "drop table"),
    "ligature NFKC": ("ﬁle", "file"),
    "casefold": ("Straße", "strasse"),
    "zero-width space dropped": ("DROP\u200bTABLE", "droptable"),
    "zero-width space between spaces": ("DROP \u200b TABLE", "drop table"),
    "zero-width joiner/non-joiner": ("d\u200cr\u200do\u200dp", "drop"),
    "soft hyphen": ("dr\u00adop", "drop"),
    "word joiner": ("d\u2060rop", "drop"),
    "byte order mark": ("\ufeffdrop", "drop"),
    "straight quotes": ("'DROP' \"TABLE\"", "drop table"),
    "backtick": ("`rm` -rf /", "rm -rf /"),
    "curly quotes": ("\u2018drop\u2019 \u201ctable\u201d", "drop table"),
    "whitespace runs": ("  drop\t\n  table  ", "drop table"),
    "no-break space": ("drop\u00a0table", "drop table"),
    "ideographic space": ("drop\u3000\u3000table", "drop table"),
    "quote between spaces": ("drop ' table", "drop table"),
}


@pytest.mark.parametrize(("raw", "folded"), list(CANONICAL.values()), ids=list(CANONICAL))
def test_canonical_text_folds(raw, folded):
    assert N.canonical_text(raw) == folded


def test_params_text_joins_list_of_strings_with_spaces():
    assert N.params_text({"cmd": ["rm", "-rf", "/"]}) == "rm -rf /"


def test_params_text_joins_list_of_scalars_as_json():
    assert N.params_text({"cmd": ["x", 1, True, None]}) == "x 1 true null"


def test_params_text_puts_separate_params_on_separate_lines():
    assert N.params_text({"a": "DROP", "b": "TABLE"}) == "drop\ntable"


def test_params_text_pattern_never_spans_params():
    assert "drop table" not in N.params_text({"a": "x DROP", "b": "TABLE y"})


def test_params_text_newline_inside_one_value_becomes_a_space():
    assert N.params_text({"sql": "DROP\nTABLE"}) == "drop table"


def test_params_text_visits_nested_keys_in_sorted_order():
    assert N.params_text({"z": "1", "a": {"y": "2", "b": ["p", {"q": "3"}]}}) == "p\n3\n2\n1"


def test_params_text_skips_non_strings_and_empty_strings():
    assert N.params_text({"n": 5, "e": "", "b": False, "s": " x "}) == "x"


def test_operation_params_text_uses_normalized_params():
    assert Operation("t", params={"raw": b"DROP TABLE"}).params_text == "drop table"


# --- properties ---------------------------------------------------------------------------------

# Int keys become text; text keys that spell one of those ints would collide (rejected, tested above).
_keys = st.one_of(st.text(max_size=8).filter(lambda k: k not in {str(i) for i in range(-5, 6)}), st.integers(-5, 5))
# Floats inside the signed 64-bit range: larger whole floats are integers out of range (rejected, tested above).
_floats = st.floats(min_value=-9e18, max_value=9e18, allow_nan=False)
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(N.MIN_INT, N.MAX_INT), _floats,
    st.text(max_size=20), st.binary(max_size=10).filter(lambda b: _is_utf8(b)),
    st.datetimes(), st.dates(), st.sampled_from(list(enum.Enum("E", "A B").__members__.values())),
)


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _python_values(depth: int):
    if depth == 0:
        return _scalars
    inner = _python_values(depth - 1)
    return st.one_of(
        _scalars,
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(st.one_of(st.integers(-9, 9), st.text(max_size=4), _floats), max_size=4),
        st.dictionaries(_keys, inner, max_size=3),
    )


def _contains_float(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_contains_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_float(v) for v in value)
    return False


@SETTINGS
@given(st.dictionaries(_keys, _python_values(4), max_size=4))
def test_property_normalized_value_is_strict_json(params):
    out = N.normalize_value(params, "action.params")
    assert _json.loads(_json.dumps(out, allow_nan=False)) == out


@SETTINGS
@given(st.dictionaries(_keys, _python_values(4), max_size=4))
def test_property_normalized_value_contains_no_float(params):
    assert not _contains_float(N.normalize_value(params, "action.params"))


def _text_values(depth: int):
    if depth == 0:
        return st.text(max_size=30)
    inner = _text_values(depth - 1)
    return st.one_of(st.text(max_size=30), st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=3))


_text_params = _text_values(3)


@SETTINGS
@given(st.dictionaries(st.text(max_size=5), st.one_of(_text_params, st.integers(N.MIN_INT, N.MAX_INT), st.booleans()), max_size=5))
def test_property_params_text_has_no_uppercase_ascii(params):
    text = Operation("t", params=params).params_text
    assert not any("A" <= ch <= "Z" for ch in text)


@SETTINGS
@given(st.dictionaries(st.text(max_size=5), st.one_of(_text_params, st.integers(N.MIN_INT, N.MAX_INT), st.booleans()), max_size=5))
def test_property_params_text_has_no_runs_of_spaces(params):
    assert "  " not in Operation("t", params=params).params_text


# --- look-alikes of str and int: the document holds what their base type holds, never the object ---------------------

class _Liar(str):
    """Text that equals everything and says it is another text: a YAML rule comparing it would see its __eq__."""

    def __eq__(self, other):
        return True

    __hash__ = str.__hash__

    def __str__(self):
        return "path"


class _BigLiar(int):
    """An int that says it is in any range it is compared with."""

    def __le__(self, other):
        return True

    def __ge__(self, other):
        return True

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return False

    def __str__(self):
        return "path"


def test_a_str_subclass_value_becomes_plain_text():
    op = Operation("run_shell", params={"command": _Liar("rm -rf /"), "nested": {"k": [_Liar("x")]}})
    assert type(op.params["command"]) is str and op.params["command"] == "rm -rf /"
    assert type(op.params["nested"]["k"][0]) is str
    assert op.facts["shell"]["params"] == ["command"] and op.params_text == "rm -rf /\nx"


class _SaysPath(str):
    def __str__(self):
        return "path"


def test_a_str_or_int_subclass_key_is_never_what_its_str_says():
    # A str subclass key equals its own text, so it collides with it once it is text: refused, as a plain one always
    # was; one whose __str__ said `path` became the key `path` (and a file resource) instead.
    for key in (_SaysPath("x"), _Liar("x")):
        with pytest.raises(ActionError):
            Operation("t", params={key: "/etc/passwd"})
        with pytest.raises(ActionError):
            from_call("t", {key: "/etc/passwd"})
    assert list(Operation("t", params={_BigLiar(7): "/etc/passwd"}).params) == ["7"]


def test_an_int_subclass_is_range_checked_as_the_int_it_holds():
    with pytest.raises(ActionError, match="signed 64-bit"):
        Operation("t", params={"n": _BigLiar(2**70)})
    assert type(Operation("t", params={"n": _BigLiar(5)}).params["n"]) is int


def test_counts_and_trust_scores_are_range_checked_as_the_int_they_hold():
    from agt.action import Agent, Context

    with pytest.raises(ActionError, match="context.tokens_used"):
        Context(tokens_used=_BigLiar(-5))
    with pytest.raises(ActionError, match="context.tool_calls"):
        Context(tool_calls=_BigLiar(2**70))
    with pytest.raises(ActionError, match="agent.trust_score"):
        Agent("a", (), _BigLiar(5000))
    with pytest.raises(ActionError, match="agent.trust_score"):
        Agent("a").with_trust_score(_BigLiar(5000))
    assert type(Agent("a", (), _BigLiar(700)).trust_score) is int and type(Agent("a").with_trust_score(_BigLiar(7)).trust_score) is int
    assert type(Context(tokens_used=_BigLiar(3)).tokens_used) is int
