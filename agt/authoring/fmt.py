"""Canonical formatting of policy files: Cedar through cedarpy's formatter (Cedar's own, as ``cedar format``),
Rego through ``opa fmt``. YAML is left alone: its comments, key order and flow style are the author's, and no
canonical form could be applied without losing some of them.

Formatting never changes what a policy means. Cedar's output is parsed again and must give the same policies
(JSON form) as the input; ``opa fmt`` checks its own result the same way (``--check-result``). A file that does
not parse is reported with its line and left as it is.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from agt.errors import AgtError

__all__ = ["FORMATTERS", "FormatError", "FormatResult", "format_file", "format_paths", "format_text", "policy_files"]

FORMATTERS = {".cedar": "cedar", ".rego": "rego", ".yaml": "yaml", ".yml": "yaml"}
"""File suffix -> language. YAML files are listed so they can be reported as left alone."""

YAML_NOTE = "YAML is left as written: its comments, key order and style are the author's"


class FormatError(AgtError):
    """A file cannot be formatted (it does not parse); the message names the file and line."""


@dataclass(frozen=True)
class FormatResult:
    path: str
    language: str
    original: str
    formatted: str | None = None
    """The canonical text; None when the file was not formatted (YAML, or an error)."""
    error: str | None = None
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.formatted is not None and self.formatted != self.original

    def diff(self) -> str:
        """A unified diff from the file to its canonical form ('' when unchanged)."""
        if not self.changed:
            return ""
        return "".join(difflib.unified_diff(
            self.original.splitlines(keepends=True), (self.formatted or "").splitlines(keepends=True),
            fromfile=self.path, tofile=f"{self.path} (formatted)",
        ))

    def write(self) -> bool:
        """Overwrite the file with its canonical form; True if it changed."""
        if not self.changed:
            return False
        Path(self.path).write_text(self.formatted or "", "utf-8")
        return True

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"path": self.path, "language": self.language, "changed": self.changed}
        if self.error:
            out["error"] = self.error
        if self.note:
            out["note"] = self.note
        return out


def _format_cedar(text: str, source: str) -> str:
    import cedarpy

    from agt.engines._cedar_guard import check_cedar_text
    from agt.engines.cedar import _locate_parse_error

    try:
        check_cedar_text(text, source)  # cedarpy's native parser crashes on input nested too deeply
        before = cedarpy.policies_to_json_str(text)
        formatted = cedarpy.format_policies(text)
    except ValueError as exc:
        line = _locate_parse_error(text)
        raise FormatError(f"{source}{f':{line}' if line else ''}: Cedar does not parse: {exc}") from None
    except AgtError as exc:
        raise FormatError(str(exc)) from None
    if json.loads(cedarpy.policies_to_json_str(formatted)) != json.loads(before):
        raise FormatError(f"{source}: the Cedar formatter changed what the policies mean; left as it is")
    return formatted


def _format_rego(text: str, source: str) -> str:
    from agt.opa import OpaNotFound, find_opa

    try:
        binary = find_opa()
    except OpaNotFound as exc:
        raise FormatError(f"{source}: formatting Rego needs opa: {exc}") from None
    # The text through stdin, so the result is of exactly what was read; errors then name <stdin>.
    try:
        proc = subprocess.run([binary, "fmt"], input=text, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FormatError(f"{source}: opa fmt failed: {exc}") from None
    if proc.returncode != 0:
        message = re.sub(r"(?<![\w/])<?stdin>?:(\d+)", lambda m: f"{source}:{m.group(1)}", (proc.stderr or proc.stdout).strip())
        raise FormatError(message)
    return proc.stdout


def format_text(text: str, language: str, source: str = "<text>") -> str:
    """The canonical form of ``text`` in ``language`` (cedar or rego); YAML comes back as it is."""
    if language == "cedar":
        return _format_cedar(text, source)
    if language == "rego":
        return _format_rego(text, source)
    if language == "yaml":
        return text
    raise FormatError(f"{source}: no formatter for {language!r} (cedar, rego)")


def format_file(path: str | Path) -> FormatResult:
    p = Path(path)
    language = FORMATTERS.get(p.suffix)
    if language is None:
        raise FormatError(f"{p}: not a policy file (.cedar, .rego, .yaml)")
    try:
        text = p.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return FormatResult(str(p), language, "", error=f"{p}: cannot read: {exc}")
    if language == "yaml":
        return FormatResult(str(p), language, text, note=YAML_NOTE)
    try:
        return FormatResult(str(p), language, text, format_text(text, language, str(p)))
    except FormatError as exc:
        return FormatResult(str(p), language, text, error=str(exc))


def policy_files(paths: Sequence[str | Path]) -> list[Path]:
    """Files to format: each file as given, and each directory's .cedar, .rego and .yaml files, recursively
    (hidden directories skipped)."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                found += [Path(dirpath) / f for f in sorted(filenames) if Path(f).suffix in FORMATTERS]
        elif p.exists():
            found.append(p)
        else:
            raise FormatError(f"{p}: no such file or directory")
    return found


def format_paths(paths: Iterable[str | Path]) -> list[FormatResult]:
    """Format every policy file under ``paths`` (nothing is written: see :meth:`FormatResult.write`)."""
    return [format_file(p) for p in policy_files(list(paths))]
