"""SQL facts: the statements a SQL string runs, parsed by sqlglot.

:func:`parse_sql` never raises: text that no dialect reads as SQL statements sets ``parse_error``.

Dialects. With a dialect declared for the tool, only that dialect reads the text. Without one, sqlglot's
default dialect reads it; when that fails, or when the text holds a character on which dialects disagree
(:data:`QUIRKS`: ``#`` and ``--x`` comments, backslash escapes, backticks, brackets, dollar quotes, double
quotes, nested comments), every dialect in :data:`DEFAULT_DIALECTS` reads it too and the facts are the
union of every reading that parses. An agent must not hide ``; DROP TABLE x`` in what one dialect reads as a
string or comment and another runs. Only when no dialect parses is it a parse error.

MySQL runs the text of ``/*! … */`` comments, which every sqlglot dialect drops as a comment: such text is
a parse error, never a comment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from sqlglot import exp

# sqlglot logs a warning for every statement it falls back to reading as a Command; that is a fact here.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

DEFAULT_DIALECTS: tuple[str | None, ...] = (None, "mysql", "postgres", "tsql")
"""Read without a declared dialect: sqlglot's default, then the dialects whose quirks differ most."""

QUIRKS = ("\\", "#", "--", "`", "[", "$", '"', "/*")
"""Text holding one of these is read by every default dialect, not by the default one alone."""


_STATEMENT_NAMES = (
    "Select", "Union", "Intersect", "Except", "Subquery", "Values", "Insert", "Update", "Delete", "Merge", "Drop",
    "TruncateTable", "Alter", "AlterTable", "Create", "Grant", "Revoke", "Command", "Copy", "Set", "Use",
    "Transaction", "Commit", "Rollback", "Describe", "Show", "Pragma", "Analyze", "Execute", "Cache", "Uncache",
    "Refresh", "LoadData", "Comment", "Declare", "Kill",
)
"""Root expressions that are statements. Anything else (``EXEC x`` read as the alias ``SELECT EXEC AS x``)
is not a reading of the text."""
_NESTED_NAMES = ("Insert", "Update", "Delete", "Merge", "Drop", "TruncateTable", "Alter", "AlterTable",
                 "Create", "Grant", "Revoke", "Command", "Copy", "Execute")
"""Statements that change something, listed also where they sit inside another (``WITH x AS (DELETE …)``)."""

_TYPES: dict[str, str] = {
    "Union": "select", "Intersect": "select", "Except": "select", "Subquery": "select", "Values": "select",
    "TruncateTable": "truncate", "Transaction": "begin", "AlterTable": "alter", "LoadData": "load",
}


class _Sqlglot:
    """sqlglot and the expression classes read here, imported on the first parse: importing sqlglot costs
    ~70 ms, which every `agt` command would otherwise pay at start-up (issue 14)."""

    def __init__(self) -> None:
        import sqlglot
        from sqlglot import exp
        from sqlglot.optimizer.simplify import simplify

        def classes(names: tuple[str, ...]) -> tuple[type, ...]:
            return tuple(getattr(exp, n) for n in names if hasattr(exp, n))

        self.parse, self.exp, self.simplify = sqlglot.parse, exp, simplify
        self.statements, self.nested, self.filtered = classes(_STATEMENT_NAMES), classes(_NESTED_NAMES), classes(("Update", "Delete"))


_sg: _Sqlglot | None = None


def _sqlglot() -> _Sqlglot:
    global _sg
    if _sg is None:
        _sg = _Sqlglot()
    return _sg


@dataclass(frozen=True)
class Statement:
    type: str
    """select, insert, update, delete, merge, drop, truncate, alter, create, grant, revoke, command, …"""
    kind: str = ""
    """What a drop/create/alter acts on (table, view, database, index…); for a command, its keyword."""
    objects: tuple[str, ...] = ()
    """Tables it names, lowercased, each bare and schema-qualified (``users``, ``app.users``)."""
    has_where: bool = False
    """It has a WHERE that names a column once sqlglot's simplifier folds constants: ``WHERE 1=1`` and
    ``WHERE id = 3 OR 1=1`` count as no WHERE."""

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "kind": self.kind, "objects": list(self.objects), "has_where": self.has_where}


@dataclass(frozen=True)
class SqlFacts:
    statements: tuple[Statement, ...] = ()
    parse_error: bool = False
    errors: tuple[str, ...] = ()

    def merge(self, other: "SqlFacts") -> "SqlFacts":
        return SqlFacts(_unique(self.statements + other.statements), self.parse_error or other.parse_error,
                        self.errors + other.errors)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON, with flat sets for membership tests: ``types``, ``objects``, and ``without_where``
        (the types of the updates and deletes that have no WHERE). A statement sqlglot could only read as an
        opaque ``command`` counts, in the flat sets, also as the statement its keyword names
        (``DROP "TABLE" users`` is a drop), and a delete or update read so has no WHERE anyone saw."""
        types = {t for s in self.statements for t in _flat_types(s)}
        return {
            "statements": [s.to_dict() for s in self.statements],
            "types": sorted(types),
            "objects": sorted({o for s in self.statements for o in s.objects}),
            "without_where": sorted({t for s in self.statements for t in _flat_types(s)
                                     if t in ("update", "delete") and not s.has_where}),
            "parse_error": self.parse_error,
            "errors": list(self.errors),
        }


EMPTY = SqlFacts()

_COMMAND_KEYWORDS = frozenset({"drop", "truncate", "delete", "update", "alter", "grant", "revoke", "insert", "merge",
                               "create"})


def _flat_types(statement: Statement) -> tuple[str, ...]:
    if statement.type == "command" and statement.kind in _COMMAND_KEYWORDS:
        return (statement.type, statement.kind)
    return (statement.type,)


def _unique(statements: tuple[Statement, ...]) -> tuple[Statement, ...]:
    return tuple(dict.fromkeys(statements))


@lru_cache(maxsize=2048)
def parse_sql(text: str, dialect: str | None = None, *, dialects: tuple[str | None, ...] | None = None) -> SqlFacts:
    """The facts of a SQL string, read in ``dialect`` if given, else in every one of ``dialects``."""
    if not text.strip():
        return EMPTY
    if "/*!" in text:
        return SqlFacts((), True, ("sql: MySQL runs the text of /*! … */ comments; they are not read as comments",))
    readings: list[Statement] = []
    errors: list[str] = []
    parsed_any = False
    order = (dialect,) if dialect else (dialects or DEFAULT_DIALECTS)
    for i, d in enumerate(order):
        try:
            readings.extend(_read(text, d))
            parsed_any = True
        except Exception as exc:  # sqlglot raises ParseError, TokenError, and sometimes others
            errors.append(f"sql ({d or 'default'}): {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
        if i == 0 and parsed_any and not any(q in text for q in QUIRKS):
            break  # plain text: the dialects agree
    if not parsed_any:
        return SqlFacts((), True, tuple(errors))
    return SqlFacts(_unique(tuple(readings)))


def _read(text: str, dialect: str | None) -> list[Statement]:
    sg = _sqlglot()
    out: list[Statement] = []
    for root in sg.parse(text, read=dialect):
        if root is None or isinstance(root, sg.exp.Semicolon):
            continue  # an empty statement between semicolons, or a trailing comment
        if not isinstance(root, sg.statements):
            raise ValueError(f"not a statement: {type(root).__name__}")
        out.extend(_statements(root))
    return out


def _statements(root: exp.Expression) -> Iterator[Statement]:
    yield _statement(root)
    for node in root.find_all(*_sqlglot().nested):
        if node is not root:
            yield _statement(node)


def _statement(node: exp.Expression) -> Statement:
    sg = _sqlglot()
    name = type(node).__name__
    kind = ""
    if isinstance(node, sg.exp.Command):
        stype, kind = "command", str(node.this or "").lower()
    else:
        stype = _TYPES.get(name, name.lower())
        raw = node.args.get("kind")
        if isinstance(raw, str):
            kind = raw.lower()
    has_where = False
    if isinstance(node, sg.filtered) or node.args.get("where") is not None:
        where = node.args.get("where")
        if where is not None:
            has_where = _names_a_column(where.this)
    return Statement(stype, kind, _objects(node), has_where)


def _names_a_column(condition: exp.Expression) -> bool:
    sg = _sqlglot()
    try:
        folded = sg.simplify(condition.copy())
    except Exception:  # the simplifier failing must not turn a WHERE into no WHERE, or the reverse
        folded = condition
    return folded.find(sg.exp.Column) is not None


def _objects(node: exp.Expression) -> tuple[str, ...]:
    exp = _sqlglot().exp
    ctes = {c.alias_or_name.lower() for c in node.find_all(exp.CTE)}
    tables = list(node.find_all(exp.Table))
    aliases = {t.alias.lower() for t in tables if t.alias}
    names: set[str] = set()
    for t in tables:
        name = t.name.lower()
        if not name:
            continue
        qualified = [p.lower() for p in (t.catalog, t.db) if p] + [name]
        if len(qualified) == 1 and (name in ctes or (name in aliases and not t.alias)):
            continue  # DELETE u FROM users u names the alias u, not a table u
        names.add(name)
        for i in range(len(qualified) - 1):
            names.add(".".join(qualified[i:]))
    return tuple(sorted(names))
