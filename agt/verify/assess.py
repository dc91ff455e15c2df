"""Judge a deployment against the mapping: per risk, covered, partly or not covered, and why.

A control is *effective* when every fact it requires holds (or does not apply) and, when test results
were given, every test it names passed. A control none of whose facts apply (the MCP proxy's, in a
deployment without one) is left out. A risk is

* **covered** when the mapping gives agt full coverage and every control is effective;
* **partly** when some control is effective, or all are but the mapping's own coverage is partial;
* **not covered** when no control is effective, or the mapping says agt does not cover it.

``--strict`` fails on every risk not covered, except those the reviewer *accepts* (``--accept ASI06``) and
that reach what agt can offer (every control effective): accepting a risk accepts agt's stated limit,
never a gap in the deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from agt.verify.facts import Fact
from agt.verify.junit import JunitReports, TestResult
from agt.verify.mapping import OwaspMapping

COVERED, PARTLY, NOT_COVERED = "covered", "partly", "not covered"
STATUSES = (COVERED, PARTLY, NOT_COVERED)


@dataclass(frozen=True)
class ControlStatus:
    id: str
    gate: str
    effective: bool
    problems: tuple[str, ...]
    """Why it is not effective: each unmet fact with its detail, each test not passed."""
    tests: tuple[TestResult, ...] | None
    """None when no test results were given (or the control does not apply)."""
    applicable: bool = True
    """False when every fact it requires does not apply to this deployment (an MCP control without an MCP proxy)."""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "gate": self.gate, "applicable": self.applicable, "effective": self.effective,
                "problems": list(self.problems),
                "tests": None if self.tests is None else [t.to_dict() for t in self.tests]}


@dataclass(frozen=True)
class RiskStatus:
    id: str
    name: str
    coverage: str
    status: str
    reasons: tuple[str, ...]
    controls: tuple[ControlStatus, ...]
    accepted: bool = False

    @property
    def at_ceiling(self) -> bool:
        """Every control is effective: the deployment gets all that agt offers for this risk."""
        return all(c.effective for c in self.controls)

    @property
    def strict_ok(self) -> bool:
        return self.status == COVERED or (self.accepted and self.at_ceiling)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "coverage": self.coverage, "status": self.status,
                "reasons": list(self.reasons), "accepted": self.accepted,
                "controls": [c.to_dict() for c in self.controls]}


@dataclass(frozen=True)
class Assessment:
    risks: tuple[RiskStatus, ...]
    facts: tuple[Fact, ...]
    tests: tuple[TestResult, ...] | None

    @property
    def strict_failures(self) -> tuple[RiskStatus, ...]:
        return tuple(r for r in self.risks if not r.strict_ok)

    def counts(self) -> dict[str, int]:
        """How many risks have each status: {"covered": n, "partly": n, "not covered": n}."""
        return {s: sum(r.status == s for r in self.risks) for s in STATUSES}


def _control(mapping: OwaspMapping, cid: str, facts: Mapping[str, Fact], reports: JunitReports | None) -> ControlStatus:
    control = mapping.controls[cid]
    if control.requires and all(facts[f].ok is None for f in control.requires):
        # Nothing it guards is deployed here (no MCP proxy, no OPA): it neither helps nor needs its tests.
        return ControlStatus(cid, control.gate, True, (), None, applicable=False)
    problems = [f"{f}: {facts[f].detail}" for f in control.requires if facts[f].ok is False]
    tests = tuple(reports.result(t) for t in control.tests) if reports is not None else None
    for t in tests or ():
        if t.status != "passed":
            problems.append(f"test {t.status}: {t.id}")
    return ControlStatus(cid, control.gate, not problems, tuple(problems), tests)


def assess(mapping: OwaspMapping, facts: Iterable[Fact], reports: JunitReports | None = None,
           accepted: Iterable[str] = ()) -> Assessment:
    by_id = {f.id: f for f in facts}
    accept = set(accepted)
    unknown = accept - {r.id for r in mapping.risks}
    if unknown:
        raise ValueError(f"--accept {sorted(unknown)[0]}: not a risk of the mapping (ASI01..ASI10)")
    risks = []
    for risk in mapping.risks:
        controls = tuple(_control(mapping, c, by_id, reports) for c in risk.controls)
        applicable = [c for c in controls if c.applicable]
        effective = [c for c in applicable if c.effective]
        reasons = [f"{c.id}: {p}" for c in controls for p in c.problems]
        if risk.coverage == "none":
            status = NOT_COVERED
        elif len(effective) == len(applicable):
            status = COVERED if risk.coverage == "full" else PARTLY
        else:
            status = PARTLY if effective else NOT_COVERED
        if risk.coverage != "full":
            reasons.append(f"limit (agt's coverage is {risk.coverage}): {risk.reason}")
        risks.append(RiskStatus(risk.id, risk.name, risk.coverage, status, tuple(reasons), controls, risk.id in accept))
    tests = tuple(reports.result(t) for t in mapping.test_ids()) if reports is not None else None
    return Assessment(tuple(risks), tuple(by_id.values()), tests)
