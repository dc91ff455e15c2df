"""agt.facts.derived: the flat fields rules need beyond membership (targets, families, device writes)."""

from __future__ import annotations

import pytest

from agt.facts import derive_facts
from agt.facts.derived import delete_target, family
from agt.facts.sql import parse_sql


def shell(command: str) -> dict:
    return derive_facts("run_shell", "execute", {"command": command})["shell"]


@pytest.mark.parametrize(("arg", "target"), [
    ("/", "/"), ("/*", "/"), ("//", "/"), ("/etc/", "/etc"), ("/etc/*", "/etc"), ("/etc/.", "/etc"), ("~/", "~"),
    ("~/*", "~"), ("*", "*"), ("/e*", "/"), ("/[eu]*/x", "/"), ("$HOME", "$"), ("`pwd`", "$"), ("/tmp/build", "/tmp/build"),
    ("build/", "build"),
])
def test_delete_target_is_normalized(arg, target):
    assert delete_target(arg) == target


@pytest.mark.parametrize("command", ["rm -rf /", "rm -R //", "rm --recursive /etc/*", "sudo rm -fr ~/", "rm -rf $DIR",
                                     "rm -r /usr/local", "xargs rm -rf /var"])
def test_recursive_delete_of_a_system_path_is_flagged(command):
    assert shell(command)["deletes_system_path"] is True


@pytest.mark.parametrize("command", ["rm -f /etc/hosts", "rm /", "rm -rf /tmp/build", "rm -rf ./build", "ls -R /"])
def test_other_deletes_are_not_flagged(command):
    assert shell(command)["deletes_system_path"] is False


@pytest.mark.parametrize(("program", "name"), [("mkfs.ext4", "mkfs"), ("mke2fs", "mkfs"), ("mkfs", "mkfs"), ("rm", "rm")])
def test_program_family(program, name):
    assert family(program) == name


@pytest.mark.parametrize(("command", "writes"), [
    ("dd if=/dev/zero of=/dev/sda", True), ("dd if=/dev/sda of=/tmp/img", False), ("cat x > /dev/nvme0n1", True),
    ("make > /dev/null 2>&1", False), ("echo hi > /dev/stderr", False), ("echo x > /dev/fd/3", False),
])
def test_writes_device(command, writes):
    assert shell(command)["writes_device"] is writes


def test_parsed_says_every_param_of_the_language_parsed():
    assert derive_facts("run_sql", "execute", {"sql": "SELECT 1"})["sql"]["parsed"] is True
    assert derive_facts("run_sql", "execute", {"sql": "DELETE FROM WHERE"})["sql"]["parsed"] is False
    assert derive_facts("read_file", "read", {"path": "/x"})["shell"]["parsed"] is False


def test_an_opaque_command_statement_counts_as_the_statement_its_keyword_names():
    facts = parse_sql('DROP "TABLE" users').to_dict()
    assert "drop" in facts["types"] and "command" in facts["types"]
