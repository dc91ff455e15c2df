"""``agt compile --to cedar``: a YAML policy as Cedar policies for agt's schema (agt/schema/agt.cedarschema).

Every rule becomes one policy: ``forbid`` for deny and approval rules (``@approval`` + ``@approvers``), ``permit``
for allow rules, with ``@id``, ``@message`` and ``@critical``; ``default_action: allow`` becomes the
``@id("default")`` permit. The action document maps as docs/cedar-mapping.md says: ``tool_name`` is
``context.tool``, ``action.kind`` the Cedar action, roles are ``Role`` parents, optional fields sit behind ``has``
(so a missing field makes a comparison false, and ``!`` inverts that false, as in the yaml engine).

Cedar has no regular expressions, no string ordering, no nulls, and sees only the params a tool catalog declares
and the string leaves of ``context.attributes``: a rule that needs one of those raises :class:`Unportable`, and
the rule is left out of the Cedar twin (reported with its file and line, and listed in the manifest) rather than
written weaker.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from agt.action import Kind
from agt.catalog import CEDAR_DECIMAL_MAX, CEDAR_DECIMAL_MIN, Catalog, ParamType
from agt.compile._walk import BOOL, INT, LIST_STR, STR, Plan, PlannedRule, Unportable, literal_type
from agt.conditions import ast

_PARAM_TYPES = {ParamType.STRING: STR, ParamType.LONG: INT, ParamType.DECIMAL: "decimal", ParamType.BOOL: BOOL,
                ParamType.STRING_SET: LIST_STR}
_PLAIN = {
    ("action", "tool"): ("context.tool", STR), ("action", "type"): ("context.action_type", STR),
    ("action", "params_text"): ("context.params_text", STR),
    ("context", "session_id"): ("context.session_id", STR), ("context", "stage"): ("context.stage", STR),
    ("context", "tokens_used"): ("context.tokens_used", INT), ("context", "tool_calls"): ("context.tool_calls", INT),
    ("context", "files_changed"): ("context.files_changed", INT),
    ("action", "facts", "parse_error"): ("context.facts.parse_error", BOOL),
}
_OPTIONAL = {
    ("context", "environment"): ("context has environment", "context.environment", STR),
    ("agent", "trust_score"): ("principal has trust_score", "principal.trust_score", INT),
}
_SPECIAL = {("action", "kind"): "kind", ("agent", "id"): "agent", ("agent", "roles"): "roles", ("resource", "type"): "rtype"}
_KINDS = {k.value for k in Kind}
_STEP = Decimal("0.0001")
_DECIMAL_METHODS = {"<": "lessThan", "<=": "lessThanOrEqual", ">": "greaterThan", ">=": "greaterThanOrEqual"}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def cedar_string(s: str) -> str:
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _like(prefix: str, text: str, suffix: str) -> str:
    body = cedar_string(text)[1:-1].replace("*", "\\*")
    return f'"{prefix}{body}{suffix}"'


def _decimal(d: Decimal) -> str:
    if not (CEDAR_DECIMAL_MIN <= d <= CEDAR_DECIMAL_MAX):
        raise Unportable("decimal", f"{d} is outside Cedar's decimal range")
    text = format(d.quantize(_STEP) if d.as_tuple().exponent < -4 else d, "f")  # type: ignore[operator]
    if "." not in text:
        text += ".0"
    return f'decimal("{text}")'


class _Alt:
    """One place a written field may be read from in Cedar: a guard (``has``), the expression, its type."""

    def __init__(self, guard: str | None, expr: str, vtype: str) -> None:
        self.guard, self.expr, self.type = guard, expr, vtype


class CedarWriter:
    def __init__(self, catalog: Catalog | None) -> None:
        self.declared: dict[str, str] = {}
        if catalog is not None:
            for params in catalog.tools.values():
                for name, p in params.items():
                    self.declared[name] = _PARAM_TYPES[p.type]
        self.file_scoped = False

    # --- fields ------------------------------------------------------------------------------------------------
    def _alts(self, node: ast.Node) -> list[_Alt]:
        if isinstance(node, ast.Path):
            alt = self._path(node.parts, flat=False)
            assert alt is not None
            return [alt]
        if isinstance(node, ast.FlatPath):
            alts = [a for c in node.candidates if (a := self._path(c, flat=True)) is not None]
            if not alts:
                raise Unportable("flat-context", f"AGT's flat name {node.name!r} reads nothing Cedar can see")
            return alts
        raise Unportable("value", f"a {type(node).__name__} where Cedar needs a field")

    def _path(self, parts: tuple[str, ...], flat: bool) -> _Alt | None:
        if parts in _PLAIN:
            expr, t = _PLAIN[parts]
            return _Alt(None, expr, t)
        if parts in _OPTIONAL:
            return _Alt(*_OPTIONAL[parts])
        if parts[:3] in (("action", "facts", "shell"), ("action", "facts", "sql")) and len(parts) == 4:
            from agt.compile._walk import FIELD_TYPES

            t = FIELD_TYPES.get(parts)
            if t is None:
                raise Unportable("facts", f"action.facts.{parts[2]}.{parts[3]} is not one of the flat facts Cedar sees")
            return _Alt(None, f"context.facts.{parts[2]}.{parts[3]}", t)
        if parts[:2] == ("action", "params") and len(parts) >= 3:
            name = parts[2]
            if len(parts) == 3 and name in self.declared:
                return _Alt(f"context.params has {cedar_string(name)}", f"context.params[{cedar_string(name)}]"
                            if not name.isidentifier() else f"context.params.{name}", self.declared[name])
            if flat:
                return None  # the suite marks a case carrying this param not portable to Cedar
            raise Unportable("undeclared-param", f"reads action.params.{'.'.join(parts[2:])}, which no tool of the catalog "
                             "declares (Cedar sees declared params only); declare it in catalog.yaml")
        if parts[:2] == ("context", "attributes") and len(parts) >= 3:
            tag = cedar_string(".".join(parts[2:]))
            return _Alt(f"context.attributes.hasTag({tag})", f"context.attributes.getTag({tag})", STR)
        if parts in _SPECIAL:
            return _Alt(None, _SPECIAL[parts], _SPECIAL[parts])
        raise Unportable("field", f"{'.'.join(parts)} is not visible to Cedar (docs/cedar-mapping.md)")

    # --- conditions ----------------------------------------------------------------------------------------------
    def cond(self, node: ast.Node) -> str:
        if isinstance(node, ast.Not):
            return f"!({self.cond(node.operand)})"
        if isinstance(node, ast.And):
            return " && ".join(_paren(self.cond(o), "&&") for o in node.operands)
        if isinstance(node, ast.Or):
            idiom = self._workspace_idiom(node)
            if idiom is not None:
                return idiom
            return " || ".join(_paren(self.cond(o), "||") for o in node.operands)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Literal):
            return "true" if node.value else "false"
        return self._over(node, self._truthy)

    def _over(self, node: ast.Node, fn: Any) -> str:
        """``fn(alt)`` for the first place ``node`` is present; false when it is present nowhere."""
        parts: list[str] = []
        absent: list[str] = []
        for alt in self._alts(node):
            body = fn(alt)
            guards = [f"!({g})" for g in absent] + ([alt.guard] if alt.guard else [])
            if body != "false":
                parts.append(" && ".join([*guards, body]) if guards else body)
            if alt.guard is None:
                break
            absent.append(alt.guard)
        if not parts:
            return "false"
        return " || ".join(_paren(p, "||") for p in parts)

    def _truthy(self, alt: _Alt) -> str:
        if alt.type == BOOL:
            return alt.expr
        if alt.type == STR:
            return f'{alt.expr} != ""'
        if alt.type == INT:
            return f"{alt.expr} != 0"
        if alt.type == LIST_STR:
            return f"!({alt.expr}.isEmpty())"
        raise Unportable("truthy", f"a bare {alt.type} field as a condition")

    def _workspace_idiom(self, node: ast.Or) -> str | None:
        """``workspace == '' or not (resource.id startswith (workspace + '/'))`` on a file: outside the workspace,
        which Cedar says with its directory hierarchy (docs/cedar-mapping.md)."""
        ws = ast.Path(("agent", "attributes", "workspace"))
        want = ast.Or((ast.Compare("==", ws, ast.Literal("")),
                       ast.Not(ast.Compare("startswith", ast.Path(("resource", "id")), ast.Concat((ws, ast.Literal("/")))))))
        if node != want:
            return None
        if not self.file_scoped:
            raise Unportable("workspace", "the workspace test is portable only on a file (resource.type == 'file' in the same rule)")
        return "!(resource is File && principal has workspace && resource in principal.workspace)"

    def _compare(self, node: ast.Compare) -> str:
        op, left, right = node.op, node.left, node.right
        if op == "matches":
            raise Unportable("regex", "Cedar has no regular expressions (matches)")
        if op == "contains":
            op, left, right = "in", right, left
        if isinstance(left, ast.Literal) and not isinstance(right, ast.Literal) and op != "in":
            if op == "==":
                left, right = right, left
            elif op in _FLIP:
                op, left, right = _FLIP[op], right, left
        if op == "in":
            return self._in(left, right)
        if op == "not in":
            # agent_os's not_in (spec 5.2): false when the field is missing, else not a member.
            if not isinstance(right, ast.ListExpr) or not all(isinstance(i, ast.Literal) for i in right.items):
                raise Unportable("membership", "not_in on something other than a list of literals")
            values = [i.value for i in right.items]  # type: ignore[union-attr]
            return self._over(left, lambda alt: f"!({self._in_list(alt, values)})")
        if not isinstance(right, ast.Literal):
            raise Unportable("field-comparison", f"{op!r} between two fields (Cedar compares a field with a literal here)")
        value = right.value
        return self._over(left, lambda alt: self._against(alt, op, value))

    def _against(self, alt: _Alt, op: str, value: Any) -> str:
        lt = literal_type(value) or type(value).__name__
        special = alt.type in ("kind", "agent", "rtype", "roles")
        if op == "!=":
            # agent_os's ne (spec 5.2): false when the field is missing, else not equal.
            eq = self._against(alt, "==", value)
            return "true" if eq == "false" else f"!({eq})"
        if op == "==":
            if special:
                return self._special_eq(alt.type, value)
            if lt == "null" or alt.type == LIST_STR:
                return "false"
            if alt.type == STR:
                return f"{alt.expr} == {cedar_string(value)}" if lt == STR else "false"
            if alt.type == BOOL:
                return f"{alt.expr} == {'true' if value else 'false'}" if lt == BOOL else "false"
            if alt.type == INT:
                if lt == INT or (lt == "decimal" and value == value.to_integral_value()):
                    return f"{alt.expr} == {int(value)}"
                return "false"
            if alt.type == "decimal":
                if lt in (INT, "decimal") and Decimal(value).quantize(_STEP) == Decimal(value):
                    return f"{alt.expr} == {_decimal(Decimal(value))}"
                return "false"
        if op in ("<", "<=", ">", ">="):
            if special or lt not in (INT, "decimal") or alt.type not in (INT, "decimal"):
                what = "strings" if alt.type == STR and lt == STR else f"a {alt.type} with {lt}"
                raise Unportable("ordering", f"Cedar cannot order {what} (numbers only; the yaml engine errors on a type mismatch)")
            d = Decimal(value)
            if alt.type == INT:
                bound = d.to_integral_value(ROUND_FLOOR if op in (">", "<=") else ROUND_CEILING)
                return f"{alt.expr} {op} {int(bound)}"
            bound = d.quantize(_STEP, ROUND_FLOOR if op in (">", "<=") else ROUND_CEILING)
            return f"{alt.expr}.{_DECIMAL_METHODS[op]}({_decimal(bound)})"
        if op in ("startswith", "endswith"):
            if alt.type == STR and lt == STR:
                return f"{alt.expr} like {_like('', value, '*') if op == 'startswith' else _like('*', value, '')}"
            raise Unportable(op, f"{op} on a {alt.type} with {lt} (the yaml engine errors on it; Cedar cannot)")
        raise Unportable("operator", f"operator {op!r} on a {alt.type}")

    def _special_eq(self, kind: str, value: Any) -> str:
        if not isinstance(value, str):
            return "false"
        if kind == "kind":
            return f'action == Action::{cedar_string(value)}' if value in _KINDS else "false"
        if kind == "agent":
            return f"principal == Agent::{cedar_string(value)}"
        if kind == "rtype":
            if value == "file":
                return "resource is File"
            if value == "directory":
                return "resource is Directory"
            if value == "":
                raise Unportable("resource-type", "resource.type == '' (Cedar's placeholder for no resource has type \"\")")
            return f"(resource is Resource && resource.type == {cedar_string(value)})"
        raise Unportable("roles", "agent.roles compared as a whole (write 'role' in roles)")

    def _in(self, item: ast.Node, container: ast.Node) -> str:
        if isinstance(container, ast.ListExpr):
            if not all(isinstance(i, ast.Literal) for i in container.items):
                raise Unportable("list", "a list of fields (Cedar compares with literals here)")
            values = [i.value for i in container.items]  # type: ignore[union-attr]
            if isinstance(item, ast.Literal):
                return "true" if any(literal_type(v) == literal_type(item.value) and v == item.value for v in values) else "false"
            return self._over(item, lambda alt: self._in_list(alt, values))
        if not isinstance(item, ast.Literal):
            raise Unportable("membership", "'in' of a field in a field (Cedar tests a literal's membership here)")
        value = item.value
        return self._over(container, lambda alt: self._holds(alt, value))

    def _in_list(self, alt: _Alt, values: list[Any]) -> str:
        strings = [v for v in values if isinstance(v, str)]
        if alt.type == "kind":
            kinds = [v for v in strings if v in _KINDS]
            return f"action in [{', '.join(f'Action::{cedar_string(k)}' for k in kinds)}]" if kinds else "false"
        if alt.type == "agent":
            return f"[{', '.join(f'Agent::{cedar_string(v)}' for v in strings)}].contains(principal)" if strings else "false"
        if alt.type == STR:
            return f"[{', '.join(map(cedar_string, strings))}].contains({alt.expr})" if strings else "false"
        parts = [p for v in values if (p := self._against(alt, "==", v)) != "false"]
        return "(" + " || ".join(parts) + ")" if parts else "false"

    def _holds(self, alt: _Alt, value: Any) -> str:
        """The literal ``value`` in the field: an element of a set, a role, or a substring."""
        if alt.type == "roles":
            return f"principal in Role::{cedar_string(value)}" if isinstance(value, str) else "false"
        if alt.type == LIST_STR:
            return f"{alt.expr}.contains({cedar_string(value)})" if isinstance(value, str) else "false"
        if alt.type == STR and isinstance(value, str):
            return f"{alt.expr} like {_like('*', value, '*')}"
        raise Unportable("membership", f"'in' a {alt.type} with {literal_type(value)} (the yaml engine errors on it; Cedar cannot)")


def _paren(text: str, within: str) -> str:
    """``text`` as an operand of ``within`` (&& or ||): parenthesized when it is itself a chain of || (or of &&
    inside ||, for readability)."""
    depth, top = 0, set()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif depth == 0 and text[i:i + 2] in ("&&", "||"):
            top.add(text[i:i + 2])
            i += 1
        i += 1
    return f"({text})" if top else text


def _file_scoped(node: ast.Node) -> bool:
    conj = node.operands if isinstance(node, ast.And) else (node,)
    target = ast.Compare("==", ast.Path(("resource", "type")), ast.Literal("file"))
    return any(c == target or (isinstance(c, ast.And) and _file_scoped(c)) for c in conj)


def rule_condition(w: CedarWriter, node: ast.Node) -> str:
    w.file_scoped = _file_scoped(node)
    return w.cond(node)


def to_cedar(plan: Plan, catalog: Catalog | None, source: str) -> tuple[str, list[tuple[PlannedRule, Unportable]]]:
    """The Cedar text of ``plan`` (unformatted; the caller formats and validates it), and the rules it left out."""
    w = CedarWriter(catalog)
    refused: list[tuple[PlannedRule, Unportable]] = []
    conditions: dict[str, str] = {}
    for pr in plan.rules:
        try:
            conditions[pr.rule.id] = rule_condition(w, pr.rule.condition)
        except Unportable as exc:
            refused.append((pr, exc))
    blocks = [f"// Generated by `agt compile` from {source}; do not edit: change the YAML and compile again.\n"
              f"// Conflict strategy: {plan.strategy}. Rule ids, messages and approvers are the YAML policy's."]
    for rule, why in plan.skipped:
        blocks.append(f"// not written: {rule.id} ({rule.source}:{rule.line}): {why}")
    for pr, exc in refused:
        blocks.append(f"// NOT PORTABLE: {pr.rule.id} ({pr.rule.source}:{pr.rule.line}): {exc.reason}; the conformance "
                      "suite marks the cases this rule decides as not portable to cedar")
    for pr in plan.rules:
        r = pr.rule
        if r.id not in conditions:
            continue
        ann = [f"@id({cedar_string(r.id)})"]
        if r.critical:
            ann.append("@critical")
        if pr.effect == "approval":
            ann += ["@approval", f"@approvers({cedar_string(','.join(r.approvers))})"]
        if r.message:
            ann.append(f"@message({cedar_string(r.message)})")
        verb = "permit" if pr.effect == "allow" else "forbid"
        text = f"// {r.source}:{r.line}\n" + "\n".join(ann) + f"\n{verb} (principal, action, resource)\nwhen {{ {conditions[r.id]} }}"
        higher = [conditions[h.id] for h in pr.yields_to if h.id in conditions]
        if higher:
            text += "\nunless { " + " || ".join(_paren(h, "||") for h in higher) + " }"
        blocks.append(text + ";")
    if plan.default.value == "allow":
        blocks.append('// default_action: allow\n@id("default")\npermit (principal, action, resource);')
    return "\n\n".join(blocks) + "\n", refused
