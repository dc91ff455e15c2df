"""``agt compile --to rego``: a YAML policy as a package of the agt Rego library (``data.agt.policies.<name>``).

Each rule becomes heads of the library's partial objects, keyed by the rule id: ``deny[id] := message``,
``approval[id] := {"message", "approvers"}``, ``allow[id] := message``; ``default_action := "allow"`` when the
policy's default is allow. The condition keeps the yaml engine's meaning exactly:

* a missing field makes a comparison false (an undefined reference), and ``not`` inverts that false;
* equality is strict (Rego's ``==``); ordering needs two numbers or two strings (``agt.comparable``);
* a comparison the yaml engine cannot evaluate (``amount > 100`` on a string amount) is an evaluation error
  there, so the whole decision denies with ``engine_error``. Here the same condition calls ``fail``, whose two
  answers are OPA's eval_conflict_error: the query fails and agt denies with ``engine_error`` too. Like the yaml
  engine's ``and``/``or``, a part that decides wins over a part that errors, whatever the order they are written in.

Under a priority strategy every rule also requires that no rule it yields to matches (see :func:`agt.compile._walk.plan`).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from agt.conditions import ast
from agt.compile._walk import BOOL, INT, LIST_STR, STR, Plan, PlannedRule, Unportable, is_number_type, value_type

_PLAIN_EQ = re.compile(r'input(\.[A-Za-z_][A-Za-z0-9_]*|\["[^"\\]*"\])* == ("[^"\\]*"|-?[0-9.]+|true|false|null)')
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEYWORDS = {"as", "contains", "default", "else", "every", "false", "if", "import", "in", "not", "null", "package",
             "some", "true", "with", "input", "data"}
_RESERVED = {"deny", "approval", "allow", "default_action", "critical", "member", "member_error", "truthy", "fail"}

_HELPERS = {
    "member": '''# `a in b` as the yaml engine reads it: an element of a list, a substring of a string, a key of an object.
member(a, b) if {
	is_array(b)
	some x in b
	x == a
}

member(a, b) if {
	is_string(b)
	is_string(a)
	contains(b, a)
}

member(a, b) if {
	is_object(b)
	is_string(a)
	a in object.keys(b)
}

# What the yaml engine cannot evaluate: `in` a string with something else on the left, or `in` a scalar.
member_error(a, b) if {
	is_string(b)
	not is_string(a)
}

member_error(_, b) if {
	not is_array(b)
	not is_string(b)
	not is_object(b)
}''',
    "truthy": '''# A bare field as a condition: present and not false, null, 0, "", [] or {}.
truthy(x) if {
	not x in [false, null, 0, "", [], {}]
}''',
    "fail": '''# An evaluation error of the yaml engine fails the whole query here, as agt.compare does: two answers for one
# call are OPA's eval_conflict_error, and agt denies with engine_error.
fail(reason) := reason if is_string(reason)

fail(reason) := false if is_string(reason)''',
}


def rego_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def rego_literal(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, str):
        return rego_string(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, float) and v == v and v not in (float("inf"), float("-inf")):
        return repr(v)
    raise Unportable("literal", f"a literal {v!r} has no Rego form")


def _ident(text: str) -> str:
    out = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower() or "rule"
    if out[0].isdigit() or out in _KEYWORDS or out in _RESERVED:
        out = "r_" + out
    return out


def ref(parts: tuple[str, ...]) -> str:
    out = "input"
    for p in parts:
        out += f".{p}" if _IDENT.match(p) and p not in _KEYWORDS else f"[{rego_string(p)}]"
    return out


class RegoWriter:
    def __init__(self, plan: Plan, package: str) -> None:
        self.plan = plan
        self.package = package
        self.helper_rules: list[str] = []
        self._helper_by_text: dict[str, str] = {}
        self._names: set[str] = set()
        self._flat: dict[str, str] = {}
        self._var = 0
        self.uses: set[str] = set()
        self._memo: dict[int, tuple[list[str], list[list[str]]]] = {}
        self._prefix = "cond"

    # --- names -------------------------------------------------------------------------------------------------
    def _name(self, base: str) -> str:
        name, k = base, 1
        while name in self._names or name in _RESERVED:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def _fresh(self) -> str:
        self._var += 1
        return f"v{self._var}"

    def helper(self, bodies: list[list[str]], base: str | None = None) -> str:
        """A boolean rule that holds when one of ``bodies`` does; the same bodies give the same rule."""
        rendered = [_body(b) for b in bodies]
        key = "\n".join(rendered)
        if key in self._helper_by_text and base is None:
            return self._helper_by_text[key]
        name = self._name(base or f"{self._prefix}_{len(self._helper_by_text) + 1}")
        self._helper_by_text.setdefault(key, name)
        self.helper_rules.append("\n\n".join(f"{name} if {r}" for r in rendered))
        return name

    # --- values ------------------------------------------------------------------------------------------------
    def value(self, node: ast.Node) -> str:
        if isinstance(node, ast.Literal):
            return rego_literal(node.value)
        if isinstance(node, ast.Path):
            return ref(node.parts)
        if isinstance(node, ast.FlatPath):
            return self._flat_value(node)
        if isinstance(node, ast.ListExpr):
            return "[" + ", ".join(self.value(i) for i in node.items) + "]"
        if isinstance(node, ast.Concat):
            if not all(value_type(p) == STR for p in node.parts):
                raise Unportable("concat", "'+' on a value that may not be a string")
            return "concat(\"\", [" + ", ".join(self.value(p) for p in node.parts) + "])"
        raise Unportable("value", f"{type(node).__name__} is not a value")

    def _flat_value(self, node: ast.FlatPath) -> str:
        if node.name not in self._flat:
            name = self._name("flat_" + _ident(node.name))
            parts = [f"{name} := v if {{\n\tv := {ref(node.candidates[0])}\n}}"]
            parts += [f" else := v if {{\n\tv := {ref(c)}\n}}" for c in node.candidates[1:]]
            self.helper_rules.append(
                f"# AGT's flat name {node.name!r}: the first of " + ", ".join(".".join(c) for c in node.candidates)
                + " that is present\n" + "".join(parts))
            self._flat[node.name] = name
        return self._flat[node.name]

    # --- conditions: T (holds, no error) and E (errors) ----------------------------------------------------------
    def te(self, node: ast.Node) -> tuple[list[str], list[list[str]]]:
        key = id(node)
        if key not in self._memo:
            self._memo[key] = self._te(node)
        return self._memo[key]

    def t(self, node: ast.Node) -> list[str]:
        return self.te(node)[0]

    def e(self, node: ast.Node) -> list[list[str]]:
        return self.te(node)[1]

    def _negatable(self, body: list[str]) -> str:
        """One statement that ``not`` can negate for ``body``: a plain equality itself, anything else a helper rule.
        OPA lifts a call's arguments out of a negation, so ``not startswith(input.x, y)`` is *undefined* (not true)
        when ``input.x`` is missing; behind a helper rule the missing field makes the helper undefined, and
        ``not helper`` true, which is the yaml engine's meaning."""
        if len(body) == 1 and _PLAIN_EQ.fullmatch(body[0]):
            return body[0]
        return self.helper([body])

    def not_true(self, node: ast.Node) -> list[str]:
        """Holds when ``node`` is not true (false, or erroring)."""
        return [f"not {self._negatable(self.t(node))}"]

    def false(self, node: ast.Node) -> list[str]:
        """Holds when ``node`` is false without an error."""
        if not self.e(node):
            return self.not_true(node)
        return [*self.not_true(node), f"not {self.helper(self.e(node))}"]

    def not_false(self, node: ast.Node) -> list[str]:
        """Holds when ``node`` is true or errors."""
        if not self.e(node):
            return self.t(node)
        return [f"not {self.helper([self.false(node)])}"]

    def _te(self, node: ast.Node) -> tuple[list[str], list[list[str]]]:
        if isinstance(node, ast.Not):
            return self.false(node.operand), self.e(node.operand)
        if isinstance(node, ast.And):
            t = [s for o in node.operands for s in self.t(o)]
            errs: list[list[str]] = []
            for i, o in enumerate(node.operands):
                for eb in self.e(o):
                    rest = [s for j, x in enumerate(node.operands) if j != i for s in self.not_false(x)]
                    errs.append(eb + rest)
            return t, errs
        if isinstance(node, ast.Or):
            return [self.helper([self.t(o) for o in node.operands])], self.or_errors(node.operands)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        return self._truthy(node), []

    def or_errors(self, operands: tuple[ast.Node, ...]) -> list[list[str]]:
        """An ``or`` errors when a part errors and no part holds."""
        errs = []
        for i, o in enumerate(operands):
            for eb in self.e(o):
                errs.append(eb + [s for j, x in enumerate(operands) if j != i for s in self.not_true(x)])
        return errs

    def _truthy(self, node: ast.Node) -> list[str]:
        if isinstance(node, ast.Literal):
            return ["true" if node.value else "false"]
        if isinstance(node, (ast.ListExpr, ast.Concat)):
            raise Unportable("truthy", f"a {type(node).__name__} as a whole condition")
        v, t = self.value(node), value_type(node)
        if t == BOOL:
            return [f"{v} == true"]
        if t == STR:
            return [f'{v} != ""']
        if t == INT:
            return [f"{v} != 0"]
        if t == LIST_STR:
            return [f"count({v}) > 0"]
        self.uses.add("truthy")
        return [f"truthy({v})"]

    def _compare(self, node: ast.Compare) -> tuple[list[str], list[list[str]]]:
        op, left, right = node.op, node.left, node.right
        if op == "contains":
            return self._member(right, left)
        if op == "in":
            return self._member(left, right)
        if op == "not in":
            # agent_os's not_in (spec 5.2): false on a missing field, else not a member (erroring where `in` does).
            t, errs = self._member(left, right)
            x, y = self._fresh(), self._fresh()
            bind = [f"{x} := {self.value(left)}", f"{y} := {self.value(right)}"]
            held = self._negatable(t)
            return bind + [f"not {held}"] + ([f"not {self.helper(errs)}"] if errs else []), errs
        a, b = self.value(left), self.value(right)
        lt, rt = value_type(left), value_type(right)
        if op == "==":
            return [f"{a} == {b}"], []
        if op == "!=":
            return [f"{a} != {b}"], []
        if op in ("<", "<=", ">", ">="):
            if (is_number_type(lt) and is_number_type(rt)) or (lt == STR and rt == STR):
                return [f"{a} {op} {b}"], []
            self.uses.add("agt")
            x, y = self._fresh(), self._fresh()
            bind = [f"{x} := {a}", f"{y} := {b}"]
            return bind + [f"agt.comparable({x}, {y})", f"{x} {op} {y}"], [bind + [f"not agt.comparable({x}, {y})"]]
        if op in ("startswith", "endswith"):
            if lt == STR and rt == STR:
                return [f"{op}({a}, {b})"], []
            x, y = self._fresh(), self._fresh()
            bind = [f"{x} := {a}", f"{y} := {b}"]
            errs = []
            if lt != STR:
                errs.append([f"_ = {b}", f"{x} := {a}", f"not is_string({x})"])
            if rt != STR:
                errs.append([f"_ = {a}", f"{y} := {b}", f"not is_string({y})"])
            return bind + [f"is_string({x})", f"is_string({y})", f"{op}({x}, {y})"], errs
        if op == "matches":
            assert isinstance(right, ast.Literal)
            if lt == STR:
                return [f"regex.match({b}, {a})"], []
            x = self._fresh()
            return [f"{x} := {a}", f"is_string({x})", f"regex.match({b}, {x})"], [[f"{x} := {a}", f"not is_string({x})"]]
        raise Unportable("operator", f"operator {op!r}")

    def _member(self, item: ast.Node, container: ast.Node) -> tuple[list[str], list[list[str]]]:
        """``item in container`` as the yaml engine reads it."""
        if isinstance(container, ast.ListExpr):
            if all(isinstance(i, ast.Literal) for i in container.items):
                values = [i.value for i in container.items]  # type: ignore[union-attr]
                if not values:
                    return ["false"], []
                lits = ", ".join(rego_literal(v) for v in values)
                coll = "{" + lits + "}" if all(isinstance(v, str) for v in values) else f"[{lits}]"
                return [f"{self.value(item)} in {coll}"], []
            return self.te(ast.Or(tuple(ast.Compare("==", item, i) for i in container.items)))
        a, b = self.value(item), self.value(container)
        it, ct = value_type(item), value_type(container)
        if ct == LIST_STR:
            return [f"{a} in {b}"], []
        if ct == STR:
            if it == STR:
                return [f"contains({b}, {a})"], []
            x, y = self._fresh(), self._fresh()
            bind = [f"{x} := {a}", f"{y} := {b}"]
            return bind + [f"is_string({x})", f"contains({y}, {x})"], [bind + [f"not is_string({x})"]]
        self.uses.add("member")
        return [f"member({a}, {b})"], [[f"member_error({a}, {b})"]]

    # --- rules -------------------------------------------------------------------------------------------------
    def head(self, pr: PlannedRule) -> str:
        r = pr.rule
        if pr.effect == "approval":
            value = "{" + f'"message": {rego_string(r.message)}, "approvers": [{", ".join(map(rego_string, r.approvers))}]' + "}"
            return f"approval[{rego_string(r.id)}] := {value}"
        return f"{pr.effect}[{rego_string(r.id)}] := {rego_string(r.message)}"

    def rule_bodies(self, pr: PlannedRule) -> tuple[list[list[str]], list[list[str]]]:
        """(bodies under which the rule matches, bodies under which its condition errors)."""
        cond = pr.rule.condition
        self._prefix = _ident(pr.rule.id)
        if pr.yields_to:
            guards = [s for h in pr.yields_to for s in self.not_true(h.condition)]
            return [self.t(cond) + guards], self.e(cond)
        if isinstance(cond, ast.Or):
            return [self.t(o) for o in cond.operands], self.or_errors(cond.operands)
        return [self.t(cond)], self.e(cond)


def _body(statements: list[str]) -> str:
    return "{\n" + "".join(f"\t{s}\n" for s in statements) + "}"


def to_rego(plan: Plan, package: str, source: str) -> tuple[str, list[tuple[PlannedRule, Unportable]]]:
    """The Rego text of ``plan`` (unformatted; the caller runs ``opa fmt``), and the rules it could not write."""
    w = RegoWriter(plan, package)
    blocks: list[str] = []
    refused: list[tuple[PlannedRule, Unportable]] = []
    # Conditions of the rules others yield to are written first, so each gets its own named rule.
    for pr in plan.rules:
        try:
            bodies, errors = w.rule_bodies(pr)
        except Unportable as exc:
            refused.append((pr, exc))
            continue
        r = pr.rule
        lines = [f"# {r.source}:{r.line}: {r.id} ({r.action.value}{', critical' if r.critical else ''}): {r.condition_text}"
                 .replace("\n", " ")]
        head = w.head(pr)
        lines += [f"{head} if {_body(b)}" for b in bodies]
        for eb in errors:
            w.uses.add("fail")
            msg = rego_string(f"rule {r.id!r} ({r.source}:{r.line}): the condition cannot be evaluated on this input")
            lines.append(f"deny[{rego_string(r.id)}] := {rego_string(r.message)} if {_body(eb + [f'fail({msg})'])}")
        if r.critical:
            lines.append(f"critical contains {rego_string(r.id)}")
        blocks.append("\n\n".join(lines))
    header = [
        f"# Generated by `agt compile` from {source}; do not edit: change the YAML and compile again.",
        f"# Conflict strategy: {plan.strategy}. Rule ids, messages and approvers are the YAML policy's.",
        f"package {package}",
    ]
    if "agt" in w.uses:
        header.append("import data.agt")
    if plan.default.value == "allow":
        header.append('default_action := "allow"')
    for rule, why in plan.skipped:
        header.append(f"# not written: {rule.id} ({rule.source}:{rule.line}): {why}")
    for pr, exc in refused:
        header.append(f"# NOT PORTABLE: {pr.rule.id} ({pr.rule.source}:{pr.rule.line}): {exc.reason}")
    helpers = [_HELPERS[h] for h in ("member", "truthy", "fail") if h in w.uses]
    text = "\n\n".join(["\n\n".join(header), *blocks, *w.helper_rules, *helpers]) + "\n"
    return text, refused
