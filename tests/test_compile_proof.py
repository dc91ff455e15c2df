"""The proof of ``agt compile``: compiled twins pass the conformance suites and a 2,000-action differential fuzz
against their YAML source, with 0 disagreements (one managed OPA per policy, reused for every suite and the fuzz)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agt.compile import compile_policy
from agt.conformance import load_suite, open_engines
from agt.conformance.fuzz import fuzz
from agt.conformance.runner import run_cases

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conformance"
CORPUS = ROOT / "tests" / "agt_corpus" / "docs"

# policy -> the conformance suites written for its hand-made twins (their cases, run on the compiled twins).
POLICIES = {
    "starter": (ROOT / "policies" / "starter.yaml",
                ["starter.yaml", "starter-matrix.yaml", "starter-money.yaml", "shell-spellings.yaml", "sql-spellings.yaml"]),
    "money": (CONF / "policies" / "money" / "money.yaml", ["money.yaml"]),
    "priority": (CONF / "policies" / "priority" / "priority.yaml", ["priority.yaml"]),
    "secrets": (CONF / "policies" / "secrets" / "secrets.yaml", ["secrets.yaml"]),
    "agtflat": (CONF / "policies" / "agtflat" / "agtflat.yaml", ["agt-flat.yaml"]),
    # AGT's own example policies (tests/agt_corpus): fuzz only, they ship no cases.
    "agt-quickstart": (CORPUS / "docs-quickstart-L34-0d1778.yaml", []),
    "agt-approval-workflows": (CORPUS / "docs-tutorials-policy-as-code-05-approval-workflows-L52-7d291e.yaml", []),
    "agt-helpdesk": (CORPUS / "les-maf-integration-04-it-helpdesk-dotnet-policies-helpdesk-governance-6eac55.yaml", []),
    "agt-production-minimal": (CORPUS / "examples-policies-production-minimal-4f53f3.yaml", []),
    "agt-multi-stage": (CORPUS / "docs-tutorials-37-multi-stage-pipeline-L33-b6695b.yaml", []),
}
FUZZ_ACTIONS = 2000
SEED = 2026


def _compiled_suite(tmp: Path, name: str, source: Path, out: Path, original: Path | None) -> Path:
    """A copy of ``original`` (or an empty suite) whose cedar and opa policies are the compiled twins."""
    data = yaml.safe_load(original.read_text("utf-8")) if original else {"cases": []}
    doc = {"suite": f"{name}-compiled", "policies": {"yaml": str(source), "cedar": str(out / "cedar"), "opa": str(out / "rego")},
           "cases": data["cases"], "defaults": data.get("defaults") or {}}
    if original and data.get("catalog"):
        doc["catalog"] = str((original.parent / data["catalog"]).resolve())
    path = tmp / f"{name}-{original.stem if original else 'fuzz'}.yaml"
    # The case file's own text is kept for its decimals: re-dumping would turn them into floats.
    text = original.read_text("utf-8") if original else ""
    if original:
        import re

        head = yaml.safe_dump({k: v for k, v in doc.items() if k != "cases" and k != "defaults"}, sort_keys=False)
        body = re.sub(r"(?ms)^(suite|policies|catalog|description):.*?(?=^\S)", "", text)
        path.write_text(head + body, "utf-8")
    else:
        path.write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    return path


@pytest.mark.parametrize("name", list(POLICIES))
def test_compiled_twins_pass_the_suites_and_the_fuzz(name, tmp_path, opa_binary, record_property):
    source, suites = POLICIES[name]
    out = tmp_path / "out"
    result = compile_policy(source, out)
    originals = [CONF / s for s in suites] or [None]
    loaded = [load_suite(_compiled_suite(tmp_path, name, source, out, o)) for o in originals]
    engines = open_engines(loaded[0], ("yaml", "cedar", "opa"))
    try:
        cases = failures = skipped = 0
        for suite in loaded:
            results = run_cases(suite.cases, engines)
            cases += len(results)
            skipped += sum(len(r.case.not_portable) for r in results)
            bad = [r for r in results if not r.passed]
            failures += len(bad)
            assert not bad, "\n".join(
                f"{suite.name}: {r.case.name}: expected {r.case.expect.effect.value} {list(r.case.expect.rules)}; "
                + "; ".join(f"{e} {d.effect.value} {list(d.rule_ids)} {[x.message for x in d.reasons][:1]}"
                            for e, d in r.decisions.items()) for r in bad[:5])
        fuzzed = fuzz(loaded[0], engines, FUZZ_ACTIONS, seed=SEED)
    finally:
        for e in engines.values():
            e.close()
    assert fuzzed.generated == FUZZ_ACTIONS
    assert not fuzzed.disagreements, "\n".join(f"{d.describe()}\n  document: {d.document}" for d in fuzzed.disagreements[:3])
    record_property("proof", {"policy": name, "rules": len(result.rules), "not_portable": len(result.not_portable),
                              "cases": cases, "case_engine_skips": skipped, "fuzz": fuzzed.generated,
                              "fuzz_not_portable": fuzzed.not_portable, "disagreements": 0})
    print(f"\nPROOF {name}: rules={len(result.rules)} not_portable={len(result.not_portable)} cases={cases} "
          f"skips={skipped} fuzz={fuzzed.generated} fuzz_not_portable={fuzzed.not_portable} disagreements=0")
