"""A rule's coverage in the conformance suites: the cases whose expected reasons name it.

Suites are loaded with the suite loader the test runner uses (:func:`agt.conformance.suite.load_suite`), once
per change of the directory's files; a suite that does not load is listed with its error, not skipped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CoveringCase:
    suite: str
    file: str
    case: str
    effect: str


@dataclass(frozen=True)
class SuiteIndex:
    cases: tuple[CoveringCase, ...]
    rules: dict[str, tuple[int, ...]]
    errors: tuple[str, ...]

    def covering(self, rule_id: str) -> list[CoveringCase]:
        return [self.cases[i] for i in self.rules.get(rule_id, ())]


class Coverage:
    """The suites in ``directory`` (its ``*.yaml`` files), indexed by expected rule id."""

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._index = SuiteIndex((), {}, ())

    def _files(self) -> list[Path]:
        if self.directory is None or not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.yaml"))

    def index(self) -> SuiteIndex:
        files = self._files()
        stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files)
        with self._lock:
            if stamp != self._stamp:
                self._index, self._stamp = _load(files), stamp
            return self._index

    def covering(self, rule_id: str) -> list[CoveringCase]:
        return self.index().covering(rule_id)


def _load(files: list[Path]) -> SuiteIndex:
    from agt.conformance.suite import load_suite

    cases: list[CoveringCase] = []
    rules: dict[str, list[int]] = {}
    errors: list[str] = []
    for path in files:
        try:
            suite = load_suite(path)
        except Exception as exc:  # noqa: BLE001 - one broken suite is reported, the others still count
            errors.append(f"{path.name}: {exc}")
            continue
        for case in suite.cases:
            cases.append(CoveringCase(suite.name, path.name, case.name, case.expect.effect.value))
            for rule in case.expect.rules:
                rules.setdefault(rule, []).append(len(cases) - 1)
    return SuiteIndex(tuple(cases), {k: tuple(v) for k, v in rules.items()}, tuple(errors))
