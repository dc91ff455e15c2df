"""Where the files agt ships live: the starter policies (YAML, Cedar, Rego) and the agt Rego library.

The repository keeps them at the top level as their source of truth (``policies/``, ``cedar/``, ``rego/``);
a wheel carries the same files as package data (``agt/policies``, ``agt/cedar``, ``agt/rego``, see
pyproject.toml). These functions find them either way, so defaults never depend on the current directory.
"""

from __future__ import annotations

from pathlib import Path

from agt.errors import AgtError

__all__ = ["REGO_LIBRARY_FILES", "rego_dir", "rego_library_files", "starter_policy"]

_HERE = Path(__file__).resolve().parent

REGO_LIBRARY_FILES = ("agt/decision.rego", "agt/compare.rego", "agt/batch.rego")
"""The agt Rego library, relative to :func:`rego_dir`: the combining rules, the type-safe comparisons and the
batch entry point (``data.agt.batch``: many decisions in one query)."""

# packaged name -> (directory in the repository, a file that must be there)
_DIRS = {
    "policies": ("policies", "starter.yaml"),
    "cedar": ("cedar", "starter.cedar"),
    "rego": ("rego", "agt/decision.rego"),
}


def _data_dir(name: str) -> Path:
    repo_dir, marker = _DIRS[name]
    for candidate in (_HERE / name, _HERE.parent / repo_dir):  # installed wheel, then a checkout
        if (candidate / marker).is_file():
            return candidate
    raise AgtError(f"agt's packaged {name}/ files are missing (looked in {_HERE / name} and {_HERE.parent / repo_dir}); "
                   "reinstall agt")


def rego_dir() -> Path:
    """The packaged Rego directory: the agt library (``agt/decision.rego``, ``agt/compare.rego``, ``agt/batch.rego``) and the
    starter policy (``agt/policies/starter.rego``). The opa engine's default policy."""
    return _data_dir("rego")


def rego_library_files() -> tuple[Path, ...]:
    """The agt Rego library's files, as shipped with this version of agt."""
    root = rego_dir()
    return tuple(root / f for f in REGO_LIBRARY_FILES)


def starter_policy(engine: str) -> Path:
    """The shipped starter policy for ``engine``: policies/starter.yaml (with its catalog.yaml beside it),
    the cedar/ directory (starter.cedar, agt.cedarschema, catalog.yaml), or the rego/ directory."""
    if engine == "yaml":
        return _data_dir("policies") / "starter.yaml"
    if engine == "cedar":
        return _data_dir("cedar")
    if engine == "opa":
        return rego_dir()
    raise AgtError(f"no starter policy for engine {engine!r}; there is one for yaml, cedar and opa")
