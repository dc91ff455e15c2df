"""Attacks on enforcement modes: an agent running under audit (or permissive) mode must still be stopped
by the kill switch, by a broken engine, and by a missing identity or delegation (docs/runtime.md, Modes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agt.decision import Decision
from agt.errors import GovernanceDenied
from agt.runtime import Governor

STARTER = str(Path(__file__).resolve().parents[2] / "policies" / "starter.yaml")


class BrokenEngine:
    """An engine whose evaluation fails: the fault a mode must not turn into an allow."""

    name = "broken"

    def evaluate(self, action) -> Decision:
        raise RuntimeError("engine crashed")

    def close(self) -> None:
        pass


def _refused(call) -> tuple[str, ...]:
    with pytest.raises(GovernanceDenied) as info:
        call()
    return info.value.decision.rule_ids


@pytest.mark.parametrize("mode", ["audit", "permissive"])
def test_killed_agent_in_a_relaxed_mode_cannot_run_its_tool(mode):
    gov, ran = Governor("yaml", STARTER, mode=mode), []
    gov.kill("agent-1")
    assert _refused(lambda: gov.call(lambda: ran.append(1), tool="read_doc", agent="agent-1")) == ("kill-switch",)
    assert ran == []


def test_agent_given_audit_mode_by_agent_modes_is_still_killed():
    gov, ran = Governor("yaml", STARTER, agent_modes={"agent-1": "audit"}), []
    gov.kill()
    assert _refused(lambda: gov.call(lambda: ran.append(1), tool="read_doc", agent="agent-1")) == ("kill-switch",)
    assert ran == []


def test_engine_error_in_audit_mode_fails_closed():
    gov, ran = Governor(BrokenEngine(), mode="audit"), []
    assert _refused(lambda: gov.call(lambda: ran.append(1), tool="read_doc")) == ("engine_error",)
    assert ran == []


def test_output_engine_error_in_audit_mode_withholds_the_output():
    gov = Governor("yaml", STARTER, mode="audit", output_engine=BrokenEngine())
    assert _refused(lambda: gov.call(lambda: "secret output", tool="read_doc")) == ("engine_error",)


def test_condition_that_errors_in_audit_mode_fails_closed(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: governance.toolkit/v1\nname: t\ndefault_action: allow\n"
                      "rules:\n  - {name: size-cap, condition: 'params.size > 10', action: deny}\n")
    gov, ran = Governor("yaml", str(policy), mode="audit"), []
    assert _refused(lambda: gov.call(lambda size: ran.append(size), kwargs={"size": "big"}, tool="read_doc")) == ("engine_error",)
    assert ran == []


def test_missing_delegation_in_audit_mode_is_refused(tmp_path):
    from agt.identity import EnvelopeVerifier, IdentityStore

    store = IdentityStore(tmp_path / "ids")
    gov, ran = Governor("yaml", STARTER, mode="audit", identity=EnvelopeVerifier(store.resolve),
                        require_delegation=True), []
    assert _refused(lambda: gov.call(lambda: ran.append(1), tool="read_doc")) == ("delegation-required",)
    assert ran == []
