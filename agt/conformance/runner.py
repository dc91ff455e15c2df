"""Run a suite on several engines and compare every decision with the expectation and with each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from agt.conformance.suite import Case, Suite, SuiteError
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

    def wrong_engines(self) -> tuple[str, ...]:
        """The engines to blame for this case, in decision order. Those whose decision misses the expectation;
        when every engine meets it and they still disagree (on what the expectation leaves open, such as
        approvers when none are expected), the engines outside the largest group of identical decisions, or all
        of them when no group is larger than the others. Empty when the case passed."""
        wrong = tuple(e for e in self.decisions if not self.matches_expectation(e))
        if wrong or self.engines_agree:
            return wrong
        groups: dict[object, list[str]] = {}
        for e, d in self.decisions.items():
            groups.setdefault(d.parity_key, []).append(e)
        sizes = sorted((len(g) for g in groups.values()), reverse=True)
        if len(sizes) > 1 and sizes[0] == sizes[1]:
            return tuple(self.decisions)
        majority = max(groups.values(), key=len)
        return tuple(e for e in self.decisions if e not in majority)

    @property
    def engines_agree(self) -> bool:
        return len({d.parity_key for d in self.decisions.values()}) <= 1

    @property
    def passed(self) -> bool:
        return self.engines_agree and all(self.matches_expectation(e) for e in self.decisions)


def open_engines(
    suite: Suite, engines: Sequence[str], options: Mapping[str, Mapping[str, object]] | None = None
) -> dict[str, Engine]:
    """Create each engine on the suite's policy for it. ``options`` maps engine name to create_engine options.
    On a load failure, engines already opened are closed before the error propagates."""
    missing = [e for e in engines if e not in suite.policies]
    if missing:
        raise SuiteError(f"suite {suite.name!r} names no policy for engine(s): {', '.join(missing)}")
    opened: dict[str, Engine] = {}
    try:
        for e in engines:
            opts = dict((options or {}).get(e, {}))
            if suite.catalog is not None:
                opts.setdefault("catalog", suite.catalog)
            opened[e] = create_engine(e, str(suite.policies[e]), **opts)
    except BaseException:
        for engine in opened.values():
            engine.close()
        raise
    return opened


def known_rule_ids(engines: Mapping[str, Engine]) -> set[str]:
    """Rule ids the in-process engines can list; OPA's are learnt from its decisions."""
    ids: set[str] = set()
    for engine in engines.values():
        policy = getattr(engine, "policy", None)
        if policy is not None:
            ids |= {r.id for r in policy.rules}
        rules = getattr(engine, "rules", None)
        if isinstance(rules, Mapping):
            ids |= set(rules)
    return ids


def run_cases(
    cases: Sequence[Case],
    engines: Mapping[str, Engine],
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 64,
) -> list[CaseResult]:
    """Decide every case on every engine it is portable to. Work goes through ``evaluate_many`` in
    chunks, so Cedar batches and OPA requests run concurrently; ``on_progress`` gets the cases done."""
    results: list[CaseResult] = []
    for start in range(0, len(cases), chunk):
        part = cases[start : start + chunk]
        per_engine: dict[str, dict[int, Decision]] = {}
        for name, engine in engines.items():
            idx = [i for i, c in enumerate(part) if name not in c.not_portable]
            decided = engine.evaluate_many([part[i].action for i in idx])
            per_engine[name] = dict(zip(idx, decided))
        for i, case in enumerate(part):
            results.append(CaseResult(case, {n: d[i] for n, d in per_engine.items() if i in d}))
        if on_progress:
            on_progress(len(part))
    return results
