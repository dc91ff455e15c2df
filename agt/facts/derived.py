"""Flat fields derived from parsed commands, for rules that need a prefix or a family.

Cedar cannot test a prefix on the members of a set, and cannot look inside a list of records, so what the
starter policy needs beyond membership is computed here, once, and every engine reads the same plain field:

* ``recursive_deletes``: the targets of recursive deletes (``rm -r``/``-R``/``--recursive``), normalized so a
  rule is one membership test: a trailing ``/`` or ``/*`` goes (``/etc/*`` → ``/etc``, ``/*`` → ``/``,
  ``~/`` → ``~``), an absolute target whose first component is a glob is ``/`` (``/e*`` can match ``/etc``),
  and a target the facts cannot see (it holds ``$`` or a backquote) is ``$``;
* ``deletes_system_path``: one of those targets is in :data:`SYSTEM_PATHS`;
* ``program_families``: programs with a ``.variant`` dropped, and known aliases (``mkfs.ext4``, ``mke2fs`` →
  ``mkfs``);
* ``writes_device``: a command writes to a device node: ``dd of=/dev/…``, or output redirected to one, other
  than the harmless ones (:data:`HARMLESS_DEVICES`).
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from agt.facts.shell import SimpleCommand

SYSTEM_PATHS = frozenset({
    "/", "~", "*", ".*", "$",
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/proc", "/root",
    "/run", "/sbin", "/srv", "/sys", "/usr", "/var", "/mnt", "/media", "/snap",
    "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/local", "/usr/share", "/usr/include",
    "/var/lib", "/var/log", "/var/spool", "/var/mail",
    "/Applications", "/Library", "/System", "/Users", "/Volumes", "/private",
})
"""Targets whose recursive delete the starter policy refuses: the root, the home directory, the current
directory's contents (``*``), a target the facts cannot see (``$``), and the system directories of Linux and
macOS. A rule can name other targets with ``recursive_deletes``."""

HARMLESS_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/full", "/dev/stdout", "/dev/stderr", "/dev/stdin",
                              "/dev/tty", "/dev/random", "/dev/urandom"})
"""Device nodes that writing to destroys nothing (``> /dev/null``); ``/dev/fd/N`` is harmless too."""

FAMILIES = {"mke2fs": "mkfs", "mkdosfs": "mkfs", "mkntfs": "mkfs", "newfs": "mkfs"}
"""Programs that belong to a family their name does not start with."""

_GLOB = frozenset("*?[")
_RECURSIVE = frozenset({"r", "R"})


def delete_target(arg: str) -> str:
    """The normalized target of a recursive delete (see the module doc)."""
    if "$" in arg or "`" in arg:
        return "$"
    target = arg
    while len(target) > 1 and (target.endswith("/") or target.endswith("/*") or target.endswith("/.")):
        target = target[:-2] if target.endswith(("/*", "/.")) else target[:-1]
    if not target:
        return "/"
    if target.startswith("/"):
        target = posixpath.normpath(target).replace("//", "/")
        first = target.split("/")[1] if target != "/" else ""
        if _GLOB & set(first):
            return "/"
    return target


def family(program: str) -> str:
    return FAMILIES.get(program, program.split(".", 1)[0] or program)


def _is_device(path: str) -> bool:
    path = posixpath.normpath(path) if path.startswith("/") else path
    return path.startswith("/dev/") and path not in HARMLESS_DEVICES and not path.startswith("/dev/fd/")


def derived(commands: Iterable["SimpleCommand"]) -> dict[str, object]:
    deletes: set[str] = set()
    families: set[str] = set()
    device = False
    for c in commands:
        families.add(family(c.program))
        if c.program == "rm" and _RECURSIVE & set(c.flags):
            deletes.update(delete_target(a) for a in c.args)
        if c.program == "dd" and any(a.startswith("of=") and _is_device(a[3:]) for a in c.args):
            device = True
        if any(_is_device(r) for r in c.redirects):
            device = True
    return {
        "recursive_deletes": sorted(deletes),
        "deletes_system_path": bool(deletes & SYSTEM_PATHS),
        "program_families": sorted(families),
        "writes_device": device,
    }
