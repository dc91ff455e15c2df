"""Run a suite on several engines and compare every decision with the expectation and with each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from agt.conformance.suite import Case, Suite
from agt.decision import Decision
from agt.engines import Engine, create_engine


@dataclass(frozen=True)
class CaseResult:
    case: Case
    decisions: Mapping[str, Decision]
    """Decisions of the engines the case is portable to."""

    def matches_expectation(self, engine: str) -> bool:
        d = self.decisions[engine]
        exp = self.case.expect
        if d.effect is not exp.effect or tuple(sorted(d.rule_ids)) != exp.rules:
            return False
        return exp.approvers is None or tuple(sorted(d.approvers)) == exp.approvers

    @property
    def engines_agree(self) -> bool:
        return len({(d.effect, d.rule_ids, d.approvers) for d in self.decisions.values()}) <= 1

    @property
    def passed(self) -> bool:
        return self.engines_agree and all(self.matches_expectation(e) for e in self.decisions)


def open_engines(suite: Suite, engines: Sequence[str], **options: object) -> dict[str, Engine]:
    missing = [e for e in engines if e not in suite.policies]
    if missing:
        raise ValueError(f"suite {suite.name!r} has no policy for engine(s): {', '.join(missing)}")
    return {e: create_engine(e, str(suite.policies[e]), **options.get(e, {})) for e in engines}  # type: ignore[arg-type]


def run_cases(
    cases: Iterable[Case],
    engines: Mapping[str, Engine],
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    results = []
    for case in cases:
        decisions = {
            name: engine.evaluate(case.action) for name, engine in engines.items() if name not in case.not_portable
        }
        result = CaseResult(case, decisions)
        results.append(result)
        if on_result:
            on_result(result)
    return results
