"""The conformance suites (conformance/*.yaml) through RemoteEngine against agt serve on the yaml and on the cedar
engine: every case the suite declares portable to that engine meets its expectation over the wire, as it does
in-process (tests/test_conformance_suites.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agt.action import Action
from agt.client import RemoteEngine
from agt.conformance.runner import run_cases
from agt.conformance.suite import load_suite
from agt.engines import create_engine
from agt.runtime.audit import MemoryAuditSink
from agt.runtime.governor import Governor
from agt.serve.wire import DERIVED_ACTION_FIELDS, action_input
from serve_helpers import AGENT_TOKEN, ROOT, served

SUITES = sorted((ROOT / "conformance").glob("*.yaml"))


@pytest.mark.parametrize("engine", ["yaml", "cedar"])
@pytest.mark.parametrize("suite_path", SUITES, ids=[p.stem for p in SUITES])
def test_the_suite_passes_through_agt_serve(suite_path: Path, engine: str):
    suite = load_suite(suite_path)
    if engine not in suite.policies:
        pytest.skip(f"{suite.name} has no {engine} policy")
    options = {"catalog": suite.catalog} if suite.catalog is not None else {}
    local = create_engine(engine, str(suite.policies[engine]), **options)
    with served(Governor(local, audit=MemoryAuditSink())) as (url, _):
        remote = RemoteEngine(url, token=AGENT_TOKEN, timeout=30)
        cases = [c for c in suite.cases if engine not in c.not_portable]
        results = run_cases(cases, {engine: remote})
        remote.close()
    failed = [(r.case.name, r.decisions[engine].effect.value, r.decisions[engine].rule_ids) for r in results
              if not r.matches_expectation(engine)]
    assert cases and not failed, failed[:5]


@pytest.mark.parametrize("suite_path", SUITES, ids=[p.stem for p in SUITES])
def test_what_remote_engine_sends_rebuilds_the_same_action(suite_path: Path):
    """RemoteEngine leaves out what the service derives from the params (params_text, facts): the service's
    action, and so its document and every engine's decision, is the one the full document gives."""
    for case in load_suite(suite_path).cases:
        full = case.action.document
        sent = action_input(full)
        assert not DERIVED_ACTION_FIELDS & set(sent["action"])
        assert Action.from_dict(sent).document == Action.from_dict(full).document == full, case.name
