"""agt.conditions.compiler: what a compiled condition means on a plain action document."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agt._normalize import normalize_decimal
from agt.conditions import MISSING, EqualityKey, LowerBoundKey, compile_condition, index_key, parse
from agt.errors import ConditionEvalError, ConditionSyntaxError

DOC = {
    "agent": {"id": "a1", "roles": ["dev", "ops"], "trust_score": 700, "attributes": {"workspace": "/ws/a1"}},
    "action": {
        "tool": "write_file",
        "kind": "write",
        "params": {
            "path": "/ws/a1/notes.txt",
            "text": "hello world",
            "one": 1,
            "zero": 0,
            "flag": True,
            "off": False,
            "nothing": None,
            "size_text": "20",
            "tags": ["red", "blue", 3],
            "obj": {"k": 1, "nested": {"deep": "yes"}},
            "empty": "",
        },
        "params_text": "/ws/a1/notes.txt\nhello world",
    },
    "resource": None,
    "context": {"session_id": "s", "tokens_used": 120, "tool_calls": 3, "environment": "production"},
}


def ev(text: str, doc=DOC):
    return compile_condition(parse(text), text)(doc)


# --- missing fields ------------------------------------------------------------------------------

MISSING_FIELDS = ["params.absent", "params.obj.absent.deeper", "context.absent", "resource.type", "params.text.length"]
OPERATOR_CASES = [
    "== 1", "== 'x'", "== null", "< 1", "<= 1", "> 1", ">= 1",
    "< 'a'", "in ['a', 1]", "in 'abc'",
    "startswith 'a'", "endswith 'a'", "contains 'a'", "matches '.*'",
]
NEGATED_CASES = ["!= 1", "!= 'x'", "!= null", "not in ['a', 1]", "not in ['a']", "not in 'abc'"]


@pytest.mark.parametrize("field", MISSING_FIELDS)
@pytest.mark.parametrize("rest", OPERATOR_CASES)
def test_missing_field_makes_every_comparison_false(field, rest):
    assert ev(f"{field} {rest}") is False


@pytest.mark.parametrize("field", MISSING_FIELDS)
@pytest.mark.parametrize("rest", NEGATED_CASES)
def test_missing_field_makes_not_equal_and_not_in_true(field, rest):
    # AGT's meaning (issue 12): a missing field equals nothing and is in nothing.
    assert ev(f"{field} {rest}") is True


@pytest.mark.parametrize("field", MISSING_FIELDS)
@pytest.mark.parametrize("rest", OPERATOR_CASES)
def test_not_inverts_a_comparison_on_a_missing_field(field, rest):
    assert ev(f"not ({field} {rest})") is True


@pytest.mark.parametrize("text", ["1 == params.absent", "'a' in params.absent", "params.one == context.absent"])
def test_missing_field_on_the_right_makes_the_comparison_false(text):
    assert ev(text) is False


def test_missing_field_inside_a_list_literal_is_not_missing_the_list():
    # The list exists; one of its items is the MISSING marker, which equals nothing.
    assert ev("params.one in [params.absent, 1]") is True


def test_missing_field_in_concatenation_makes_the_comparison_false():
    assert ev("'x' + params.absent == 'x'") is False


def test_resource_null_is_present_and_equals_null():
    assert ev("resource == null") is True


def test_missing_root_is_missing():
    assert ev("context.tokens_used > 1", {"agent": {}}) is False


def test_root_that_is_not_an_object_makes_its_fields_missing():
    assert ev("context.tokens_used == 1", {"context": "oops"}) is False


def test_not_on_a_bare_missing_field_is_true():
    assert ev("not params.absent") is True


def test_or_skips_a_missing_field():
    assert ev("params.absent == 1 or params.one == 1") is True


def test_bare_missing_field_as_the_whole_condition_is_falsy():
    assert not ev("params.absent")


# --- strict equality -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("params.one == true", False),
        ("params.one == '1'", False),
        ("params.one != true", True),
        ("params.one != '1'", True),
        ("params.flag == 1", False),
        ("params.zero == false", False),
        ("params.off == 0", False),
        ("params.nothing == false", False),
        ("params.nothing == null", True),
        ("params.empty == null", False),
        ("params.size_text == 20", False),
        ("params.one == 1", True),
        ("params.one == 1.0", True),
        ("params.flag == true", True),
        ("params.tags == ['red', 'blue', 3]", True),
        ("params.tags == ['red', 'blue', '3']", False),
        ("context.tool_calls == 3", True),
        ("context.tool_calls == '3'", False),
        ("context.tool_calls == true", False),
        ("agent.id == 'a1'", True),
        ("agent.id == 1", False),
    ],
)
def test_equality_is_strict_about_types(text, expected):
    assert ev(text) is expected


# --- ordering ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("context.tokens_used > 100", True),
        ("context.tokens_used >= 120", True),
        ("context.tokens_used < 120", False),
        ("context.tokens_used <= 119", False),
        ("params.one < 1.5", True),
        ("params.one > -1", True),
        ("params.text < 'z'", True),
        ("params.text >= 'hello world'", True),
        ("agent.id < 'b'", True),
    ],
)
def test_ordering_numbers_with_numbers_and_strings_with_strings(text, expected):
    assert ev(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "params.size_text > 10",
        "context.environment > 1",
        "context.tokens_used < 'a'",
        "params.one < 'a'",
        "params.flag > 0",
        "context.tokens_used > true",
        "params.tags < 1",
        "params.obj >= 1",
        "params.nothing < 1",
        "agent.trust_score < null",
    ],
)
def test_ordering_mixed_types_raises_condition_eval_error(text):
    with pytest.raises(ConditionEvalError):
        ev(text)


def test_ordering_error_inside_not_still_raises():
    with pytest.raises(ConditionEvalError):
        ev("not params.size_text > 10")


def test_and_short_circuits_before_an_ordering_error():
    assert ev("params.one == 2 and params.size_text > 10") is False


# --- membership and contains ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("params.one in [1, 2]", True),
        ("params.one in ['1']", False),
        ("params.one in [true]", False),
        ("params.flag in [1]", False),
        ("params.one not in ['1']", True),
        ("params.one not in [1]", False),
        ("'red' in params.tags", True),
        ("3 in params.tags", True),
        ("'3' in params.tags", False),
        ("'wor' in params.text", True),
        ("'WOR' in params.text", False),
        ("'k' in params.obj", True),
        ("'v' in params.obj", False),
        ("1 in params.obj", False),
        ("'nested' not in params.obj", False),
        ("action.tool in ['write_file', 'read_file']", True),
        ("action.tool in ['read_file']", False),
        ("action.tool not in ['read_file']", True),
        ("context.tokens_used in ['120']", False),
        ("context.tokens_used not in ['120']", True),
        ("context.tokens_used in [120]", True),
    ],
)
def test_in_checks_lists_strings_and_object_keys(text, expected):
    assert ev(text) is expected


@pytest.mark.parametrize("text", ["1 in params.text", "params.one in params.one", "'a' in params.flag", "'a' not in params.nothing"])
def test_in_with_a_right_side_it_cannot_search_raises(text):
    with pytest.raises(ConditionEvalError):
        ev(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("params.tags contains 'red'", True),
        ("params.tags contains 'green'", False),
        ("params.tags contains 3", True),
        ("params.text contains 'lo wo'", True),
        ("params.text contains 'xyz'", False),
        ("params.obj contains 'k'", True),
        ("params_text contains 'hello'", True),
        ("params_text contains 'HELLO'", False),
        ("agent.roles contains 'ops'", True),
    ],
)
def test_contains_is_in_reversed(text, expected):
    assert ev(text) is expected


@pytest.mark.parametrize("text", ["params.one contains 'a'", "context.tokens_used contains 'a'", "params.text contains 1"])
def test_contains_on_what_cannot_contain_raises(text):
    with pytest.raises(ConditionEvalError):
        ev(text)


# --- string operators ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("params.path startswith '/ws/a1/'", True),
        ("params.path startswith '/ws/a2/'", False),
        ("params.path endswith '.txt'", True),
        ("params.path endswith '.md'", False),
        ("params.path startswith agent.attributes.workspace + '/'", True),
        ("params.path startswith ''", True),
    ],
)
def test_startswith_and_endswith(text, expected):
    assert ev(text) is expected


@pytest.mark.parametrize(
    "text",
    ["params.one startswith 'a'", "params.text startswith 1", "params.tags endswith 'x'", "params.text endswith null"],
)
def test_startswith_and_endswith_with_a_non_string_raise(text):
    with pytest.raises(ConditionEvalError):
        ev(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("params.text matches 'wor'", True),
        ("params.text matches '^wor'", False),
        ("params.text matches '^hello'", True),
        ("params.text matches 'o\\\\sw'", True),
        ("params.text matches 'W'", False),
        ("params.text matches '(?i)W'", True),
        ("action.tool matches '^(write|read)_'", True),
    ],
)
def test_matches_uses_re_search(text, expected):
    assert ev(text) is expected


def test_matches_on_a_non_string_raises():
    with pytest.raises(ConditionEvalError):
        ev("params.one matches '1'")


@pytest.mark.parametrize("pattern", ["(", "[a-", "*", "a{2,1}"])
def test_regex_that_does_not_compile_raises_syntax_error_at_compile_time(pattern):
    node = parse(f"params.text matches '{pattern}'")
    with pytest.raises(ConditionSyntaxError):
        compile_condition(node, "")


# --- concatenation and logic ---------------------------------------------------------------------


def test_concatenation_joins_strings():
    assert ev("'/ws/' + agent.id + '/notes.txt' == params.path") is True


def test_concatenation_of_a_non_string_raises():
    with pytest.raises(ConditionEvalError):
        ev("'n' + params.one == 'n1'")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("params.flag", True),
        ("params.off", False),
        ("params.flag and params.zero", False),
        ("params.off or params.text", True),
        ("not params.empty", True),
        ("not params.tags", False),
        ("params.one == 1 and (params.off or agent.id == 'a1')", True),
    ],
)
def test_and_or_not_use_truthiness_of_non_comparisons(text, expected):
    assert bool(ev(text)) is expected


@pytest.mark.parametrize("text", ["params.flag and params.one", "params.off or params.text", "not params.text"])
def test_and_or_not_return_real_booleans(text):
    assert type(ev(text)) is bool


# --- fast paths agree with the general path and a reference --------------------------------------


NUMBERS = (int, float, Decimal)


def _same(a, b):
    num = NUMBERS
    if type(a) in num and type(b) in num:
        return a == b
    return type(a) is type(b) and a == b


def _member(a, b):
    if type(b) is list:
        return any(_same(a, x) for x in b)
    if type(b) is str:
        if type(a) is not str:
            raise ConditionEvalError("in str")
        return a in b
    if type(b) is dict:
        return type(a) is str and a in b
    raise ConditionEvalError("in what")


def reference(op: str, v, c):
    """The documented semantics, written out independently of the compiler."""
    if v is MISSING:
        return op in ("!=", "not in")  # a missing field equals nothing and is in nothing (issue 12)
    if op == "==":
        return _same(v, c)
    if op == "!=":
        return not _same(v, c)
    if op in ("<", "<=", ">", ">="):
        nums = NUMBERS
        if not ((type(v) in nums and type(c) in nums) or (type(v) is str and type(c) is str)):
            raise ConditionEvalError("order")
        return {"<": v < c, "<=": v <= c, ">": v > c, ">=": v >= c}[op]
    if op == "in":
        return _member(v, c)
    if op == "not in":
        return not _member(v, c)
    if op == "contains":
        return _member(c, v)
    if type(v) is not str or type(c) is not str:
        raise ConditionEvalError(op)
    return v.startswith(c) if op == "startswith" else v.endswith(c)


def render(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    return str(value) if isinstance(value, Decimal) else repr(value)


def outcome(fn):
    try:
        return ("value", fn())
    except ConditionEvalError:
        return ("error", None)


TEXT = st.text(alphabet="ab'\\ /", max_size=4)
# Scalar values as they appear in a normalized action document: no floats (those become exact decimals).
DECIMALS = st.decimals(min_value=-5, max_value=5, places=2, allow_nan=False).map(lambda d: normalize_decimal(d, "x"))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), DECIMALS, TEXT)
DOC_VALUES = st.one_of(
    st.just(MISSING),
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(TEXT, SCALARS, max_size=2),
)
LITERALS = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.lists(TEXT, max_size=3))
OPS = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startswith", "endswith"])


@st.composite
def cases(draw, values=DOC_VALUES):
    """An operator, a document value and a literal; the literal is often built from the value, so that
    equal, member and prefix cases come up as often as the unequal ones."""
    op = draw(OPS)
    value = draw(values)
    related = [LITERALS]
    if value is not MISSING and not isinstance(value, dict):
        related.append(st.just(value))
        if not isinstance(value, list):
            related.append(st.lists(SCALARS, max_size=2).map(lambda items: [*items, value]))
        if type(value) in NUMBERS:  # boundaries for the ordering operators
            related.append(st.sampled_from([int(value) - 1, int(value), int(value) + 1]))
        if isinstance(value, str):
            related.append(st.integers(0, len(value)).map(lambda n: value[:n]))
            related.append(st.integers(0, len(value)).map(lambda n: value[n:]))
    return op, value, draw(st.one_of(*related))


def fast_and_general(op, value, literal):
    lit = render(literal)
    fast_text = f"context.x {op} {lit}"  # a 2-part path: the specialised closures
    general_text = f"context.g.x {op} {lit}"  # a 3-part path: the general closures
    fast_doc = {"context": {} if value is MISSING else {"x": value}}
    general_doc = {"context": {"g": {} if value is MISSING else {"x": value}}}
    fast = outcome(lambda: compile_condition(parse(fast_text), fast_text)(fast_doc))
    general = outcome(lambda: compile_condition(parse(general_text), general_text)(general_doc))
    return fast, general


@settings(max_examples=400, deadline=None)
@given(case=cases())
def test_fast_path_agrees_with_the_general_path(case):
    op, value, literal = case
    fast, general = fast_and_general(op, value, literal)
    assert fast == general


@settings(max_examples=400, deadline=None)
@given(case=cases())
def test_fast_path_agrees_with_the_reference_semantics(case):
    op, value, literal = case
    fast, _ = fast_and_general(op, value, literal)
    assert fast == outcome(lambda: reference(op, value, literal))


SPECIALISED_SHAPES = [("==", 3), ("==", "a"), ("<", 2), (">=", 0), ("contains", "a"), ("in", ["a", "b"]), ("not in", ["a"])]
SHAPE_VALUES = [MISSING, 3, 3.0, -1, "a", "abc", True, None, ["a"], {"a": 1}]


@pytest.mark.parametrize(
    "op, literal, value",
    [
        (op, literal, value)
        for op, literal in SPECIALISED_SHAPES
        for value in SHAPE_VALUES
    ],
)
def test_fast_path_agrees_with_the_general_path_on_each_specialised_shape(op, literal, value):
    fast, general = fast_and_general(op, value, literal)
    assert fast == general


def test_fast_equality_path_treats_equal_float_and_int_as_equal():
    fast, general = fast_and_general("==", 3.0, 3)
    assert fast == general


# --- index_key -----------------------------------------------------------------------------------


def test_index_key_of_tool_equality_in_a_conjunction():
    assert index_key(parse("tool_name == 'x' and params.size > 10")) == EqualityKey(("action", "tool"), frozenset({"x"}))


def test_index_key_of_tool_membership():
    assert index_key(parse("params.a == 1 and tool_name in ['x', 'y']")) == EqualityKey(
        ("action", "tool"), frozenset({"x", "y"})
    )


def test_index_key_prefers_the_tool_name_over_another_equality():
    assert index_key(parse("environment == 'prod' and tool == 'x'")) == EqualityKey(("action", "tool"), frozenset({"x"}))


def test_index_key_falls_back_to_another_equality():
    assert index_key(parse("context.tokens_used > 5 and environment == 'prod'")) == EqualityKey(
        ("context", "environment"), frozenset({"prod"})
    )


def test_index_key_of_a_single_comparison():
    assert index_key(parse("tool_name == 'x'")) == EqualityKey(("action", "tool"), frozenset({"x"}))


@pytest.mark.parametrize("text, bound", [("tokens_used > 100", 101), ("tokens_used >= 100", 100), ("tokens_used > -1", 0)])
def test_index_key_of_an_integer_lower_bound(text, bound):
    assert index_key(parse(text)) == LowerBoundKey(("context", "tokens_used"), bound)


def test_index_key_takes_the_tightest_lower_bound():
    assert index_key(parse("tokens_used > 10 and tokens_used >= 50")) == LowerBoundKey(("context", "tokens_used"), 50)


@pytest.mark.parametrize(
    "text",
    [
        "tool_name == 'x' or tool_name == 'y'",
        "tool_name == 'x' or params.a == 1",
        "not tool_name == 'x'",
        "tool_name != 'x'",
        "tool_name not in ['x']",
        "tool_name in []",
        "'x' == tool_name",
        "context.x == 1",
        "tokens_used > 1.5",
        "tokens_used < 10",
        "params_text contains 'rm'",
        "tool_name in ['x', 1]",
        "params.flag",
    ],
)
def test_index_key_is_none_without_a_necessary_equality_or_bound(text):
    assert index_key(parse(text)) is None


# --- matches runs on RE2 ----------------------------------------------------------------------------


def _matches(pattern: str, text: str) -> bool:
    return compile_condition(parse(f"params.t matches {pattern!r}"))({"action": {"params": {"t": text}}})


def test_matches_searches_anywhere_like_opa_regex_match():
    assert _matches("b+c", "abbbcd")


def test_matches_digit_class_is_ascii_as_in_opa():
    assert not _matches("^\\d$", "٣") and _matches("^\\d$", "3")


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?=a)", "(?<=a)b", "a++", "a{1001}"])
def test_matches_refuses_what_re2_cannot_run(pattern):
    with pytest.raises(ConditionSyntaxError, match="does not compile as RE2"):
        _matches(pattern, "a")


def test_structured_conditions_nested_past_the_ceiling_are_refused():
    from agt.conditions import ast, compile_predicate

    node = parse("tool_name == 'a'")
    for _ in range(2 * ast.MAX_DEPTH):
        node = ast.And((node,))
    with pytest.raises(ConditionSyntaxError, match="nests deeper than"):
        compile_predicate(node)


# --- exact decimals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, text, expected",
    [
        (Decimal("19.99"), "context.x > 100", False),
        (Decimal("100.01"), "context.x > 100", True),
        (100, "context.x > 100.00", False),
        (Decimal("100.01"), "context.x > 100.00", True),
        (Decimal("0.1"), "context.x == 0.1", True),
        (Decimal("0.1"), "context.x <= 0.1", True),
        (Decimal("100.5"), "context.x in [1, 100.50]", True),
    ],
)
def test_decimal_compares_exactly_with_int_and_decimal_literals(value, text, expected):
    assert compile_condition(parse(text), text)({"context": {"x": value}}) is expected


def test_decimal_literal_is_exact_not_a_float():
    # A float literal would be 0.1000000000000000055…, and a Decimal 0.1 would compare below it.
    assert parse("context.x <= 0.1").right.value == Decimal("0.1")


def test_decimal_against_string_is_an_evaluation_error():
    with pytest.raises(ConditionEvalError, match="cannot order str"):
        compile_condition(parse("context.x > 100.5"), "")({"context": {"x": "19.99"}})
