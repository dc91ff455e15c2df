"""Compile a condition AST into a Python closure over the action document.

Semantics (shared with the Cedar and Rego translations, see docs/decision-semantics.md):

* A field that is absent makes every comparison that reads it false (including ``!=`` and ``not in``);
  ``not`` then inverts that false. This is how an undefined reference behaves in Rego.
* Equality is strict: ``1`` never equals ``true`` or ``"1"``.
* Ordering (``< <= > >=``) needs two numbers or two strings; anything else is an evaluation error,
  and an evaluation error makes the whole decision a deny (fail closed). Numbers are ints and exact
  Decimals (normalization turns floats into Decimals), so ``19.99 > 100`` compares digits, not binary floats.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping, Union

import re2

from agt.conditions import ast
from agt.errors import ConditionEvalError, ConditionSyntaxError

Evaluator = Callable[[Mapping[str, Any]], Any]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def _is_number(v: Any) -> bool:
    return (type(v) is int) or (type(v) is Decimal) or (type(v) is float)


def _same(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def _truthy(v: Any) -> bool:
    return v is not MISSING and bool(v)


def _ordered(op: str) -> Callable[[Any, Any], bool]:
    import operator

    fn = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]

    def compare(a: Any, b: Any) -> bool:
        if (_is_number(a) and _is_number(b)) or (type(a) is str and type(b) is str):
            return fn(a, b)
        raise ConditionEvalError(f"cannot order {type(a).__name__} {a!r} {op} {type(b).__name__} {b!r}")

    return compare


def _member(a: Any, b: Any) -> bool:
    if type(b) is list:
        # `in` finds every item _same() would (strict equality implies ==), so a miss is a miss; a hit may be
        # `True in [1]`, which the strict scan refuses.
        return a in b and any(_same(a, item) for item in b)
    if type(b) is str:
        if type(a) is not str:
            raise ConditionEvalError(f"'in' a string needs a string on its left, got {type(a).__name__}")
        return a in b
    if type(b) is dict:
        return type(a) is str and a in b
    raise ConditionEvalError(f"'in' needs a list, string or object on its right, got {type(b).__name__}")


def _contains(a: Any, b: Any) -> bool:
    return _member(b, a)


def _strings(op: str) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if type(a) is not str or type(b) is not str:
            raise ConditionEvalError(f"{op!r} needs two strings, got {type(a).__name__} and {type(b).__name__}")
        return a.startswith(b) if op == "startswith" else a.endswith(b)

    return compare


_BINARY: dict[str, Callable[[Any, Any], bool]] = {
    "==": _same,
    "!=": lambda a, b: not _same(a, b),
    "<": _ordered("<"),
    "<=": _ordered("<="),
    ">": _ordered(">"),
    ">=": _ordered(">="),
    "in": _member,
    "not in": lambda a, b: not _member(a, b),
    "contains": _contains,
    "startswith": _strings("startswith"),
    "endswith": _strings("endswith"),
}


def field_getter(parts: tuple[str, ...]) -> Evaluator:
    """A function reading one field of the document, MISSING when it is absent."""
    # Documents are plain dicts: two to four parts (every field of the action document, and its facts) are
    # unrolled; other mappings and deeper paths take the loop.
    if len(parts) == 2:
        a, b = parts

        def get2(doc: Mapping[str, Any]) -> Any:
            v = doc.get(a)
            if type(v) is not dict:
                return MISSING
            return v.get(b, MISSING)

        return get2
    if len(parts) in (3, 4):
        slow = _path_loop(parts)
        first, second, third = parts[:3]
        if len(parts) == 3:

            def get3(doc: Mapping[str, Any]) -> Any:
                v = doc.get(first)
                if type(v) is dict:
                    v = v.get(second)
                    if type(v) is dict:
                        return v.get(third, MISSING)
                return slow(doc)

            return get3
        fourth = parts[3]

        def get4(doc: Mapping[str, Any]) -> Any:
            v = doc.get(first)
            if type(v) is dict:
                v = v.get(second)
                if type(v) is dict:
                    v = v.get(third)
                    if type(v) is dict:
                        return v.get(fourth, MISSING)
            return slow(doc)

        return get4
    return _path_loop(parts)


def _path_loop(parts: tuple[str, ...]) -> Evaluator:
    def get(doc: Mapping[str, Any]) -> Any:
        v: Any = doc
        for p in parts:
            if type(v) is not dict and not isinstance(v, Mapping):
                return MISSING
            v = v.get(p, MISSING)
            if v is MISSING:
                return MISSING
        return v

    return get


def compile_condition(node: ast.Node, text: str = "") -> Evaluator:
    """Turn the AST into a closure returning the condition's value for one document."""
    if isinstance(node, ast.Literal):
        value = node.value
        return lambda doc: value
    if isinstance(node, ast.Path):
        return field_getter(node.parts)
    if isinstance(node, ast.FlatPath):
        getters = [field_getter(c) for c in node.candidates]

        def flat(doc: Mapping[str, Any]) -> Any:
            for get in getters:
                v = get(doc)
                if v is not MISSING:
                    return v
            return MISSING

        return flat
    if isinstance(node, ast.ListExpr):
        items = [compile_condition(i, text) for i in node.items]
        return lambda doc: [f(doc) for f in items]
    if isinstance(node, ast.Concat):
        parts = [compile_condition(p, text) for p in node.parts]

        def concat(doc: Mapping[str, Any]) -> Any:
            values = [f(doc) for f in parts]
            if any(v is MISSING for v in values):
                return MISSING
            if not all(type(v) is str for v in values):
                raise ConditionEvalError("'+' joins strings only")
            return "".join(values)

        return concat
    if isinstance(node, ast.Not):
        inner = _compile_bool(node.operand, text)
        return lambda doc: not inner(doc)
    if isinstance(node, ast.And):
        return _logical([_compile_bool(o, text) for o in node.operands], decisive=False)
    if isinstance(node, ast.Or):
        return _logical([_compile_bool(o, text) for o in node.operands], decisive=True)
    if isinstance(node, ast.Compare):
        return _compile_compare(node, text)
    raise TypeError(f"not a condition node: {node!r}")


def _logical(ops: list[Evaluator], decisive: bool) -> Evaluator:
    """``and`` (decisive=False) and ``or`` (decisive=True) as logic, not as left-to-right code.

    A conjunction with a false part is false even when another part errors; a disjunction with a
    true part is true. Only when no part decides does an error propagate (and so deny). The result
    therefore does not depend on the order the parts are written in, nor on the order the rule
    index happens to consider them, and matches Rego, where a body fails as soon as any part fails.
    """

    def evaluate(doc: Mapping[str, Any]) -> bool:
        error: ConditionEvalError | None = None
        for f in ops:
            try:
                if f(doc) is decisive:
                    return decisive
            except ConditionEvalError as exc:
                if error is None:
                    error = exc
        if error is not None:
            raise error
        return not decisive

    return evaluate


def compile_predicate(node: ast.Node, text: str = "") -> Evaluator:
    """Compile a whole condition into a function returning a real bool. A bare field is true only
    when present and truthy; an absent field is false. A tree deeper than ast.MAX_DEPTH (say, structured
    conditions nested in lists) is a ConditionSyntaxError, never a RecursionError."""
    if ast.depth(node) > 2 * ast.MAX_DEPTH:  # a ceiling for the stack, above what the parser lets through
        raise ConditionSyntaxError(f"the condition nests deeper than {2 * ast.MAX_DEPTH} levels", text, 1)
    return _compile_bool(node, text)


_BOOLEAN_NODES = (ast.Compare, ast.Not, ast.And, ast.Or)


def _compile_bool(node: ast.Node, text: str) -> Evaluator:
    """Compile an operand of and/or/not so it returns a real bool; comparisons already do."""
    f = compile_condition(node, text)
    if isinstance(node, _BOOLEAN_NODES):
        return f
    return lambda doc: _truthy(f(doc))


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported once, as a load error, not on stderr


def compile_regex(pattern: str, text: str = "") -> Any:
    """``matches`` uses RE2, OPA's regex dialect: matching takes linear time, so no pattern backtracks
    catastrophically, and a rule means the same in yaml and opa. What RE2 cannot run (backreferences,
    lookarounds, possessive quantifiers, over-large repetitions) is a ConditionSyntaxError at load."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        hint = ""
        if "(?=" in pattern or "(?!" in pattern or "(?<" in pattern:
            hint = ("; RE2 has no lookaround: match the wider pattern in this rule and exclude the exceptions in the same "
                    "condition with `and not (x matches '...')`, or with an allow rule of higher priority")
        raise ConditionSyntaxError(f"regular expression {pattern!r} does not compile as RE2 (the dialect OPA uses): {detail}{hint}",
                                   text, 1) from None


def _compile_compare(node: ast.Compare, text: str) -> Evaluator:
    left = compile_condition(node.left, text)
    if node.op == "matches":
        assert isinstance(node.right, ast.Literal)
        pattern = compile_regex(node.right.value, text)

        def matches(doc: Mapping[str, Any]) -> bool:
            v = left(doc)
            if v is MISSING:
                return False
            if type(v) is not str:
                raise ConditionEvalError(f"'matches' needs a string on its left, got {type(v).__name__}")
            return pattern.search(v) is not None

        return matches
    fn = _BINARY[node.op]
    fast = _fast_field_compare(node, fn)
    if fast is not None:
        return fast
    if isinstance(node.right, ast.Literal):
        const = node.right.value

        def compare_const(doc: Mapping[str, Any]) -> bool:
            v = left(doc)
            return False if v is MISSING else fn(v, const)

        return compare_const
    if isinstance(node.right, ast.ListExpr) and all(isinstance(i, ast.Literal) for i in node.right.items):
        const_list = [i.value for i in node.right.items]  # type: ignore[union-attr]
        if node.op in ("in", "not in") and all(type(c) is str for c in const_list):
            # The common AGT shape `tool_name in ['a', 'b']`: a set lookup instead of a scan.
            members = frozenset(const_list)
            negate = node.op == "not in"

            def in_set(doc: Mapping[str, Any]) -> bool:
                v = left(doc)
                if v is MISSING:
                    return False
                return (type(v) is str and v in members) is not negate

            return in_set

        def compare_list(doc: Mapping[str, Any]) -> bool:
            v = left(doc)
            return False if v is MISSING else fn(v, const_list)

        return compare_list
    right = compile_condition(node.right, text)

    def compare(doc: Mapping[str, Any]) -> bool:
        a, b = left(doc), right(doc)
        if a is MISSING or b is MISSING:
            return False
        return fn(a, b)

    return compare


_ORDER_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _fast_field_compare(node: ast.Compare, fn: Callable[[Any, Any], bool]) -> Evaluator | None:
    """Specialized closures for the hot shape ``part.field OP literal``: one dict walk and one
    comparison, falling back to the general operator (and its type errors) only on unusual types."""
    if not (isinstance(node.left, ast.Path) and len(node.left.parts) == 2):
        return None
    a, b = node.left.parts
    op = node.op
    if isinstance(node.right, ast.ListExpr):
        if op not in ("in", "not in") or not all(
            isinstance(i, ast.Literal) and type(i.value) is str for i in node.right.items
        ):
            return None
        members = frozenset(i.value for i in node.right.items)  # type: ignore[union-attr]
        negate = op == "not in"

        def in_set(doc: Mapping[str, Any]) -> bool:
            p = doc.get(a)
            v = p.get(b, MISSING) if type(p) is dict else MISSING
            if v is MISSING:
                return False
            return (type(v) is str and v in members) is not negate

        return in_set
    if not isinstance(node.right, ast.Literal):
        return None
    c = node.right.value
    if op == "==" and type(c) is str:

        def eq_str(doc: Mapping[str, Any]) -> bool:
            p = doc.get(a)
            v = p.get(b, MISSING) if type(p) is dict else MISSING
            return type(v) is str and v == c

        return eq_str
    if op == "==" and type(c) is int:

        def eq_num(doc: Mapping[str, Any]) -> bool:
            p = doc.get(a)
            v = p.get(b, MISSING) if type(p) is dict else MISSING
            return (type(v) is int or type(v) is Decimal or type(v) is float) and v == c

        return eq_num
    if op in _ORDER_OPS and type(c) is int:
        cmp = _ORDER_OPS[op]

        def order(doc: Mapping[str, Any]) -> bool:
            p = doc.get(a)
            v = p.get(b, MISSING) if type(p) is dict else MISSING
            if type(v) is int:
                return cmp(v, c)
            return False if v is MISSING else fn(v, c)

        return order
    if op == "contains" and type(c) is str:

        def contains(doc: Mapping[str, Any]) -> bool:
            p = doc.get(a)
            v = p.get(b, MISSING) if type(p) is dict else MISSING
            if type(v) is str:
                return c in v
            return False if v is MISSING else fn(v, c)

        return contains
    return None


@dataclass(frozen=True)
class EqualityKey:
    """The condition can hold only when ``path`` equals one of ``values``."""

    path: tuple[str, ...]
    values: frozenset


@dataclass(frozen=True)
class LowerBoundKey:
    """The condition can hold only when ``path`` is an integer ≥ ``bound`` (budgets: ``x > limit``)."""

    path: tuple[str, ...]
    bound: int


IndexKey = Union[EqualityKey, LowerBoundKey]


def index_key(node: ast.Node) -> IndexKey | None:
    """A necessary condition the YAML engine can look rules up by instead of scanning them.

    Preference: equality on the tool name, then equality on any field, then an integer lower bound.
    """
    conjuncts = node.operands if isinstance(node, ast.And) else (node,)
    equalities: list[EqualityKey] = []
    bounds: list[LowerBoundKey] = []
    for c in conjuncts:
        if not isinstance(c, ast.Compare) or not isinstance(c.left, ast.Path):
            continue
        if c.op == "==" and isinstance(c.right, ast.Literal) and type(c.right.value) is str:
            equalities.append(EqualityKey(c.left.parts, frozenset([c.right.value])))
        elif (
            c.op == "in"
            and isinstance(c.right, ast.ListExpr)
            and c.right.items
            and all(isinstance(i, ast.Literal) and type(i.value) is str for i in c.right.items)
        ):
            equalities.append(EqualityKey(c.left.parts, frozenset(i.value for i in c.right.items)))  # type: ignore[union-attr]
        elif c.op in (">", ">=") and isinstance(c.right, ast.Literal) and type(c.right.value) is int:
            bounds.append(LowerBoundKey(c.left.parts, c.right.value + (1 if c.op == ">" else 0)))
    for key in equalities:
        if key.path == ("action", "tool"):
            return key
    if equalities:
        return equalities[0]
    if bounds:
        return max(bounds, key=lambda b: b.bound)
    return None
