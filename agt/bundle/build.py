"""Build a standard OPA bundle (``.tar.gz``): policies, data files and a ``.manifest``.

The build is reproducible: entries sorted, owners and times zeroed, gzip without a timestamp, so the
same inputs give the same bytes (and the same default revision, a content hash).

The Rego is compiled with the real OPA (``opa check``) before anything is packed: a bundle whose policy
does not compile is never produced, so ``agt bundle serve`` keeps serving the last good one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Sequence

import yaml

from agt import _yaml
from agt.bundle.sign import SIGNATURES, sign_files
from agt.errors import AgtError

DATA_FILES = ("data.json", "data.yaml")
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)


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


def build_bundle(
    policy_dirs: Sequence[str | Path],
    *,
    data_dir: str | Path | None = None,
    revision: str | None = None,
    roots: Sequence[str] | None = None,
    signing_key: bytes | None = None,
    signing_alg: str = "RS256",
    keyid: str = "default",
) -> bytes:
    files = bundle_files(policy_dirs, data_dir)
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
    return out.getvalue()
