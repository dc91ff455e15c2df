"""Shell facts: the simple commands a command line runs, parsed by bashlex, never by a home-made tokenizer.

:func:`parse_shell` takes a command string, :func:`parse_argv` an argv list. Both return :class:`ShellFacts`
and never raise: whatever bashlex cannot read sets ``parse_error``. Commands inside pipelines, lists,
subshells, groups, ``if``/``for``/``while`` bodies, functions, command and process substitutions, through
wrappers (:data:`~agt.facts.options.WRAPPERS`), in ``sh -c``/``eval``/``su -c``/``find -exec`` text, are
all listed, each once. See docs/action-schema.md ("Shell facts") for the fields.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Sequence

from agt._normalize import canonical_path
from agt.facts.derived import derived
from agt.facts.options import (
    INTERPRETERS,
    SHELL_OPTIONS,
    SHELLS,
    SU,
    WRAPPERS,
    interpreter_family,
    parse_options,
    spec_for,
)

MAX_NESTING = 8
"""``sh -c "sh -c '…'"`` nested deeper than this is a parse error, not a recursion."""

_OUTPUT_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<>"})
_INPUT_REDIRECTS = frozenset({"<", "<<", "<<-", "<<<", "<&", "<>"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


@dataclass(frozen=True)
class SimpleCommand:
    program: str
    """Basename of the program word, lowercased (``/bin/RM`` and ``r\\m`` are ``rm``)."""
    flags: tuple[str, ...] = ()
    """Sorted: short letters, long flags as their short twin or ``--name``."""
    args: tuple[str, ...] = ()
    """Operands in order; absolute paths canonical (``//etc/`` → ``/etc``), ``~`` never expanded."""
    via: tuple[str, ...] = ()
    """Wrappers and shells it ran through, outermost first (``sudo``, ``xargs``, ``bash``)."""
    redirects: tuple[str, ...] = ()
    """Output redirection targets (``> /dev/sda``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"program": self.program, "flags": list(self.flags), "args": list(self.args),
                "via": list(self.via), "redirects": list(self.redirects)}


@dataclass(frozen=True)
class ShellFacts:
    commands: tuple[SimpleCommand, ...] = ()
    command_substitution: bool = False
    process_substitution: bool = False
    variable_expansion: bool = False
    eval: bool = False
    """Code runs that the facts cannot see: ``python -c``, ``eval "$X"``, ``sh -c "$X"``, ``trap "$X"``."""
    pipe_to_shell: bool = False
    """A shell or interpreter reads its program from stdin fed by a pipe, here-doc or redirect."""
    parse_error: bool = False
    errors: tuple[str, ...] = ()

    MARKERS = ("command_substitution", "process_substitution", "variable_expansion", "eval", "pipe_to_shell")

    def merge(self, other: "ShellFacts") -> "ShellFacts":
        return ShellFacts(
            self.commands + other.commands,
            *(getattr(self, m) or getattr(other, m) for m in self.MARKERS),
            parse_error=self.parse_error or other.parse_error,
            errors=self.errors + other.errors,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON. Besides ``commands``, flat sets of strings that every engine (Cedar included,
        which cannot quantify over a list of records) can test with a membership check:
        ``programs`` (programs and the wrappers they ran through), ``program_flags`` (``"rm -r"``),
        ``program_args`` (``"rm /"``) and ``redirects``; and the fields of :mod:`agt.facts.derived`
        (``recursive_deletes``, ``deletes_system_path``, ``program_families``, ``writes_device``)."""
        programs: set[str] = set()
        pflags: set[str] = set()
        pargs: set[str] = set()
        redirects: set[str] = set()
        for c in self.commands:
            programs.add(c.program)
            programs.update(c.via)
            pflags.update(f"{c.program} {f if f.startswith('--') else '-' + f}" for f in c.flags)
            pargs.update(f"{c.program} {a}" for a in c.args)
            redirects.update(c.redirects)
        out: dict[str, Any] = {
            "commands": [c.to_dict() for c in self.commands],
            "programs": sorted(programs),
            "program_flags": sorted(pflags),
            "program_args": sorted(pargs),
            "redirects": sorted(redirects),
            **derived(self.commands),
        }
        for m in self.MARKERS:
            out[m] = getattr(self, m)
        out["parse_error"] = self.parse_error
        out["errors"] = list(self.errors)
        return out


EMPTY = ShellFacts()


@dataclass
class _Walk:
    """Mutable state of one parse; frozen into ShellFacts at the end."""

    source: str
    depth: int = 0
    commands: list[SimpleCommand] = field(default_factory=list)
    markers: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def facts(self) -> ShellFacts:
        return ShellFacts(
            tuple(self.commands),
            *(m in self.markers for m in ShellFacts.MARKERS),
            parse_error=bool(self.errors),
            errors=tuple(self.errors),
        )


# --- public entry points --------------------------------------------------------------------------


@lru_cache(maxsize=2048)
def parse_shell(command: str) -> ShellFacts:
    """The facts of a shell command string. Never raises."""
    walk = _Walk(command)
    _parse_into(walk, command, via=(), stdin=False)
    return walk.facts()


def parse_argv(argv: Sequence[Any]) -> ShellFacts:
    """The facts of an argv list, run without a shell (execve): no quoting or expansion applies."""
    words = [w if isinstance(w, str) else str(w) for w in argv]
    walk = _Walk(" ".join(words))
    if words:
        try:
            _command(walk, words, via=(), stdin=False, redirects=())
        except RecursionError:
            walk.errors.append("shell: nesting too deep")
    return walk.facts()


# --- bashlex tree ---------------------------------------------------------------------------------


def _parse_into(walk: _Walk, text: str, via: tuple[str, ...], stdin: bool) -> None:
    if walk.depth > MAX_NESTING:
        walk.errors.append(f"commands nested more than {MAX_NESTING} deep")
        return
    if not text.strip():
        return
    try:
        import bashlex  # here, not at import: it costs ~90 ms of `agt` start-up (issue 14)

        trees = bashlex.parse(text)
    except Exception as exc:  # bashlex raises many types (ParsingError, NotImplementedError, AttributeError…)
        walk.errors.append(f"shell: {type(exc).__name__}: {str(exc)[:200]}")
        return
    outer = walk.source
    walk.source, walk.depth = text, walk.depth + 1
    try:
        for tree in trees:
            _node(walk, tree, via, stdin)
    except RecursionError:
        walk.errors.append("shell: nesting too deep")
    except Exception as exc:  # a tree shape we did not expect must not pass as "nothing runs"
        walk.errors.append(f"shell: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        walk.source, walk.depth = outer, walk.depth - 1


def _node(walk: _Walk, node: Any, via: tuple[str, ...], stdin: bool) -> None:
    kind = node.kind
    if kind == "command":
        _command_node(walk, node, via, stdin)
    elif kind == "pipeline":
        first = True
        for part in node.parts:
            if part.kind in ("pipe", "reservedword"):
                continue
            _node(walk, part, via, stdin or not first)
            first = False
    elif kind == "word":
        _word(walk, node)
    elif kind in ("commandsubstitution", "processsubstitution"):
        walk.markers.add("command_substitution" if kind == "commandsubstitution" else "process_substitution")
        _node(walk, node.command, via, False)
    elif kind == "parameter":
        walk.markers.add("variable_expansion")
    elif kind == "redirect":
        _redirect(walk, node)
    else:
        for child in _children(node):
            _node(walk, child, via, stdin)


def _children(node: Any) -> Iterable[Any]:
    for name in ("parts", "list"):
        value = getattr(node, name, None)
        if isinstance(value, list):
            yield from value
    for name in ("command", "output"):
        value = getattr(node, name, None)
        if value is not None and hasattr(value, "kind"):
            yield value


def _word(walk: _Walk, node: Any) -> str:
    """The word with quotes and escapes resolved; scans it for expansions and substitutions."""
    start, end = node.pos
    raw = walk.source[start:end]
    if "$'" in raw or '$"' in raw:
        # bashlex reads $'r\x6d' as "$rm": the word's real value is not known.
        walk.errors.append(f"shell: ANSI-C or locale quoting is not supported: {raw[:80]}")
    parts = getattr(node, "parts", ())
    for part in parts:
        _node(walk, part, (), False)
    if any(p.kind != "tilde" for p in parts) or not any(c in raw for c in "'\"\\"):
        return node.word
    # bashlex mangles adjacent quoted pieces ("r"'m' reads as r'm'); shlex removes POSIX quotes exactly.
    try:
        words = shlex.split(raw)
    except ValueError as exc:
        walk.errors.append(f"shell: cannot unquote {raw[:80]!r}: {exc}")
        return node.word
    if len(words) != 1:
        walk.errors.append(f"shell: cannot unquote {raw[:80]!r}")
        return node.word
    return words[0]


def _redirect(walk: _Walk, node: Any) -> str | None:
    target = node.output
    if hasattr(target, "kind"):
        text = _word(walk, target) if target.kind == "word" else None
    else:
        text = None
    return text


def _command_node(walk: _Walk, node: Any, via: tuple[str, ...], stdin: bool) -> None:
    words: list[str] = []
    redirects: list[str] = []
    for part in node.parts:
        kind = part.kind
        if kind == "word":
            words.append(_word(walk, part))
        elif kind == "assignment":
            for sub in getattr(part, "parts", ()):
                _node(walk, sub, (), False)
        elif kind == "redirect":
            target = _redirect(walk, part)
            if part.type in _INPUT_REDIRECTS:
                stdin = True
            if part.type in _OUTPUT_REDIRECTS and target is not None:
                redirects.append(_path(target))
        else:
            _node(walk, part, via, stdin)
    if words:
        _command(walk, words, via, stdin, tuple(redirects))


# --- one simple command ---------------------------------------------------------------------------


def _program(word: str) -> str:
    base = posixpath.basename(word) or word
    return base.lower()


def _path(arg: str) -> str:
    """Canonical form of an absolute path operand, so ``//``, ``/./`` and a trailing ``/`` do not matter."""
    if arg.startswith("/") and "*" not in arg and "?" not in arg and "[" not in arg:
        return canonical_path(arg)
    if arg.startswith("/"):
        # Keep the glob, canonicalize the directory part: "//etc/*" → "/etc/*".
        head, _, tail = arg.rpartition("/")
        return (canonical_path(head) if head else "").rstrip("/") + "/" + tail
    return arg


def _emit(walk: _Walk, program: str, flags: Iterable[str], args: Iterable[str], via: tuple[str, ...],
          redirects: tuple[str, ...]) -> None:
    walk.commands.append(SimpleCommand(program, tuple(sorted(set(flags))), tuple(_path(a) for a in args), via, redirects))


def _nested(walk: _Walk, text: str, via: tuple[str, ...]) -> None:
    """Code text (``sh -c``, ``eval``) is parsed in turn; with an expansion in it, what runs is not
    known until run time, which sets ``eval``."""
    if "$" in text or "`" in text:
        walk.markers.add("eval")
    _parse_into(walk, text, via, stdin=False)


def _command(walk: _Walk, words: list[str], via: tuple[str, ...], stdin: bool, redirects: tuple[str, ...]) -> None:
    if len(via) > 4 * MAX_NESTING:
        walk.errors.append("shell: wrappers nested too deep")
        return
    program = _program(words[0])
    rest = words[1:]

    wrapper = WRAPPERS.get(program)
    if wrapper is not None:
        parsed = parse_options(rest, wrapper.options)
        inner = list(parsed.rest)
        if program == "env":
            for flag, value in parsed.values:
                if flag == "S":
                    _nested(walk, value, via + (program,))
        if wrapper.assignments:
            while inner and _ASSIGNMENT.match(inner[0]):
                inner.pop(0)
        inner = inner[wrapper.positional:]
        if inner:
            _command(walk, inner, via + (program,), stdin, redirects)
        else:
            _emit(walk, program, parsed.flags, parsed.rest, via, redirects)
        return

    if program in SHELLS:
        parsed = parse_options(rest, SHELL_OPTIONS)
        operands = list(parsed.rest)
        if "c" in parsed.flags and operands:
            _nested(walk, operands[0], via + (program,))
            return
        if stdin and (not operands or operands[0] == "-" or "s" in parsed.flags):
            walk.markers.add("pipe_to_shell")
        _emit(walk, program, parsed.flags, operands, via, redirects)
        return

    if program in ("su", "runuser"):
        parsed = parse_options(rest, SU)
        for flag, value in parsed.values:
            if flag == "c":
                _nested(walk, value, via + (program,))
        _emit(walk, program, parsed.flags, parsed.operands, via, redirects)
        return

    if program in ("eval", "trap", "watch"):
        code = rest[:1] if program == "trap" else rest
        if program == "watch":
            code = list(parse_options(rest, spec_for("watch")).rest)
        if code:
            _nested(walk, " ".join(code), via + (program,))
        else:
            _emit(walk, program, (), rest, via, redirects)
        return

    family = interpreter_family(program)
    if family is not None:
        spec, code_letters = INTERPRETERS[family]
        parsed = parse_options(rest, spec)
        if any(flag in code_letters for flag, _ in parsed.values):
            walk.markers.add("eval")
        elif stdin and (not parsed.rest or parsed.rest[0] == "-"):
            walk.markers.add("pipe_to_shell")
        _emit(walk, program, parsed.flags, parsed.rest, via, redirects)
        return

    if program == "find":
        _find(walk, rest, via, stdin, redirects)
        return

    parsed = parse_options(rest, spec_for(program))
    _emit(walk, program, parsed.flags, parsed.operands, via, redirects)


def _find(walk: _Walk, rest: list[str], via: tuple[str, ...], stdin: bool, redirects: tuple[str, ...]) -> None:
    """find's primaries are single-dash words (``-delete``, ``-name x``): kept whole as flags, never split.
    ``-exec … ;`` and ``-exec … +`` run a command, listed with ``via`` find."""
    flags: list[str] = []
    args: list[str] = []
    execs: list[list[str]] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        i += 1
        if word in _FIND_EXEC:
            flags.append(word)
            end = i
            while end < len(rest) and rest[end] not in (";", "+"):
                end += 1
            if end > i:
                execs.append(rest[i:end])
            i = end + 1
        elif word.startswith("-") and len(word) > 1:
            flags.append(word)
        else:
            args.append(word)
    _emit(walk, "find", flags, args, via, redirects)
    for argv in execs:
        _command(walk, argv, via + ("find",), stdin, ())

