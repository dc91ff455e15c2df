"""How a program's argv splits into flags and operands, and which long flags have short twins.

A :class:`OptionSpec` describes one program's options the way getopt_long sees them: which short letters
take a value, which long names map to which letter, which letters are aliases (``rm -R`` is ``rm -r``).
Programs not in :data:`PROGRAMS` get :data:`GENERIC`: every short cluster splits into letters, every long
flag is kept as ``--name``, nothing takes a value (so a value lands in the operands, the safe side for a
deny rule). The table is documented in docs/action-schema.md ("Shell facts").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class OptionSpec:
    long: Mapping[str, str | None] = field(default_factory=dict)
    """Long name → its short twin, or None to keep it as ``--name``."""
    values: frozenset[str] = frozenset()
    """Short letters that take a value (attached, ``-n3``, or the next word)."""
    long_values: frozenset[str] = frozenset()
    """Long names that take a value (``--name=v`` or the next word)."""
    optional_values: frozenset[str] = frozenset()
    """Short letters whose value can only be attached (``xargs -i{}``)."""
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Short letter → the letter it means (``R`` → ``r`` for rm)."""
    complete: bool = False
    """``long`` lists every long option, so an unambiguous prefix (``--rec``) resolves as getopt_long does."""
    operand_chars: frozenset[str] = frozenset()
    """A dash word made only of these characters is an operand, not flags (chmod's ``-x`` is a mode)."""
    stop_at_operand: bool = False
    """Options end at the first operand (wrappers and shells), instead of GNU's permutation."""

    def resolve_long(self, name: str) -> str:
        """The long option ``name`` means: itself, or the one option it is an unambiguous prefix of."""
        if name not in self.long and self.complete:
            matches = [n for n in self.long if n.startswith(name)]
            if len(matches) == 1:
                return matches[0]
        return name

    def long_flag(self, name: str) -> str:
        """The flag a long option means: its short twin, or ``--name``."""
        name = self.resolve_long(name)
        twin = self.long.get(name)
        return twin if twin else f"--{name}"

    def long_takes_value(self, name: str) -> bool:
        name = self.resolve_long(name)
        twin = self.long.get(name)
        return name in self.long_values or (twin is not None and twin in self.values)


@dataclass(frozen=True)
class Parsed:
    flags: frozenset[str]
    operands: tuple[str, ...]
    values: tuple[tuple[str, str], ...]
    """(flag, value) for every option that took one, in order."""
    rest: tuple[str, ...] = ()
    """With ``stop_at_operand``: the words from the first operand on."""


def parse_options(words: list[str] | tuple[str, ...], spec: OptionSpec) -> Parsed:
    """Split ``words`` (argv without the program) into flags, operands and option values."""
    flags: set[str] = set()
    operands: list[str] = []
    values: list[tuple[str, str]] = []
    i, n = 0, len(words)
    while i < n:
        word = words[i]
        i += 1
        if word == "--":
            if spec.stop_at_operand:
                return Parsed(frozenset(flags), (), tuple(values), tuple(words[i:]))
            operands.extend(words[i:])
            break
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            flag = spec.long_flag(name)
            flags.add(flag)
            if eq:
                values.append((flag, value))
            elif spec.long_takes_value(name) and i < n:
                values.append((flag, words[i]))
                i += 1
            continue
        if len(word) > 1 and word[0] == "-" and not (spec.operand_chars and set(word[1:]) <= spec.operand_chars):
            j = 1
            while j < len(word):
                letter = spec.aliases.get(word[j], word[j])
                flags.add(letter)
                j += 1
                if letter in spec.values or word[j - 1] in spec.values:
                    if j < len(word):
                        values.append((letter, word[j:]))
                    elif i < n:
                        values.append((letter, words[i]))
                        i += 1
                    break
                if letter in spec.optional_values:
                    if j < len(word):
                        values.append((letter, word[j:]))
                    break
            continue
        if spec.stop_at_operand:
            return Parsed(frozenset(flags), (), tuple(values), tuple(words[i - 1:]))
        operands.append(word)
    return Parsed(frozenset(flags), tuple(operands), tuple(values))


def _spec(long: str = "", values: str = "", long_values: str = "", **kw: object) -> OptionSpec:
    """``long`` is ``"name=l name2 name3=x"``: a ``=l`` gives the short twin."""
    table: dict[str, str | None] = {}
    for item in long.split():
        name, _, twin = item.partition("=")
        table[name] = twin or None
    return OptionSpec(long=table, values=frozenset(values), long_values=frozenset(long_values.split()), **kw)  # type: ignore[arg-type]


GENERIC = OptionSpec()

_RM = _spec("force=f interactive=i one-file-system no-preserve-root preserve-root recursive=r dir=d verbose=v help version",
            aliases={"R": "r"}, complete=True)
_CP = _spec("archive=a attributes-only backup copy-contents debug dereference=L force=f interactive=i link=l "
            "no-clobber=n no-dereference=P preserve no-preserve parents recursive=r reflink remove-destination "
            "sparse strip-trailing-slashes symbolic-link=s suffix=S target-directory=t no-target-directory=T "
            "update=u verbose=v one-file-system=x context=Z keep-directory-symlink help version",
            values="St", long_values="no-preserve sparse", aliases={"R": "r"}, complete=True)
_MV = _spec("backup debug exchange force=f interactive=i no-clobber=n no-copy strip-trailing-slashes suffix=S "
            "target-directory=t no-target-directory=T update=u verbose=v context=Z help version",
            values="St", complete=True)
_CHMOD = _spec("changes=c silent=f quiet=f verbose=v recursive=R reference preserve-root no-preserve-root help version",
               long_values="reference", complete=True, operand_chars=frozenset("rwxXstugoa=+-,0123456789"))
_CHOWN = _spec("changes=c silent=f quiet=f verbose=v recursive=R dereference no-dereference=h from reference "
               "preserve-root no-preserve-root help version", long_values="from reference", complete=True)
_SHRED = _spec("force=f iterations=n random-source size=s remove=u verbose=v exact=x zero=z help version",
               values="ns", long_values="random-source", complete=True)
_TRUNCATE = _spec("no-create=c io-blocks=o reference=r size=s help version", values="rs", complete=True)
_GIT = _spec("force=f delete=d dry-run=n recursive=r quiet=q verbose=v message=m git-dir work-tree namespace",
             values="CcmF", long_values="git-dir work-tree namespace")
_CURL = _spec("output=o remote-name=O request=X data=d header=H user=u upload-file=T form=F proxy=x user-agent=A "
              "referer=e cookie=b cookie-jar=c config=K insecure=k location=L silent=s fail=f data-binary data-raw "
              "data-urlencode url", values="oXdHuTFxAebcK", long_values="data-binary data-raw data-urlencode url")
_WGET = _spec("output-document=O output-file=o directory-prefix=P quiet=q recursive=r user-agent=U execute=e "
              "no-check-certificate", values="OoPUe")
_MKFS = _spec("type=t", values="tLbOmETUNiIGgCJd")

PROGRAMS: Mapping[str, OptionSpec] = {
    "rm": _RM, "cp": _CP, "mv": _MV, "chmod": _CHMOD, "chown": _CHOWN, "chgrp": _CHOWN,
    "shred": _SHRED, "truncate": _TRUNCATE, "git": _GIT, "curl": _CURL, "wget": _WGET,
    "watch": _spec("interval=n differences=d chgexit=g errexit=e beep=b exec=x no-title=t precise=p",
                   values="n", optional_values=frozenset("d"), stop_at_operand=True),
    "mkfs": _MKFS, "mke2fs": _MKFS, "dd": OptionSpec(long={"help": None, "version": None}),
}


def spec_for(program: str) -> OptionSpec:
    if program.startswith("mkfs."):
        return _MKFS
    return PROGRAMS.get(program, GENERIC)


# --- programs that run another program ------------------------------------------------------------


@dataclass(frozen=True)
class Wrapper:
    """A program that runs the command in its operands: skip its options, then ``positional`` words."""

    options: OptionSpec
    positional: int = 0
    assignments: bool = False
    """NAME=VALUE words before the command are skipped (env, sudo)."""


def _wrapper(long: str = "", values: str = "", long_values: str = "", positional: int = 0,
             assignments: bool = False, optional_values: str = "") -> Wrapper:
    spec = _spec(long, values, long_values, stop_at_operand=True, optional_values=frozenset(optional_values))
    return Wrapper(spec, positional, assignments)


WRAPPERS: Mapping[str, Wrapper] = {
    "sudo": _wrapper("user=u group=g close-from=C chdir=D host prompt=p role=r type=t command-timeout=T "
                     "other-user=U chroot=R askpass=A background=b preserve-env=E edit=e set-home=H login=i "
                     "remove-timestamp=K reset-timestamp=k list=l non-interactive=n preserve-groups=P stdin=S "
                     "shell=s validate=v", values="ugCDprtTUR", long_values="host", assignments=True),
    "doas": _wrapper(values="uC"),
    "env": _wrapper("ignore-environment=i null=0 unset=u chdir=C split-string=S debug=v", values="uCS",
                    assignments=True),
    "xargs": _wrapper("null=0 arg-file=a delimiter=d eof replace max-lines max-args=n max-procs=P interactive=p "
                      "no-run-if-empty=r max-chars=s verbose=t exit=x open-tty=o process-slot-var",
                      values="adELInPs", long_values="process-slot-var", optional_values="ile"),
    "nohup": _wrapper(),
    "timeout": _wrapper("signal=s kill-after=k preserve-status foreground verbose=v", values="sk", positional=1),
    "nice": _wrapper("adjustment=n", values="n"),
    "ionice": _wrapper("class=c classdata=n pid=p pgid=P uid=u ignore=t", values="cnpPu"),
    "command": _wrapper(),
    "builtin": _wrapper(),
    "exec": _wrapper(values="a"),
    "time": _wrapper("format=f output=o append=a portability=p verbose=v quiet=q", values="fo"),
    "stdbuf": _wrapper("input=i output=o error=e", values="ioe"),
    "setsid": _wrapper("ctty=c fork=f wait=w"),
    "chroot": _wrapper("userspec groups skip-chdir", long_values="userspec groups", positional=1),
    "busybox": _wrapper(),
    "toybox": _wrapper(),
}
"""Wrapper name → how to find the command it runs. Each stops reading options at its first operand, as
the real programs do (getopt with ``+``)."""


# --- programs that run code given as text ---------------------------------------------------------

SHELLS = frozenset({"sh", "bash", "rbash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "fish", "csh", "tcsh"})
"""Shells: ``-c`` text is parsed as a command in turn; reading stdin from a pipe is ``pipe_to_shell``."""

SHELL_OPTIONS = _spec("rcfile init-file login=l noprofile norc posix restricted=r verbose=v debugger", values="oO",
                      long_values="rcfile init-file", stop_at_operand=True)

SU = _spec("command=c shell=s group=g supp-group=G login=l preserve-environment=p", values="csgG")
"""su and runuser: ``-c`` text runs in the target user's shell, parsed like ``sh -c``."""

_INTERPRETER_FAMILY = re.compile(r"^(python|pypy|perl|ruby|php|lua|luajit|node|nodejs|deno|bun|rscript|osascript|tclsh)[0-9.]*$")

INTERPRETERS: Mapping[str, tuple[OptionSpec, frozenset[str]]] = {
    "python": (_spec(values="cmWXQ", stop_at_operand=True), frozenset("c")),
    "pypy": (_spec(values="cmWXQ", stop_at_operand=True), frozenset("c")),
    "perl": (_spec(values="eEIMmx", stop_at_operand=True), frozenset("eE")),
    "ruby": (_spec(values="eIrCE", stop_at_operand=True), frozenset("e")),
    "php": (_spec(values="rfcd", stop_at_operand=True), frozenset("r")),
    "lua": (_spec(values="el", stop_at_operand=True), frozenset("e")),
    "luajit": (_spec(values="el", stop_at_operand=True), frozenset("e")),
    "node": (_spec("eval=e print=p require=r", values="epr", stop_at_operand=True), frozenset("ep")),
    "nodejs": (_spec("eval=e print=p require=r", values="epr", stop_at_operand=True), frozenset("ep")),
    "deno": (GENERIC, frozenset()),
    "bun": (_spec("eval=e print=p", values="ep", stop_at_operand=True), frozenset("ep")),
    "rscript": (_spec(values="e", stop_at_operand=True), frozenset("e")),
    "osascript": (_spec(values="el", stop_at_operand=True), frozenset("e")),
    "tclsh": (GENERIC, frozenset()),
}
"""Interpreter family → (its options, the letters whose value is code). Code text is not parsed: it sets
``eval``. With no script operand (or ``-``) and stdin from a pipe or redirect, it sets ``pipe_to_shell``."""


def interpreter_family(program: str) -> str | None:
    m = _INTERPRETER_FAMILY.match(program)
    return m.group(1) if m else None
