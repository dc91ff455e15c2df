"""agt.conditions.parser and agt.conditions.ast: the condition language, parsed into a safe AST."""

import builtins
import os
import subprocess
from decimal import Decimal

import pytest

from agt.conditions import ast, compile_condition, parse
from agt.conditions.ast import And, Compare, Concat, ListExpr, Literal, Not, Or, Path
from agt.errors import ConditionSyntaxError

TOOL = Path(("action", "tool"))
KIND = Path(("action", "kind"))
ENV = Path(("context", "environment"))
TOKENS = Path(("context", "tokens_used"))


def eq(path: Path, value) -> Compare:
    return Compare("==", path, Literal(value))


def syntax_error(text) -> ConditionSyntaxError:
    with pytest.raises(ConditionSyntaxError) as info:
        parse(text)
    return info.value


# --- precedence and grouping ---------------------------------------------------------------------


def test_and_binds_tighter_than_or():
    assert parse("tool == 'a' or tool == 'b' and kind == 'read'") == Or(
        (eq(TOOL, "a"), And((eq(TOOL, "b"), eq(KIND, "read"))))
    )


def test_not_binds_tighter_than_and():
    assert parse("not tool == 'a' and kind == 'read'") == And((Not(eq(TOOL, "a")), eq(KIND, "read")))


def test_not_applies_to_the_whole_comparison():
    assert parse("not context.tokens_used > 5") == Not(Compare(">", TOKENS, Literal(5)))


def test_double_not_nests():
    assert parse("not not tool == 'a'") == Not(Not(eq(TOOL, "a")))


def test_parentheses_override_precedence():
    assert parse("(tool == 'a' or tool == 'b') and kind == 'read'") == And(
        (Or((eq(TOOL, "a"), eq(TOOL, "b"))), eq(KIND, "read"))
    )


def test_chained_and_flattens_into_one_node():
    assert parse("tool == 'a' and tool == 'b' and tool == 'c'") == And(
        (eq(TOOL, "a"), eq(TOOL, "b"), eq(TOOL, "c"))
    )


def test_chained_or_flattens_into_one_node():
    assert parse("tool == 'a' or tool == 'b' or tool == 'c'") == Or((eq(TOOL, "a"), eq(TOOL, "b"), eq(TOOL, "c")))


def test_redundant_parentheses_leave_no_trace():
    assert parse("((tool == 'a'))") == eq(TOOL, "a")


# --- operators -----------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["==", "<", "<=", ">", ">="])
def test_symbol_operators_parse(op):
    assert parse(f"context.tokens_used {op} 3") == Compare(op, TOKENS, Literal(3))


def test_not_equal_parses_as_not_equal_so_a_missing_field_is_unequal():
    # AGT's meaning (issue 12): `x != 3` holds when x is missing; not(==) says so in every engine.
    assert parse("context.tokens_used != 3") == Not(Compare("==", TOKENS, Literal(3)))


@pytest.mark.parametrize("op", ["startswith", "endswith", "contains", "in"])
def test_word_operators_parse(op):
    assert parse(f"action.tool {op} 'x'") == Compare(op, TOOL, Literal("x"))


def test_matches_keeps_the_pattern_as_a_literal():
    assert parse("action.tool matches '^run_.*$'") == Compare("matches", TOOL, Literal("^run_.*$"))


def test_in_list():
    assert parse("tool_name in ['a', 'b']") == Compare("in", TOOL, ListExpr((Literal("a"), Literal("b"))))


def test_not_in_is_one_operator():
    # One operator, read as not(in): a missing field is in no list (AGT's meaning, issue 12).
    assert parse("tool_name not in ['a']") == Not(Compare("in", TOOL, ListExpr((Literal("a"),))))


def test_not_before_in_expression_negates_the_membership():
    assert parse("not tool_name in ['a']") == Not(Compare("in", TOOL, ListExpr((Literal("a"),))))


def test_string_in_field_is_a_substring_test():
    assert parse("'rm' in params_text") == Compare("in", Literal("rm"), Path(("action", "params_text")))


def test_plus_concatenates_before_comparing():
    assert parse("resource.id startswith agent.attributes.workspace + '/'") == Compare(
        "startswith",
        Path(("resource", "id")),
        Concat((Path(("agent", "attributes", "workspace")), Literal("/"))),
    )


def test_plus_chains_left_to_right():
    assert parse("'/ws/' + agent.id + '/' == resource.id") == Compare(
        "==", Concat((Literal("/ws/"), Path(("agent", "id")), Literal("/"))), Path(("resource", "id"))
    )


def test_a_bare_field_is_a_condition():
    assert parse("context.flag") == Path(("context", "flag"))


# --- literals ------------------------------------------------------------------------------------


def literal(text):
    node = parse(f"context.x == {text}")
    assert isinstance(node, Compare) and isinstance(node.right, Literal)
    return node.right.value


@pytest.mark.parametrize(
    "text, value",
    [
        ("'single'", "single"),
        ('"double"', "double"),
        ("''", ""),
        (r"'it\'s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        ('"it\'s"', "it's"),
        (r"'a\nb'", "a\nb"),
        (r"'a\tb'", "a\tb"),
        (r"'a\rb'", "a\rb"),
        (r"'a\0b'", "a\0b"),
        (r"'back\\slash'", "back\\slash"),
        ("'and or not in'", "and or not in"),
    ],
)
def test_string_literals_and_escapes(text, value):
    assert literal(text) == value


@pytest.mark.parametrize(
    "text, value",
    [("42", 42), ("0", 0), ("-1", -1), ("- 7", -7), ("0.5", Decimal("0.5")), ("-0.25", Decimal("-0.25")), ("1e3", 1000),
         ("2.5E-1", Decimal("0.25")), ("100.00", 100)],
)
def test_number_literals(text, value):
    got = literal(text)
    assert (got, type(got)) == (value, type(value))


def test_integers_stay_integers():
    assert type(literal("10")) is int


@pytest.mark.parametrize(
    "text, value",
    [("true", True), ("True", True), ("false", False), ("False", False), ("null", None), ("None", None)],
)
def test_constants(text, value):
    assert literal(text) is value


def test_list_literal_with_mixed_items():
    assert parse("context.x in [1, 'a', true, null, -2]") == Compare(
        "in",
        Path(("context", "x")),
        ListExpr((Literal(1), Literal("a"), Literal(True), Literal(None), Literal(-2))),
    )


def test_empty_list_literal():
    assert parse("context.x in []") == Compare("in", Path(("context", "x")), ListExpr(()))


def test_nested_list_literal():
    assert parse("context.x == [[1], []]") == Compare(
        "==", Path(("context", "x")), ListExpr((ListExpr((Literal(1),)), ListExpr(())))
    )


def test_list_items_may_be_fields():
    assert parse("context.x in [agent.id]") == Compare("in", Path(("context", "x")), ListExpr((Path(("agent", "id")),)))


# --- fields and aliases --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written, resolved",
    [
        ("tool_name", ("action", "tool")),
        ("tool", ("action", "tool")),
        ("kind", ("action", "kind")),
        ("action.type", ("action", "type")),  # AGT's action type, never agt's kind (issue 12)
        ("action", ("action", "type")),
        ("params.path", ("action", "params", "path")),
        ("args.path", ("action", "params", "path")),
        ("arguments.path", ("action", "params", "path")),
        ("params", ("action", "params")),
        ("params_text", ("action", "params_text")),
        ("agent_id", ("agent", "id")),
        ("trust_score", ("agent", "trust_score")),
        ("roles", ("agent", "roles")),
        ("session_id", ("context", "session_id")),
        ("task_id", ("context", "task_id")),
        ("stage", ("context", "stage")),
        ("tokens_used", ("context", "tokens_used")),
        ("tool_calls", ("context", "tool_calls")),
        ("files_changed", ("context", "files_changed")),
        ("environment", ("context", "environment")),
    ],
)
def test_aliases_resolve_onto_the_action_document(written, resolved):
    assert parse(f"{written} == 1") == Compare("==", Path(resolved), Literal(1))


@pytest.mark.parametrize("root", ["agent", "action", "resource", "context"])
def test_roots_resolve_to_themselves(root):
    assert parse(f"{root}.a.b == 1") == Compare("==", Path((root, "a", "b")), Literal(1))


def test_action_type_alias_applies_only_right_after_action():
    assert parse("action.params.type == 'x'") == eq(Path(("action", "params", "type")), "x")


def test_keywords_are_allowed_as_field_segments():
    assert parse("params.in == 1") == Compare("==", Path(("action", "params", "in")), Literal(1))


def test_resolve_alias_returns_none_for_an_unknown_root():
    assert ast.resolve_alias(("tool_nme",)) is None


def test_path_str_is_dotted():
    assert str(Path(("action", "params", "x"))) == "action.params.x"


# --- syntax errors and their columns -------------------------------------------------------------


def test_empty_condition_is_an_error_at_column_one():
    assert syntax_error("").column == 1


def test_blank_condition_is_an_error_after_the_blanks():
    err = syntax_error("   ")
    assert (err.column, "empty" in err.message) == (4, True)


def test_unclosed_parenthesis_points_at_the_end():
    text = "(tool == 'a'"
    err = syntax_error(text)
    assert (err.column, "')'" in err.message) == (len(text) + 1, True)


def test_unopened_parenthesis_points_at_it():
    assert syntax_error("tool == 'a')").column == 12


def test_unclosed_list_points_at_the_end():
    text = "tool in ['a', 'b'"
    assert syntax_error(text).column == len(text) + 1


def test_trailing_token_points_at_it():
    assert syntax_error("tool == 'a' 'b'").column == 13


def test_trailing_field_points_at_it():
    assert syntax_error("tool == 'a' kind").column == 13


def test_dangling_operator_points_at_the_end():
    text = "tool =="
    err = syntax_error(text)
    assert (err.column, "ends too early" in err.message) == (len(text) + 1, True)


def test_dangling_and_points_at_the_end():
    assert syntax_error("tool == 'a' and").column == 16


@pytest.mark.parametrize(
    "text, column",
    [("1 < context.x < 3", 15), ("tool == 'a' == 'b'", 13), ("tool in ['a'] in ['b']", 15), ("tool == 'a' contains 'b'", 13)],
)
def test_chained_comparisons_are_rejected_at_the_second_operator(text, column):
    err = syntax_error(text)
    assert (err.column, "chain" in err.message) == (column, True)


@pytest.mark.parametrize("right", ["action.tool", "'a' + 'b'", "['a']", "1", "null"])
def test_matches_needs_a_literal_string_on_its_right(right):
    err = syntax_error(f"tool_name matches {right}")
    assert (err.column, "matches" in err.message) == (11, True)


def test_unknown_root_field_is_an_error_at_its_first_segment():
    err = syntax_error("tool_nme == 'x'")
    assert (err.column, "tool_nme" in err.message) == (1, True)


def test_unknown_root_later_in_the_condition_points_at_it():
    assert syntax_error("tool == 'x' and tool_nme == 'y'").column == 17


def test_unknown_root_inside_a_list_is_caught():
    assert syntax_error("tool in [toolname]").column == 10


def test_unknown_escape_keeps_the_backslash_for_regexes():
    # AGT's quickstart writes "input_text matches '\\b\\d{3}\\b'": the escapes reach RE2 as written.
    assert parse(r"tool == 'a\qb'") == Compare("==", Path(("action", "tool")), Literal(r"a\qb"))


def test_unterminated_string_is_an_error():
    assert syntax_error("tool == 'abc").column == 9


def test_dot_without_a_field_name_is_an_error():
    assert syntax_error("action. == 1").column == 9


def test_minus_before_a_field_is_an_error():
    assert syntax_error("context.x == -context.y").column == 14


def test_bare_not_in_without_left_side_is_an_error():
    assert syntax_error("not in ['a']").column == 1


def test_non_text_condition_is_a_syntax_error():
    with pytest.raises(ConditionSyntaxError):
        parse(42)  # type: ignore[arg-type]


def test_error_message_quotes_the_condition_and_column():
    err = syntax_error("tool_nme == 'x'")
    assert "column 1" in str(err) and "tool_nme == 'x'" in str(err)


# --- code injection ------------------------------------------------------------------------------

INJECTIONS = [
    ("__import__('os').system('rm -rf /')", 1),
    ("__import__", 1),
    ("action.__class__", 8),
    ("action.__class__.__bases__ == 1", 8),
    ("().__class__.__bases__", 2),
    ("eval('1')", 5),
    ("exec('import os')", 5),
    ("open('/etc/passwd')", 5),
    ("action.tool.upper() == 'X'", 18),
    ("tool == 'a' and getattr(action, 'x')", 24),
    ("lambda: 1", 7),
    ("`ls`", 1),
    ("tool == 'a'; import os", 12),
    ("tool == 'a' # comment", 13),
    ("{'a': 1}", 1),
    ("tool == 'a' if true else true", 13),
    ("[x for x in action]", 4),  # x is AGT flat context now; the comprehension's 'for' is the error
    ("action['tool'] == 'x'", 7),
    ("tool == 'a' @ 'b'", 13),
    ("tool == 'a' | true", 13),
    ("tool == 'a' && true", 13),
    ("tool = 'a'", 6),
    ("$(rm -rf /)", 1),
]


@pytest.mark.parametrize("text, column", INJECTIONS)
def test_code_injection_is_a_syntax_error_at_the_offending_token(text, column):
    assert syntax_error(text).column == column


def guarded(fn) -> list[str]:
    """Run ``fn`` with every way of running code or commands replaced by a recorder; return what was called.

    The patches are undone before returning, so pytest itself can use ``compile`` again.
    """
    calls: list[str] = []
    real_import = builtins.__import__

    def recorder(name):
        def record(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called")

        return record

    def guarded_import(name, *args, **kwargs):
        if name in ("os", "subprocess", "shutil", "pathlib"):
            calls.append(f"__import__({name})")
        return real_import(name, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        for name in ("eval", "exec", "compile"):
            mp.setattr(builtins, name, recorder(name))
        mp.setattr(builtins, "__import__", guarded_import)
        mp.setattr(os, "system", recorder("os.system"))
        mp.setattr(os, "popen", recorder("os.popen"))
        mp.setattr(subprocess, "Popen", recorder("subprocess.Popen"))
        try:
            fn()
        except ConditionSyntaxError:
            calls.append("ConditionSyntaxError")
    return calls


@pytest.mark.parametrize("text", [t for t, _ in INJECTIONS])
def test_code_injection_never_runs_anything(text):
    assert guarded(lambda: compile_condition(parse(text), text)) == ["ConditionSyntaxError"]


def test_parsing_and_evaluating_valid_conditions_never_runs_code():
    text = "tool == 'eval' and not params.cmd contains '__import__' or params_text matches 'os[.]system'"
    doc = {"action": {"tool": "eval", "params": {"cmd": "x"}, "params_text": "os.system"}}
    assert guarded(lambda: compile_condition(parse(text), text)(doc)) == []


def test_injected_command_does_not_create_a_sentinel_file(tmp_path):
    sentinel = tmp_path / "pwned"
    payloads = [
        f"__import__('os').system('touch {sentinel}')",
        f"open('{sentinel}', 'w')",
        f"().__class__.__base__.__subclasses__()[0]('{sentinel}')",
        f"tool == 'a' or __import__('pathlib').Path('{sentinel}').touch()",
    ]
    for text in payloads:
        with pytest.raises(ConditionSyntaxError):
            parse(text)
    assert not sentinel.exists()


def test_quoted_injection_text_is_only_data():
    text = "params.cmd == \"__import__('os').system('x')\""
    assert parse(text) == eq(Path(("action", "params", "cmd")), "__import__('os').system('x')")


# --- nesting bound -----------------------------------------------------------------------------------


def test_parentheses_up_to_the_nesting_bound_parse():
    depth = ast.MAX_DEPTH
    assert parse("(" * depth + "tool_name == 'a'" + ")" * depth) == parse("tool_name == 'a'")


@pytest.mark.parametrize("text", [
    "(" * (ast.MAX_DEPTH + 1) + "true" + ")" * (ast.MAX_DEPTH + 1),
    "not " * (ast.MAX_DEPTH + 1) + "true",
    "[" * (ast.MAX_DEPTH + 1) + "]" * (ast.MAX_DEPTH + 1) + " == 1",
    "(" * 2000 + "true" + ")" * 2000,
])
def test_nesting_past_the_bound_is_a_syntax_error_not_a_recursion_error(text):
    with pytest.raises(ConditionSyntaxError, match="nests deeper than"):
        parse(text)
