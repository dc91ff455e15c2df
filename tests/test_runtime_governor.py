"""agt.runtime.governor: the gate pipeline, through govern() and Governor.call / Governor.acall.

Real engines throughout (the starter YAML policy, or small YAML policies written to tmp_path); fakes only
inject faults (a tool that raises, an engine whose evaluate raises).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agt.action import Agent
from agt.decision import Decision, Effect, Reason
from agt.engines.yaml import YamlEngine
from agt.errors import ApprovalRequired, GovernanceDenied
from agt.runtime import (
    ApprovalStatus, BreakerBoard, BreakerPolicy, Governor, SqliteStore, TrustManager, govern,
)
from agt.runtime.governor import _bind, _result
from agt.runtime.modes import Mode, Verdict
from approval_helpers import Approvers, resolve_when_pending

STARTER = str(Path(__file__).resolve().parents[1] / "policies" / "starter.yaml")
APPROVERS = Approvers("comms-lead", "alice", "bob")


# --- helpers ---------------------------------------------------------------------------------------


def write_policy(tmp_path: Path, rules: list[dict], *, default: str = "allow", name: str = "policy.yaml") -> str:
    lines = ["apiVersion: governance.toolkit/v1", "name: test", f"default_action: {default}"]
    lines.append("rules:" if rules else "rules: []")
    lines += ["  - " + json.dumps(r) for r in rules]  # JSON is YAML: one flow mapping per rule
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def decisions(gov: Governor) -> list:
    return [r for r in gov.audit.records if r.kind == "decision"]


def denied(fn: Callable[[], Any]) -> GovernanceDenied:
    with pytest.raises(GovernanceDenied) as info:
        fn()
    return info.value


class RaisingEngine:
    """A fault: an engine whose evaluate raises instead of returning a decision."""

    name = "raising"
    revision = "r0"

    def evaluate(self, action):
        raise RuntimeError("engine exploded")

    def evaluate_many(self, actions):
        return [self.evaluate(a) for a in actions]

    def close(self) -> None:
        pass


# --- govern(): the wrapper -------------------------------------------------------------------------


def read_file_sync(path: str, limit: int = 10, *, verbose: bool = False) -> str:
    """Read a file."""
    return f"{path}:{limit}:{verbose}"


async def read_file_async(path: str, limit: int = 10, *, verbose: bool = False) -> str:
    """Read a file, asynchronously."""
    return f"{path}:{limit}:{verbose}"


@pytest.mark.parametrize("fn", [read_file_sync, read_file_async], ids=["sync", "async"])
def test_govern_keeps_name(fn):
    assert govern(fn, policy=STARTER).__name__ == fn.__name__


@pytest.mark.parametrize("fn", [read_file_sync, read_file_async], ids=["sync", "async"])
def test_govern_keeps_docstring(fn):
    assert govern(fn, policy=STARTER).__doc__ == fn.__doc__


@pytest.mark.parametrize("fn", [read_file_sync, read_file_async], ids=["sync", "async"])
def test_govern_keeps_signature(fn):
    assert inspect.signature(govern(fn, policy=STARTER)) == inspect.signature(fn)


def test_govern_keeps_async_function_a_coroutine_function():
    assert inspect.iscoroutinefunction(govern(read_file_async, policy=STARTER))


def test_govern_as_decorator_runs_an_allowed_call():
    @govern(policy=STARTER)
    def read_doc(name: str) -> str:
        return f"doc {name}"

    assert read_doc("a") == "doc a"


def test_govern_as_function_runs_an_allowed_call():
    def read_doc(name: str) -> str:
        return f"doc {name}"

    assert govern(read_doc, policy=STARTER)(name="b") == "doc b"


def test_govern_async_runs_an_allowed_call():
    assert asyncio.run(govern(read_file_async, policy=STARTER)("x", 3)) == "x:3:False"


def test_govern_binds_positional_arguments_to_parameter_names(tmp_path):
    policy = write_policy(tmp_path, [{"name": "no-secret", "condition": "params.name == 'secret'", "action": "deny"}])

    @govern(policy=policy)
    def read_doc(name: str) -> str:
        return name

    assert denied(lambda: read_doc("secret")).rule_ids == ("no-secret",)


def test_govern_shares_a_governor_passed_in():
    gov = Governor("yaml", STARTER)

    @govern(governor=gov, task="t")
    def read_a() -> int:
        return 1

    @govern(governor=gov, task="t")
    def read_b() -> int:
        return 2

    read_a(), read_b()
    assert gov.store.counters("t").tool_calls == 2


def test_govern_refuses_governor_options_with_a_governor():
    with pytest.raises(TypeError, match="rate_limits"):
        govern(read_file_sync, governor=Governor("yaml", STARTER), rate_limits={"tool:x": "1/hour"})



def _bind_before(fn: Callable[..., Any], args: tuple, kwargs: dict) -> dict[str, Any]:
    """governor._bind as it was before its names were cached with a self/cls flag: the reference."""
    if not args:
        return dict(kwargs)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    names = None
    if sig is not None:
        names = []
        for p in sig.parameters.values():
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
                names.append(p.name)
            elif p.kind is inspect.Parameter.VAR_POSITIONAL:
                names = None
                break
    if names is not None and len(args) <= len(names) and not (kwargs and set(names[: len(args)]) & kwargs.keys()):
        out = {n: a for n, a in zip(names, args) if n not in ("self", "cls")}
        out.update(kwargs)
        return out
    if sig is None:
        return {**{f"arg{i}": a for i, a in enumerate(args)}, **kwargs}
    bound = sig.bind_partial(*args, **kwargs)
    out = {}
    for name, value in bound.arguments.items():
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            out[name] = list(value)
        elif name not in ("self", "cls"):
            out[name] = value
    return out


NAMES = ["self", "cls", "path", "limit", "mode", "data"]


@st.composite
def signatures(draw) -> inspect.Signature | str:
    """Any valid signature over a few names (self and cls among them), or an unusable one."""
    if draw(st.integers(0, 9)) == 0:
        return "not a signature"  # inspect.signature() raises: the no-signature path
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
    P = inspect.Parameter
    kinds = sorted(draw(st.lists(st.sampled_from([P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY]),
                                 min_size=len(names), max_size=len(names))))
    params = [P(n, k) for n, k in zip(names, kinds)]
    if draw(st.booleans()):  # *args, after the positional ones
        at = sum(1 for k in kinds if k is not P.KEYWORD_ONLY)
        params.insert(at, P("args", P.VAR_POSITIONAL))
    if draw(st.booleans()):
        params.append(P("kwargs", P.VAR_KEYWORD))
    return inspect.Signature(params)


def _outcome(run: Callable[[], Any]) -> tuple:
    try:
        return ("bound", list(run().items()))  # the order, too
    except TypeError as exc:
        return ("refused", str(exc))


@settings(max_examples=400, deadline=None)
@given(sig=signatures(), args=st.lists(st.integers(), max_size=5).map(tuple),
       kwargs=st.dictionaries(st.sampled_from(NAMES + ["other"]), st.integers(), max_size=3), again=st.booleans())
def test_bind_names_arguments_as_it_did_before(sig, args, kwargs, again):
    """Every signature (self/cls, positional-only, *args, **kwargs, none at all), every mix of positional and
    keyword arguments, first call or cached: the same params, in the same order, or the same refusal."""
    def tool(*a: Any, **k: Any) -> None: ...

    tool.__signature__ = sig  # type: ignore[attr-defined]
    if again:
        _outcome(lambda: _bind(tool, (0,), {}))  # learn the signature first
    assert _outcome(lambda: _bind(tool, args, dict(kwargs))) == _outcome(lambda: _bind_before(tool, args, dict(kwargs)))

# --- each gate denying on its own ------------------------------------------------------------------


@dataclass
class Scenario:
    gov: Governor
    invoke: Callable[[], Any]
    """Makes the one call that must be denied."""
    ran: list
    """What the tool appended when the denied call ran anyway."""
    gate: str
    rule_ids: tuple[str, ...]


def _kill_switch(tmp_path) -> Scenario:
    gov, ran = Governor("yaml", STARTER), []
    gov.kill("a")
    return Scenario(gov, lambda: gov.call(lambda: ran.append(1), tool="read_doc", agent="a"), ran,
                    "trust", ("kill-switch",))


def _kill_switch_all(tmp_path) -> Scenario:
    gov, ran = Governor("yaml", STARTER), []
    gov.kill()
    return Scenario(gov, lambda: gov.call(lambda: ran.append(1), tool="read_doc", agent="anyone"), ran,
                    "trust", ("kill-switch",))


def _trust_ring(tmp_path) -> Scenario:
    gov, ran = Governor("yaml", STARTER), []
    low = Agent("low", trust_score=250)  # ring 3: read and message only
    return Scenario(gov, lambda: gov.call(lambda cmd: ran.append(cmd), kwargs={"cmd": "ls"}, tool="run_shell", agent=low),
                    ran, "trust", ("trust-ring",))


def _policy(tmp_path) -> Scenario:
    gov, ran = Governor("yaml", STARTER), []
    admin = Agent("admin", trust_score=950)  # ring 0: the trust gate lets a delete through to the policy

    def drop_table(table: str) -> None:
        ran.append(table)

    return Scenario(gov, lambda: gov.call(drop_table, kwargs={"table": "users"}, agent=admin), ran,
                    "policy", ("block-destructive-db-tools",))


def _rate(tmp_path) -> Scenario:
    ran: list = []

    @govern(policy=STARTER, kind="read", rate_limits={"tool:ping": "2/minute"})
    def ping() -> None:
        ran.append(1)

    ping(), ping()
    ran.clear()
    return Scenario(ping.governor, ping, ran, "rate", ("rate-limit:tool:ping",))


def _reliability(tmp_path) -> Scenario:
    gov, ran = Governor("yaml", STARTER), []

    def read_flaky() -> None:
        raise ConnectionError("down")

    for _ in range(5):  # the default breaker opens after 5 consecutive failures
        with pytest.raises(ConnectionError):
            gov.call(read_flaky, agent="a")
    # Another agent: its own breaker is closed, so only the tool's breaker refuses.
    return Scenario(gov, lambda: gov.call(lambda: ran.append(1), tool="read_flaky", agent="b"), ran,
                    "reliability", ("circuit-open:tool:read_flaky",))


def _approval(tmp_path) -> Scenario:
    gov, ran = Governor("yaml", STARTER, approvers=APPROVERS.registry, approval_timeout=30.0), []

    def send_email(to: str, body: str) -> None:
        ran.append(to)

    def invoke():
        t = resolve_when_pending(gov, APPROVERS, "comms-lead", approve=False)
        try:
            return gov.call(send_email, kwargs={"to": "x@example.com", "body": "hi"})
        finally:
            t.join()

    return Scenario(gov, invoke, ran, "approval", ("approval-denied",))


def _output_limit(tmp_path) -> Scenario:
    gov, ran = Governor("yaml", STARTER, output_limit=10), []
    return Scenario(gov, lambda: gov.call(lambda: ran.append(1) or "x" * 100, tool="read_big"), ran,
                    "output", ("output-too-large",))


def _output_engine(tmp_path) -> Scenario:
    out_policy = write_policy(tmp_path, [{
        "name": "no-private-keys", "action": "deny",
        "condition": "context.stage == 'post_tool' and params_text contains '-----begin'",
    }], name="output.yaml")
    gov, ran = Governor("yaml", STARTER, output_engine=YamlEngine(out_policy)), []
    key = "-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----"
    return Scenario(gov, lambda: gov.call(lambda: ran.append(1) or key, tool="read_key"), ran,
                    "output", ("no-private-keys",))


PRE_TOOL_GATES = {
    "kill-switch": _kill_switch, "kill-switch-all": _kill_switch_all, "trust-ring": _trust_ring,
    "policy": _policy, "rate": _rate, "reliability": _reliability, "approval": _approval,
}
ALL_GATES = {**PRE_TOOL_GATES, "output-limit": _output_limit, "output-engine": _output_engine}


@pytest.mark.parametrize("name", PRE_TOOL_GATES)
def test_tool_never_runs_when_a_gate_denies(tmp_path, name):
    s = PRE_TOOL_GATES[name](tmp_path)
    with pytest.raises(GovernanceDenied):
        s.invoke()
    assert s.ran == []


@pytest.mark.parametrize("name", ALL_GATES)
def test_denial_names_the_gate(tmp_path, name):
    s = ALL_GATES[name](tmp_path)
    assert denied(s.invoke).gate == s.gate


@pytest.mark.parametrize("name", ALL_GATES)
def test_denial_carries_the_rule_ids(tmp_path, name):
    s = ALL_GATES[name](tmp_path)
    assert denied(s.invoke).rule_ids == s.rule_ids


@pytest.mark.parametrize("name", ALL_GATES)
def test_every_denial_writes_a_decision_record_at_its_gate(tmp_path, name):
    s = ALL_GATES[name](tmp_path)
    before = len(decisions(s.gov))
    denied(s.invoke)
    new = decisions(s.gov)[before:]
    assert [(r.path, r.result["effect"], tuple(x["id"] for x in r.result["reasons"])) for r in new] == [
        (s.gate, "deny", s.rule_ids)
    ]


def test_output_gate_withholds_the_result_after_the_tool_ran(tmp_path):
    s = _output_limit(tmp_path)
    denied(s.invoke)
    assert s.ran == [1]


def test_output_engine_allows_clean_output(tmp_path):
    s = _output_engine(tmp_path)
    assert s.gov.call(lambda: "just text", tool="read_note") == "just text"


def test_reliability_gate_refuses_the_failing_agent_on_any_tool(tmp_path):
    s = _reliability(tmp_path)
    assert denied(lambda: s.gov.call(lambda: None, tool="read_other", agent="a")).rule_ids == ("circuit-open:agent:a",)


def test_revive_lets_a_killed_agent_run_again():
    gov = Governor("yaml", STARTER)
    gov.kill("a")
    gov.revive("a")
    assert gov.call(lambda: "ok", tool="read_doc", agent="a") == "ok"


def test_kill_switch_stops_only_the_killed_agent():
    gov = Governor("yaml", STARTER)
    gov.kill("a")
    assert gov.call(lambda: "ok", tool="read_doc", agent="b") == "ok"


def test_low_trust_agent_may_still_read():
    gov = Governor("yaml", STARTER)
    assert gov.call(lambda: "ok", tool="read_doc", agent=Agent("low", trust_score=450)) == "ok"


def test_rate_limit_per_agent_wildcard_counts_each_agent_separately():
    gov = Governor("yaml", STARTER, rate_limits={"agent:*": "1/minute"})
    gov.call(lambda: 1, tool="read_doc", agent="a")
    assert gov.call(lambda: 2, tool="read_doc", agent="b") == 2


def test_invalid_action_nan_param_is_denied_as_engine_error():
    ran: list = []

    @govern(policy=STARTER)
    def read_doc(size: float) -> None:
        ran.append(size)

    assert denied(lambda: read_doc(size=float("nan"))).rule_ids == ("engine_error",)


def test_invalid_action_nan_param_does_not_run_the_tool():
    ran: list = []

    @govern(policy=STARTER)
    def read_doc(size: float) -> None:
        ran.append(size)

    with pytest.raises(GovernanceDenied):
        read_doc(size=math.nan)
    assert ran == []


def test_engine_that_raises_denies_as_engine_error():
    gov = Governor(RaisingEngine())
    assert denied(lambda: gov.call(lambda: None, tool="read_doc")).rule_ids == ("engine_error",)


def test_engine_that_raises_does_not_run_the_tool():
    gov, ran = Governor(RaisingEngine()), []
    with pytest.raises(GovernanceDenied):
        gov.call(lambda: ran.append(1), tool="read_doc")
    assert ran == []


def test_cedar_engine_governs_the_same_intent():
    gov, ran = Governor("cedar", str(Path(STARTER).parents[1] / "cedar")), []
    admin = Agent("admin", trust_score=950)

    def drop_table(table: str) -> None:
        ran.append(table)

    assert denied(lambda: gov.call(drop_table, kwargs={"table": "users"}, agent=admin)).rule_ids == (
        "block-destructive-db-tools",
    )


# --- budgets ---------------------------------------------------------------------------------------


def _budget_policy(tmp_path, limit: int) -> str:
    return write_policy(tmp_path, [{"name": "call-budget", "condition": f"context.tool_calls > {limit}", "action": "deny"}])


def test_budget_is_exact_under_thread_concurrency(tmp_path):
    gov = Governor("yaml", _budget_policy(tmp_path, 5000))
    ran: list = []
    denials: list = []
    barrier = threading.Barrier(8)

    def read_counter() -> None:
        ran.append(1)

    def worker() -> None:
        barrier.wait()
        for _ in range(1000):
            try:
                gov.call(read_counter, task="shared")
            except GovernanceDenied:
                denials.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(ran), len(denials)) == (5000, 3000)


def test_budget_is_exact_under_asyncio_concurrency(tmp_path):
    gov = Governor("yaml", _budget_policy(tmp_path, 250))
    ran: list = []

    async def read_counter() -> None:
        await asyncio.sleep(0)
        ran.append(1)

    async def main() -> list:
        return await asyncio.gather(*(gov.acall(read_counter, task="shared") for _ in range(400)), return_exceptions=True)

    results = asyncio.run(main())
    assert (len(ran), sum(isinstance(r, GovernanceDenied) for r in results)) == (250, 150)


def test_denied_calls_do_not_consume_budget(tmp_path):
    gov = Governor("yaml", _budget_policy(tmp_path, 3))
    for _ in range(3):
        gov.call(lambda: None, tool="read_doc", task="t")
    for _ in range(5):
        with pytest.raises(GovernanceDenied):
            gov.call(lambda: None, tool="read_doc", task="t")
    assert gov.store.counters("t").tool_calls == 3


@pytest.mark.parametrize("name", ["policy", "rate", "reliability", "approval"])
def test_call_denied_at_a_gate_releases_its_reservation(tmp_path, name):
    s = PRE_TOOL_GATES[name](tmp_path)
    before = s.gov.store.counters("default").tool_calls
    denied(s.invoke)
    assert s.gov.store.counters("default").tool_calls == before


def test_pending_approval_releases_its_reservation():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, blocking_approvals=False)
    with pytest.raises(ApprovalRequired):
        gov.call(lambda to, body: None, kwargs={"to": "x", "body": "y"}, tool="send_email")
    assert gov.store.counters("default").tool_calls == 0


def test_context_counts_include_the_call_being_decided():
    gov = Governor("yaml", STARTER)
    for _ in range(3):
        gov.call(lambda: None, tool="read_doc", task="t")
    assert decisions(gov)[-1].input["context"]["tool_calls"] == 3


def test_tool_call_limit_of_starter_denies_the_21st_call():
    gov = Governor("yaml", STARTER)
    for _ in range(20):
        gov.call(lambda: None, tool="read_doc", task="t")
    assert denied(lambda: gov.call(lambda: None, tool="read_doc", task="t")).rule_ids == ("tool-call-limit",)


def test_token_budget_of_starter_denies_after_add_tokens():
    gov = Governor("yaml", STARTER)
    gov.add_tokens("t", 8001)
    assert denied(lambda: gov.call(lambda: None, tool="read_doc", task="t")).rule_ids == ("token-budget",)


def test_written_files_count_toward_files_changed():
    gov = Governor("yaml", STARTER)
    writer = Agent("w", trust_score=600, attributes={"workspace": "/ws/w"})
    for i in range(2):
        gov.call(lambda path, text: None, kwargs={"path": f"/ws/w/f{i}.txt", "text": "x"}, tool="write_file", agent=writer, task="t")
    assert gov.store.counters("t").files_changed == 2


def test_budget_persists_across_governors_on_one_sqlite_file(tmp_path):
    policy = _budget_policy(tmp_path, 3)
    db = tmp_path / "state.db"
    first = Governor("yaml", policy, store=SqliteStore(db))
    first.call(lambda: None, tool="read_doc", task="t")
    first.call(lambda: None, tool="read_doc", task="t")
    first.close()
    second = Governor("yaml", policy, store=SqliteStore(db))
    second.call(lambda: None, tool="read_doc", task="t")
    assert denied(lambda: second.call(lambda: None, tool="read_doc", task="t")).rule_ids == ("call-budget",)


# --- enforcement modes -----------------------------------------------------------------------------


@pytest.fixture
def modes_policy(tmp_path) -> str:
    return write_policy(tmp_path, [
        {"name": "critical-deny", "condition": "tool_name == 'read_secret'", "action": "deny", "critical": True},
        {"name": "soft-deny", "condition": "tool_name == 'read_gossip'", "action": "deny"},
        {"name": "needs-ok", "condition": "tool_name == 'read_mail'", "action": "require_approval", "approvers": ["boss"]},
        {"name": "size-cap", "condition": "params.size > 10", "action": "deny"},
    ])


def test_strict_mode_blocks_a_non_critical_deny(modes_policy):
    gov = Governor("yaml", modes_policy, mode="strict")
    assert denied(lambda: gov.call(lambda: None, tool="read_gossip")).rule_ids == ("soft-deny",)


@pytest.mark.parametrize("tool", ["read_secret", "read_gossip"])
def test_audit_mode_runs_critical_and_non_critical_rule_denies(modes_policy, tool):
    gov = Governor("yaml", modes_policy, mode="audit")
    assert gov.call(lambda: "ran", tool=tool) == "ran"


def test_audit_mode_blocks_an_engine_that_raises():
    gov, ran = Governor(RaisingEngine(), mode="audit"), []
    assert denied(lambda: gov.call(lambda: ran.append(1), tool="read_doc")).rule_ids == ("engine_error",)
    assert ran == []


@pytest.mark.parametrize("scope", ["a", None])
def test_audit_mode_blocks_a_killed_agent(modes_policy, scope):
    gov, ran = Governor("yaml", modes_policy, mode="audit"), []
    gov.kill(scope)
    assert denied(lambda: gov.call(lambda: ran.append(1), tool="read_doc", agent="a")).rule_ids == ("kill-switch",)
    assert ran == []


def test_agent_in_audit_mode_is_still_stopped_by_the_kill_switch(modes_policy):
    gov = Governor("yaml", modes_policy, mode="strict", agent_modes={"tester": "audit"})
    gov.kill("tester")
    assert denied(lambda: gov.call(lambda: None, tool="read_doc", agent="tester")).rule_ids == ("kill-switch",)


def test_audit_mode_blocks_an_output_engine_error():
    gov = Governor("yaml", STARTER, mode="audit", output_engine=RaisingEngine())
    assert denied(lambda: gov.call(lambda: "text", tool="read_doc")).rule_ids == ("engine_error",)


def test_audit_mode_records_an_enforced_engine_error_as_deny(modes_policy):
    gov = Governor("yaml", modes_policy, mode="audit")
    denied(lambda: gov.call(lambda size: None, kwargs={"size": "big"}, tool="read_doc"))
    (rec,) = decisions(gov)
    assert (rec.result["enforced"], rec.result["mode"]) == ("deny", "audit")


def test_audit_mode_records_the_deny_as_an_enforced_allow_with_warning(modes_policy):
    gov = Governor("yaml", modes_policy, mode="audit")
    gov.call(lambda: None, tool="read_gossip")
    (rec,) = decisions(gov)
    assert (rec.result["effect"], rec.result["enforced"], rec.result["warning"]) == ("deny", "allow", True)


def test_permissive_mode_blocks_a_critical_deny(modes_policy):
    gov = Governor("yaml", modes_policy, mode="permissive")
    assert denied(lambda: gov.call(lambda: None, tool="read_secret")).rule_ids == ("critical-deny",)


def test_permissive_mode_runs_a_non_critical_deny(modes_policy):
    gov = Governor("yaml", modes_policy, mode="permissive")
    assert gov.call(lambda: "ran", tool="read_gossip") == "ran"


def test_permissive_mode_records_a_non_critical_deny_as_warning(modes_policy):
    gov = Governor("yaml", modes_policy, mode="permissive")
    gov.call(lambda: None, tool="read_gossip")
    (rec,) = decisions(gov)
    assert (rec.result["enforced"], rec.result["warning"]) == ("allow", True)


@pytest.mark.parametrize("mode", ["permissive", "audit"])
def test_relaxed_mode_runs_a_require_approval_without_asking(modes_policy, mode):
    gov = Governor("yaml", modes_policy, mode=mode, blocking_approvals=False)
    assert gov.call(lambda: "ran", tool="read_mail") == "ran"


@pytest.mark.parametrize("mode", ["permissive", "audit"])
def test_relaxed_mode_blocks_an_engine_error(modes_policy, mode):
    gov = Governor("yaml", modes_policy, mode=mode)
    assert denied(lambda: gov.call(lambda size: None, kwargs={"size": "big"}, tool="read_doc")).rule_ids == ("engine_error",)


def test_permissive_mode_takes_critical_rules_from_the_starter_policy():
    gov = Governor("yaml", STARTER, mode="permissive")
    assert denied(lambda: gov.call(lambda sql: None, kwargs={"sql": "DROP TABLE x"}, tool="read_query")).rule_ids == (
        "block-destructive-sql",
    )


def test_agent_mode_overrides_the_governor_mode_for_that_agent(modes_policy):
    gov = Governor("yaml", modes_policy, mode="strict", agent_modes={"tester": "audit"})
    assert gov.call(lambda: "ran", tool="read_gossip", agent="tester") == "ran"


def test_agent_mode_leaves_other_agents_on_the_governor_mode(modes_policy):
    gov = Governor("yaml", modes_policy, mode="strict", agent_modes={"tester": "audit"})
    assert denied(lambda: gov.call(lambda: None, tool="read_gossip", agent="other")).rule_ids == ("soft-deny",)


def test_explicit_critical_rules_replace_the_policy_markers(modes_policy):
    gov = Governor("yaml", modes_policy, mode="permissive", critical_rules={"soft-deny"})
    assert denied(lambda: gov.call(lambda: None, tool="read_gossip")).rule_ids == ("soft-deny",)


def test_policy_mode_from_the_governance_block_applies(tmp_path):
    path = tmp_path / "audit.yaml"
    path.write_text(
        "apiVersion: governance.toolkit/v1\nname: t\ndefault_action: allow\n"
        "governance:\n  policy_mode: audit\n"
        "rules:\n  - {name: soft-deny, condition: \"tool_name == 'read_gossip'\", action: deny}\n"
    )
    gov = Governor("yaml", str(path))
    assert gov.call(lambda: "ran", tool="read_gossip") == "ran"


def test_audit_mode_records_an_output_gate_deny_as_a_warning():
    gov = Governor("yaml", STARTER, mode="audit", output_limit=10)
    gov.call(lambda: "x" * 100, tool="read_big")
    assert [(r.path, r.result["effect"], r.result["warning"]) for r in decisions(gov) if r.path == "output"] == [
        ("output", "deny", True)
    ]


def test_audit_mode_returns_an_oversized_output():
    gov = Governor("yaml", STARTER, mode="audit", output_limit=10)
    assert gov.call(lambda: "x" * 100, tool="read_big") == "x" * 100


# --- approvals -------------------------------------------------------------------------------------


def _email_tool(ran: list):
    def send_email(to: str, body: str) -> str:
        ran.append(to)
        return f"sent to {to}"

    return send_email


def test_non_blocking_approval_raises_approval_required_with_a_pending_request():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, blocking_approvals=False)
    with pytest.raises(ApprovalRequired) as info:
        gov.call(_email_tool([]), kwargs={"to": "a@x", "body": "hi"})
    assert gov.approval_status(info.value.request_id).status is ApprovalStatus.PENDING


def test_non_blocking_approval_does_not_run_the_tool():
    ran: list = []
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, blocking_approvals=False)
    with pytest.raises(ApprovalRequired):
        gov.call(_email_tool(ran), kwargs={"to": "a@x", "body": "hi"})
    assert ran == []


def test_approval_request_names_the_policy_approvers():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, blocking_approvals=False)
    with pytest.raises(ApprovalRequired) as info:
        gov.call(_email_tool([]), kwargs={"to": "a@x", "body": "hi"})
    assert gov.approvals.get(info.value.request_id).approvers == ("comms-lead",)


def _approved_email(ran: list):
    send = govern(_email_tool(ran), policy=STARTER, blocking_approvals=False, approvers=APPROVERS.registry)
    with pytest.raises(ApprovalRequired) as info:
        send(to="a@x", body="hi")
    APPROVERS.vote(send.governor.approvals, info.value.request_id, "comms-lead", True)
    return send, info.value.request_id


def test_approved_request_id_lets_the_same_call_run():
    ran: list = []
    send, rid = _approved_email(ran)
    assert send(to="a@x", body="hi", _agt_approval_id=rid) == "sent to a@x"


def test_approval_id_reused_for_different_params_is_denied_as_mismatch():
    ran: list = []
    send, rid = _approved_email(ran)
    assert denied(lambda: send(to="evil@x", body="hi", _agt_approval_id=rid)).rule_ids == ("approval-mismatch",)


def test_approval_id_reused_for_different_params_does_not_run_the_tool():
    ran: list = []
    send, rid = _approved_email(ran)
    with pytest.raises(GovernanceDenied):
        send(to="evil@x", body="hi", _agt_approval_id=rid)
    assert ran == []


def test_denied_request_id_is_denied_as_approval_denied():
    send = govern(_email_tool([]), policy=STARTER, blocking_approvals=False, approvers=APPROVERS.registry)
    with pytest.raises(ApprovalRequired) as info:
        send(to="a@x", body="hi")
    APPROVERS.vote(send.governor.approvals, info.value.request_id, "comms-lead", False)
    assert denied(lambda: send(to="a@x", body="hi", _agt_approval_id=info.value.request_id)).rule_ids == (
        "approval-denied",
    )


def test_pending_request_id_raises_approval_required_again():
    send = govern(_email_tool([]), policy=STARTER, blocking_approvals=False, approvers=APPROVERS.registry)
    with pytest.raises(ApprovalRequired) as info:
        send(to="a@x", body="hi")
    with pytest.raises(ApprovalRequired) as again:
        send(to="a@x", body="hi", _agt_approval_id=info.value.request_id)
    assert again.value.request_id == info.value.request_id


def test_blocking_approval_times_out_as_approval_expired():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, approval_timeout=0.2)
    assert denied(lambda: gov.call(_email_tool([]), kwargs={"to": "a@x", "body": "hi"})).rule_ids == ("approval-expired",)


def test_blocking_approval_approved_by_another_thread_runs_the_tool():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, approval_timeout=30.0)
    t = resolve_when_pending(gov, APPROVERS, "comms-lead", approve=True)
    result = gov.call(_email_tool([]), kwargs={"to": "a@x", "body": "hi"})
    t.join()
    assert result == "sent to a@x"


def test_blocking_approval_with_quorum_two_needs_both_approvers(tmp_path):
    policy = write_policy(tmp_path, [{
        "name": "two-keys", "condition": "tool_name == 'send_email'", "action": "require_approval",
        "approvers": ["alice", "bob"],
    }])
    gov = Governor("yaml", policy, approvers=APPROVERS.registry, approval_timeout=0.3, quorum=2)
    t = resolve_when_pending(gov, APPROVERS, "alice", approve=True)
    with pytest.raises(GovernanceDenied) as info:  # one of two approvals: still pending at the deadline
        gov.call(_email_tool([]), kwargs={"to": "a@x", "body": "hi"})
    t.join()
    assert info.value.rule_ids == ("approval-expired",)


def test_acall_blocking_approval_approved_by_another_thread_runs_the_tool():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, approval_timeout=30.0)

    async def send_email(to: str, body: str) -> str:
        return f"sent to {to}"

    t = resolve_when_pending(gov, APPROVERS, "comms-lead", approve=True)
    result = asyncio.run(gov.acall(send_email, kwargs={"to": "a@x", "body": "hi"}))
    t.join()
    assert result == "sent to a@x"


def test_acall_blocking_approval_times_out_as_approval_expired():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, approval_timeout=0.2)

    async def send_email(to: str, body: str) -> str:
        return "sent"

    assert denied(lambda: asyncio.run(gov.acall(send_email, kwargs={"to": "a@x", "body": "hi"}))).rule_ids == (
        "approval-expired",
    )


def test_acall_non_blocking_approval_raises_approval_required():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, blocking_approvals=False)

    async def send_email(to: str, body: str) -> str:
        return "sent"

    with pytest.raises(ApprovalRequired):
        asyncio.run(gov.acall(send_email, kwargs={"to": "a@x", "body": "hi"}))


def test_acall_approved_request_id_runs_the_same_call():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, blocking_approvals=False)

    async def send_email(to: str, body: str) -> str:
        return f"sent to {to}"

    async def main():
        try:
            await gov.acall(send_email, kwargs={"to": "a@x", "body": "hi"})
        except ApprovalRequired as pending:
            APPROVERS.vote(gov.approvals, pending.request_id, "comms-lead", True)
            return await gov.acall(send_email, kwargs={"to": "a@x", "body": "hi"}, approval_id=pending.request_id)

    assert asyncio.run(main()) == "sent to a@x"


def test_acall_approval_id_reused_for_different_params_is_denied_as_mismatch():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, blocking_approvals=False)
    ran: list = []

    async def send_email(to: str, body: str) -> str:
        ran.append(to)
        return f"sent to {to}"

    async def main():
        try:
            await gov.acall(send_email, kwargs={"to": "a@x", "body": "hi"})
        except ApprovalRequired as pending:
            APPROVERS.vote(gov.approvals, pending.request_id, "comms-lead", True)
            await gov.acall(send_email, kwargs={"to": "evil@x", "body": "hi"}, approval_id=pending.request_id)

    assert denied(lambda: asyncio.run(main())).rule_ids == ("approval-mismatch",)


def test_acall_concurrent_blocking_approvals_both_wait_and_run():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, approval_timeout=30.0)

    async def send_email(to: str, body: str) -> str:
        return f"sent to {to}"

    t = resolve_when_pending(gov, APPROVERS, "comms-lead", approve=True, count=2)

    async def main():
        return await asyncio.gather(
            gov.acall(send_email, kwargs={"to": "a@x", "body": "1"}),
            gov.acall(send_email, kwargs={"to": "b@x", "body": "2"}),
        )

    result = asyncio.run(main())
    t.join()
    assert result == ["sent to a@x", "sent to b@x"]


_UNKNOWN_ID_REASON = (
    "agt/runtime/governor.py:222 an unknown approval_id makes approvals.get raise ApprovalError, which "
    "escapes call() (governor.py:287-291 only catches ApprovalRequired): no deny, no audit record, and the "
    "tool-call reservation is never released"
)


def test_unknown_approval_id_is_denied():
    gov = Governor("yaml", STARTER)
    with pytest.raises(GovernanceDenied):
        gov.call(_email_tool([]), kwargs={"to": "a@x", "body": "hi"}, approval_id="apr_does_not_exist")


def test_unknown_approval_id_does_not_consume_budget():
    gov = Governor("yaml", STARTER)
    with pytest.raises(Exception):  # noqa: B017 - whatever it raises, the call did not run
        gov.call(_email_tool([]), kwargs={"to": "a@x", "body": "hi"}, approval_id="apr_does_not_exist")
    assert gov.store.counters("default").tool_calls == 0


# --- trust through the pipeline --------------------------------------------------------------------


def test_denied_call_lowers_the_agent_score():
    gov = Governor("yaml", STARTER)
    with pytest.raises(GovernanceDenied):
        gov.call(lambda sql: None, kwargs={"sql": "DROP TABLE users"}, tool="read_query", agent="a")
    assert gov.trust.score("a") == 500 - gov.trust.demotion


def test_allowed_call_raises_the_agent_score():
    gov = Governor("yaml", STARTER)
    gov.call(lambda: None, tool="read_doc", agent="a")
    assert gov.trust.score("a") == 500 + gov.trust.promotion


def test_kill_switch_denial_does_not_cost_trust():
    gov = Governor("yaml", STARTER)
    gov.call(lambda: None, tool="read_doc", agent="a")
    gov.kill("a")
    with pytest.raises(GovernanceDenied):
        gov.call(lambda: None, tool="read_doc", agent="a")
    assert gov.trust.score("a") == 500 + gov.trust.promotion


def test_engine_sees_the_managed_trust_score(tmp_path):
    policy = write_policy(tmp_path, [{"name": "low-trust-read", "condition": "agent.trust_score < 480", "action": "deny"}])
    gov = Governor("yaml", policy)
    agent = Agent("a", trust_score=900)  # what the caller claims; the Governor manages the score from here
    gov.call(lambda: None, tool="read_doc", agent=agent)
    gov.trust.set_score("a", 450)
    assert denied(lambda: gov.call(lambda: None, tool="read_doc", agent=agent)).rule_ids == ("low-trust-read",)


def test_demoted_agent_loses_execute(tmp_path):
    gov = Governor("yaml", STARTER)
    agent = Agent("ops", trust_score=750)  # ring 1: may execute
    gov.call(lambda cmd: None, kwargs={"cmd": "ls"}, tool="run_shell", agent=agent)
    gov.trust.set_score("ops", 450)  # ring 2 still runs execute tools; the starter policy stops them below 500
    assert denied(lambda: gov.call(lambda cmd: None, kwargs={"cmd": "ls"}, tool="run_shell", agent=agent)).rule_ids == (
        "low-trust-no-shell",
    )


def test_agent_demoted_below_ring_2_loses_execute_at_the_trust_gate():
    gov = Governor("yaml", STARTER)
    agent = Agent("ops", trust_score=750)
    gov.trust.set_score("ops", 250)
    assert denied(lambda: gov.call(lambda cmd: None, kwargs={"cmd": "ls"}, tool="run_shell", agent=agent)).gate == "trust"


def test_repeated_denials_push_an_agent_out_of_a_ring():
    gov = Governor("yaml", STARTER)
    for _ in range(9):  # 500 -> 275 in steps of 25: ring 3, no more writes
        with pytest.raises(GovernanceDenied):
            gov.call(lambda sql: None, kwargs={"sql": "delete from t"}, tool="read_query", agent="a")
    assert denied(lambda: gov.call(lambda id: None, kwargs={"id": 1}, tool="update_record", agent="a")).rule_ids == (
        "trust-ring",
    )


def test_score_set_before_the_first_call_is_kept():
    gov = Governor("yaml", STARTER)
    gov.trust.set_score("low", 250)  # ring 3: no writes
    assert denied(lambda: gov.call(lambda id: None, kwargs={"id": 1}, tool="update_record", agent="low")).rule_ids == (
        "trust-ring",
    )


def test_shared_trust_manager_keeps_a_demotion_across_governors():
    trust = TrustManager()
    first = Governor("yaml", STARTER, trust=trust)
    for _ in range(2):
        with pytest.raises(GovernanceDenied):
            first.call(lambda sql: None, kwargs={"sql": "drop table t"}, tool="read_query", agent="a")
    second = Governor("yaml", STARTER, trust=trust)
    second.call(lambda: None, tool="read_doc", agent="a")
    assert trust.score("a") == 450 + trust.promotion


# --- reliability through the pipeline --------------------------------------------------------------


def test_breaker_half_open_probe_success_lets_calls_through_again():
    clock = Clock()
    gov = Governor("yaml", STARTER, breakers=BreakerBoard(BreakerPolicy(failures=2, reset_after=10.0), clock=clock))
    for _ in range(2):
        with pytest.raises(RuntimeError):
            gov.call(lambda: (_ for _ in ()).throw(RuntimeError("x")), tool="read_flaky", agent="a")
    clock.t = 10.0
    gov.call(lambda: "probe", tool="read_flaky", agent="a")
    assert gov.call(lambda: "after", tool="read_flaky", agent="a") == "after"


def test_refused_tool_does_not_lock_a_half_open_agent_out_forever():
    clock = Clock()
    gov = Governor("yaml", STARTER, breakers=BreakerBoard(BreakerPolicy(failures=2, reset_after=10.0), clock=clock))

    def boom():
        raise RuntimeError("down")

    for _ in range(2):  # t=0: agent a's breaker opens (and tool read_one's)
        with pytest.raises(RuntimeError):
            gov.call(boom, tool="read_one", agent="a")
    clock.t = 5.0
    for _ in range(2):  # t=5: tool read_flaky's breaker opens (and agent b's)
        with pytest.raises(RuntimeError):
            gov.call(boom, tool="read_flaky", agent="b")
    clock.t = 12.0  # agent a half-open, tool read_flaky still open
    with pytest.raises(GovernanceDenied):
        gov.call(lambda: None, tool="read_flaky", agent="a")
    clock.t = 1000.0  # long after every reset period
    assert gov.call(lambda: "ok", tool="read_doc", agent="a") == "ok"


# --- output gate faults ----------------------------------------------------------------------------


def test_output_engine_that_raises_denies_as_engine_error():
    gov = Governor("yaml", STARTER, output_engine=RaisingEngine())
    assert denied(lambda: gov.call(lambda: "text", tool="read_doc")).rule_ids == ("engine_error",)


# --- audit records ---------------------------------------------------------------------------------


TEXT = st.text(max_size=6)
DECISIONS = st.builds(
    Decision, st.sampled_from(list(Effect)), st.lists(st.builds(Reason, TEXT, TEXT), max_size=3).map(tuple),
    approvers=st.lists(TEXT, max_size=2).map(tuple), notes=st.lists(st.builds(Reason, TEXT, TEXT), max_size=2).map(tuple),
    engine=st.sampled_from(["", "yaml", "cedar"]), revision=st.sampled_from(["", "sha256:abc"]))


@settings(max_examples=300, deadline=None)
@given(decision=DECISIONS, verdict=st.builds(Verdict, st.sampled_from(list(Effect)), st.booleans()),
       mode=st.sampled_from(list(Mode)), tool_error=st.none() | TEXT)
def test_a_records_result_is_the_decision_then_what_the_runtime_did(decision, verdict, mode, tool_error):
    """Built whole for the usual decision, key by key for the rest: always to_dict(), then tool_error when
    there is one, enforced, warning and mode, in that order; and a fresh dict (reasons too) every time."""
    expected = decision.to_dict()
    if tool_error is not None:
        expected["tool_error"] = tool_error
    expected.update(enforced=verdict.effect.value, warning=verdict.warning, mode=mode.value)
    first, second = _result(decision, verdict, mode, tool_error), _result(decision, verdict, mode, tool_error)
    assert list(first.items()) == list(expected.items())
    assert first["reasons"] is not second["reasons"]
    assert all(a is not b for a, b in zip(first["reasons"], second["reasons"]))


def test_allowed_call_writes_one_decision_record():
    gov = Governor("yaml", STARTER)
    gov.call(lambda: None, tool="read_doc")
    assert len(decisions(gov)) == 1


def test_decision_record_has_a_decision_id():
    gov = Governor("yaml", STARTER)
    gov.call(lambda: None, tool="read_doc")
    (rec,) = decisions(gov)
    assert isinstance(rec.decision_id, str) and rec.decision_id


def test_decision_record_has_an_rfc3339_utc_timestamp():
    gov = Governor("yaml", STARTER)
    gov.call(lambda: None, tool="read_doc")
    (rec,) = decisions(gov)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", rec.timestamp)


def test_decision_record_path_is_the_gate():
    gov = Governor("yaml", STARTER)
    gov.call(lambda: None, tool="read_doc")
    assert decisions(gov)[0].path == "policy"


def test_decision_record_input_is_the_action_document():
    gov = Governor("yaml", STARTER)
    gov.call(lambda name: None, kwargs={"name": "x"}, tool="read_doc", agent="a", task="t")
    doc = decisions(gov)[0].input
    assert (doc["agent"]["id"], doc["action"]["tool"], doc["action"]["kind"], doc["action"]["params"],
            doc["context"]["task_id"], doc["context"]["tool_calls"]) == ("a", "read_doc", "read", {"name": "x"}, "t", 1)


def test_decision_record_result_has_effect_and_reasons():
    gov = Governor("yaml", STARTER)
    gov.call(lambda: None, tool="read_doc")
    result = decisions(gov)[0].result
    assert (result["effect"], [r["id"] for r in result["reasons"]], result["enforced"]) == ("allow", ["default"], "allow")


def test_decision_record_has_latency_metric():
    gov = Governor("yaml", STARTER)
    gov.call(lambda: None, tool="read_doc")
    latency = decisions(gov)[0].metrics["latency_us"]
    assert isinstance(latency, float) and latency >= 0


def test_decision_ids_are_unique():
    gov = Governor("yaml", STARTER)
    for _ in range(5):
        gov.call(lambda: None, tool="read_doc")
    assert len({r.decision_id for r in gov.audit.records}) == len(gov.audit.records)


@pytest.mark.parametrize("name", ["policy", "rate", "reliability", "approval", "output-limit"])
def test_denial_record_carries_the_action_document_and_latency(tmp_path, name):
    s = ALL_GATES[name](tmp_path)
    before = len(decisions(s.gov))
    denied(s.invoke)
    (rec,) = decisions(s.gov)[before:]
    assert (rec.input is not None and "action" in rec.input, "latency_us" in rec.metrics) == (True, True)


def test_trust_gate_denial_record_carries_the_action_document():
    s = _kill_switch(None)
    denied(s.invoke)
    (rec,) = decisions(s.gov)
    assert rec.input is not None and rec.input["action"]["tool"] == "read_doc"


def test_allowed_call_whose_tool_raises_still_writes_a_decision_record():
    gov = Governor("yaml", STARTER)

    def read_flaky():
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        gov.call(read_flaky)
    assert [(r.path, r.result["effect"]) for r in decisions(gov)] == [("policy", "allow")]


def test_approval_writes_pending_and_resolved_records():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, approval_timeout=30.0)
    t = resolve_when_pending(gov, APPROVERS, "comms-lead", approve=True)
    gov.call(_email_tool([]), kwargs={"to": "a@x", "body": "hi"})
    t.join()
    assert [r.result["status"] for r in gov.audit.records if r.kind == "approval"] == ["pending", "approved"]


def test_approval_record_names_the_request_and_rules():
    gov = Governor("yaml", STARTER, approvers=APPROVERS.registry, blocking_approvals=False)
    with pytest.raises(ApprovalRequired) as info:
        gov.call(_email_tool([]), kwargs={"to": "a@x", "body": "hi"})
    (rec,) = [r for r in gov.audit.records if r.kind == "approval"]
    assert (rec.result["request"], rec.result["rules"]) == (info.value.request_id, ["email-approval"])


def test_trust_change_writes_a_trust_record():
    gov = Governor("yaml", STARTER)
    gov.call(lambda: None, tool="read_doc", agent="a")
    trust = [(r.agent_id, r.result["from"], r.result["to"]) for r in gov.audit.records if r.kind == "trust"]
    assert trust == [("a", 500, 500 + gov.trust.promotion)]


def test_kill_and_revive_write_kill_switch_records():
    gov = Governor("yaml", STARTER)
    gov.kill("a")
    gov.revive("a")
    gov.kill()
    assert [(r.agent_id, r.result["killed"], r.result["scope"]) for r in gov.audit.records if r.kind == "kill_switch"] == [
        ("a", True, "a"), ("a", False, "a"), ("*", True, "all"),
    ]


def test_audit_mode_decision_record_names_the_mode(modes_policy):
    gov = Governor("yaml", modes_policy, mode="audit")
    gov.call(lambda: None, tool="read_gossip")
    assert decisions(gov)[0].result["mode"] == "audit"


def test_decimal_refund_goes_through_sqlite_approvals_with_signed_votes_and_a_verifiable_audit_log(tmp_path):
    from decimal import Decimal

    from agt.audit.log import AuditLog
    from agt.audit.verify import verify_log
    from agt.errors import ApprovalRequired
    from agt.runtime.approvals import SqliteApprovals

    money = Path(__file__).resolve().parents[1] / "conformance" / "policies" / "money" / "money.yaml"
    finance = Approvers("finance-lead")
    log = AuditLog(tmp_path / "audit", durability="always", key_path=tmp_path / "audit.key")
    gov = Governor("yaml", str(money), audit=log, approvals=SqliteApprovals(tmp_path / "a.db"), blocking_approvals=False,
                   approvers=finance.registry)
    refund = lambda amount, rate=None: f"refunded {amount}"  # noqa: E731
    assert gov.call(refund, (), {"amount": Decimal("19.99")}, tool="refund", agent="alice") == "refunded 19.99"
    params = {"amount": Decimal("150.25"), "rate": Decimal("0.1000000000000000001")}  # `rate` is undeclared: any exact decimal
    with pytest.raises(ApprovalRequired) as info:
        gov.call(refund, (), dict(params), tool="refund", agent="alice")
    rid = info.value.request_id
    stored = gov.approvals.get(rid).action["document"]["action"]["params"]
    assert (stored["amount"], stored["rate"]) == (Decimal("150.25"), Decimal("0.1000000000000000001"))
    finance.vote(gov.approvals, rid, "finance-lead", True)
    assert gov.call(refund, (), dict(params), tool="refund", agent="alice", approval_id=rid) == "refunded 150.25"
    log.close()
    assert verify_log(tmp_path / "audit", log.signing_key.public_key()).ok
