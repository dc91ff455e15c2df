"""The agt Rego library beside a user's policy (docs/rego-library.md, "The library ships with agt").

agt ships its Rego library (``agt/decision.rego``: ``data.agt.decision``; ``agt/compare.rego``: ``agt.greater``
and friends; ``agt/batch.rego``: ``data.agt.batch``, many decisions in one query) inside the package. A policy directory that uses it but lacks it gets the packaged copy: the opa
engine loads it beside the policy, ``agt bundle build`` packs it into the bundle. "Uses it" means a module in a
package under ``agt.policies`` (the library's contract) or a reference to ``data.agt``; a plain
``package authz`` policy gets nothing added.

A policy that brings its own copy keeps it: agt never replaces or merges library files (two copies of the same
rules would conflict in OPA). A copy whose text differs from the packaged one is *version skew*: it is still
used (it is what the policy's own ``opa test`` ran against), and a :class:`RegoLibrarySkew` warning names the
file, so a stale copy is visible (``agt eval`` and ``agt bundle build`` print it on stderr).

A library file counts as present when some module in ``package agt`` defines its entry rule (``decision`` for
decision.rego, ``compare`` for compare.rego, ``batch`` for batch.rego), whatever the file is called. A policy
with its own copy of decision.rego from before batch.rego existed gets the packaged batch.rego, which asks
that copy's ``decision`` for every input.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from agt.resources import REGO_LIBRARY_FILES, rego_dir

__all__ = ["LIBRARY_ENTRY_RULES", "LibraryPlan", "RegoLibrarySkew", "library_source", "plan_library", "rego_sources"]

LIBRARY_ENTRY_RULES = {"agt/decision.rego": "decision", "agt/compare.rego": "compare", "agt/batch.rego": "batch"}
"""The rule each library file is recognised by, in ``package agt``."""

_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
_USES_AGT = re.compile(r"\bdata\.agt\b")
_COMMENT = re.compile(r"#[^\n]*")


class RegoLibrarySkew(UserWarning):
    """A policy brings its own copy of an agt library file, and it differs from the one this agt ships."""


@dataclass(frozen=True)
class LibraryPlan:
    """What a set of Rego sources needs from the packaged library."""

    needed: bool
    """Some module is an agt policy (package under ``agt.policies``) or reads ``data.agt``."""
    add: tuple[str, ...] = ()
    """Library files (names in REGO_LIBRARY_FILES) the sources lack and agt adds."""
    own: tuple[tuple[str, str], ...] = ()
    """(library file, the source that provides it) for each file the policy brings itself."""
    skew: tuple[tuple[str, str], ...] = ()
    """The subset of ``own`` whose text differs from the packaged library."""

    def warnings(self) -> list[str]:
        return [
            f"{source} is the policy's own copy of the agt Rego library's {lib}, and it differs from the one "
            f"agt ships ({rego_dir() / lib}); agt uses the policy's copy. Delete it to use the packaged library, "
            f"or copy the packaged one over it."
            for lib, source in self.skew
        ]

    def to_dict(self) -> dict:
        return {"needed": self.needed, "added": list(self.add), "own": [s for _, s in self.own],
                "skew": [s for _, s in self.skew]}


def library_source(name: str) -> bytes:
    """The packaged text of library file ``name`` (one of REGO_LIBRARY_FILES)."""
    return (rego_dir() / name).read_bytes()


def rego_sources(paths: Iterable[str | Path]) -> dict[str, bytes]:
    """Every .rego file OPA would load from ``paths`` (files or directories), by path."""
    found: dict[str, bytes] = {}
    for raw in paths:
        p = Path(raw)
        files = sorted(p.rglob("*.rego")) if p.is_dir() else ([p] if p.suffix == ".rego" else [])
        for f in files:
            if f.is_file():
                found[str(f)] = f.read_bytes()
    return found


def _defines(text: str, rule: str) -> bool:
    # A rule head starts a line (opa fmt indents bodies); `default decision := ...` counts too.
    return re.search(rf"^(?:default\s+)?{rule}\b", text, re.MULTILINE) is not None


def plan_library(sources: Mapping[str, str | bytes]) -> LibraryPlan:
    """Which packaged library files ``sources`` (name -> Rego text) need added, and which they bring."""
    needed = False
    providers: dict[str, str] = {}
    for name, raw in sources.items():
        text = _COMMENT.sub("", raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
        m = _PACKAGE.search(text)
        package = m.group(1) if m else ""
        if package == "agt":
            for lib, rule in LIBRARY_ENTRY_RULES.items():
                if lib not in providers and _defines(text[m.end():], rule):
                    providers[lib] = name
            continue
        if package == "agt.policies" or package.startswith("agt.policies.") or _USES_AGT.search(text):
            needed = True
    if not needed:
        return LibraryPlan(False, own=tuple(sorted(providers.items())))
    add = tuple(lib for lib in REGO_LIBRARY_FILES if lib not in providers)
    own = tuple((lib, providers[lib]) for lib in REGO_LIBRARY_FILES if lib in providers)
    skew = tuple((lib, src) for lib, src in own if _digest(sources[src]) != _digest(library_source(lib)))
    return LibraryPlan(True, add, own, skew)


def _digest(raw: str | bytes) -> str:
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def split_paths(policy: str | Path) -> list[Path]:
    """A policy argument as OPA paths: one path, or several joined with os.pathsep."""
    return [Path(p) for p in str(policy).split(os.pathsep) if p]
