"""The respelling mutators keep meaning: the facts of a respelling are the facts of the original."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from agt.facts.shell import parse_shell
from agt.facts.spellings import respell_command, respell_sql, wrap_command, wrap_respelled
from agt.facts.sql import parse_sql

COMMANDS = ["rm -rf /", "rm -r -f ~", "rm -fv /etc", "rm -rf /var/lib/x", "rm -rf *", "chmod -R 777 /",
            "chown -R root /", "cp -r /etc /tmp/x", "mv -f a b", "dd if=/dev/zero of=/dev/sda", "mkfs.ext4 /dev/sda",
            "ls", "shred -fzu /dev/sda"]
SQL = ["DROP TABLE users", "DELETE FROM users", "DELETE FROM users WHERE id = 3", "TRUNCATE TABLE users",
       "UPDATE users SET a = 1", "UPDATE app.users SET name = 'x y' WHERE id = 2", "select * from t",
       "GRANT ALL ON t TO bob", "DROP DATABASE prod", "DELETE FROM t WHERE a <= 3 AND t.b = 'z'"]


def _triples(text: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return [(c.program, c.flags, c.args) for c in parse_shell(text).commands]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(COMMANDS), st.integers(0, 2**32))
def test_respelled_command_has_exactly_the_same_commands(text: str, seed: int) -> None:
    spelled = respell_command(random.Random(seed), text)
    assert _triples(spelled) == _triples(text), spelled
    assert parse_shell(spelled).parse_error is False


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(COMMANDS), st.integers(0, 2**32))
def test_wrapped_command_still_runs_every_original_command(text: str, seed: int) -> None:
    rng = random.Random(seed)
    spelled = wrap_command(rng, respell_command(rng, text))
    assert set(_triples(text)) <= set(_triples(spelled)), spelled
    assert parse_shell(spelled).parse_error is False


def _statements(text: str) -> set[tuple[str, str, tuple[str, ...], bool]]:
    return {(s.type, s.kind, s.objects, s.has_where) for s in parse_sql(text).statements}


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SQL), st.integers(0, 2**32))
def test_respelled_sql_keeps_every_statement(text: str, seed: int) -> None:
    spelled = respell_sql(random.Random(seed), text)
    assert _statements(text) <= _statements(spelled), spelled
    assert parse_sql(spelled).parse_error is False


def test_respelling_actually_changes_the_text() -> None:
    rng = random.Random(1)
    assert len({respell_command(rng, "rm -rf /") for _ in range(50)}) > 20
    assert len({respell_sql(rng, "DROP TABLE users") for _ in range(50)}) > 20


@pytest.mark.parametrize("text", ["rm -rf $X", "echo $(ls)", "rm 'x", "tar -C / -xf a.tar"])
def test_commands_it_cannot_respell_safely_are_left_alone(text: str) -> None:
    assert respell_command(random.Random(0), text) == text


@pytest.mark.parametrize("text", [*COMMANDS, "rm -rf $X", "echo $(ls)", "rm 'x", "a | b", "tar -C / -xf a.tar"])
def test_wrap_respelled_is_wrap_command_of_the_respelling_without_parsing_it(text: str) -> None:
    for seed in range(100):
        rng, expected = random.Random(seed), random.Random(seed)
        assert wrap_respelled(rng, text) == wrap_command(expected, respell_command(expected, text)), (seed, text)
        assert rng.random() == expected.random()  # the same draws, so what follows is the same too


def test_wrap_command_parses_to_see_when_the_caller_does_not_say() -> None:
    assert wrap_command(random.Random(0), "rm 'x") == "rm 'x"
    assert wrap_command(random.Random(0), "rm -rf /") != "rm -rf /"
