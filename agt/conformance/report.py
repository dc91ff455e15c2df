"""What a conformance run found: disagreements, rule coverage per engine, and non-portable cases,
as data a CLI can render and as JSON and JUnit XML files CI systems read."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from agt import _json
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
        "wrong_engines": [e for e in engines if e in r.wrong_engines()],
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


def junit_testcase(
    parent: ET.Element, classname: str, name: str, *, failure: str | None = None, detail: str = "", skipped: str | None = None
) -> ET.Element:
    """One ``<testcase>``: red with ``failure`` (its message; ``detail`` as the text), or skipped with the reason."""
    tc = ET.SubElement(parent, "testcase", classname=classname, name=name)
    if skipped is not None:
        ET.SubElement(tc, "skipped", message=skipped)
    elif failure is not None:
        ET.SubElement(tc, "failure", message=failure).text = detail
    return tc


def finish_junit_suite(suite: ET.Element) -> None:
    """Set the counts CI systems read on a ``<testsuite>`` from its testcases."""
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(tc.find("failure") is not None for tc in cases)))
    suite.set("errors", "0")
    suite.set("skipped", str(sum(tc.find("skipped") is not None for tc in cases)))


def write_junit(reports: Sequence[Report], path: str) -> None:
    """One testsuite per suite, one testcase per case and engine; non-portable cases are skipped, with the reason.

    Only the engine to blame is red (:meth:`CaseResult.wrong_engines`): the engine whose decision misses the
    expectation, never the engines that decided it right. When every engine meets the expectation and they
    still disagree (only possible on what the expectation leaves open, such as approvers), the engines outside
    the majority are red, or every engine when there is no majority."""
    root = ET.Element("testsuites", name="agt conformance")
    for report in reports:
        cases = ET.SubElement(root, "testsuite", name=report.suite)
        for r in report.results:
            wrong = set(r.wrong_engines())
            others = {e: x.to_dict() for e, x in r.decisions.items()}
            exp = r.case.expect
            for engine in report.engines:
                classname = f"{report.suite}.{engine}"
                if engine in r.case.not_portable:
                    junit_testcase(cases, classname, r.case.name, skipped=f"not portable to {engine}: {r.case.not_portable[engine]}")
                    continue
                d = r.decisions[engine]
                if engine not in wrong:
                    junit_testcase(cases, classname, r.case.name)
                    continue
                why = (f"expected {exp.effect.value} {list(exp.rules)}" if not r.matches_expectation(engine)
                       else "meets the expectation but disagrees with the other engines")
                junit_testcase(
                    cases, classname, r.case.name,
                    failure=f"{engine}: {d.effect.value} {list(d.rule_ids)}"
                    + (f" approvers={list(d.approvers)}" if d.approvers else "") + f"; {why}",
                    detail=_json.dumps({"action": r.case.action.document, "decisions": others}, ensure_ascii=False, indent=2),
                )
        finish_junit_suite(cases)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
