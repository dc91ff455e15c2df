"""Backend-parity conformance: suites of cases every engine must decide identically."""

from agt.conformance.report import Report, build_report, write_json, write_junit
from agt.conformance.runner import CaseResult, known_rule_ids, open_engines, run_cases
from agt.conformance.suite import Case, Expectation, Suite, SuiteError, load_suite

__all__ = [
    "Case", "CaseResult", "Expectation", "Report", "Suite", "SuiteError", "build_report", "known_rule_ids",
    "load_suite", "open_engines", "run_cases", "write_json", "write_junit",
]
