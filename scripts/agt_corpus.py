"""Collect AGT policy documents into tests/agt_corpus/ from a bare clone of microsoft/agent-governance-toolkit.

    python scripts/agt_corpus.py /path/to/agent-governance-toolkit.git

Reads HEAD and the tags v4.1.0, v4.0.0, v3.7.0, v3.0.0: every .yaml/.yml file, and every ```yaml block in a
Markdown file, that one of AGT's Python loaders accepts (tests/agt_corpus/agt_acceptance.py). Identical
documents are stored once; MANIFEST.yaml lists each stored file with every (tag, path) it was found at.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "agt_corpus"
sys.path.insert(0, str(OUT))
from agt_acceptance import accepting_loader  # noqa: E402

REFS = ("HEAD", "v4.1.0", "v4.0.0", "v3.7.0", "v3.0.0")
_BLOCK = re.compile(r"^```ya?ml\s*\n(.*?)^```", re.M | re.S)


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def documents(repo: str, ref: str):
    names = git(repo, "ls-tree", "-r", "--name-only", ref).splitlines()
    for name in names:
        if name.endswith((".yaml", ".yml")):
            yield name, git(repo, "show", f"{ref}:{name}")
        elif name.endswith(".md"):
            text = git(repo, "show", f"{ref}:{name}")
            for i, m in enumerate(_BLOCK.finditer(text)):
                line = text.count("\n", 0, m.start(1)) + 1
                yield f"{name}#L{line}", m.group(1)


def main(repo: str) -> None:
    tag_of = {ref: (ref if ref != "HEAD" else "HEAD@" + git(repo, "rev-parse", "--short", "HEAD").strip()) for ref in REFS}
    found: dict[str, dict] = {}
    for ref in REFS:
        for path, text in documents(repo, ref):
            if "rules:" not in text and "apiVersion" not in text and "defaults:" not in text:
                continue
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            loader = accepting_loader(data)
            if loader is None:
                continue
            digest = hashlib.sha256(text.encode()).hexdigest()[:12]
            entry = found.setdefault(digest, {"text": text, "loader": loader, "sources": []})
            entry["sources"].append(f"{tag_of[ref]}:{path}")
    docs = OUT / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for old in docs.glob("*.yaml"):
        old.unlink()
    manifest = []
    for digest, entry in sorted(found.items(), key=lambda kv: kv[1]["sources"][0].split(":", 1)[1]):
        first = entry["sources"][0].split(":", 1)[1]
        stem = re.sub(r"[^A-Za-z0-9]+", "-", first.replace(".md#L", "-L").rsplit(".", 1)[0]).strip("-")[-70:]
        fname = f"{stem}-{digest[:6]}.yaml"
        header = "".join(f"# source: microsoft/agent-governance-toolkit {s}\n" for s in entry["sources"])
        header += "# Copyright (c) Microsoft Corporation. Licensed under the MIT License (see ../NOTICE.md).\n"
        (docs / fname).write_text(header + entry["text"], "utf-8")
        manifest.append({"file": fname, "loader": entry["loader"], "sources": entry["sources"]})
    (OUT / "MANIFEST.yaml").write_text(
        "# Written by scripts/agt_corpus.py; one entry per distinct document.\n" + yaml.safe_dump(manifest, sort_keys=False, width=200),
        "utf-8")
    print(f"{len(manifest)} documents ({sum(1 for m in manifest if m['loader'] == 'mesh')} mesh, "
          f"{sum(1 for m in manifest if m['loader'] == 'agent_os')} agent_os)")


if __name__ == "__main__":
    main(sys.argv[1])
