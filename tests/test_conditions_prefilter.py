"""agt.conditions.prefilter: trigger sets and the index that narrows conditions to candidates.

The index is a prefilter: it may keep a condition that turns out false, never drop one that is true or raises.
The property tests compare it with evaluating every condition on random documents and random condition sets.
"""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agt.conditions import ast, compile_predicate, parse
from agt.conditions.compiler import compile_regex
from agt.conditions.prefilter import AtLeast, Equals, Pattern, Prefilter, triggers
from agt.errors import ConditionEvalError, ConditionSyntaxError

TEXT = ast.Path(("action", "params_text"))
TOOL = ast.Path(("action", "tool"))
Q = ast.Path(("action", "params", "q"))
N = ast.Path(("action", "params", "n"))
ENV = ast.Path(("context", "environment"))
FLAT = ast.FlatPath("q", (("action", "params", "q"), ("context", "attributes", "q")))


# --- trigger sets ----------------------------------------------------------------------------------


def test_tool_equality_is_an_equality_atom():
    assert triggers(parse("tool_name == 'x'")) == {Equals(TOOL, "x")}


def test_tool_membership_is_one_atom_per_member():
    assert triggers(parse("tool_name in ['x', 'y']")) == {Equals(TOOL, "x"), Equals(TOOL, "y")}


def test_a_conjunction_takes_the_tool_name_over_a_pattern():
    assert triggers(parse("params_text contains 'a' and tool_name == 'x'")) == {Equals(TOOL, "x")}


def test_a_conjunction_takes_a_pattern_over_a_lower_bound():
    assert triggers(parse("context.tokens_used > 5 and params_text contains 'a'")) == {Pattern(TEXT, "contains", "a")}


def test_a_conjunction_takes_the_tightest_lower_bound():
    assert triggers(parse("tokens_used > 10 and tokens_used >= 50")) == {AtLeast(ast.Path(("context", "tokens_used")), 50)}


def test_a_disjunction_is_the_union_of_its_parts():
    assert triggers(parse("params_text contains 'a' or environment == 'prod'")) == {
        Pattern(TEXT, "contains", "a"), Equals(ENV, "prod")}


def test_a_disjunction_with_an_unknown_part_has_no_triggers():
    assert triggers(parse("params_text contains 'a' or context.tokens_used < 5")) is None


@pytest.mark.parametrize("text", ["not (params_text contains 'a')", "params_text contains 'a' or not (tool_name == 'x')",
                                  "tool_name != 'x'", "tool_name not in ['x']"])
def test_a_negated_comparison_has_no_triggers(text):
    assert triggers(parse(text)) is None


def test_a_double_negation_is_its_operand():
    assert triggers(parse("not (not (params_text contains 'a'))")) == {Pattern(TEXT, "contains", "a")}


def test_a_negated_disjunction_of_negations_is_the_union():
    # not (not a or not b) is a and b: its part a's set serves.
    assert triggers(parse("not (not (params_text contains 'a') or not (tool_name == 'x'))")) == {Equals(TOOL, "x")}


@pytest.mark.parametrize("op", ["contains", "startswith", "endswith", "matches"])
def test_each_string_operator_is_a_pattern_atom(op):
    assert triggers(parse(f"params.q {op} 'a'")) == {Pattern(Q, op, "a")}


def test_a_literal_in_a_field_is_that_field_containing_it():
    assert triggers(parse("'a' in params_text")) == {Pattern(TEXT, "contains", "a")}


def test_flat_context_fields_have_atoms_too():
    assert triggers(parse("q contains 'a'")) == {Pattern(FLAT, "contains", "a")}


def test_an_empty_membership_list_never_fires():
    assert triggers(parse("tool_name in []")) == frozenset()


@pytest.mark.parametrize("op", ["startswith", "endswith", "contains"])
def test_pattern_regexes_escape_their_literal(op):
    atom = Pattern(TEXT, op, "a.*(")
    assert compile_regex(atom.regex()).search("xxa.*(" if op != "startswith" else "a.*(xx")
    assert not compile_regex(atom.regex()).search("abbb(")


# --- the index -------------------------------------------------------------------------------------


def doc(text=None, tool="t", **params):
    action: dict = {"tool": tool, "params": params}
    if text is not None:
        action["params_text"] = text
    return {"action": action, "context": {}, "agent": {}, "resource": {}}


def test_a_pattern_rule_is_a_candidate_only_where_its_pattern_is_found():
    pf = Prefilter([parse("params_text contains 'drop table'"), parse("params_text matches '(?i)^rm\\\\s'")])
    assert list(pf.candidates(doc("please drop table users"))) == [0]
    assert list(pf.candidates(doc("RM  -rf /"))) == [1]
    assert list(pf.candidates(doc("hello"))) == []


def test_a_missing_field_fires_no_pattern():
    assert list(Prefilter([parse("params_text contains 'a'")]).candidates(doc(None))) == []


def test_a_field_that_is_not_text_fires_every_pattern_on_it():
    # A list's membership or a type error: the condition decides (and an error denies).
    pf = Prefilter([parse("params.q contains 'a'"), parse("params.q startswith 'b'"), parse("params.n > 3")])
    assert list(pf.candidates(doc(q=["a"]))) == [0, 1]
    assert list(pf.candidates(doc(q=5))) == [0, 1]


def test_a_list_fires_a_membership_pattern_only_when_it_holds_that_string():
    # On a list, `contains` is membership (it never raises); startswith raises on a list, so it always fires.
    pf = Prefilter([parse("params.q contains 'a'"), parse("'b' in params.q"), parse("params.q startswith 'b'")])
    assert list(pf.candidates(doc(q=["x", "b"]))) == [1, 2]
    assert list(pf.candidates(doc(q=[]))) == [2]
    assert list(pf.candidates(doc(q=[["a"], 1]))) == [2]


def test_boolean_equality_is_an_equality_atom():
    flag = ast.Path(("action", "params", "flag"))
    assert triggers(parse("params.flag == true")) == {Equals(flag, True)}
    assert triggers(parse("false == params.flag")) == {Equals(flag, False)}


def test_a_boolean_equality_fires_only_on_that_boolean():
    pf = Prefilter([parse("params.flag == true"), parse("params.flag == false")])
    assert list(pf.candidates(doc(flag=True))) == [0]
    assert list(pf.candidates(doc(flag=False))) == [1]
    assert list(pf.candidates(doc(flag=1))) == []  # equality is strict: 1 is not true
    assert list(pf.candidates(doc(flag="true"))) == []


def test_an_empty_pattern_fires_on_every_text():
    assert list(Prefilter([parse("params_text contains ''")]).candidates(doc(""))) == [0]


def test_a_negated_pattern_is_always_a_candidate():
    assert list(Prefilter([parse("not (params_text contains 'a')")]).candidates(doc("bbb"))) == [0]


def test_candidates_are_distinct_and_in_order():
    pf = Prefilter([parse("params_text contains 'b' or params_text contains 'a'"), parse("tool_name == 't'"),
                    parse("params_text contains 'a'")])
    assert list(pf.candidates(doc("ab"))) == [0, 1, 2]


def test_text_re2_cannot_take_fires_every_pattern():
    pf = Prefilter([parse("params_text matches 'a'")])
    assert list(pf.candidates(doc("\udc80"))) == [0]


def test_few_literal_patterns_are_decided_by_python_string_operations():
    pf = Prefilter([parse("params_text contains 'a'"), parse("params_text startswith 'b'"), parse("params_text endswith 'c'"),
                    parse("params_text contains ''")])
    assert pf._patterns[0][1].sets == []  # no RE2 set was built
    assert list(pf.candidates(doc("bxc"))) == [1, 2, 3]
    assert list(pf.candidates(doc("\udc80a"))) == [0, 3]  # text RE2 cannot take: Python decides exactly


def test_sets_too_large_for_one_re2_set_are_split():
    many = [parse(f"params_text matches 'p[a-z]+ern_{i}\\\\b'") for i in range(3000)]
    pf = Prefilter(many)
    assert list(pf.candidates(doc("pattern_7 pattern_2999"))) == [7, 2999]


# --- property: the prefilter never drops a condition that is true or raises ------------------------

CHARS = st.sampled_from(["a", "b", "A", "é", "É", "ß", "ﬁ", " ", ".", "*", "(", "\\", "\n", "\x00", "😀", "_"])
WORDS = st.text(CHARS, max_size=4)
LITERALS = st.one_of(st.sampled_from(["a", "b", ""]), WORDS)  # often equal to a list item or a text drawn elsewhere
REGEX_PARTS = st.sampled_from(["a", "b", "A", "é", ".", "a*", "(?i)", "(?i)é", "^", "$", "\\b", "\\w+", "[aé]", "(?:a|b)",
                               "\\pL", "\\d", "", "\\.", "😀", "(?s).", "\\A", "\\z", "x?"])


@st.composite
def regexes(draw):
    pattern = "".join(draw(st.lists(REGEX_PARTS, max_size=4)))
    try:
        compile_regex(pattern)
    except ConditionSyntaxError:
        pattern = "a"
    return pattern


FIELDS = st.sampled_from([TEXT, Q, N, ENV, FLAT, TOOL])
VALUES = st.one_of(WORDS, st.integers(-3, 3), st.lists(st.one_of(LITERALS, st.integers(0, 1), st.booleans()), max_size=2), st.just(Decimal("1.5")), st.booleans(),
                   st.dictionaries(WORDS, st.integers(0, 1), max_size=2), st.none())


@st.composite
def comparisons(draw):
    field = draw(FIELDS)
    kind = draw(st.sampled_from(["contains", "startswith", "endswith", "matches", "lit-in", "==", "in", ">", ">=", "<",
                                 "contains-int", "==bool", "bool=="]))
    if kind == "matches":
        return ast.Compare("matches", field, ast.Literal(draw(regexes())))
    if kind == "lit-in":
        return ast.Compare("in", ast.Literal(draw(LITERALS)), field)
    if kind == "in":
        return ast.Compare("in", field, ast.ListExpr(tuple(ast.Literal(w) for w in draw(st.lists(WORDS, max_size=3)))))
    if kind in (">", ">=", "<"):
        return ast.Compare(kind, field, ast.Literal(draw(st.integers(-3, 3))))
    if kind == "==bool":
        return ast.Compare("==", field, ast.Literal(draw(st.booleans())))
    if kind == "bool==":
        return ast.Compare("==", ast.Literal(draw(st.booleans())), field)
    if kind == "contains-int":
        return ast.Compare("contains", field, ast.Literal(draw(st.integers(0, 2))))
    return ast.Compare(kind, field, ast.Literal(draw(LITERALS)))


CONDITIONS = st.recursive(
    st.one_of(comparisons(), FIELDS),
    lambda sub: st.one_of(
        st.builds(ast.Not, sub),
        st.lists(sub, min_size=2, max_size=3).map(lambda xs: ast.And(tuple(xs))),
        st.lists(sub, min_size=2, max_size=3).map(lambda xs: ast.Or(tuple(xs))),
    ),
    max_leaves=6,
)


@st.composite
def documents(draw):
    params = {k: draw(VALUES) for k in draw(st.lists(st.sampled_from(["q", "n"]), unique=True))}
    action: dict = {"tool": draw(st.one_of(WORDS, st.sampled_from(["read_file", "a"]))), "params": params}
    if draw(st.booleans()):
        action["params_text"] = draw(st.one_of(st.text(CHARS, max_size=12), st.text(max_size=12)))
    context: dict = {"attributes": {"q": draw(VALUES)}} if draw(st.booleans()) else {}
    if draw(st.booleans()):
        context["environment"] = draw(VALUES)
    return {"action": action, "context": context, "agent": {}, "resource": {}}


def outcome(evaluate, d):
    try:
        return bool(evaluate(d))
    except ConditionEvalError:
        return "error"


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions=st.lists(CONDITIONS, min_size=1, max_size=8), docs=st.lists(documents(), min_size=1, max_size=5))
def test_prefiltered_evaluation_equals_full_evaluation(conditions, docs):
    compiled = [compile_predicate(c) for c in conditions]
    pf = Prefilter(conditions)
    for d in docs:
        full = [outcome(f, d) for f in compiled]
        kept = set(pf.candidates(d))
        prefiltered = [outcome(f, d) if k in kept else False for k, f in enumerate(compiled)]
        assert prefiltered == full


@settings(max_examples=300, deadline=None)
@given(conditions=st.lists(CONDITIONS, min_size=1, max_size=8), d=documents())
def test_candidates_are_sorted_and_distinct(conditions, d):
    found = Prefilter(conditions).candidates(d)
    assert list(found) == sorted(set(found))


@settings(max_examples=400, deadline=None)
@given(patterns=st.lists(st.tuples(st.sampled_from(["contains", "startswith", "endswith", "matches"]), WORDS), max_size=6),
       text=st.one_of(st.text(CHARS, max_size=16), st.text(max_size=16)))
@pytest.mark.parametrize("through", ["python", "re2"])
def test_one_set_reports_every_pattern_python_finds(patterns, text, through):
    # Literal patterns through RE2 (escaped, UTF-8), and through the few-literals path, against Python's own str
    # operations, unicode included. Enough extra literals force the RE2 set.
    conditions = [ast.Compare(op, TEXT, ast.Literal(w if op != "matches" else compile_regex_safe(w))) for op, w in patterns]
    if through == "re2":
        conditions += [ast.Compare("contains", TEXT, ast.Literal(f"\x00never-{i}")) for i in range(9)]
    pf = Prefilter(conditions)
    d = doc(text)
    assert [k for k, c in enumerate(conditions) if compile_predicate(c)(d)] == [
        k for k in pf.candidates(d) if compile_predicate(conditions[k])(d)]


def compile_regex_safe(w: str) -> str:
    try:
        compile_regex(w)
        return w
    except ConditionSyntaxError:
        return "a"


LIST_ITEMS = st.one_of(LITERALS, st.integers(0, 1), st.booleans(), st.lists(LITERALS, max_size=1))


@settings(max_examples=300, deadline=None)
@given(conditions=st.lists(st.one_of(
           st.builds(lambda w: ast.Compare("contains", Q, ast.Literal(w)), LITERALS),
           st.builds(lambda w: ast.Compare("in", ast.Literal(w), Q), LITERALS),
           st.builds(lambda op, w: ast.Compare(op, Q, ast.Literal(w)), st.sampled_from(["startswith", "endswith", "matches"]),
                     st.sampled_from(["a", "b"]))), min_size=1, max_size=6),
       items=st.lists(LIST_ITEMS, max_size=4))
def test_on_a_list_the_prefilter_keeps_every_membership_that_holds(conditions, items):
    d = doc(q=items)
    kept = set(Prefilter(conditions).candidates(d))
    for k, c in enumerate(conditions):
        if k not in kept:
            assert outcome(compile_predicate(c), d) is False


# --- the generated lookup against the field-by-field scan ----------------------------------------------

DEEP = ast.Path(("action", "params", "q", "x"))
DEEPER = ast.Path(("action", "params", "q", "x", "y"))
SHAPES = st.one_of(VALUES, st.dictionaries(st.sampled_from(["x", "y", "q"]), VALUES, max_size=2),
                   st.dictionaries(st.sampled_from(["x", "y"]), VALUES, max_size=2).map(MappingProxyType))


@st.composite
def odd_documents(draw):
    """Documents whose inner objects may be a plain dict, another Mapping, a list, text or missing: the generated
    lookup reads prefixes only through plain dicts and leaves every other shape to the getters."""
    d = draw(documents())
    if draw(st.booleans()):
        d["action"]["params"]["q"] = draw(SHAPES)
    if draw(st.booleans()):
        d["action"]["params"] = draw(st.one_of(SHAPES, st.just(d["action"]["params"]).map(MappingProxyType)))
    if draw(st.booleans()):
        d["context"] = MappingProxyType(d["context"])
    if draw(st.booleans()):
        d[draw(st.sampled_from(["action", "context"]))] = draw(SHAPES)
    return MappingProxyType(d) if draw(st.integers(0, 9)) == 0 else d


def deep_comparisons(field):
    return st.one_of(st.builds(lambda w: ast.Compare("==", field, ast.Literal(w)), LITERALS),
                     st.builds(lambda w: ast.Compare("contains", field, ast.Literal(w)), LITERALS),
                     st.builds(lambda n: ast.Compare(">", field, ast.Literal(n)), st.integers(-3, 3)))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions=st.lists(st.one_of(CONDITIONS, deep_comparisons(DEEP), deep_comparisons(DEEPER)), min_size=1,
                           max_size=10),
       docs=st.lists(odd_documents(), min_size=1, max_size=5))
def test_the_generated_lookup_answers_as_the_scan(conditions, docs):
    pf = Prefilter(conditions)
    for d in docs:
        assert list(pf.candidates(d)) == list(pf.scan(d))


# --- the shared facts of an action without commands or SQL -----------------------------------------------

from agt.conditions.prefilter import SHARED_FACTS  # noqa: E402
from agt.facts import derive_facts  # noqa: E402

FACT_FIELDS = st.sampled_from([
    ast.Path(("action", "facts", "shell", "deletes_system_path")), ast.Path(("action", "facts", "shell", "programs")),
    ast.Path(("action", "facts", "sql", "types")), ast.Path(("action", "facts", "parse_error")),
    ast.Path(("action", "facts", "shell", "commands", "x")),  # five parts: read by its getter, outside the shortcut
])
FACT_CONDITIONS = st.one_of(
    st.builds(lambda f, w: ast.Compare("==", f, ast.Literal(w)), FACT_FIELDS, st.one_of(st.booleans(), LITERALS)),
    st.builds(lambda f, w: ast.Compare("contains", f, ast.Literal(w)), FACT_FIELDS, st.sampled_from(["rm", "drop", "", "a"])),
    st.builds(lambda f, n: ast.Compare(">", f, ast.Literal(n)), FACT_FIELDS, st.integers(-1, 1)),
    st.builds(lambda f: ast.Compare("matches", f, ast.Literal("(?i)^d")), FACT_FIELDS),
)
FACTS = st.one_of(
    st.just(SHARED_FACTS),  # the shared object: its part of the lookup was worked out when the lookup was made
    st.just(SHARED_FACTS).map(lambda f: {**f}),  # equal, not the same object: read field by field
    st.sampled_from(["rm -rf /", "mkfs /dev/sda", "echo hi"]).map(lambda c: derive_facts("run_shell", "execute", {"command": c})),
    st.sampled_from(["DROP TABLE t", "delete from t"]).map(lambda q: derive_facts("query", "execute", {"sql": q})),
    SHAPES,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions=st.lists(st.one_of(FACT_CONDITIONS, CONDITIONS), min_size=1, max_size=8),
       facts=st.lists(FACTS, min_size=1, max_size=4), d=documents())
def test_the_lookup_on_the_shared_facts_answers_as_the_scan(conditions, facts, d):
    pf = Prefilter(conditions)
    for f in facts:
        d["action"]["facts"] = f
        assert list(pf.candidates(d)) == list(pf.scan(d))


def test_a_rule_on_the_shared_facts_is_found_through_the_shortcut():
    # parse_error is False on the shared facts: a rule on `== false` is a candidate for every action without commands.
    pf = Prefilter([parse("action.facts.parse_error == false"), parse("action.facts.shell.deletes_system_path == true")])
    d = doc("x")
    d["action"]["facts"] = SHARED_FACTS
    assert list(pf.candidates(d)) == [0]
    d["action"]["facts"] = derive_facts("run_shell", "execute", {"command": "rm -rf /"})
    assert list(pf.candidates(d)) == [0, 1]
