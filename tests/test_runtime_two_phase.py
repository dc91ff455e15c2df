"""Governor.begin / finish / fail / abandon: the two-phase form for hooks that see only before and after,
and call_id, the approval idempotency key a resumed framework call carries."""

from __future__ import annotations

import asyncio
import copy
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agt.errors import ApprovalRequired, GovernanceDenied
from agt.runtime.audit import MemoryAuditSink
from agt.runtime.breaker import BreakerPolicy
from agt.runtime.governor import Governor, Ticket
from agt.runtime.modes import Mode

sys.path.insert(0, str(Path(__file__).parent / "adapters"))
from scenario import POLICY  # noqa: E402
from approval_helpers import Approvers  # noqa: E402

APPROVERS = Approvers("cfo")


def governor(**kw) -> Governor:
    return Governor("yaml", POLICY, audit=MemoryAuditSink(), approvers=APPROVERS.registry, approval_timeout=30, **kw)


def decisions(gov: Governor) -> list:
    return [r for r in gov.audit.records if r.kind == "decision"]


def vote(gov: Governor, request_id: str, approve: bool = True) -> None:
    APPROVERS.vote(gov.approvals, request_id, "cfo", approve)


# --- the phases ------------------------------------------------------------------------------------

def test_begin_returns_a_ticket_for_an_allowed_call():
    t = governor().begin("get_weather", {"city": "Paris"}, agent="a1")
    assert isinstance(t, Ticket) and t.action.action.params == {"city": "Paris"}


def test_finish_returns_the_result_and_writes_the_policy_record():
    gov = governor()
    t = gov.begin("get_weather", {"city": "Paris"}, agent="a1")
    assert gov.finish(t, "sunny") == "sunny"
    assert [r.path for r in decisions(gov)] == ["policy"]


def test_begin_audits_nothing_until_the_call_ends():
    gov = governor()
    gov.begin("get_weather", {"city": "Paris"}, agent="a1")
    assert decisions(gov) == []


def test_begin_raises_denied_with_the_rule_id():
    with pytest.raises(GovernanceDenied) as err:
        governor().begin("send_email", {"to": "x@evil.example", "body": ""}, agent="a1")
    assert err.value.rule_ids == ("block-external-email",)


def test_a_denied_begin_does_not_count_the_call():
    gov = governor()
    with pytest.raises(GovernanceDenied):
        gov.begin("send_email", {"to": "x@evil.example", "body": ""}, agent="a1", task="t")
    assert gov.store.counters("t").tool_calls == 0


def test_finishing_a_ticket_twice_is_refused():
    gov = governor()
    t = gov.begin("get_weather", {"city": "Paris"}, agent="a1")
    gov.finish(t, "sunny")
    with pytest.raises(ValueError, match="already finished"):
        gov.finish(t, "again")


def test_finish_refuses_what_is_not_a_ticket():
    with pytest.raises(TypeError, match="Ticket"):
        governor().finish("ticket", "result")  # type: ignore[arg-type]


def test_fail_records_the_tool_error():
    gov = governor()
    t = gov.begin("get_weather", {"city": "Paris"}, agent="a1")
    gov.fail(t, RuntimeError("upstream 500"))
    assert decisions(gov)[-1].result["tool_error"] == "RuntimeError: upstream 500"


def test_fail_counts_against_the_breaker():
    gov = governor(breakers=BreakerPolicy(failures=1))
    gov.fail(gov.begin("get_weather", {"city": "Paris"}, agent="a1"), RuntimeError("boom"))
    with pytest.raises(GovernanceDenied) as err:
        gov.begin("get_weather", {"city": "Paris"}, agent="a1")
    assert err.value.gate == "reliability"


def test_abandon_gives_the_call_back_to_the_budget():
    gov = governor()
    t = gov.begin("get_weather", {"city": "Paris"}, agent="a1", task="t")
    assert gov.store.counters("t").tool_calls == 1
    gov.abandon(t, "the framework skipped the tool")
    assert gov.store.counters("t").tool_calls == 0


def test_abandon_is_audited_as_not_run():
    gov = governor()
    gov.abandon(gov.begin("get_weather", {"city": "Paris"}, agent="a1"), "skipped")
    assert decisions(gov)[-1].result["tool_error"] == "not run: skipped"


def test_finish_denies_output_the_output_check_refuses():
    gov = governor(output_limit=10)
    t = gov.begin("get_weather", {"city": "Paris"}, agent="a1")
    with pytest.raises(GovernanceDenied) as err:
        gov.finish(t, "x" * 100)
    assert err.value.gate == "output"


def test_begin_denies_params_that_are_not_a_mapping():
    with pytest.raises(GovernanceDenied, match="params must be a mapping"):
        governor().begin("get_weather", ["Paris"], agent="a1")  # type: ignore[arg-type]


@pytest.mark.parametrize("tool", ["", None, 3])
def test_begin_denies_a_tool_name_that_is_not_a_string(tool):
    with pytest.raises(GovernanceDenied, match="tool name"):
        governor().begin(tool, {}, agent="a1")  # type: ignore[arg-type]


def test_begin_denies_when_the_audit_cannot_record():
    class Broken(MemoryAuditSink):
        def health(self):
            return "disk full"

    gov = Governor("yaml", POLICY, audit=Broken())
    with pytest.raises(GovernanceDenied) as err:
        gov.begin("get_weather", {"city": "Paris"}, agent="a1")
    assert err.value.rule_ids == ("audit-unavailable",)


def test_abegin_admits_an_allowed_call():
    gov = governor()
    t = asyncio.run(gov.abegin("get_weather", {"city": "Paris"}, agent="a1"))
    assert gov.finish(t, "sunny") == "sunny"


def test_call_and_begin_reach_the_same_decision():
    gov = governor()
    with pytest.raises(GovernanceDenied) as via_call:
        gov.call(lambda to, body: None, kwargs={"to": "x@evil.example", "body": ""}, tool="send_email", agent="a1")
    with pytest.raises(GovernanceDenied) as via_begin:
        gov.begin("send_email", {"to": "x@evil.example", "body": ""}, agent="a1")
    assert via_call.value.rule_ids == via_begin.value.rule_ids



# --- call() is begin() then finish() or fail() -------------------------------------------------------

PHASES_POLICY = """
apiVersion: governance.toolkit/v1
name: call-is-begin-then-finish
default_action: allow
rules:
  - name: no-system-files
    condition: "tool_name == 'read_file' and action.params.path startswith '/etc'"
    action: deny
    critical: true
    priority: 100
    message: System files stay closed.
  - name: no-outside-mail
    condition: "tool_name == 'send_email' and action.params.to endswith '@evil.example'"
    action: deny
    priority: 90
    message: Mail to outside domains is blocked.
  - name: large-transfer
    condition: "tool_name == 'transfer_funds' and action.params.amount > 100"
    action: require_approval
    approvers: [cfo]
    priority: 50
    message: Transfers over 100 need the CFO.
  - name: note-shell
    condition: "tool_name == 'shell'"
    action: warn
    message: A shell command ran.
"""

CALLS = st.sampled_from([
    ("read_file", {"path": "/ws/notes.txt"}), ("read_file", {"path": "/etc/shadow"}),
    ("send_email", {"to": "a@corp.example", "body": "hi"}), ("send_email", {"to": "x@evil.example", "body": ""}),
    ("transfer_funds", {"amount": 50}), ("transfer_funds", {"amount": 500}),
    ("shell", {"command": "ls -l"}), ("delete_file", {"path": "/ws/old.txt"}), ("write_file", {"path": "/ws/a.txt"}),
    ("read_file", {"path": float("nan")}), ("get_weather", {}),
])
BROKE = ValueError("tool broke")
RESULTS = st.sampled_from(["short", "x" * 100, b"bytes", None, {"k": [1, 2]}, BROKE, BROKE, BROKE])  # often: breakers open


def _phases_governor(tmp: Path, mode: str, observed: bool) -> Governor:
    policy = tmp / "phases.yaml"
    policy.write_text(PHASES_POLICY)
    gov = Governor("yaml", str(policy), mode=mode, agent_modes={"strict-one": "strict"}, audit=MemoryAuditSink(),
                   approvers=APPROVERS.registry, blocking_approvals=False, output_limit=40,
                   breakers=BreakerPolicy(failures=2), rate_limits={"tool:read_file": "4/hour"},
                   metrics=True if observed else None)
    from agt.action import Agent

    gov.register_agent(Agent("low"), trust_score=100)  # ring 3: no write, delete or execute
    return gov


def _outcome(run: Callable[[], Any]) -> tuple:
    try:
        return ("returned", run())
    except GovernanceDenied as exc:
        return ("denied", exc.gate, exc.rule_ids)
    except ApprovalRequired as exc:
        return ("held", exc.decision.rule_ids)
    except ValueError as exc:
        return ("raised", str(exc))


def _records(gov: Governor) -> list[tuple]:
    """Every record but what differs between two runs by nature: ids, times, latencies, request ids."""
    out = []
    for r in gov.audit.records:
        doc = copy.deepcopy(r.input)
        if doc and "context" in doc:
            doc["context"].pop("timestamp", None)
        result = {k: v for k, v in r.result.items() if k != "request"}
        out.append((r.kind, r.agent_id, r.path, doc, list(result.items()), r.labels, sorted(r.metrics)))
    return out


@pytest.mark.parametrize("observed", [False, True], ids=["unobserved", "observed"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.sampled_from(["strict", "audit", "permissive"]),
       calls=st.lists(st.tuples(CALLS, st.sampled_from(["a1", "low", "strict-one"]), RESULTS), max_size=16))
def test_call_is_begin_then_finish_or_fail(tmp_path, observed, mode, calls):
    """call()'s own path (and, with metrics on, its path through the public phases) gives every outcome, audit
    record, counter and trust score that begin() then finish() or fail() give, call after call."""
    via_call, via_phases = _phases_governor(tmp_path, mode, observed), _phases_governor(tmp_path, mode, False)
    for i, ((tool, params), agent, result) in enumerate(calls):
        def tool_fn(**kw: Any) -> Any:
            if isinstance(result, Exception):
                raise result
            return result

        def phases() -> Any:
            t = via_phases.begin(tool, dict(params), agent=agent, session=f"s{i % 2}")
            try:
                out = tool_fn(**params)
            except BaseException as exc:
                via_phases.fail(t, exc)
                raise
            return via_phases.finish(t, out)

        called = _outcome(lambda: via_call.call(tool_fn, (), dict(params), tool=tool, agent=agent, session=f"s{i % 2}"))
        assert called == _outcome(phases)
    assert _records(via_call) == _records(via_phases)
    for task in ("s0", "s1"):
        assert via_call.store.counters(task) == via_phases.store.counters(task)
    for agent in ("a1", "low", "strict-one"):
        assert via_call.trust.score(agent) == via_phases.trust.score(agent)


def test_a_calls_records_carry_the_mode_it_was_decided_under():
    gov = governor(mode="audit")

    def tool(city: str) -> str:
        gov.agent_modes["a1"] = Mode.STRICT  # changed while the tool runs: this call was already let through
        return "sunny"

    gov.call(tool, ("Paris",), tool="get_weather", agent="a1")
    assert [r.result["mode"] for r in decisions(gov)] == ["audit"]

# --- call_id: a resumed call finds its request --------------------------------------------------

def pending_id(gov: Governor, call_id: str | None, amount: int = 500, **kw) -> str:
    with pytest.raises(ApprovalRequired) as err:
        gov.begin("transfer_funds", {"amount": amount}, agent=kw.pop("agent", "a1"), call_id=call_id, wait=False, **kw)
    return err.value.request_id


def test_a_resumed_call_finds_its_pending_request():
    gov = governor()
    assert pending_id(gov, "call-1") == pending_id(gov, "call-1")


def test_a_resumed_call_opens_no_second_request():
    gov = governor()
    pending_id(gov, "call-1")
    pending_id(gov, "call-1")
    assert len(gov.approvals.list()) == 1


def test_without_call_id_each_call_opens_its_own_request():
    gov = governor()
    assert pending_id(gov, None) != pending_id(gov, None)


def test_a_resumed_call_runs_once_approved():
    gov = governor()
    vote(gov, pending_id(gov, "call-1"))
    t = gov.begin("transfer_funds", {"amount": 500}, agent="a1", call_id="call-1", wait=False)
    assert gov.finish(t, "done") == "done"


def test_a_resumed_call_is_denied_once_the_request_is_denied():
    gov = governor()
    vote(gov, pending_id(gov, "call-1"), approve=False)
    with pytest.raises(GovernanceDenied) as err:
        gov.begin("transfer_funds", {"amount": 500}, agent="a1", call_id="call-1", wait=False)
    assert err.value.rule_ids == ("approval-denied",)


def test_a_resumed_call_that_waits_waits_on_its_own_request():
    gov = governor()
    rid = pending_id(gov, "call-1")
    threading.Timer(0.2, vote, (gov, rid)).start()
    t = gov.begin("transfer_funds", {"amount": 500}, agent="a1", call_id="call-1", wait=True)
    assert t.approval is not None and t.approval.request_id == rid


def test_a_used_approval_is_not_used_again_by_the_same_call_id():
    gov = governor()
    rid = pending_id(gov, "call-1")
    vote(gov, rid)
    gov.finish(gov.begin("transfer_funds", {"amount": 500}, agent="a1", call_id="call-1", wait=False), "done")
    assert pending_id(gov, "call-1") != rid


def test_another_agents_call_id_does_not_find_the_request():
    gov = governor()
    assert pending_id(gov, "call-1", agent="a1") != pending_id(gov, "call-1", agent="a2")


def test_another_sessions_call_id_does_not_find_the_request():
    gov = governor()
    assert pending_id(gov, "call-1", session="s1") != pending_id(gov, "call-1", session="s2")


def test_a_resumed_call_with_other_arguments_is_denied():
    gov = governor()
    vote(gov, pending_id(gov, "call-1", amount=500))
    with pytest.raises(GovernanceDenied) as err:
        gov.begin("transfer_funds", {"amount": 50_000}, agent="a1", call_id="call-1", wait=False)
    assert err.value.rule_ids == ("approval-mismatch",)


def test_a_pending_request_is_audited_with_its_call_id():
    gov = governor()
    pending_id(gov, "call-1")
    assert [r.result.get("call_id") for r in gov.audit.records if r.kind == "approval"] == ["call-1"]


def test_a_wait_cancelled_gives_the_call_back_to_the_budget():
    gov = governor()

    async def cancelled() -> None:
        task = asyncio.ensure_future(gov.abegin("transfer_funds", {"amount": 500}, agent="a1", task="t", wait=True))
        while not gov.approvals.list():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert gov.store.counters("t").tool_calls == 0


def test_an_action_that_cannot_be_built_is_audited_with_its_tool():
    gov = governor()
    with pytest.raises(GovernanceDenied):
        gov.begin("get_weather", ["Paris"], agent="a1")  # type: ignore[arg-type]
    assert decisions(gov)[-1].input == {"action": {"tool": "get_weather"}}


def test_begin_carries_the_action_type():
    t = governor().begin("get_weather", {"city": "Paris"}, agent="a1", action_type="lookup")
    assert t.action.action.type == "lookup"


def test_begin_carries_the_callers_attributes():
    t = governor().begin("get_weather", {"city": "Paris"}, agent="a1", attributes={"user.role": "admin"})
    assert dict(t.action.context.attributes) == {"user.role": "admin"}


def test_without_an_environment_the_context_has_none():
    t = governor().begin("get_weather", {"city": "Paris"}, agent="a1")
    assert t.action.context.environment is None
