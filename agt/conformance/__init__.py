"""Backend-parity conformance: suites of cases every engine must decide identically."""

from agt.conformance.runner import CaseResult, open_engines, run_cases
from agt.conformance.suite import Case, Expectation, Suite, SuiteError, load_suite

__all__ = ["Case", "CaseResult", "Expectation", "Suite", "SuiteError", "load_suite", "open_engines", "run_cases"]
