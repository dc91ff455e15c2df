"""Test results from JUnit XML (``pytest --junitxml``), per mapped test id: passed, failed, skipped or missing.

A mapped id is a pytest node id without parameters; it stands for every case of a parametrized test.
pytest names a case ``classname="tests.attacks.test_x"`` (``.TestClass`` appended inside a class) and
``name="test_y[param]"``, so the match is computed forward from the node id, never guessed backwards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from agt.errors import AgtError

STATUSES = ("passed", "failed", "skipped", "missing")


class JunitError(AgtError):
    def __init__(self, file: str, message: str) -> None:
        self.file, self.message = file, message
        super().__init__(f"{file}: {message}")


@dataclass(frozen=True)
class TestResult:
    id: str
    status: str
    """passed (at least one case passed, none failed), failed (a case failed or errored), skipped (every
    case skipped) or missing (no case in the reports)."""
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "status": self.status, "passed": self.passed, "failed": self.failed, "skipped": self.skipped}


@dataclass(frozen=True)
class JunitReports:
    cases: Mapping[tuple[str, str], str]
    """(classname, name) -> passed | failed | skipped, over every report read."""
    files: tuple[Mapping[str, str], ...]
    """Each report read: {"path", "sha256"}."""

    def result(self, node_id: str) -> TestResult:
        classname, function = junit_name(node_id)
        counts = {"passed": 0, "failed": 0, "skipped": 0}
        for (cls, name), outcome in self.cases.items():
            if cls == classname and (name == function or name.startswith(function + "[")):
                counts[outcome] += 1
        if counts["failed"]:
            status = "failed"
        elif counts["passed"]:
            status = "passed"
        elif counts["skipped"]:
            status = "skipped"
        else:
            status = "missing"
        return TestResult(node_id, status, **counts)


def junit_name(node_id: str) -> tuple[str, str]:
    """``tests/attacks/test_x.py::Cls::test_y`` -> (``tests.attacks.test_x.Cls``, ``test_y``), as pytest writes them."""
    path, *rest = node_id.split("::")
    module = path[:-3] if path.endswith(".py") else path
    parts = [module.replace("/", ".")] + rest[:-1]
    return ".".join(parts), rest[-1] if rest else ""


def _outcome(case: object) -> str:
    tags = {child.tag for child in case}  # type: ignore[attr-defined]
    if tags & {"failure", "error"}:
        return "failed"
    if "skipped" in tags:
        return "skipped"
    return "passed"


def read_reports(paths: Iterable[str | Path]) -> JunitReports:
    """Read every report; a file that is not JUnit XML is an error naming it."""
    import xml.etree.ElementTree as ET

    cases: dict[tuple[str, str], str] = {}
    files = []
    for p in map(Path, paths):
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise JunitError(str(p), f"cannot read: {exc.strerror or exc}") from None
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            raise JunitError(str(p), f"not XML: {exc}") from None
        if root.tag not in ("testsuites", "testsuite"):
            raise JunitError(str(p), f"not a JUnit report: the root element is <{root.tag}>, not <testsuites> or <testsuite>")
        for case in root.iter("testcase"):
            classname, name = case.get("classname"), case.get("name")
            if not classname or not name:
                raise JunitError(str(p), "a <testcase> lacks its classname or name")
            outcome = _outcome(case)
            previous = cases.get((classname, name))
            # The same case in two reports (a rerun): a failure anywhere stays a failure.
            cases[(classname, name)] = "failed" if "failed" in (previous, outcome) else outcome
        files.append({"path": str(p), "sha256": hashlib.sha256(data).hexdigest()})
    return JunitReports(cases, tuple(files))
