"""SQL facts: statement types, objects and WHERE, whatever the comments, case and dialect."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from agt.facts.sql import parse_sql


def summary(text: str, dialect: str | None = None) -> list[tuple[str, tuple[str, ...], bool]]:
    return [(s.type, s.objects, s.has_where) for s in parse_sql(text, dialect).statements]


@pytest.mark.parametrize("text", [
    "DROP TABLE users", "drop table users", "DROP/**/TABLE users", "DROP /* x */ TABLE /* y */ users",
    "DROP\n\tTABLE\n users ;", "-- bye\nDROP TABLE users", "# bye\nDROP TABLE users", "dRoP TaBlE USERS",
    'DROP TABLE "users"', "DROP TABLE `users`", "DROP TABLE [users]", "DROP TABLE IF EXISTS users",
])
def test_drop_table_spellings(text: str) -> None:
    facts = parse_sql(text)
    assert not facts.parse_error
    assert {(s.type, s.kind, s.objects) for s in facts.statements} == {("drop", "table", ("users",))}


def test_delete_with_alias_and_no_where_has_no_where() -> None:
    assert summary("DELETE u FROM users u") == [("delete", ("users",), False)]
    assert parse_sql("DELETE u FROM users u").to_dict()["without_where"] == ["delete"]


def test_delete_with_where_has_where() -> None:
    assert summary("delete from users where id=3") == [("delete", ("users",), True)]
    assert parse_sql("delete from users where id=3").to_dict()["without_where"] == []


@pytest.mark.parametrize("text", [
    "DELETE FROM users WHERE 1=1", "DELETE FROM users WHERE true", "DELETE FROM users WHERE 1",
    "DELETE FROM users WHERE id = 3 OR 1 = 1", "UPDATE users SET a = 1 WHERE 'a' = 'a'", "UPDATE users SET a = 1",
])
def test_constant_true_where_counts_as_no_where(text: str) -> None:
    [stmt] = parse_sql(text).statements
    assert stmt.has_where is False


def test_multi_statement_string_gives_every_statement() -> None:
    assert [s.type for s in parse_sql("TRUNCATE users; select 1").statements] == ["truncate", "select"]


@pytest.mark.parametrize("text, stype", [
    ("INSERT INTO t VALUES (1)", "insert"), ("UPDATE t SET a = 1 WHERE id = 2", "update"),
    ("ALTER TABLE t ADD c INT", "alter"), ("GRANT ALL ON t TO bob", "grant"), ("REVOKE ALL ON t FROM bob", "revoke"),
    ("CREATE TABLE t (a INT)", "create"), ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "merge"),
    ("SELECT a FROM t UNION SELECT b FROM u", "select"), ("TRUNCATE TABLE t", "truncate"),
])
def test_statement_types(text: str, stype: str) -> None:
    assert stype in parse_sql(text).to_dict()["types"]


def test_unknown_statement_is_a_command_with_its_keyword_not_a_select() -> None:
    [stmt] = parse_sql("VACUUM").statements
    assert (stmt.type, stmt.kind) == ("command", "vacuum")


def test_exec_is_not_read_as_a_select_alias() -> None:
    types = parse_sql("EXEC sp_drop_everything").to_dict()["types"]
    assert "select" not in types and types


def test_schema_qualified_objects_give_both_forms() -> None:
    assert parse_sql("UPDATE App.Users SET a = 1 WHERE id = 1").statements[0].objects == ("app.users", "users")


def test_cte_names_are_not_objects() -> None:
    stmts = parse_sql("WITH x AS (SELECT * FROM t) SELECT * FROM x").statements
    assert {o for s in stmts for o in s.objects} == {"t"}


def test_data_modifying_cte_is_listed_as_a_statement() -> None:
    d = parse_sql("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x").to_dict()
    assert "delete" in d["types"] and d["without_where"] == ["delete"]


def test_mysql_backslash_escape_cannot_hide_a_drop() -> None:
    # The default dialect reads one string literal; MySQL reads a SELECT, then runs DROP TABLE x.
    assert "drop" in parse_sql("SELECT '\\'' ; DROP TABLE x; -- '").to_dict()["types"]


def test_mysql_dash_dash_without_space_cannot_hide_a_drop() -> None:
    # The default dialect reads "--x; DROP TABLE t" as a comment; MySQL reads 1 - -x, then DROP TABLE t.
    assert "drop" in parse_sql("SELECT 1 --x; DROP TABLE t").to_dict()["types"]


def test_mysql_executable_comment_is_a_parse_error() -> None:
    facts = parse_sql("SELECT 1 /*! ; DROP TABLE users */")
    assert facts.parse_error is True and "/*!" in facts.errors[0]


def test_declared_dialect_reads_only_that_dialect() -> None:
    assert parse_sql("DROP TABLE `users`", "postgres").parse_error is True
    assert summary("DROP TABLE `users`", "mysql") == [("drop", ("users",), False)]


@pytest.mark.parametrize("text", ["foo bar baz", "DROP TABLE", "SELECT (", "'unterminated"])
def test_unparseable_text_is_a_parse_error(text: str) -> None:
    facts = parse_sql(text)
    assert facts.parse_error is True and facts.errors and facts.statements == ()


@pytest.mark.parametrize("text", ["", "  ", ";;", "-- only a comment"])
def test_empty_sql_runs_nothing(text: str) -> None:
    facts = parse_sql(text)
    assert facts.statements == () and facts.parse_error is False


def test_to_dict_is_plain_json() -> None:
    d = parse_sql("DELETE FROM a; UPDATE b SET x = 1 WHERE id = 2").to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["types"] == ["delete", "update"] and d["objects"] == ["a", "b"] and d["without_where"] == ["delete"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    json.dumps(parse_sql(text).to_dict())


_SQLISH = st.lists(st.sampled_from(["DROP", "TABLE", "users", "DELETE", "FROM", "WHERE", "1=1", ";", "/*", "*/", "--",
                                    "#", "'", '"', "`", "\\", "(", ")", "SELECT", "*", "\n", "u", "EXEC", "$$"]),
                   max_size=16).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(_SQLISH)
def test_never_raises_on_sql_like_text(text: str) -> None:
    json.dumps(parse_sql(text).to_dict())
