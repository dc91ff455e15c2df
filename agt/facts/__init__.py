"""Derived facts: what the shell commands and SQL in an action's params mean, as plain fields.

:func:`derive_facts` decides which params hold a command, an argv or SQL (declared per tool, or inferred
from the tool's kind and the param's name; see docs/action-schema.md, "Derived facts"), parses each once,
and returns one plain JSON object of fixed shape that every engine reads::

    {"shell": {...}, "sql": {...}, "parse_error": bool}

An action with no command or SQL param parses nothing and gets one shared empty shape.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Mapping

from agt.facts.shell import ShellFacts, SimpleCommand, parse_argv, parse_shell
from agt.facts.sql import SqlFacts, Statement, parse_sql
from agt.facts import shell as _shell, sql as _sql

__all__ = ["derive_facts", "classify_params", "parse_shell", "parse_argv", "parse_sql",
           "ShellFacts", "SimpleCommand", "SqlFacts", "Statement"]

Declarations = Mapping[str, Mapping[str, str]]
"""tool → param → ``"shell"`` (a command string), ``"argv"`` (a list), ``"program"`` (argv[0] for the
tool's argv param), ``"sql"`` or ``"sql:<dialect>"``, or ``"none"``."""

_SHELL_NAMES = frozenset({"command", "cmd", "commandline", "command_line", "cmdline", "shell_command",
                          "bash_command", "shell"})
"""A string param with one of these names is a shell command on a tool of any kind."""
_SCRIPT_NAMES = frozenset({"script", "code"})
"""Shell too, but only on execute-kind tools whose name names no other language."""
_ARGV_NAMES = frozenset({"argv", "args", "arguments"})
"""A list param with one of these names is an argv on execute-kind tools, or beside a program param."""
_PROGRAM_NAMES = ("program", "executable", "binary", "exe", "command", "cmd")
_SQL_NAMES = frozenset({"sql", "sql_query", "sql_statement", "sql_statements"})
"""A string param with one of these names is SQL on any tool."""
_QUERY_NAMES = frozenset({"query", "statement", "statements", "stmt", "sql_text"})
"""SQL only on a tool whose name says database."""
_DB_WORDS = re.compile(r"sql|(^|[_.-])db|database|query|postgres|psql|mysql|mariadb|sqlite|snowflake|bigquery|redshift"
                       r"|warehouse|duckdb|clickhouse|oracle|mssql|athena|trino|presto", re.IGNORECASE)
_OTHER_LANGUAGES = re.compile(r"python|(^|[_.-])py($|[_.-])|node|javascript|(^|[_.-])js($|[_.-])|ruby|perl|sql|lua"
                              r"|(^|[_.-])r($|[_.-])", re.IGNORECASE)


ROLE_NAMES = _SHELL_NAMES | _SCRIPT_NAMES | _ARGV_NAMES | frozenset(_PROGRAM_NAMES) | _SQL_NAMES | _QUERY_NAMES
"""Every param name classify_params can give a role: params with none of them hold no command or SQL."""


NO_FACTS = {"shell": {**_shell.EMPTY.to_dict(), "params": [], "parsed": False},
          "sql": {**_sql.EMPTY.to_dict(), "params": [], "parsed": False}, "parse_error": False}
"""``parsed``: the action has a param of that language and every one of them parsed (so text patterns on
that language's words are redundant: the facts say what it means)."""


def classify_params(tool: str, kind: str, params: Mapping[str, Any],
                    declared: Declarations | None = None) -> dict[str, str]:
    """param → ``shell``/``argv``/``program``/``sql[:dialect]`` for the params that hold a command or SQL."""
    if declared is not None and tool in declared:
        return {p: t for p, t in declared[tool].items() if t != "none" and p in params}
    if type(params) is dict and params.keys().isdisjoint(ROLE_NAMES):
        return {}  # no param has a name the rules below look at: the common case, decided in one set test
    out: dict[str, str] = {}
    execute = kind == "execute"
    argv_params = [p for p in params if p in _ARGV_NAMES and isinstance(params[p], list)]
    has_program = any(isinstance(params.get(p), str) for p in _PROGRAM_NAMES)
    for name, value in params.items():
        if isinstance(value, str):
            if name in _SQL_NAMES or (name in _QUERY_NAMES and _DB_WORDS.search(tool)):
                out[name] = "sql"
            elif name in _SHELL_NAMES or (name in _SCRIPT_NAMES and execute and not _OTHER_LANGUAGES.search(tool)):
                out[name] = "shell"
            elif name in _ARGV_NAMES and execute:
                out[name] = "shell"  # {"args": "-rf /"}: a tool that splits a string runs it like a shell
        elif isinstance(value, list) and (name in _SHELL_NAMES or (name in argv_params and (execute or has_program))):
            out[name] = "argv"
    if argv_params or any(t == "shell" and n in _ARGV_NAMES for n, t in out.items()):
        for p in _PROGRAM_NAMES:
            if isinstance(params.get(p), str) and p not in _SHELL_NAMES:
                out[p] = "program"
                break
    return out


def derive_facts(tool: str, kind: str, params: Mapping[str, Any], declared: Declarations | None = None) -> dict[str, Any]:
    """The facts of every command and SQL param of one action, merged. Never raises. The result may be
    shared (the empty shape is one object): treat it as read-only, like ``Action.document``."""
    if declared is None and type(params) is dict and params.keys().isdisjoint(ROLE_NAMES):
        return NO_FACTS  # classify_params's first test, made here: the common case without the call
    roles = classify_params(tool, kind, params, declared)
    if not roles:
        return NO_FACTS  # shared: the common case costs no copy
    program = next((params[p] for p, t in sorted(roles.items()) if t == "program"), None)
    takes_program = [n for n, t in roles.items() if t == "argv" or (t == "shell" and n in _ARGV_NAMES)]
    shell, sql = _shell.EMPTY, _sql.EMPTY
    shell_params: list[str] = []
    sql_params: list[str] = []
    for name in sorted(roles):
        role, value = roles[name], params[name]
        if role.startswith("sql"):
            dialect = role.partition(":")[2] or None
            sql = sql.merge(parse_sql(value, dialect) if isinstance(value, str) else _not_text(name, "SQL"))
            sql_params.append(name)
            continue
        if role == "program":
            if takes_program or not isinstance(value, str):
                continue  # read as argv[0] of the argv param
            facts = parse_argv([value])
        elif isinstance(value, list):
            facts = parse_argv(([program] if program is not None and name in takes_program else []) + value)
        elif isinstance(value, str):
            if program is not None and name in takes_program:
                value = f"{shlex.quote(program)} {value}"
            facts = parse_shell(value)
        else:
            facts = _not_text(name, "a command")
        shell = shell.merge(facts)
        shell_params.append(name)
    return {
        "shell": {**shell.to_dict(), "params": shell_params, "parsed": bool(shell_params) and not shell.parse_error},
        "sql": {**sql.to_dict(), "params": sql_params, "parsed": bool(sql_params) and not sql.parse_error},
        "parse_error": shell.parse_error or sql.parse_error,
    }


def _not_text(name: str, what: str) -> Any:
    error = (f"{name}: {what} must be a string" + ("" if what == "SQL" else " or a list"),)
    return SqlFacts(parse_error=True, errors=error) if what == "SQL" else ShellFacts(parse_error=True, errors=error)
