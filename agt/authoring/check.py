"""``agt check`` as a library: load and validate a policy for any engine, and report every finding located.

- **yaml**: the YAML engine's own loader (its errors name the file, line and rule).
- **cedar**: the Cedar engine's load (schema validation against agt's schema, every error named by ``@id`` and
  pointed at its span), plus a warning per annotation agt does not read (``@aproval`` would silently make an
  approval a hard deny); ``strict`` makes those warnings errors.
- **opa** (Rego): ``opa check --strict`` with agt's action JSON Schema as the input schema, so a rule reading a
  field the action does not have (``input.context.token_used``) is a type error at file:line, where OPA
  would otherwise leave the rule undefined and it would never match.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from agt.errors import AgtError, Diagnostic, PolicyLoadError

__all__ = ["CheckResult", "check_policy", "guess_engine", "rego_rules"]

ENGINE_NAMES = {"yaml": "yaml", "cedar": "cedar", "opa": "opa", "rego": "opa"}


def guess_engine(path: str | Path) -> str:
    """yaml, cedar or opa from a file's suffix, or from what a directory holds: .cedar files make it cedar,
    .rego files (here or in subdirectories, as Rego packages nest) opa, .yaml/.yml files yaml."""
    p = Path(path)
    if p.is_dir():
        names = {f.suffix for f in p.iterdir() if f.is_file()}
        if ".cedar" in names:
            return "cedar"
        if ".rego" in names:
            return "opa"
        if names & {".yaml", ".yml"}:
            return "yaml"
        if any(p.rglob("*.rego")):
            return "opa"
        raise PolicyLoadError("no .cedar, .rego or .yaml policies here; pass --engine", file=str(p))
    if p.suffix == ".cedar":
        return "cedar"
    if p.suffix == ".rego":
        return "opa"
    return "yaml"


@dataclass(frozen=True)
class CheckResult:
    path: str
    engine: str
    diagnostics: tuple[Diagnostic, ...] = ()
    rules: tuple[dict[str, Any], ...] = ()
    revision: str | None = None
    files: tuple[str, ...] = field(default=())

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        first = self.errors[0] if self.errors else None
        out: dict[str, Any] = {
            "ok": self.ok, "path": self.path, "engine": self.engine, "revision": self.revision,
            "rules": list(self.rules), "errors": [d.to_dict() for d in self.errors],
            "warnings": [d.to_dict() for d in self.warnings],
        }
        if first is not None:  # the fields `agt check --json` always had, for the first error
            out.update({"error": first.message, "file": first.file, "line": first.line, "rule": first.rule})
        return out


def check_policy(
    path: str | Path, engine: str | None = None, *, strict: bool = False, data: Sequence[str | Path] = (),
    catalog: Any = None,
) -> CheckResult:
    """Check the policy at ``path`` on ``engine`` (guessed when None; ``rego`` means opa). ``data`` are more
    Rego or data paths loaded with a Rego policy (the agt library, say). Never raises for a bad policy: every
    finding is a :class:`~agt.errors.Diagnostic` in the result."""
    try:
        name = ENGINE_NAMES[engine.lower()] if engine else guess_engine(path)
    except KeyError:
        raise AgtError(f"unknown engine {engine!r}; one of: yaml, cedar, opa (rego)") from None
    except PolicyLoadError as exc:
        return CheckResult(str(path), "?", (_from_error(exc),))
    if name == "opa":
        return _check_rego(Path(path), [Path(d) for d in data], strict)
    return _check_loaded(Path(path), name, strict, catalog)


def _from_error(exc: PolicyLoadError) -> Diagnostic:
    return Diagnostic("error", exc.message, exc.file, exc.line, None, exc.rule, "load")


# yaml and cedar: the engine's own load ------------------------------------------------------------------
def _check_loaded(path: Path, name: str, strict: bool, catalog: Any) -> CheckResult:
    from agt.engines import create_engine

    found: list[Diagnostic] = []
    if name == "cedar":
        found += _cedar_annotations(path, "error" if strict else "warning")
    options = {"catalog": catalog} if catalog is not None else {}
    try:
        eng = create_engine(name, str(path), **options)
    except PolicyLoadError as exc:
        found += list(exc.diagnostics) or [_from_error(exc)]
        return CheckResult(str(path), name, tuple(found))
    try:
        rules = _rule_summary(eng)
        files = tuple(getattr(eng, "sources", ()) or ())
        return CheckResult(str(path), name, tuple(found), rules, eng.revision, files)
    finally:
        eng.close()


def _cedar_annotations(path: Path, severity: str) -> list[Diagnostic]:
    """Unknown annotations in every .cedar file of ``path``; a file that does not parse is left to the load."""
    import cedarpy

    from agt.engines._cedar_guard import check_cedar_text
    from agt.engines.cedar_diagnostics import annotation_diagnostics

    files = sorted(p for p in path.iterdir() if p.suffix == ".cedar" and p.is_file()) if path.is_dir() else [path]
    found = []
    for f in files:
        try:
            text = f.read_text("utf-8")
            check_cedar_text(text, str(f))
            est = json.loads(cedarpy.policies_to_json_str(text))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError, AgtError):
            continue
        found += annotation_diagnostics(text, str(f), est, severity)
    return found


def _rule_summary(eng: Any) -> tuple[dict[str, Any], ...]:
    rules = eng.policy.rules if eng.name == "yaml" else eng.rules.values()
    return tuple({"id": r.id, "action": r.action.value, "approvers": list(r.approvers), "message": r.message} for r in rules)


# Rego: opa check --strict --schema ------------------------------------------------------------------------
_RULE_HEAD = re.compile(r'^(deny|approval|allow)\s*\[\s*"([^"]+)"\s*\](?:\s*:=\s*"((?:[^"\\]|\\.)*)")?', re.MULTILINE)
_ANY_HEAD = re.compile(r"^(?:default\s+)?([A-Za-z_][A-Za-z0-9_]*)")


def _rego_files(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out += sorted(p.rglob("*.rego")) if p.is_dir() else [p]
    return out


def rego_rules(paths: Sequence[Path]) -> tuple[dict[str, Any], ...]:
    """The agt rules a Rego policy contributes: ``deny["id"]``, ``approval["id"]``, ``allow["id"]`` heads
    (unit tests and the agt library itself left out), with their file and line."""
    seen: dict[str, dict[str, Any]] = {}
    action = {"deny": "deny", "approval": "require_approval", "allow": "allow"}
    for f in _rego_files(paths):
        if f.name.endswith("_test.rego"):
            continue
        try:
            text = f.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for m in _RULE_HEAD.finditer(text):
            seen.setdefault(m.group(2), {"id": m.group(2), "action": action[m.group(1)], "approvers": [], "message": m.group(3) or "",
                                         "file": str(f), "line": text.count("\n", 0, m.start()) + 1})
    return tuple(seen.values())


def _enclosing_rule(file: str | None, line: int | None) -> str | None:
    """The agt rule id (or the Rego rule name) whose definition holds ``file:line``."""
    if not file or not line:
        return None
    try:
        lines = Path(file).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for text in reversed(lines[:line]):
        if not text or text[0] in " \t#}":
            continue
        m = _RULE_HEAD.match(text)
        if m:
            return m.group(2)
        if text.startswith(("package", "import")):
            return None
        m = _ANY_HEAD.match(text)
        return m.group(1) if m else None
    return None


def _defines_agt_library(paths: Sequence[Path]) -> bool:
    for f in _rego_files(paths):
        try:
            if re.search(r"^package\s+agt\s*$", f.read_text("utf-8"), re.MULTILINE):
                return True
        except (OSError, UnicodeDecodeError):
            continue
    return False


def _check_rego(path: Path, data: list[Path], strict: bool) -> CheckResult:
    """``opa check --strict`` (always strict: unused variables and imports are errors in OPA's sense, as with
    ``opa check --strict``) with the action schema; ``strict`` is accepted for symmetry and changes nothing."""
    from agt._schema import action_schema
    from agt.opa import OpaNotFound, find_opa

    try:
        binary = find_opa()
    except OpaNotFound as exc:
        return CheckResult(str(path), "opa", (Diagnostic("error", f"checking Rego needs opa: {exc}", str(path), code="opa_missing"),))
    paths = [path, *data]
    files = [str(f) for f in _rego_files(paths)]
    if not files:
        return CheckResult(str(path), "opa", (Diagnostic("error", "no .rego files", str(path), code="load"),))
    with tempfile.TemporaryDirectory(prefix="agt-check-") as tmp:
        # A schema file (not a directory): `--schema DIR` would only offer schemas to METADATA annotations.
        schema = Path(tmp) / "input.json"
        schema.write_text(json.dumps(action_schema()), "utf-8")
        cmd = [binary, "check", "--strict", "--format", "json", "--schema", str(schema), *map(str, paths)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return CheckResult(str(path), "opa", (Diagnostic("error", f"opa check failed: {exc}", str(path), code="opa"),))
    found = _opa_diagnostics(proc)
    if found and not _defines_agt_library(paths) and any("agt." in d.message for d in found):
        found = [d if "agt." not in d.message else Diagnostic(
            d.severity, d.message + "; the agt Rego library (package agt) is not among the paths: add it with --data",
            d.file, d.line, d.column, d.rule, d.code) for d in found]
    rules = rego_rules(paths) if proc.returncode == 0 else ()
    return CheckResult(str(path), "opa", tuple(found), rules, None, tuple(files))


def _opa_diagnostics(proc: subprocess.CompletedProcess[str]) -> list[Diagnostic]:
    if proc.returncode == 0:
        return []
    text = (proc.stdout or "").strip() or (proc.stderr or "").strip()
    try:
        errors = json.loads(text).get("errors") or []
    except (ValueError, AttributeError):
        return [Diagnostic("error", text[:2000] or f"opa check exited {proc.returncode}", code="opa")]
    found = []
    for e in errors:
        loc = e.get("location") or {}
        file, line, col = loc.get("file") or None, loc.get("row"), loc.get("col")
        message = str(e.get("message", ""))
        details = e.get("details") or {}
        if details.get("oneOf"):
            ref = details.get("ref") or [{}]
            pos = details.get("pos", len(ref) - 1)
            have = ref[pos].get("value", "?") if isinstance(pos, int) and 0 <= pos < len(ref) else "?"
            message += f" (have {have!r}; want one of: {', '.join(map(str, details['oneOf']))})"
        found.append(Diagnostic("error", message, file, line, col, _enclosing_rule(file, line), str(e.get("code", "opa"))))
    return found
