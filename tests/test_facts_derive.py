"""derive_facts: which params are commands or SQL, and one merged shape."""

from __future__ import annotations

from agt.facts import classify_params, derive_facts


def test_execute_tool_command_param_is_shell() -> None:
    facts = derive_facts("run_shell", "execute", {"command": "rm -fr /"})
    assert facts["shell"]["program_flags"] == ["rm -f", "rm -r"] and facts["shell"]["params"] == ["command"]


def test_program_and_args_params_form_one_argv() -> None:
    facts = derive_facts("run", "execute", {"program": "rm", "args": ["-rf", "/"]})
    assert [(c["program"], c["flags"], c["args"]) for c in facts["shell"]["commands"]] == [("rm", ["f", "r"], ["/"])]


def test_args_as_a_string_beside_a_program_reads_like_a_shell() -> None:
    facts = derive_facts("run", "execute", {"program": "rm", "args": "-rf /"})
    assert facts["shell"]["program_args"] == ["rm /"]


def test_argv_list_param() -> None:
    assert derive_facts("exec", "execute", {"argv": ["/bin/rm", "-rf", "/"]})["shell"]["programs"] == ["rm"]


def test_sql_param_on_any_tool() -> None:
    assert derive_facts("report", "read", {"sql": "DROP/**/TABLE users"})["sql"]["types"] == ["drop"]


def test_query_param_is_sql_only_on_a_database_tool() -> None:
    assert derive_facts("run_sql", "execute", {"query": "TRUNCATE t"})["sql"]["types"] == ["truncate"]
    assert derive_facts("search_web", "read", {"query": "drop table tips"})["sql"]["params"] == []


def test_script_param_on_a_python_tool_is_not_shell() -> None:
    assert classify_params("run_python", "execute", {"script": "import os"}) == {}
    assert classify_params("run_script", "execute", {"script": "rm -rf /"}) == {"script": "shell"}


def test_declared_params_replace_inference() -> None:
    declared = {"db": {"text": "sql:mysql", "command": "none"}}
    facts = derive_facts("db", "execute", {"text": "DROP TABLE `x`", "command": "rm -rf /"}, declared)
    assert facts["sql"]["types"] == ["drop"] and facts["shell"]["commands"] == []


def test_non_command_action_has_the_fixed_empty_shape() -> None:
    facts = derive_facts("read_file", "read", {"path": "/ws/x"})
    assert facts["parse_error"] is False and facts["shell"]["commands"] == [] and facts["sql"]["statements"] == []
    assert set(facts) == {"shell", "sql", "parse_error"}


def test_parse_error_in_any_param_sets_the_top_level_flag() -> None:
    facts = derive_facts("run_shell", "execute", {"command": "ls", "sql": "foo bar baz"})
    assert facts["parse_error"] is True and facts["sql"]["parse_error"] and not facts["shell"]["parse_error"]


def test_wrong_value_type_for_a_declared_param_is_a_parse_error() -> None:
    facts = derive_facts("db", "execute", {"q": 3}, {"db": {"q": "sql"}})
    assert facts["parse_error"] is True


def test_several_command_params_merge() -> None:
    facts = derive_facts("run_shell", "execute", {"command": "ls", "cmd": "rm -rf /"})
    assert facts["shell"]["programs"] == ["ls", "rm"] and facts["shell"]["params"] == ["cmd", "command"]
