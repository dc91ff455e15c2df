"""A copy of the secrets suite in a temporary directory, optionally with a Cedar bug, for agt test's tests."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ROOT / "conformance" / "policies" / "secrets"


def secrets_suite(tmp_path: Path, *, cedar_bug: bool = False, cases: str | None = None) -> Path:
    """The secrets suite with absolute policy paths. ``cedar_bug`` misspells ``@approval`` in the Cedar copy, so
    Cedar denies 'read secret' where YAML and OPA ask for approval. ``cases`` replaces the suite's cases."""
    policies = tmp_path / "secrets"
    shutil.copytree(SECRETS, policies)
    if cedar_bug:
        cedar = policies / "secrets.cedar"
        cedar.write_text(cedar.read_text().replace("@approval\n@approvers(\"security\")\n", "@aproval\n"))
    text = (ROOT / "conformance" / "secrets.yaml").read_text()
    text = text.replace("yaml: policies/secrets/secrets.yaml", f"yaml: {policies / 'secrets.yaml'}")
    text = text.replace("cedar: policies/secrets", f"cedar: {policies}")
    text = text.replace("opa: [../rego/agt/decision.rego, policies/secrets/rego]",
                        f"opa: [{ROOT / 'rego' / 'agt' / 'decision.rego'}, {policies / 'rego'}]")
    if cases is not None:
        text = text[: text.index("cases:")] + "cases:\n" + cases
    suite = tmp_path / "secrets-suite.yaml"
    suite.write_text(text)
    return suite
