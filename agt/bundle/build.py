"""Build a standard OPA bundle (``.tar.gz``): policies, data files and a ``.manifest``.

The build is reproducible: entries sorted, owners and times zeroed, gzip without a timestamp, so the
same inputs give the same bytes (and the same default revision, a content hash).

A bundle whose policies use the agt Rego library but lack it gets the copy agt ships (agt.opa.library), unless
``rego_library=False`` or the manifest roots leave ``agt`` to another bundle; a policy's own copy is kept.

The Rego is compiled with the real OPA (``opa check``) before anything is packed: a bundle whose policy
does not compile is never produced, so ``agt bundle serve`` keeps serving the last good one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import yaml

from agt import _yaml
from agt.bundle.sign import SIGNATURES, sign_files
from agt.errors import AgtError
from agt.opa.library import _PACKAGE

if TYPE_CHECKING:
    from agt.opa.library import LibraryPlan

DATA_FILES = ("data.json", "data.yaml")


class BundleError(AgtError):
    pass


def bundle_files(policy_dirs: Sequence[str | Path], data_dir: str | Path | None = None) -> dict[str, bytes]:
    """Every .rego under the policy directories (tests excluded) and data files under ``data_dir``,
    by their path inside the bundle."""
    files: dict[str, bytes] = {}
    for d in policy_dirs:
        root = Path(d)
        if not root.exists():
            raise BundleError(f"{root}: no such directory")
        paths = [root] if root.is_file() else sorted(root.rglob("*.rego"))
        for p in paths:
            if p.name.endswith("_test.rego"):
                continue
            name = p.name if root.is_file() else p.relative_to(root).as_posix()
            if name in files:
                raise BundleError(f"{name} appears twice among the policy directories")
            files[name] = p.read_bytes()
    if data_dir is not None:
        droot = Path(data_dir)
        for p in sorted(droot.rglob("*")):
            if p.name in DATA_FILES:
                name = p.relative_to(droot).as_posix()
                content = p.read_bytes()
                try:
                    json.loads(content) if p.name == "data.json" else _yaml.safe_load(content)
                except (ValueError, RecursionError, yaml.YAMLError) as exc:
                    raise BundleError(f"{p}: not valid {p.suffix[1:].upper()}: {exc}") from None
                files[name] = content
    if not any(n.endswith(".rego") for n in files):
        raise BundleError("no .rego files found to bundle")
    return files


def check_rego(files: dict[str, bytes], *, binary: str | None = None) -> None:
    """Compile the bundle's Rego with OPA; BundleError naming each ``file:line`` OPA complains about.
    Without an ``opa`` binary the build fails too: an unchecked policy is not shipped."""
    from agt.opa.binary import find_opa

    opa = binary or find_opa()
    with tempfile.TemporaryDirectory(prefix="agt-bundle-check-") as tmp:
        for name, content in files.items():
            if name.endswith(".rego"):
                target = Path(tmp, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
        try:
            done = subprocess.run([opa, "check", "--format", "json", tmp], capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BundleError(f"cannot compile the Rego with {opa}: {exc}") from None
        if done.returncode == 0:
            return
        raise BundleError("the Rego does not compile: " + _check_errors(done.stdout or done.stderr, tmp))


def _check_errors(output: bytes, staged: str) -> str:
    """OPA's errors as ``file:line: code: message``, with the staging directory taken off each path."""
    try:
        errors = json.loads(output).get("errors") or []
    except (ValueError, AttributeError):
        return output.decode("utf-8", "replace").replace(staged + "/", "").strip()
    lines = []
    for e in errors:
        loc = e.get("location") or {}
        where = f"{str(loc.get('file', '?')).replace(staged + '/', '')}:{loc.get('row', '?')}"
        lines.append(f"{where}: {e.get('code', 'error')}: {e.get('message', '')}")
    return "; ".join(dict.fromkeys(lines)) or output.decode("utf-8", "replace").strip()


def default_roots(files: dict[str, bytes]) -> list[str]:
    """The top-level package segments the policies use: what this bundle owns in OPA's data tree."""
    roots = set()
    for name, content in files.items():
        if name.endswith(".rego"):
            m = _PACKAGE.search(content.decode("utf-8", "replace"))
            if m:
                roots.add(m.group(1).split(".")[0])
    return sorted(roots) or [""]


def add_rego_library(files: dict[str, bytes], roots: Sequence[str] | None = None) -> "LibraryPlan":
    """Add the packaged agt Rego library to ``files`` when its policies use it but lack it (in place).
    Explicit ``roots`` that do not cover ``agt`` mean another bundle owns the library: nothing is added.
    A policy's own copy that differs from the packaged one gives a RegoLibrarySkew warning."""
    from agt.opa.library import LibraryPlan, RegoLibrarySkew, library_source, plan_library

    plan = plan_library({n: c for n, c in files.items() if n.endswith(".rego")})
    for message in plan.warnings():
        warnings.warn(RegoLibrarySkew(message), stacklevel=3)
    if roots is not None and not any(r.strip("/") in ("", "agt") for r in roots):
        return LibraryPlan(plan.needed, (), plan.own, plan.skew)
    for name in plan.add:
        if name in files:
            raise BundleError(f"{name} is in the bundle but does not define the agt library's rules; rename it, or "
                              "pass rego_library=False (--no-rego-library)")
        files[name] = library_source(name)
    return plan


def build_bundle(
    policy_dirs: Sequence[str | Path],
    *,
    data_dir: str | Path | None = None,
    revision: str | None = None,
    roots: Sequence[str] | None = None,
    signing_key: bytes | None = None,
    signing_alg: str = "RS256",
    keyid: str = "default",
    rego_library: bool = True,
) -> bytes:
    """The bundle's bytes. ``rego_library``: add the packaged agt Rego library when the policies need it
    (:func:`add_rego_library`)."""
    return assemble_bundle(policy_dirs, data_dir=data_dir, revision=revision, roots=roots, signing_key=signing_key,
                 signing_alg=signing_alg, keyid=keyid, rego_library=rego_library).data


@dataclass(frozen=True)
class BuiltBundle:
    data: bytes
    """The .tar.gz bytes."""
    files: tuple[str, ...]
    """Every file inside, by path (.manifest and .signatures.json included)."""
    revision: str
    library: "LibraryPlan | None"
    """What was done about the agt Rego library (None with rego_library=False)."""

    def to_dict(self) -> dict:
        return {"bytes": len(self.data), "files": list(self.files), "revision": self.revision,
                "rego_library": self.library.to_dict() if self.library is not None else None}


def assemble_bundle(
    policy_dirs: Sequence[str | Path],
    *,
    data_dir: str | Path | None = None,
    revision: str | None = None,
    roots: Sequence[str] | None = None,
    signing_key: bytes | None = None,
    signing_alg: str = "RS256",
    keyid: str = "default",
    rego_library: bool = True,
) -> BuiltBundle:
    """:func:`build_bundle`, with what went into the bundle."""
    files = bundle_files(policy_dirs, data_dir)
    library = add_rego_library(files, roots) if rego_library else None
    check_rego(files)
    if revision is None:
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name] + b"\0")
        revision = digest.hexdigest()[:16]
    manifest = {"revision": revision, "roots": list(roots) if roots else default_roots(files), "rego_version": 1}
    files[".manifest"] = json.dumps(manifest, sort_keys=True).encode()
    if signing_key is not None:
        files[SIGNATURES] = sign_files(files, signing_key, signing_alg, keyid)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo("/" + name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return BuiltBundle(out.getvalue(), tuple(sorted(files)), revision, library)
