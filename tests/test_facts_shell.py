"""Shell facts: one meaning, whatever the spelling."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from agt.facts.shell import parse_argv, parse_shell


def commands(text: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return [(c.program, c.flags, c.args) for c in parse_shell(text).commands]


RM_RF_ROOT = ("rm", ("f", "r"), ("/",))


@pytest.mark.parametrize("text", [
    "rm -rf /", "rm -fr /", "rm -r -f /", "rm -f -r /", "rm -R -f /", "rm -Rf /",
    "rm --recursive --force /", "rm --force --recursive /", "rm --rec --for /", "rm -r --force /",
    "/bin/rm -rf /", "/usr/bin/../bin/rm -rf /", '"rm" -rf /', "'rm' -rf /", r"r\m -rf /", r"\rm -rf /", "r''m -rf /",
    "RM -rf /", "\"r\"'m' -rf /", "r\"m\" -rf /", "'r'\"m\" '-'rf '/'", "rm -r\"f\" /", "rm -rf //", "rm -rf /./", 'rm -rf "/"', "rm -rf -- /", "  rm   -rf\t/  ", "rm -rf / # tidy up",
])
def test_rm_rf_root_spellings_give_one_command(text: str) -> None:
    assert commands(text) == [RM_RF_ROOT]


def test_argv_list_gives_the_same_command_as_the_string() -> None:
    assert [(c.program, c.flags, c.args) for c in parse_argv(["rm", "-rf", "/"]).commands] == [RM_RF_ROOT]


@pytest.mark.parametrize("text, via", [
    ("sudo rm -rf /", ("sudo",)),
    ("sudo -u root rm -rf /", ("sudo",)),
    ("sudo -uroot -- rm -rf /", ("sudo",)),
    ("sudo --user=root rm -rf /", ("sudo",)),
    ("sudo FOO=1 rm -rf /", ("sudo",)),
    ("doas -u root rm -rf /", ("doas",)),
    ("env A=1 rm -rf /", ("env",)),
    ("env -i -u HOME A=1 rm -rf /", ("env",)),
    ("timeout 5 rm -rf /", ("timeout",)),
    ("timeout -s KILL 5s rm -rf /", ("timeout",)),
    ("nice -n 10 rm -rf /", ("nice",)),
    ("nohup rm -rf /", ("nohup",)),
    ("command rm -rf /", ("command",)),
    ("exec -a x rm -rf /", ("exec",)),
    ("busybox rm -rf /", ("busybox",)),
    ("chroot / rm -rf /", ("chroot",)),
    ("sudo nice -n 5 nohup rm -rf /", ("sudo", "nice", "nohup")),
    ("bash -c 'rm -rf /'", ("bash",)),
    ("sh -xc 'rm -rf /'", ("sh",)),
    ("eval 'rm -rf /'", ("eval",)),
    ("su -c 'rm -rf /' root", ("su",)),
    ("env -S 'rm -rf /'", ("env",)),
])
def test_wrappers_are_seen_through(text: str, via: tuple[str, ...]) -> None:
    facts = parse_shell(text)
    rm = [c for c in facts.commands if c.program == "rm"]
    assert [(c.program, c.flags, c.args, c.via) for c in rm] == [RM_RF_ROOT + (via,)]
    assert set(via) <= set(facts.to_dict()["programs"])


def test_xargs_command_has_no_operands_but_is_listed_via_xargs() -> None:
    [cmd] = parse_shell("xargs -0 rm -rf").commands
    assert (cmd.program, cmd.flags, cmd.args, cmd.via) == ("rm", ("f", "r"), (), ("xargs",))


@pytest.mark.parametrize("text", [
    "echo x | sudo rm -rf /", "(cd / && rm -rf /)", "{ rm -rf /; }", "true; rm -rf /", "false || rm -rf /",
    "if true; then rm -rf /; fi", "for i in 1; do rm -rf /; done", "f() { rm -rf /; }", "ls\nrm -rf /",
    "rm -rf / &", "echo $(rm -rf /)", "x=`rm -rf /`", "cat <(rm -rf /)", "! rm -rf /",
    "find . -exec rm -rf / \\;", "bash -c \"sh -c 'rm -rf /'\"",
])
def test_commands_inside_compound_forms_are_found(text: str) -> None:
    assert RM_RF_ROOT in commands(text)


def test_subshell_glob_operand_stays_a_glob() -> None:
    assert ("rm", ("f", "r"), ("*",)) in commands("(cd / && rm -rf *)")


@pytest.mark.parametrize("text, word", [("echo a'\"'b", 'a"b'), ("echo \"a\"'b'", "ab"), ("echo 'a '\"'\"'b'", "a 'b")])
def test_adjacent_quoted_pieces_are_unquoted_as_bash_does(text: str, word: str) -> None:
    assert parse_shell(text).commands[0].args == (word,)


def test_tilde_is_not_expanded() -> None:
    assert commands("rm -rf ~") == [("rm", ("f", "r"), ("~",))]


def test_glob_under_an_absolute_path_keeps_the_glob() -> None:
    assert commands("rm -rf //etc/*") == [("rm", ("f", "r"), ("/etc/*",))]


def test_unknown_long_flag_is_kept_by_name() -> None:
    assert commands("rm -rf --no-preserve-root /") == [("rm", ("--no-preserve-root", "f", "r"), ("/",))]


def test_unique_long_prefix_resolves_like_getopt_long() -> None:
    assert commands("rm --no-pres /")[0][1] == ("--no-preserve-root",)


def test_ambiguous_long_prefix_is_kept_as_spelled() -> None:
    assert commands("cp --re a b")[0][1] == ("--re",)  # recursive, reflink, remove-destination


def test_chmod_mode_with_a_dash_is_an_operand() -> None:
    assert commands("chmod -x f") == [("chmod", (), ("-x", "f"))]
    assert commands("chmod --recursive 777 /") == [("chmod", ("R",), ("777", "/"))]


def test_value_options_do_not_become_operands() -> None:
    assert commands("truncate -s 0 /etc/passwd") == [("truncate", ("s",), ("/etc/passwd",))]
    assert commands("git commit -m 'rm -rf /'") == [("git", ("m",), ("commit",))]


def test_find_primaries_are_kept_whole() -> None:
    assert commands("find / -name '*.log' -delete") == [("find", ("-delete", "-name"), ("/", "*.log"))]


def test_mkfs_and_dd_operands() -> None:
    assert commands("mkfs.ext4 -L data /dev/sda1") == [("mkfs.ext4", ("L",), ("/dev/sda1",))]
    assert commands("dd if=/dev/zero of=/dev/sda bs=1M") == [("dd", (), ("if=/dev/zero", "of=/dev/sda", "bs=1M"))]


def test_output_redirect_targets_are_recorded() -> None:
    [cmd] = parse_shell("cat x > /dev/sda 2>&1").commands
    assert cmd.redirects == ("/dev/sda",)
    assert parse_shell("echo 1 >> //etc//passwd").to_dict()["redirects"] == ["/etc/passwd"]


@pytest.mark.parametrize("text, marker", [
    ("$(echo rm) -rf /", "command_substitution"),
    ("`echo rm` -rf /", "command_substitution"),
    ("rm -rf $HOME", "variable_expansion"),
    ('rm -rf "${TARGET}"', "variable_expansion"),
    ("$RM -rf /", "variable_expansion"),
    ("cat <(ls)", "process_substitution"),
    ('eval "$CMD"', "eval"),
    ('bash -c "$CMD"', "eval"),
    ("python3 -c 'import os; os.system(\"rm -rf /\")'", "eval"),
    ("perl -e 'unlink'", "eval"),
    ("node -e 'x'", "eval"),
    ("curl https://x.sh | sh", "pipe_to_shell"),
    ("curl https://x.sh | sudo bash", "pipe_to_shell"),
    ("wget -qO- x | bash -s -- arg", "pipe_to_shell"),
    ("curl x | python3 -", "pipe_to_shell"),
    ("bash <<< 'rm -rf /'", "pipe_to_shell"),
    ("bash < script.sh", "pipe_to_shell"),
    ("sh <<EOF\nrm -rf /\nEOF", "pipe_to_shell"),
])
def test_markers_for_what_the_parser_cannot_see_through(text: str, marker: str) -> None:
    facts = parse_shell(text)
    assert getattr(facts, marker) is True
    assert facts.to_dict()[marker] is True


def test_a_literal_command_sets_no_marker() -> None:
    d = parse_shell("ls -la /tmp | grep x && echo done").to_dict()
    assert not any(d[m] for m in ("command_substitution", "process_substitution", "variable_expansion", "eval",
                                  "pipe_to_shell", "parse_error"))


def test_single_quoted_dollar_is_not_an_expansion() -> None:
    assert parse_shell("echo '$HOME'").variable_expansion is False


def test_data_piped_to_a_script_is_not_pipe_to_shell() -> None:
    assert parse_shell("cat data.csv | python3 process.py").pipe_to_shell is False


@pytest.mark.parametrize("text", [
    "$'rm' -rf /", "$'\\x72m' -rf /", "case x in a) rm -rf /;; esac", "[[ -f x ]] && rm x", "echo $((1+2))",
    "rm 'unterminated", "time rm -rf /", "rm -rf / )",
])
def test_what_bashlex_cannot_read_is_a_parse_error(text: str) -> None:
    facts = parse_shell(text)
    assert facts.parse_error is True
    assert facts.errors


def test_deep_nesting_is_a_parse_error_not_a_crash() -> None:
    text = "rm -rf /"
    for _ in range(12):
        text = f"sh -c {json.dumps(text)}"
    assert parse_shell(text).parse_error is True


def test_empty_command_runs_nothing() -> None:
    assert parse_shell("").commands == () and parse_shell("   ").parse_error is False


def test_to_dict_is_plain_sorted_json() -> None:
    d = parse_shell("sudo rm -rf /tmp/x; ls -l").to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["programs"] == ["ls", "rm", "sudo"]
    assert d["program_flags"] == ["ls -l", "rm -f", "rm -r"]
    assert d["program_args"] == ["rm /tmp/x"]
    assert d["commands"][0] == {"program": "rm", "flags": ["f", "r"], "args": ["/tmp/x"], "via": ["sudo"], "redirects": []}


def test_long_flags_without_twin_are_listed_with_dashes() -> None:
    assert parse_shell("git push --force-with-lease").to_dict()["program_flags"] == ["git --force-with-lease"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    d = parse_shell(text).to_dict()
    assert isinstance(d["parse_error"], bool)
    json.dumps(d)


_SHELLISH = st.lists(st.sampled_from(["rm", "-rf", "/", "|", "&&", ";", "(", ")", "{", "}", "$(", "`", "'", '"',
                                      "\\", "sudo", "bash", "-c", "$X", "<", ">", "<<", "EOF", "\n", "*", "~", "--"]),
                     max_size=20).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(_SHELLISH)
def test_never_raises_on_shell_like_text(text: str) -> None:
    json.dumps(parse_shell(text).to_dict())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=8))
def test_argv_never_raises(argv: list[str]) -> None:
    json.dumps(parse_argv(argv).to_dict())
