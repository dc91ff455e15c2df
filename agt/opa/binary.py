"""Locate the ``opa`` binary: $AGT_OPA_BINARY, then the project's pinned build, then PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from agt.errors import AgtError

PINNED_VERSION = "1.22.2"
"""Keep in step with OPA_VERSION in the Makefile."""


class OpaNotFound(AgtError):
    pass


def _project_tools() -> list[Path]:
    here = Path(__file__).resolve()
    candidates = [Path.cwd() / ".tools" / "bin" / "opa"]
    # An editable install runs from the checkout: <root>/agt/opa/binary.py.
    candidates.append(here.parents[2] / ".tools" / "bin" / "opa")
    return candidates


def find_opa() -> str:
    """The path of an ``opa`` binary, or OpaNotFound saying how to get one."""
    env = os.environ.get("AGT_OPA_BINARY")
    if env:
        if Path(env).is_file() and os.access(env, os.X_OK):
            return env
        raise OpaNotFound(f"AGT_OPA_BINARY={env} is not an executable file")
    for candidate in _project_tools():
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    on_path = shutil.which("opa")
    if on_path:
        return on_path
    raise OpaNotFound("no opa binary found: run `make opa`, put opa on PATH, or set AGT_OPA_BINARY")


@lru_cache(maxsize=8)
def opa_version(binary: str) -> str | None:
    try:
        text = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=15).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in text.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return None
