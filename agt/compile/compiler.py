"""Compile one YAML policy into its targets, check each result with the target's own tools, write a manifest."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from agt.catalog import find_catalog, resolve_catalog
from agt.compile._walk import NotPortable, Plan, plan
from agt.compile.manifest import write_manifest
from agt.engines.yaml_policy import load_policy
from agt.errors import AgtError

TARGETS = ("rego", "cedar")
ENGINE_OF = {"rego": "opa", "cedar": "cedar"}


class CompileError(AgtError):
    """A policy could not be compiled, or a generated file failed its target's check (a bug in agt compile:
    the message names the generated file and line)."""


@dataclass
class CompileResult:
    source: str
    out_dir: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    """target -> the files written (policy, catalog copy, manifest)."""
    not_portable: list[NotPortable] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    strategy: str = "deny_overrides"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True, "source": self.source, "out": str(self.out_dir), "strategy": self.strategy,
            "rules": self.rules, "files": {t: [str(p) for p in fs] for t, fs in self.files.items()},
            "not_portable": [n.to_dict() for n in self.not_portable], "skipped": self.skipped,
        }


def _ident(name: str) -> str:
    from agt.compile.rego import _ident as ident

    return ident(name)


def compile_policy(
    policy: str | Path, out_dir: str | Path, targets: Sequence[str] = TARGETS, *, catalog: Any = None,
    package: str | None = None, check: bool = True,
) -> CompileResult:
    """Compile the YAML policy at ``policy`` (a file, or a directory of files: one policy) into ``out_dir/<target>/``.

    * ``rego``: ``out_dir/rego/<name>.rego``, package ``agt.policies.<name>`` (or ``package``), formatted by
      ``opa fmt`` and checked with ``opa check --strict`` against agt's action schema, with the agt Rego library.
    * ``cedar``: ``out_dir/cedar/<name>.cedar``, formatted by Cedar's formatter and validated against agt's schema
      by the cedar engine's loader (with the policy's ``catalog.yaml``, copied beside it).

    A rule a target cannot express is left out of that target and reported in ``not_portable`` (file, line,
    construct, reason) and in the target's manifest (agt.compile.manifest). Raises PolicyLoadError for a YAML
    policy that does not load (file, line, rule), CompileError for a generated file that fails its check."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise CompileError(f"unknown target {unknown[0] if unknown else ''!r}; --to takes {', '.join(TARGETS)}")
    src = Path(policy)
    loaded = load_policy(src)
    cat = resolve_catalog(catalog, str(src))
    catalog_file = Path(catalog) if isinstance(catalog, (str, Path)) else find_catalog(str(src))
    p = plan(loaded)
    name = _ident(loaded.name)
    out = Path(out_dir)
    result = CompileResult(str(src), out, rules=[pr.rule.id for pr in p.rules], strategy=p.strategy,
                           skipped=[{"rule": r.id, "file": r.source, "line": r.line, "why": why} for r, why in p.skipped])
    for target in targets:
        tdir = out / target
        tdir.mkdir(parents=True, exist_ok=True)
        if target == "rego":
            written, refused = _rego(p, tdir, name, package or f"agt.policies.{name}", str(src), check)
        else:
            written, refused = _cedar(p, tdir, name, cat, catalog_file, str(src), check)
        nps = [NotPortable(ENGINE_OF[target], pr.rule.id, pr.rule.source, pr.rule.line, exc.construct, exc.reason)
               for pr, exc in refused]
        written.append(write_manifest(tdir, ENGINE_OF[target], str(src.resolve()), nps,
                                      {"policy": loaded.name, "strategy": p.strategy, "rules": result.rules}))
        result.files[target] = written
        result.not_portable.extend(nps)
    return result


def _rego(p: Plan, tdir: Path, name: str, package: str, source: str, check: bool) -> tuple[list[Path], list]:
    from agt.authoring.fmt import FormatError, format_text
    from agt.compile.rego import to_rego

    text, refused = to_rego(p, package, source)
    path = tdir / f"{name}.rego"
    try:
        text = format_text(text, "rego", str(path))
    except FormatError as exc:
        path.write_text(text, "utf-8")
        raise CompileError(f"{path}: opa fmt refused the generated Rego (a bug in agt compile): {exc}") from None
    path.write_text(text, "utf-8")
    if check:
        from agt.authoring.check import check_policy
        from agt.resources import rego_library_files

        res = check_policy(path, "opa", data=list(rego_library_files()))
        if res.errors:
            raise CompileError("opa check --strict refused the generated Rego (a bug in agt compile): "
                               + "; ".join(f"{d.file}:{d.line}: {d.message}" for d in res.errors))
    return [path], refused


def _cedar(p: Plan, tdir: Path, name: str, catalog: Any, catalog_file: Path | None, source: str,
           check: bool) -> tuple[list[Path], list]:
    from agt.authoring.fmt import FormatError, format_text
    from agt.compile.cedar import to_cedar
    from agt.errors import PolicyLoadError

    text, refused = to_cedar(p, catalog, source)
    path = tdir / f"{name}.cedar"
    try:
        text = format_text(text, "cedar", str(path))
    except FormatError as exc:
        path.write_text(text, "utf-8")
        raise CompileError(f"{path}: Cedar's formatter refused the generated Cedar (a bug in agt compile): {exc}") from None
    path.write_text(text, "utf-8")
    written = [path]
    if catalog_file is not None:
        copy = tdir / "catalog.yaml"
        if copy.resolve() != catalog_file.resolve():
            shutil.copyfile(catalog_file, copy)
        written.append(copy)
    if check:
        from agt.engines.cedar import CedarEngine

        try:
            CedarEngine(tdir, catalog=catalog).close()
        except PolicyLoadError as exc:
            raise CompileError(f"the generated Cedar does not validate against agt's schema (a bug in agt compile): {exc}") from None
    return written, refused
