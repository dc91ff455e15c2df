"""Policy unit tests, like ``opa test``: the cases of conformance suites decided on each engine, every
(case, engine) pair a test of its own that passes when that engine's decision meets the case's expectation.

Unlike ``agt conformance run``, which fails a case when the engines disagree, a unit test asks only whether
one engine decided as the suite expects: a Cedar bug fails the Cedar tests and nothing else.

Coverage comes in two kinds: rule coverage per engine (how often each rule determined a decision, or matched
without determining it), and for Rego the line coverage OPA itself reports. The latter is measured soundly: one
``opa eval --coverage`` over exactly the paths the managed OPA loaded, deciding the same input documents the
engine sent (the cases portable to OPA that the tool catalog let through), and every decision of that run is
compared with the engine's; any difference is reported, so the lines shown are those the tests really ran.

Exit codes follow ``opa test``: 0 every test passed, 2 a test failed, 1 an error (a suite or policy that does
not load, an engine that cannot run).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from agt import _json
from agt.action import Action
from agt.conformance.report import RuleCoverage, build_report, finish_junit_suite, junit_testcase
from agt.conformance.runner import known_rule_ids, open_engines, run_cases
from agt.conformance.suite import Expectation, Suite, SuiteError, load_suite
from agt.decision import Decision
from agt.engines import Engine
from agt.errors import AgtError

__all__ = [
    "EXIT_ERROR", "EXIT_FAILED", "EXIT_PASSED", "ENGINES", "FileCoverage", "LineCoverage", "SuiteRun", "TestOutcome",
    "TestRun", "find_suites", "normalize_engine", "rego_line_coverage", "run_tests",
]

EXIT_PASSED, EXIT_ERROR, EXIT_FAILED = 0, 1, 2
"""As ``opa test``: 0 all passed, 2 some test failed, 1 an error before any verdict (checked on opa 1.22)."""

ENGINES = ("yaml", "cedar", "opa")
_ALIASES = {"rego": "opa"}
DEFAULT_SUITE_DIR = Path("conformance")


def normalize_engine(name: str) -> str:
    """``rego`` is another name for the ``opa`` engine."""
    name = name.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in ENGINES:
        raise SuiteError(f"unknown engine {name!r}; one of: {', '.join(ENGINES)} (or rego)")
    return name


@dataclass(frozen=True)
class TestOutcome:
    """One test: a case decided on one engine."""

    __test__ = False  # not a pytest class

    suite: str
    case: str
    engine: str
    status: str
    """``pass``, ``fail``, or ``skip`` (the case is not portable to the engine)."""
    expected: Expectation
    decision: Decision | None = None
    reason: str = ""
    """Why it failed or was skipped."""

    def to_dict(self) -> dict[str, Any]:
        exp = self.expected
        out: dict[str, Any] = {
            "suite": self.suite, "case": self.case, "engine": self.engine, "status": self.status,
            "expected": {"effect": exp.effect.value, "rules": list(exp.rules)}
            | ({"approvers": list(exp.approvers)} if exp.approvers is not None else {}),
        }
        if self.decision is not None:
            out["decision"] = self.decision.to_dict()
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class FileCoverage:
    path: str
    covered: tuple[int, ...]
    not_covered: tuple[int, ...]

    @property
    def percent(self) -> float:
        total = len(self.covered) + len(self.not_covered)
        return 100.0 * len(self.covered) / total if total else 100.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "covered_lines": len(self.covered), "not_covered_lines": len(self.not_covered),
            "coverage": round(self.percent, 2), "not_covered": _ranges(self.not_covered),
        }


@dataclass(frozen=True)
class LineCoverage:
    """Rego line coverage as OPA measured it over the suite's inputs; ``_test.rego`` files left out."""

    files: tuple[FileCoverage, ...]
    inputs: int
    """How many input documents OPA decided."""
    mismatches: tuple[str, ...] = ()
    """Cases whose decision in the coverage run differs from the engine's (then the figures do not describe
    what the tests ran: a remote OPA with other policies, say)."""
    errored: tuple[str, ...] = ()
    """Cases OPA answered with an evaluation error (a fail-closed deny): not in the coverage run, since one
    such input aborts a whole ``opa eval``."""

    @property
    def percent(self) -> float:
        covered = sum(len(f.covered) for f in self.files)
        total = covered + sum(len(f.not_covered) for f in self.files)
        return 100.0 * covered / total if total else 100.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "coverage": round(self.percent, 2), "inputs": self.inputs,
            "files": {f.path: f.to_dict() for f in self.files}, "mismatches": list(self.mismatches),
            "errored": list(self.errored),
        }


@dataclass(frozen=True)
class SuiteRun:
    suite: str
    path: str
    engines: tuple[str, ...]
    outcomes: tuple[TestOutcome, ...]
    rule_coverage: tuple[RuleCoverage, ...] | None = None
    line_coverage: LineCoverage | None = None
    notes: tuple[str, ...] = ()
    """Engines not run on this suite, and why."""

    def count(self, status: str, engine: str | None = None) -> int:
        return sum(o.status == status and (engine is None or o.engine == engine) for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "suite": self.suite, "path": self.path, "engines": list(self.engines),
            "passed": self.count("pass"), "failed": self.count("fail"), "skipped": self.count("skip"),
            "tests": [o.to_dict() for o in self.outcomes], "notes": list(self.notes),
        }
        if self.rule_coverage is not None:
            out["rule_coverage"] = {
                c.rule_id: {e: {"determining": c.determining.get(e, 0), "matched": c.matched.get(e, 0), "never": c.never(e)}
                            for e in self.engines}
                for c in self.rule_coverage
            }
        if self.line_coverage is not None:
            out["rego_line_coverage"] = self.line_coverage.to_dict()
        return out


@dataclass(frozen=True)
class TestRun:
    __test__ = False

    suites: tuple[SuiteRun, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def outcomes(self) -> tuple[TestOutcome, ...]:
        return tuple(o for s in self.suites for o in s.outcomes)

    @property
    def failures(self) -> tuple[TestOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "fail")

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.failures else EXIT_PASSED

    def to_dict(self) -> dict[str, Any]:
        outcomes = self.outcomes
        return {
            "passed": not self.failures, "exit_code": self.exit_code,
            "summary": {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "skip")},
            "suites": [s.to_dict() for s in self.suites], "notes": list(self.notes),
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(_json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8")

    def write_junit(self, path: str | Path) -> None:
        """One testsuite per suite and one testcase per (case, engine): only the engine that failed is red."""
        root = ET.Element("testsuites", name="agt test")
        for s in self.suites:
            element = ET.SubElement(root, "testsuite", name=s.suite, file=s.path)
            for o in s.outcomes:
                classname = f"{s.suite}.{o.engine}"
                if o.status == "skip":
                    junit_testcase(element, classname, o.case, skipped=o.reason)
                elif o.status == "fail":
                    junit_testcase(element, classname, o.case, failure=f"{o.engine}: {o.reason}",
                                   detail=_json.dumps(o.to_dict(), indent=2, ensure_ascii=False))
                else:
                    junit_testcase(element, classname, o.case)
            finish_junit_suite(element)
        ET.ElementTree(root).write(str(path), encoding="utf-8", xml_declaration=True)


def find_suites(paths: Sequence[str | Path]) -> list[Path]:
    """Suite files: each file as given, each directory's ``*.yaml``/``*.yml`` (not recursive: a suite's
    policies often live in a subdirectory); none given means ``conformance/*.yaml``."""
    if not paths:
        paths = [DEFAULT_SUITE_DIR]
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found += sorted(f for f in p.iterdir() if f.is_file() and f.suffix in (".yaml", ".yml"))
        elif p.is_file():
            found.append(p)
        else:
            raise SuiteError(f"{p}: no such suite file or directory")
    if not found:
        raise SuiteError(f"no suite files (*.yaml) in {', '.join(map(str, paths))}")
    return found


def _outcome(suite: str, case: Any, engine: str, decision: Decision | None) -> TestOutcome:
    exp = case.expect
    if decision is None:
        return TestOutcome(suite, case.name, engine, "skip", exp, reason=f"not portable to {engine}: {case.not_portable.get(engine, '')}")
    got = f"{decision.effect.value} {list(decision.rule_ids)}" + (f" approvers={list(decision.approvers)}" if decision.approvers else "")
    want = f"{exp.effect.value} {list(exp.rules)}" + (f" approvers={list(exp.approvers)}" if exp.approvers is not None else "")
    ok = decision.effect is exp.effect and tuple(sorted(decision.rule_ids)) == exp.rules and (
        exp.approvers is None or tuple(sorted(decision.approvers)) == exp.approvers)
    if ok:
        return TestOutcome(suite, case.name, engine, "pass", exp, decision)
    detail = "; ".join(r.message for r in decision.reasons if r.rule_id == "engine_error" and r.message)
    return TestOutcome(suite, case.name, engine, "fail", exp, decision,
                       f"got {got}, expected {want}" + (f" ({detail})" if detail else ""))


def _engines_for(suite: Suite, requested: Sequence[str] | None, available: Callable[[str], str | None]) -> tuple[list[str], list[str]]:
    """The engines to run on ``suite`` and notes on those left out. Without ``requested``: every engine the
    suite has a policy for, less those ``available`` says cannot run (OPA not installed)."""
    notes: list[str] = []
    if requested:
        names = [e for e in requested if e in suite.policies]
        notes += [f"{suite.name}: no policy for engine {e}" for e in requested if e not in suite.policies]
        return names, notes
    names = []
    for e in ENGINES:
        if e not in suite.policies:
            continue
        why = available(e)
        if why:
            notes.append(f"{suite.name}: skipping {e}: {why}")
        else:
            names.append(e)
    return names, notes


def _opa_missing(engine: str) -> str | None:
    if engine != "opa":
        return None
    from agt.opa import OpaNotFound, find_opa

    try:
        find_opa()
    except OpaNotFound as exc:
        return str(exc)
    return None


def run_tests(
    paths: Sequence[str | Path] = (),
    engines: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, object]] | None = None,
    *,
    coverage: bool = False,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> TestRun:
    """Run every suite in ``paths`` (see :func:`find_suites`) on ``engines`` (default: every engine a suite
    has a policy for; OPA is skipped, with a note, when no ``opa`` is installed and no ``url`` is given).
    ``options`` maps engine name to create_engine options. ``on_progress(suite, done, total)`` is told of
    cases decided. Raises SuiteError or PolicyLoadError (exit code 1) when a suite or policy does not load,
    and when no test would run at all."""
    requested = [normalize_engine(e) for e in engines] if engines else None
    opa_url = bool((options or {}).get("opa", {}).get("url")) or bool(os.environ.get("AGT_OPA_URL"))
    available = (lambda e: None) if opa_url else _opa_missing
    runs: list[SuiteRun] = []
    for path in find_suites(paths):
        suite = load_suite(path)
        names, notes = _engines_for(suite, requested, available)
        if not names:
            runs.append(SuiteRun(suite.name, str(path), (), (), notes=tuple(notes)))
            continue
        opened = open_engines(suite, names, options)
        try:
            total = len(suite.cases)
            results = run_cases(suite.cases, opened, on_progress=(lambda k, n=suite.name: on_progress(n, k, total)) if on_progress else None)
            outcomes = tuple(
                _outcome(suite.name, r.case, e, r.decisions.get(e)) for r in results for e in names
            )
            rule_cov = line_cov = None
            if coverage:
                rule_cov = build_report(suite.name, names, results, known_rule_ids(opened)).coverage
                if "opa" in opened:
                    decided = [(r.case.name, r.case.action, r.decisions["opa"]) for r in results if "opa" in r.decisions]
                    line_cov = rego_line_coverage(opened["opa"], suite, decided)
        finally:
            for e in opened.values():
                e.close()
        runs.append(SuiteRun(suite.name, str(path), tuple(names), outcomes, rule_cov, line_cov, tuple(notes)))
    if not any(r.outcomes for r in runs):
        raise SuiteError("no test ran: " + ("; ".join(n for r in runs for n in r.notes) or "the suites have no cases"))
    return TestRun(tuple(runs))


def _decision_query(engine: Engine) -> str:
    path = str(getattr(engine, "decision_path", "/v1/data/agt/decision"))
    parts = [p for p in path.removeprefix("/v1/data").split("/") if p]
    return "data." + ".".join(parts) if parts else "data"


def _opa_paths(engine: Engine, suite: Suite) -> list[str]:
    """The paths the managed OPA loaded (so the coverage run sees the same policy), else the suite's."""
    server = getattr(engine, "server", None)
    if server is not None and getattr(server, "paths", None):
        return [str(p) for p in server.paths]
    return [p for p in suite.policies["opa"].split(os.pathsep) if p]


def rego_line_coverage(engine: Engine, suite: Suite, decided: Iterable[tuple[str, Action, Decision]]) -> LineCoverage:
    """Line coverage of the suite's Rego over the inputs the OPA engine decided, from ``opa eval --coverage``.

    ``decided`` holds (case name, action, the engine's decision). Cases the tool catalog denied before OPA was
    asked are left out: OPA never saw them. One ``opa eval`` decides every input (``with input as``), so the
    coverage is OPA's own, over the same documents the engine sent; any decision of that run that differs
    from the engine's is listed in ``mismatches``."""
    from agt.opa import find_opa

    catalog = getattr(engine, "catalog", None)
    cases, errored = [], []
    for n, a, d in decided:
        if catalog is not None and catalog.denial(a, "opa", "") is not None:
            continue
        # An evaluation error (a type error that agt.compare raises on purpose, say) aborts a whole `opa eval`;
        # those inputs gave no decision, so they are left out and named.
        (errored if d.is_engine_error else cases).append((n, a, d))
    query = f"[d | some doc in input; d := {_decision_query(engine)} with input as doc]"
    paths = _opa_paths(engine, suite)
    with tempfile.TemporaryDirectory(prefix="agt-test-") as tmp:
        inputs = Path(tmp) / "inputs.json"
        inputs.write_text(_json.dumps([a.document for _, a, _ in cases], ensure_ascii=False), "utf-8")
        # Relative paths from a common root: given absolute paths, opa 1.22 keys the covered and the not-covered
        # ranges of one file under two names (with and without the leading slash).
        absolute = [os.path.abspath(p) for p in paths]
        root = os.path.commonpath([os.path.dirname(p) if os.path.isfile(p) else p for p in absolute]) if absolute else os.getcwd()
        cmd = [find_opa(), "eval", "--coverage", "--format", "json", "--input", str(inputs)]
        for p in absolute:
            cmd += ["--data", os.path.relpath(p, root)]
        cmd.append(query)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, cwd=root)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AgtError(f"opa eval --coverage failed: {exc}") from None
    if proc.returncode != 0:
        raise AgtError(f"opa eval --coverage failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[:2000]}")
    try:
        payload = json.loads(proc.stdout)
        values = payload["result"][0]["expressions"][0]["value"] if cases else []
        files = payload.get("coverage", {}).get("files", {})
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise AgtError(f"opa eval --coverage gave an unexpected answer: {exc}") from None
    mismatches = []
    for (name, _, d), value in zip(cases, values):
        parsed = engine.parse_result({"result": value}) if hasattr(engine, "parse_result") else None
        if parsed is None or parsed.parity_key != d.parity_key:
            mismatches.append(name)
    if len(values) != len(cases):
        mismatches.append(f"{len(cases)} inputs gave {len(values)} decisions")
    return LineCoverage(_file_coverage(files, root), len(cases), tuple(mismatches), tuple(n for n, _, _ in errored))


def _lines(ranges: Iterable[Mapping[str, Any]]) -> set[int]:
    out: set[int] = set()
    for r in ranges or ():
        out.update(range(int(r["start"]["row"]), int(r["end"]["row"]) + 1))
    return out


def _display_path(path: str, root: str) -> str:
    """The file as the user would name it: relative to the working directory when under it."""
    full = os.path.normpath(os.path.join(root, path))
    if not os.path.exists(full) and os.path.exists("/" + path.lstrip("/")):
        full = "/" + path.lstrip("/")
    rel = os.path.relpath(full)
    return full if rel.startswith("..") else rel


def _file_coverage(files: Mapping[str, Mapping[str, Any]], root: str) -> tuple[FileCoverage, ...]:
    covered: dict[str, set[int]] = {}
    not_covered: dict[str, set[int]] = {}
    for key, ranges in files.items():
        if key.endswith("_test.rego"):
            continue  # the Rego unit tests are not run here; `opa test --coverage` covers them
        path = _display_path(key, root)
        covered.setdefault(path, set()).update(_lines(ranges.get("covered", ())))
        not_covered.setdefault(path, set()).update(_lines(ranges.get("not_covered", ())))
    return tuple(
        FileCoverage(p, tuple(sorted(covered[p])), tuple(sorted(not_covered[p] - covered[p]))) for p in sorted(covered)
    )


def _ranges(lines: Sequence[int]) -> list[str]:
    """[3, 4, 5, 9] -> ["3-5", "9"]."""
    out: list[str] = []
    start = prev = None
    for n in lines:
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            out.append(f"{start}-{prev}" if start != prev else str(start))
        start = prev = n
    if start is not None:
        out.append(f"{start}-{prev}" if start != prev else str(start))
    return out
