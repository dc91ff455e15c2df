"""The manifest ``agt compile`` writes beside each target's files: ``agt-compile.manifest`` (JSON).

It names the YAML source, the engine the directory is for, and every rule the target could not express
(``not_portable``: rule id, file, line, construct, reason). No OPA or Cedar loader reads it (OPA loads only
``.rego``, ``.json`` and ``.yaml`` files from a directory; the Cedar engine only ``.cedar`` and ``.cedarschema``).

The conformance suite reads it: when an engine's policy directory holds a manifest, each case that a rule not
portable to that engine decides (the rule matches, or its condition errors, in the yaml engine) is marked
``not_portable`` to that engine with the manifest's reason, so it is listed and skipped there, never passed.
The fuzzer applies the same marks (agt.conformance.fuzz).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agt.compile._walk import NotPortable

MANIFEST = "agt-compile.manifest"
FORMAT = 1


@dataclass(frozen=True)
class Manifest:
    path: Path
    engine: str
    source: str
    not_portable: tuple[NotPortable, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "generator": "agt compile", "engine": self.engine, "source": self.source,
                "not_portable": [n.to_dict() for n in self.not_portable]}


def write_manifest(directory: Path, engine: str, source: str, not_portable: list[NotPortable], extra: dict[str, Any]) -> Path:
    path = directory / MANIFEST
    doc = Manifest(path, engine, source, tuple(not_portable)).to_dict()
    doc.update(extra)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return path


def read_manifest(path: Path) -> Manifest:
    data = json.loads(path.read_text("utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not an agt compile manifest (format {FORMAT})")
    items = tuple(NotPortable(**{k: n.get(k) for k in ("engine", "rule", "file", "line", "construct", "reason")})
                  for n in data.get("not_portable", []))
    return Manifest(path, str(data.get("engine")), str(data.get("source")), items)


def find_manifests(policy: str) -> list[Manifest]:
    """The manifests in an engine's policy paths (several joined with os.pathsep, as a suite writes them)."""
    found = []
    for part in str(policy).split(os.pathsep):
        p = Path(part)
        candidate = (p if p.is_dir() else p.parent) / MANIFEST
        if part and candidate.is_file():
            found.append(read_manifest(candidate))
    return found
