"""Respellings that keep a command's meaning: the fuzzer's mutators for shell and SQL, and the test oracle
that facts depend on meaning, not spelling.

Each function takes a ``random.Random`` and a text and returns another spelling of the same thing, or the
text unchanged when it cannot respell it safely. Two kinds, and the property each keeps:

* :func:`respell_command` changes only spelling (flag order and splitting, long forms, program paths,
  quotes, backslashes, ``--``, whitespace): the respelling has exactly the original's commands.
* :func:`wrap_command` puts the command in a context (a wrapper, a pipeline, a list, a subshell, a group,
  ``bash -c``): every original command is still there, with the same program, flags and operands.
* :func:`respell_sql` changes comments, whitespace, keyword case, a trailing ``;``, a table alias, or adds
  a statement before it: every original statement is still there with the same facts.
"""

from __future__ import annotations

import random
import shlex

from sqlglot.tokens import TokenType, Tokenizer

from agt.facts.options import PROGRAMS
from agt.facts.shell import SimpleCommand, parse_shell

_PATHS = ("/bin/", "/usr/bin/", "/usr/local/../bin/", "//bin/")
_SAFE_OPERAND = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-=@%+:,")


def _respellable(facts_text: str) -> SimpleCommand | None:
    facts = parse_shell(facts_text)
    if len(facts.commands) != 1 or facts.parse_error or any(getattr(facts, m) for m in facts.MARKERS):
        return None
    cmd = facts.commands[0]
    if cmd.via or cmd.redirects:
        return None
    spec = PROGRAMS.get(cmd.program)
    if cmd.flags and (spec is None or any(f in spec.values or f.startswith("--") for f in cmd.flags)):
        return None  # without the spec, a flag's value could move: only programs whose flags we know
    if any(not a or a[0] == "-" or not set(a) <= _SAFE_OPERAND for a in cmd.args):
        return None
    return cmd


def _program_word(rng: random.Random, program: str) -> str:
    choice = rng.randrange(7)
    if choice == 0:
        return rng.choice(_PATHS) + program
    if choice == 1:
        return f'"{program}"'
    if choice == 2:
        return f"'{program}'"
    if choice == 3 and len(program) > 1:
        i = rng.randrange(1, len(program))
        return program[:i] + "\\" + program[i:]
    if choice == 4:
        return "\\" + program
    if choice == 5 and len(program) > 1:
        i = rng.randrange(1, len(program))
        return program[:i] + "''" + program[i:]
    return program


def _flag_words(rng: random.Random, program: str, flags: tuple[str, ...]) -> list[str]:
    spec = PROGRAMS[program]
    longs: dict[str, list[str]] = {}
    for name, twin in spec.long.items():
        if twin:
            longs.setdefault(twin, []).append(name)
    aliases: dict[str, list[str]] = {}
    for alias, letter in spec.aliases.items():
        aliases.setdefault(letter, []).append(alias)
    letters = list(flags)
    rng.shuffle(letters)
    words: list[str] = []
    cluster = ""
    for letter in letters:
        if letter in longs and rng.random() < 0.35:
            name = rng.choice(longs[letter])
            if spec.complete and rng.random() < 0.3:
                name = _shortest_unique_prefix(name, list(spec.long)) or name
            words.append(f"--{name}")
            continue
        spelled = rng.choice([letter] + aliases.get(letter, []))
        if cluster and rng.random() < 0.5:
            words.append("-" + cluster)
            cluster = ""
        cluster += spelled
    if cluster:
        words.append("-" + cluster)
    rng.shuffle(words)
    return words


def _shortest_unique_prefix(name: str, names: list[str]) -> str | None:
    for end in range(1, len(name)):
        prefix = name[:end]
        if [n for n in names if n.startswith(prefix)] == [name]:
            return prefix
    return None


def _operand_word(rng: random.Random, arg: str) -> str:
    if arg.startswith("/") and rng.random() < 0.4:
        arg = rng.choice(["/", "//", "/./"]) + arg[1:] if len(arg) > 1 else rng.choice(["//", "/.", "///"])
    if arg.startswith("~"):
        return arg  # quoting ~ would stop its expansion
    choice = rng.randrange(3)
    return f'"{arg}"' if choice == 0 else f"'{arg}'" if choice == 1 else arg


def respell_command(rng: random.Random, text: str) -> str:
    """Another spelling of one simple command, or ``text`` when it is not a plain simple command."""
    cmd = _respellable(text)
    if cmd is None:
        return text
    words = [_program_word(rng, cmd.program)]
    words += _flag_words(rng, cmd.program, cmd.flags) if cmd.flags else []
    operands = [_operand_word(rng, a) for a in cmd.args]
    if operands and rng.random() < 0.3:
        words.append("--")
    words += operands
    sep = rng.choice([" ", "  ", "\t", " \t "])
    return sep.join(words)


_WRAPPERS = ("sudo {}", "sudo -u root {}", "sudo -- {}", "env A=1 {}", "env -i {}", "nohup {}", "timeout 5 {}",
             "timeout -s KILL 10s {}", "nice -n 5 {}", "command {}", "exec {}", "xargs -0 {}")
_CONTEXTS = ("echo x | {}", "true && {}", "false || {}", "cd / ; {}", "({})", "{{ {}; }}", "{} &", "if true; then {}; fi",
             "bash -c {q}", "sh -c {q}", "eval {q}", "echo $(true) ; {}")


def wrap_command(rng: random.Random, text: str) -> str:
    """``text`` run through a wrapper or inside a pipeline, list, subshell, group or ``sh -c``; ``text`` itself when
    it does not parse."""
    return _wrap(rng, text, parse_shell(text).parse_error)


def wrap_respelled(rng: random.Random, text: str) -> str:
    """``wrap_command(rng, respell_command(rng, text))``: the same draws and the same text, without parsing the
    respelling only to see that it parses. A respelling always does, and ``text``'s own parse, which
    :func:`respell_command` read, is in the cache."""
    respelled = respell_command(rng, text)
    return _wrap(rng, respelled, False if respelled != text else parse_shell(text).parse_error)


def _wrap(rng: random.Random, text: str, parse_error: bool) -> str:
    if parse_error:
        return text
    return rng.choice(_WRAPPERS + _CONTEXTS).format(text, q=shlex.quote(text))


_SEPARATORS = (" ", "  ", "\t", "\n", " /**/ ", "/**/", " /* x */ ", " -- c\n", "\n\t ")
_TOKENIZER = Tokenizer()
_WORDY = frozenset({TokenType.VAR, TokenType.STRING, TokenType.IDENTIFIER, TokenType.NUMBER})


def respell_sql(rng: random.Random, text: str) -> str:
    """Another spelling of the same SQL: separators, comments and keyword case between tokens, a trailing
    ``;``, a statement before it, or a table alias on ``DELETE``. ``text`` when it does not tokenize."""
    try:
        tokens = _TOKENIZER.tokenize(text)
    except Exception:
        return text
    if not tokens:
        return text
    out: list[str] = []
    prev_end = -1
    for tok in tokens:
        gap = text[prev_end + 1:tok.start]
        if gap:
            # Only where the text already had a gap: "t.a" and "<=" stay whole.
            out.append(rng.choice(_SEPARATORS) if not gap.isspace() or rng.random() < 0.7 else gap)
        piece = text[tok.start:tok.end + 1]
        if tok.token_type not in _WORDY and piece.isalpha():
            piece = "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in piece)
        out.append(piece)
        prev_end = tok.end
    tail = text[prev_end + 1:]
    sql = "".join(out) + (tail if tail.isspace() or not tail else " " + tail)
    choice = rng.randrange(4)
    if choice == 0:
        return sql.rstrip() + ";"
    if choice == 1:
        return "SELECT 1; " + sql
    if choice == 2 and len(tokens) >= 3 and tokens[0].token_type == TokenType.DELETE and tokens[1].token_type == TokenType.FROM \
            and tokens[2].token_type == TokenType.VAR and (len(tokens) == 3 or tokens[3].token_type in (TokenType.WHERE, TokenType.SEMICOLON)):
        rest = text[tokens[2].end + 1:]
        return f"DELETE zz FROM {tokens[2].text} zz{rest}"
    return sql
