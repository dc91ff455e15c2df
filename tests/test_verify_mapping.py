"""agt/verify/owasp.yaml: every ASI id once with its official name, every test id real, every fact computed."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

from agt.verify import MappingError, load_mapping
from agt.verify.facts import FACTS
from agt.verify.mapping import RISK_IDS, parse_mapping

ROOT = Path(__file__).resolve().parents[1]

OFFICIAL_NAMES = {
    # OWASP Top 10 for Agentic Applications 2026 (OWASP GenAI Security Project, December 2025).
    "ASI01": "Agent Goal Hijack",
    "ASI02": "Tool Misuse and Exploitation",
    "ASI03": "Identity and Privilege Abuse",
    "ASI04": "Agentic Supply Chain Vulnerabilities",
    "ASI05": "Unexpected Code Execution (RCE)",
    "ASI06": "Memory & Context Poisoning",
    "ASI07": "Insecure Inter-Agent Communication",
    "ASI08": "Cascading Failures",
    "ASI09": "Human-Agent Trust Exploitation",
    "ASI10": "Rogue Agents",
}

MAPPING = load_mapping()


@cache
def defined_tests(path: Path) -> frozenset[str]:
    """``test_x`` and ``Class::test_x`` as pytest collects them from ``path`` (module level and Test* classes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            found.update(f"{node.name}::{m.name}" for m in node.body
                         if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name.startswith("test"))
    return frozenset(found)


@pytest.mark.parametrize("test_id", MAPPING.test_ids())
def test_every_mapped_test_id_names_a_test_of_this_repository(test_id):
    path, _, name = test_id.partition("::")
    file = ROOT / path
    assert file.is_file() and file.name.startswith("test_"), f"{test_id}: no test file {path}"
    assert name in defined_tests(file), f"{test_id}: {path} defines no test {name}"


def test_the_resolver_finds_a_test_that_exists_and_not_one_that_does_not():
    # The check above must be able to fail: a renamed test is reported, not silently accepted.
    names = defined_tests(ROOT / "tests" / "attacks" / "test_opa_control_plane.py")
    assert "test_without_the_token_the_api_is_refused" in names
    assert "test_without_the_token_the_api_is_refused_renamed" not in names


def test_every_asi_id_appears_exactly_once_in_order():
    assert [r.id for r in MAPPING.risks] == list(RISK_IDS)


@pytest.mark.parametrize("risk_id", RISK_IDS)
def test_each_risk_carries_its_official_owasp_name(risk_id):
    assert MAPPING.risk(risk_id).name == OFFICIAL_NAMES[risk_id]


def test_every_required_fact_is_one_agt_verify_computes():
    required = {f for c in MAPPING.controls.values() for f in c.requires}
    assert required <= set(FACTS)


def test_every_control_is_used_by_some_risk():
    used = {c for r in MAPPING.risks for c in r.controls}
    assert set(MAPPING.controls) == used


def test_what_agt_does_not_cover_is_said_so():
    assert MAPPING.risk("ASI06").coverage == "none"
    assert "prompt injection" in MAPPING.risk("ASI01").reason


def test_a_risk_listed_twice_is_refused_naming_it():
    text = (ROOT / "agt" / "verify" / "owasp.yaml").read_text()
    with pytest.raises(MappingError, match=r"risks: ASI02 appears 2 times"):
        parse_mapping(text.replace("- id: ASI03", "- id: ASI02"))


def test_an_unknown_control_in_a_risk_is_refused_naming_the_field():
    text = (ROOT / "agt" / "verify" / "owasp.yaml").read_text()
    with pytest.raises(MappingError, match=r"risks\[0\]\.controls: unknown control 'policy-gat'"):
        parse_mapping(text.replace("controls: [policy-gate, signed-approvals", "controls: [policy-gat, signed-approvals", 1))


def test_a_control_requiring_an_unknown_fact_is_refused_naming_the_field():
    text = (ROOT / "agt" / "verify" / "owasp.yaml").read_text()
    with pytest.raises(MappingError, match=r"controls\.identity\.requires: unknown fact 'identity.requred'"):
        parse_mapping(text.replace("requires: [identity.required]", "requires: [identity.requred]"))


def test_a_parametrized_test_id_is_refused():
    text = (ROOT / "agt" / "verify" / "owasp.yaml").read_text()
    with pytest.raises(MappingError, match=r"controls\.policy-gate\.tests: .* is not a pytest node id"):
        parse_mapping(text.replace("tests/test_conformance_suites.py::test_case", "tests/test_conformance_suites.py::test_case[x]"))


def test_docs_owasp_md_shows_every_risk_with_the_mappings_coverage(root):
    doc = (root / "docs" / "owasp.md").read_text()
    for risk in MAPPING.risks:
        assert f"| {risk.id} | {risk.name} | {risk.coverage} |" in doc, risk.id


def test_docs_owasp_md_lists_every_control_with_its_tests(root):
    doc = (root / "docs" / "owasp.md").read_text()
    for control in MAPPING.controls.values():
        section = doc.split(f"\n### {control.id}\n", 1)
        assert len(section) == 2, f"no section for {control.id}"
        body = section[1].split("\n### ", 1)[0]
        assert all(f"`{t}`" in body for t in control.tests), control.id
        assert all(f"`{f}`" in body for f in control.requires), control.id


def test_docs_owasp_md_lists_every_fact(root):
    doc = (root / "docs" / "owasp.md").read_text()
    assert all(f"| `{fact}` | {meaning} |" in doc for fact, meaning in FACTS.items())
