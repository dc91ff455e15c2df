"""pyproject.toml: every package of the library ships in the wheel (the explicit package list misses none)."""

from __future__ import annotations

import tomllib


def test_every_agt_package_is_listed_in_pyproject(root):
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "agt").rglob("__init__.py")}
    assert found - listed == set()
