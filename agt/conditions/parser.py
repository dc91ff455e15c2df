"""Parse condition text into the AST. A hand-written recursive-descent parser: policy text is never
passed to ``eval``, ``exec`` or ``compile``, so there is nothing for injected code to run in.

Grammar (lowest precedence first)::

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum ((OP | "not" "in") sum)?
    sum     := atom ("+" atom)*
    atom    := STRING | NUMBER | true | false | null | path | "(" expr ")" | "[" [expr ("," expr)*] "]" | "-" NUMBER
    path    := NAME ("." NAME)*

OP is one of ``== != < <= > >= in startswith endswith contains matches``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from agt._normalize import normalize_decimal
from agt.conditions import ast
from agt.errors import ActionError, ConditionSyntaxError

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.|\+|-)
  | (?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_KEYWORDS = {"and", "or", "not", "in", "startswith", "endswith", "contains", "matches"}
_CONSTANTS = {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}
_WORD_OPERATORS = {"in", "startswith", "endswith", "contains", "matches"}
_SYMBOL_OPERATORS = {"==", "!=", "<", "<=", ">", ">="}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | string | name | keyword | op | end
    text: str
    column: int  # 1-based


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        value = m.group()
        column = m.start() + 1
        if kind == "ws":
            continue
        if kind == "bad":
            raise ConditionSyntaxError(f"unexpected character {value!r}", text, column)
        if kind == "name" and value in _KEYWORDS:
            kind = "keyword"
        tokens.append(Token(kind, value, column))  # type: ignore[arg-type]
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _unquote(token: Token, text: str) -> str:
    body = token.text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                # AGT's escapes: a backslash before any other character stays, so '\b\d{3}\b' reaches the
                # regular expression as written (AGT's quickstart).
                out.append(ch + nxt)
            else:
                out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    def nest(self, token: Token) -> None:
        """Enter one level of nesting; refuse past ast.MAX_DEPTH before the recursion gets deep."""
        self.depth += 1
        if self.depth > ast.MAX_DEPTH:
            raise self.error(f"the condition nests deeper than {ast.MAX_DEPTH} levels", token)

    # helpers
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def error(self, message: str, token: Token | None = None) -> ConditionSyntaxError:
        token = token or self.peek()
        return ConditionSyntaxError(message, self.text, token.column)

    def expect(self, text: str) -> Token:
        tok = self.peek()
        if tok.text != text or tok.kind not in ("op", "keyword"):
            found = "end of condition" if tok.kind == "end" else repr(tok.text)
            raise self.error(f"expected {text!r}, found {found}")
        return self.advance()

    def at(self, kind: str, text: str | None = None) -> bool:
        tok = self.peek()
        return tok.kind == kind and (text is None or tok.text == text)

    # grammar
    def parse(self) -> ast.Node:
        if self.at("end"):
            raise self.error("empty condition")
        node = self.parse_or()
        if not self.at("end"):
            raise self.error(f"unexpected {self.peek().text!r}")
        return node

    def parse_or(self) -> ast.Node:
        operands = [self.parse_and()]
        while self.at("keyword", "or"):
            self.advance()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else ast.Or(tuple(operands))

    def parse_and(self) -> ast.Node:
        operands = [self.parse_not()]
        while self.at("keyword", "and"):
            self.advance()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else ast.And(tuple(operands))

    def parse_not(self) -> ast.Node:
        if self.at("keyword", "not") and not (self.peek(1).kind == "keyword" and self.peek(1).text == "in"):
            self.nest(self.advance())
            node = ast.Not(self.parse_not())
            self.depth -= 1
            return node
        return self.parse_compare()

    def parse_compare(self) -> ast.Node:
        left = self.parse_sum()
        tok = self.peek()
        op: str | None = None
        if tok.kind == "op" and tok.text in _SYMBOL_OPERATORS:
            op = tok.text
            self.advance()
        elif tok.kind == "keyword" and tok.text in _WORD_OPERATORS:
            op = tok.text
            self.advance()
        elif tok.kind == "keyword" and tok.text == "not" and self.peek(1).text == "in":
            self.advance()
            self.advance()
            op = "not in"
        if op is None:
            return left
        right = self.parse_sum()
        if op in ("!=", "not in"):
            # AGT's meaning: a missing field is not equal to anything, so `x != 'a'` holds when x is missing.
            # Written as not(==) / not(in), the same in the Rego (`not x == "a"`) and Cedar (`!(has && ==)`) twins.
            nxt = self.peek()
            if (nxt.kind == "op" and nxt.text in _SYMBOL_OPERATORS) or (nxt.kind == "keyword" and nxt.text in _WORD_OPERATORS):
                raise self.error("comparisons do not chain; use 'and'", nxt)
            return ast.Not(ast.Compare("==" if op == "!=" else "in", left, right))
        if op == "matches" and not (isinstance(right, ast.Literal) and isinstance(right.value, str)):
            raise self.error("'matches' needs a quoted regular expression on its right", tok)
        nxt = self.peek()
        if (nxt.kind == "op" and nxt.text in _SYMBOL_OPERATORS) or (nxt.kind == "keyword" and nxt.text in _WORD_OPERATORS):
            raise self.error("comparisons do not chain; use 'and'", nxt)
        return ast.Compare(op, left, right)

    def parse_sum(self) -> ast.Node:
        parts = [self.parse_atom()]
        while self.at("op", "+"):
            self.advance()
            parts.append(self.parse_atom())
        return parts[0] if len(parts) == 1 else ast.Concat(tuple(parts))

    def parse_atom(self) -> ast.Node:
        tok = self.peek()
        if tok.kind == "string":
            self.advance()
            return ast.Literal(_unquote(tok, self.text))
        if tok.kind == "number":
            self.advance()
            return ast.Literal(_number(tok.text))
        if tok.kind == "op" and tok.text == "-" and self.peek(1).kind == "number":
            self.advance()
            return ast.Literal(-_number(self.advance().text))
        if tok.kind == "op" and tok.text == "(":
            self.nest(self.advance())
            node = self.parse_or()
            self.expect(")")
            self.depth -= 1
            return node
        if tok.kind == "op" and tok.text == "[":
            self.nest(self.advance())
            items: list[ast.Node] = []
            while not self.at("op", "]"):
                items.append(self.parse_or())
                if not self.at("op", ","):
                    break
                self.advance()
            self.expect("]")
            self.depth -= 1
            return ast.ListExpr(tuple(items))
        if tok.kind == "name":
            if tok.text in _CONSTANTS:
                self.advance()
                return ast.Literal(_CONSTANTS[tok.text])
            return self.parse_path()
        if tok.kind == "end":
            raise self.error("condition ends too early")
        raise self.error(f"unexpected {tok.text!r}")

    def parse_path(self) -> ast.Node:
        first = self.advance()
        segments = [first]
        while self.at("op", "."):
            self.advance()
            tok = self.peek()
            if tok.kind not in ("name", "keyword"):
                raise self.error("expected a field name after '.'")
            segments.append(self.advance())
        for seg in segments:
            if seg.text.startswith("_"):
                raise self.error(f"field names may not start with '_' ({seg.text!r})", seg)
        if self.at("op", "("):
            raise self.error("function calls are not supported; use an operator such as 'startswith'")
        written = tuple(seg.text for seg in segments)
        try:
            node = ast.resolve_field(written)
        except ast.FieldError as exc:
            raise self.error(str(exc), first) from None
        if isinstance(node, ast.FlatPath):
            near = _near_miss(written)
            if near:
                raise self.error(
                    f"unknown field {node.name!r}: did you mean {near!r}? (a name that is not one of agt's fields reads "
                    f"AGT's flat context; write params.{node.name} or context.attributes.{node.name} to mean that)", first)
        return node


_WELL_KNOWN = sorted({*ast.ALIASES, *(f"{r}.{f}" for r, fs in ast.DOCUMENT_FIELDS.items() for f in fs)})


def _near_miss(written: tuple[str, ...]) -> str | None:
    """A well-known field one or two letters away from what was written (``tool_nme``): a typo, not flat context."""
    import difflib

    name = ".".join(written)
    if name in _WELL_KNOWN:
        return None
    if len(written) == 1 or written[0] in ast.ROOTS:
        close = difflib.get_close_matches(name, _WELL_KNOWN, n=1, cutoff=0.88)
        # A singular or plural of a well-known name (`role` for `roles`) is a name of its own in AGT's flat context.
        if close and not (close[0].startswith(name) or name.startswith(close[0])):
            return close[0]
    return None


def _number(text: str) -> int | Decimal:
    """A literal with a fraction is an exact decimal, like the values it is compared with (``100.50`` is
    100.5, ``100.00`` is 100): comparing a Decimal with a float would compare against the float's binary value."""
    if not any(c in text for c in ".eE"):
        return int(text)
    try:
        return normalize_decimal(Decimal(text), "")
    except ActionError as exc:
        raise ConditionSyntaxError(exc.message, text, 1) from None


def parse(text: str) -> ast.Node:
    """Parse one condition. Raises ConditionSyntaxError with the column of the problem."""
    if not isinstance(text, str):
        raise ConditionSyntaxError(f"a condition must be text, got {type(text).__name__}", str(text), 1)
    return _Parser(text).parse()
