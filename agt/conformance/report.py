"""What a conformance run found: disagreements, rule coverage per engine, and non-portable cases,
as data a CLI can render and as JSON and JUnit XML files CI systems read."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from agt.conformance.runner import CaseResult
from agt.decision import DEFAULT_RULE_ID, ENGINE_ERROR_ID


@dataclass(frozen=True)
class RuleCoverage:
    rule_id: str
    determining: Mapping[str, int]
    """engine -> cases where this rule was among the reasons."""
    matched: Mapping[str, int]
    """engine -> cases where it matched but another rule decided (as far as the engine reports)."""

    def never(self, engine: str) -> bool:
        return not self.determining.get(engine) and not self.matched.get(engine)


@dataclass(frozen=True)
class Report:
    suite: str
    engines: tuple[str, ...]
    results: tuple[CaseResult, ...]
    coverage: tuple[RuleCoverage, ...]
    rule_ids: tuple[str, ...] = field(default=())

    @property
    def failures(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def not_portable(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.results if r.case.not_portable)

    @property
    def passed(self) -> bool:
        return not self.failures

    def never_determined(self) -> tuple[str, ...]:
        """Rules that no case made determining on any engine."""
        return tuple(c.rule_id for c in self.coverage if not any(c.determining.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "engines": list(self.engines),
            "cases": len(self.results),
            "passed": sum(r.passed for r in self.results),
            "failed": len(self.failures),
            "failures": [_failure(r, self.engines) for r in self.failures],
            "not_portable": [
                {"case": r.case.name, "engines": dict(r.case.not_portable)} for r in self.not_portable
            ],
            "coverage": {
                c.rule_id: {
                    e: {
                        "determining": c.determining.get(e, 0),
                        "matched": c.matched.get(e, 0),
                        "never": c.never(e),
                    }
                    for e in self.engines
                }
                for c in self.coverage
            },
            "never_determined": list(self.never_determined()),
        }


def _failure(r: CaseResult, engines: Sequence[str]) -> dict[str, Any]:
    exp = r.case.expect
    return {
        "case": r.case.name,
        "action": r.case.action.document,
        "expected": {"effect": exp.effect.value, "rules": list(exp.rules), "approvers": list(exp.approvers or [])},
        "decisions": {e: r.decisions[e].to_dict() for e in engines if e in r.decisions},
        "engines_agree": r.engines_agree,
        "wrong_engines": [e for e in engines if e in r.decisions and not r.matches_expectation(e)],
    }


def build_report(suite: str, engines: Sequence[str], results: Iterable[CaseResult], known_rules: Iterable[str] = ()) -> Report:
    results = tuple(results)
    ids = set(known_rules)
    determining: dict[str, dict[str, int]] = {}
    matched: dict[str, dict[str, int]] = {}
    for r in results:
        for engine, d in r.decisions.items():
            reasons = set(d.rule_ids)
            for rid in reasons:
                determining.setdefault(rid, {}).setdefault(engine, 0)
                determining[rid][engine] += 1
            for rid in set(d.matched) - reasons:
                matched.setdefault(rid, {}).setdefault(engine, 0)
                matched[rid][engine] += 1
            ids |= reasons | set(d.matched)
    ids -= {DEFAULT_RULE_ID, ENGINE_ERROR_ID}
    coverage = tuple(
        RuleCoverage(rid, determining.get(rid, {}), matched.get(rid, {})) for rid in sorted(ids)
    )
    return Report(suite, tuple(engines), results, coverage, tuple(sorted(ids)))


def write_json(reports: Sequence[Report], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"passed": all(r.passed for r in reports), "suites": [r.to_dict() for r in reports]}, f, indent=2, ensure_ascii=False)


def write_junit(reports: Sequence[Report], path: str) -> None:
    """One testsuite per suite, one testcase per case and engine; non-portable cases are skipped, with the reason."""
    root = ET.Element("testsuites", name="agt conformance")
    for report in reports:
        cases = ET.SubElement(root, "testsuite", name=report.suite)
        tests = failures = skipped = 0
        for r in report.results:
            for engine in report.engines:
                tests += 1
                tc = ET.SubElement(cases, "testcase", classname=f"{report.suite}.{engine}", name=r.case.name)
                if engine in r.case.not_portable:
                    skipped += 1
                    ET.SubElement(tc, "skipped", message=f"not portable to {engine}: {r.case.not_portable[engine]}")
                    continue
                d = r.decisions[engine]
                if not r.matches_expectation(engine) or not r.engines_agree:
                    failures += 1
                    exp = r.case.expect
                    others = {e: (x.effect.value, list(x.rule_ids)) for e, x in r.decisions.items()}
                    fail = ET.SubElement(
                        tc, "failure",
                        message=f"{engine}: {d.effect.value} {list(d.rule_ids)}; expected {exp.effect.value} {list(exp.rules)}",
                    )
                    fail.text = json.dumps({"action": r.case.action.document, "decisions": others}, ensure_ascii=False, indent=2)
        cases.set("tests", str(tests))
        cases.set("failures", str(failures))
        cases.set("skipped", str(skipped))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
