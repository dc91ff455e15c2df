"""agt.runtime.metrics: a real Governor on the starter policy, scraped through the Prometheus text format."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from agt.action import Agent
from agt.audit.log import AuditLog
from agt.errors import ApprovalRequired, GovernanceDenied
from agt.runtime import BreakerPolicy, Governor
from agt.runtime.audit import MemoryAuditSink
from agt.runtime.metrics import GovernorMetrics, asgi_app, render
from agt.runtime.observe import instrument
from approval_helpers import Approvers, resolve_when_pending

ROOT = Path(__file__).resolve().parents[1]
STARTER = str(ROOT / "policies" / "starter.yaml")
APPROVERS = Approvers("comms-lead")
ALICE = Agent("alice", roles=("developer",), trust_score=720, attributes={"workspace": "/ws/alice"})


def governor(**options) -> Governor:
    gov = Governor("yaml", STARTER, metrics=True, approvers=APPROVERS.registry, **options)
    gov.register_agent(ALICE)
    return gov


def scrape(gov: Governor) -> dict[tuple[str, frozenset], float]:
    """Every sample of the text format, by (name, labels)."""
    body, content_type = render(gov)
    assert content_type.startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def sample(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: dict, name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in samples.items() if n == name and v}


def read_file(path: str) -> str:
    return "ok"


def write_file(path: str, content: str) -> int:
    return len(content)


def send_email(to: str, body: str) -> str:
    return "sent"


def decision_labels(gate: str, engine: str, effect: str, outcome: str) -> frozenset:
    return frozenset({"gate": gate, "engine": engine, "effect": effect, "outcome": outcome}.items())


def rule_labels(gate: str, engine: str, effect: str, rule: str) -> frozenset:
    return frozenset({"gate": gate, "engine": engine, "effect": effect, "rule": rule}.items())


# --- decisions -----------------------------------------------------------------------------------------


def test_allowed_call_counts_one_admitted_policy_decision_by_the_default_rule():
    gov = governor()
    gov.call(read_file, ("/ws/alice/README.md",), agent="alice")
    s = scrape(gov)
    assert series(s, "agt_decisions_total") == {decision_labels("policy", "yaml", "allow", "admitted"): 1.0}
    assert series(s, "agt_decision_rules_total") == {rule_labels("policy", "yaml", "allow", "default"): 1.0}


def test_denied_call_counts_a_denied_decision_by_its_rule():
    gov = governor()
    with pytest.raises(GovernanceDenied):
        gov.call(write_file, ("/etc/passwd", "x"), agent="alice")
    s = scrape(gov)
    assert series(s, "agt_decisions_total") == {decision_labels("policy", "yaml", "deny", "denied"): 1.0}
    assert series(s, "agt_decision_rules_total") == {rule_labels("policy", "yaml", "deny", "workspace-write-only"): 1.0}


def test_the_cedar_engine_counts_under_the_same_rule_ids():
    gov = Governor("cedar", str(ROOT / "cedar"), metrics=True)
    gov.register_agent(ALICE)
    for _ in range(2):  # cedar builds a new Decision per call: the second goes through the shape cache
        with pytest.raises(GovernanceDenied):
            gov.call(write_file, ("/etc/passwd", "x"), agent="alice")
    s = scrape(gov)
    assert series(s, "agt_decision_rules_total") == {rule_labels("policy", "cedar", "deny", "workspace-write-only"): 2.0}
    assert sample(s, "agt_engine_duration_seconds_count", engine="cedar") == 2


def test_calls_add_up_per_effect_and_rule():
    gov = governor()
    for _ in range(3):
        gov.call(read_file, ("/ws/alice/a.md",), agent="alice", task="t1")
    for _ in range(2):
        with pytest.raises(GovernanceDenied):
            gov.call(write_file, ("/etc/passwd", "x"), agent="alice", task="t2")
    s = scrape(gov)
    assert sample(s, "agt_decisions_total", gate="policy", engine="yaml", effect="allow", outcome="admitted") == 3
    assert sample(s, "agt_decisions_total", gate="policy", engine="yaml", effect="deny", outcome="denied") == 2
    assert sample(s, "agt_decision_rules_total", gate="policy", engine="yaml", effect="deny", rule="workspace-write-only") == 2


def test_a_mode_that_lets_a_deny_through_counts_deny_effect_with_admitted_outcome():
    gov = governor(mode="audit")
    gov.call(write_file, ("/etc/passwd", "x"), agent="alice")
    s = scrape(gov)
    assert series(s, "agt_decisions_total") == {decision_labels("policy", "yaml", "deny", "admitted"): 1.0}


def test_kill_switch_denial_counts_at_the_trust_gate_from_the_runtime():
    gov = governor()
    gov.kill("alice")
    with pytest.raises(GovernanceDenied):
        gov.call(read_file, ("/ws/alice/a.md",), agent="alice")
    s = scrape(gov)
    assert series(s, "agt_decisions_total") == {decision_labels("trust", "runtime", "deny", "denied"): 1.0}
    assert series(s, "agt_decision_rules_total") == {rule_labels("trust", "runtime", "deny", "kill-switch"): 1.0}


def test_invalid_action_counts_a_denial_before_any_gate_ran():
    gov = governor()
    with pytest.raises(GovernanceDenied):
        gov.begin("", {}, agent="alice")
    s = scrape(gov)
    assert series(s, "agt_decision_rules_total") == {rule_labels("policy", "runtime", "deny", "engine_error"): 1.0}


def test_an_audit_sink_that_cannot_record_shows_audit_down_and_counts_the_denials():
    class BrokenSink(MemoryAuditSink):  # fault injection: a disk that is gone
        def health(self) -> str | None:
            return "disk gone"

    gov = governor(audit=BrokenSink())
    with pytest.raises(GovernanceDenied):
        gov.call(read_file, ("/ws/alice/a.md",), agent="alice")
    s = scrape(gov)
    assert sample(s, "agt_audit_up") == 0
    assert series(s, "agt_decision_rules_total") == {rule_labels("audit", "runtime", "deny", "audit-unavailable"): 1.0}


def test_output_check_denial_counts_at_the_output_gate_as_the_audit_log_records_it():
    gov = governor(output_limit=10)
    with pytest.raises(GovernanceDenied):
        gov.call(lambda path: "x" * 11, ("/ws/alice/a.md",), tool="read_file", agent="alice")
    s = scrape(gov)
    # The audit log holds the output gate's denial and no policy record for this call: the counts follow it.
    assert series(s, "agt_decisions_total") == {decision_labels("output", "runtime", "deny", "denied"): 1.0}
    assert [r.path for r in gov.audit.records if r.kind == "decision"] == ["output"]


def test_a_tool_that_fails_counts_once_as_admitted():
    gov = governor()

    def broken(path: str) -> str:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        gov.call(broken, ("/ws/alice/a.md",), tool="read_file", agent="alice")
    assert series(scrape(gov), "agt_decisions_total") == {decision_labels("policy", "yaml", "allow", "admitted"): 1.0}


def test_two_phases_count_when_the_call_is_finished_or_abandoned():
    gov = governor()
    ticket = gov.begin("read_file", {"path": "/ws/alice/a.md"}, agent="alice")
    assert gov.metrics.value("agt_decisions_total", gate="policy", engine="yaml", effect="allow", outcome="admitted") is None
    gov.abandon(ticket, "the framework skipped it")
    assert gov.metrics.value("agt_decisions_total", gate="policy", engine="yaml", effect="allow", outcome="admitted") == 1


def test_async_calls_count_like_sync_ones():
    gov = governor()

    async def aread(path: str) -> str:
        return "ok"

    asyncio.run(gov.acall(aread, ("/ws/alice/a.md",), tool="read_file", agent="alice"))
    assert gov.metrics.value("agt_decisions_total", gate="policy", engine="yaml", effect="allow", outcome="admitted") == 1


def test_counts_from_many_threads_are_exact_including_threads_that_ended():
    gov = governor()
    per_thread, threads = 150, 8

    def work(i: int) -> None:
        for n in range(per_thread):
            gov.call(read_file, ("/ws/alice/a.md",), agent="alice", task=f"t{i}-{n // 10}")

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    midway = scrape(gov)  # a scrape while they run must not disturb the counts
    for t in pool:
        t.join()
    s = scrape(gov)
    assert sample(midway, "agt_decisions_total", gate="policy", engine="yaml", effect="allow", outcome="admitted") in \
        (None, *range(per_thread * threads + 1))
    assert sample(s, "agt_decisions_total", gate="policy", engine="yaml", effect="allow", outcome="admitted") == per_thread * threads
    assert sample(s, "agt_gate_duration_seconds_count", gate="policy") == per_thread * threads
    assert scrape(gov) == s  # folding the ended threads in changed nothing


def test_counts_stay_exact_when_many_short_lived_threads_come_and_go():
    gov = governor()
    for i in range(100):  # more than the 64 kept before ended threads are folded in at registration
        t = threading.Thread(target=gov.call, args=(read_file, ("/ws/alice/a.md",)), kwargs={"agent": "alice", "task": f"t{i}"})
        t.start()
        t.join()
    assert gov.metrics.value("agt_decisions_total", gate="policy", engine="yaml", effect="allow", outcome="admitted") == 100


# --- bounded labels ------------------------------------------------------------------------------------


def test_runtime_rule_ids_lose_the_agent_and_tool_they_name(tmp_path):
    gov = governor(breakers=BreakerPolicy(failures=1, reset_after=3600))

    def flaky(n: int) -> None:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        gov.call(flaky, (1,), agent="alice")
    with pytest.raises(GovernanceDenied) as info:
        gov.call(flaky, (2,), agent="alice")
    assert info.value.rule_ids[0].startswith("circuit-open:")
    s = scrape(gov)
    assert series(s, "agt_decision_rules_total")[rule_labels("reliability", "runtime", "deny", "circuit-open")] == 1


def test_rule_ids_past_the_limit_count_as_other(tmp_path):
    rules = "\n".join(f"  - name: deny-{i}\n    condition: \"tool_name == 'tool_{i}'\"\n    action: deny" for i in range(3))
    policy = tmp_path / "p.yaml"
    policy.write_text(f"apiVersion: governance.toolkit/v1\nname: t\ndefault_action: allow\nrules:\n{rules}\n")
    gov = Governor("yaml", str(policy), metrics=GovernorMetrics(max_rules=2))
    for i in range(3):
        with pytest.raises(GovernanceDenied):
            gov.call(lambda: None, tool=f"tool_{i}")
    got = {dict(labels)["rule"]: v for labels, v in series(scrape(gov), "agt_decision_rules_total").items()}
    assert got == {"deny-0": 1, "deny-1": 1, "other": 1}


# --- latency ---------------------------------------------------------------------------------------------


def test_one_allowed_call_times_each_gate_it_ran_once():
    gov = governor()
    gov.call(read_file, ("/ws/alice/README.md",), agent="alice")
    s = scrape(gov)
    counts = {dict(labels)["gate"]: v for (name, labels), v in s.items() if name == "agt_gate_duration_seconds_count"}
    assert counts == {"identity": 0, "trust": 1, "rate": 0, "policy": 1, "approval": 0, "reliability": 1,
                      "output": 1, "audit": 1}  # identity and rate have nothing to do here: untimed
    assert sample(s, "agt_engine_duration_seconds_count", engine="yaml") == 1
    assert sample(s, "agt_gate_duration_seconds_bucket", gate="policy", le="+Inf") == 1
    assert 0 < sample(s, "agt_gate_duration_seconds_sum", gate="policy") < 10


def test_the_rate_gate_is_timed_when_the_governor_has_rate_limits():
    gov = governor(rate_limits={"tool:read_file": "100/minute"})
    gov.call(read_file, ("/ws/alice/README.md",), agent="alice")
    assert gov.metrics.value("agt_gate_duration_seconds_count", gate="rate") == 1


def test_a_call_naming_two_files_is_one_policy_gate_run_and_two_engine_evaluations():
    gov = governor()
    gov.call(lambda src, dst: None, ("/ws/alice/a", "/ws/alice/b"), tool="move_file", agent="alice")
    s = scrape(gov)
    assert sample(s, "agt_gate_duration_seconds_count", gate="policy") == 1
    assert sample(s, "agt_engine_duration_seconds_count", engine="yaml") == 2


def test_histogram_buckets_are_cumulative_and_end_at_the_count():
    gov = governor()
    for _ in range(5):
        gov.call(read_file, ("/ws/alice/a.md",), agent="alice")
    family = next(f for f in text_string_to_metric_families(render(gov)[0].decode()) if f.name == "agt_gate_duration_seconds")
    buckets = [s.value for s in family.samples if s.name.endswith("_bucket") and s.labels["gate"] == "trust"]
    assert buckets == sorted(buckets) and buckets[-1] == 5


# --- approvals -------------------------------------------------------------------------------------------


def test_non_blocking_approval_counts_held_opened_then_approved_and_consumed():
    gov = governor(blocking_approvals=False)
    with pytest.raises(ApprovalRequired) as info:
        gov.call(send_email, kwargs={"to": "a@x", "body": "hi"}, agent="alice")
    s = scrape(gov)
    assert series(s, "agt_decisions_total") == {decision_labels("approval", "yaml", "require_approval", "held"): 1.0}
    assert sample(s, "agt_approval_events_total", event="opened") == 1
    assert sample(s, "agt_approvals_pending") == 1
    APPROVERS.vote(gov.approvals, info.value.request_id, "comms-lead", True)
    gov.call(send_email, kwargs={"to": "a@x", "body": "hi"}, agent="alice", approval_id=info.value.request_id)
    s = scrape(gov)
    events = {e: sample(s, "agt_approval_events_total", event=e) for e in ("opened", "approved", "denied", "expired", "consumed")}
    assert events == {"opened": 1, "approved": 1, "denied": 0, "expired": 0, "consumed": 1}
    assert sample(s, "agt_approvals_pending") == 0
    assert sample(s, "agt_decisions_total", gate="policy", engine="yaml", effect="require_approval", outcome="admitted") == 1


def test_blocking_approval_denied_by_a_human_counts_the_wait_and_the_denial():
    gov = governor()
    voter = resolve_when_pending(gov, APPROVERS, "comms-lead", approve=False)
    with pytest.raises(GovernanceDenied):
        gov.call(send_email, kwargs={"to": "a@x", "body": "hi"}, agent="alice")
    voter.join()
    s = scrape(gov)
    assert sample(s, "agt_approval_events_total", event="opened") == 1
    assert sample(s, "agt_approval_events_total", event="denied") == 1
    assert sample(s, "agt_approval_events_total", event="consumed") == 0
    assert sample(s, "agt_approvals_pending") == 0
    assert sample(s, "agt_approval_wait_seconds_count") == 1
    assert series(s, "agt_decision_rules_total") == {rule_labels("approval", "runtime", "deny", "approval-denied"): 1.0}


def test_an_approval_that_expired_before_its_call_came_back_counts_expired():
    gov = governor(blocking_approvals=False, approval_timeout=0.05)
    with pytest.raises(ApprovalRequired) as info:
        gov.call(send_email, kwargs={"to": "a@x", "body": "hi"}, agent="alice")
    deadline = gov.approvals.get(info.value.request_id).expires_at
    while time.time() <= deadline:  # wait on the deadline itself, not a guess at it
        time.sleep(0.01)
    assert sample(scrape(gov), "agt_approvals_pending") == 0  # past its deadline: no longer pending
    with pytest.raises(GovernanceDenied):
        gov.call(send_email, kwargs={"to": "a@x", "body": "hi"}, agent="alice", approval_id=info.value.request_id)
    assert gov.metrics.value("agt_approval_events_total", event="expired") == 1


# --- breakers and the audit backlog ----------------------------------------------------------------------


def test_breaker_trip_shows_open_breakers_per_key_and_by_state():
    gov = governor(breakers=BreakerPolicy(failures=2, reset_after=3600))

    def flaky(n: int) -> None:
        raise RuntimeError("down")

    gov.call(read_file, ("/ws/alice/a.md",), agent="alice")
    for n in range(2):
        with pytest.raises(RuntimeError):
            gov.call(flaky, (n,), agent="alice")
    with pytest.raises(GovernanceDenied):
        gov.call(flaky, (3,), agent="alice")
    s = scrape(gov)
    assert series(s, "agt_breaker_state") == {frozenset({("key", "agent:alice")}): 1.0, frozenset({("key", "tool:flaky")}): 1.0}
    assert sample(s, "agt_breaker_state", key="tool:read_file") == 0
    assert {st: sample(s, "agt_breakers", state=st) for st in ("closed", "open", "half_open")} == \
        {"closed": 1, "open": 2, "half_open": 0}


def test_breaker_series_are_capped_with_open_breakers_kept():
    gov = Governor("yaml", STARTER, metrics=GovernorMetrics(max_breaker_series=2), breakers=BreakerPolicy(failures=1))
    for tool in ("a_tool", "b_tool"):
        gov.call(lambda: None, tool=tool)

    def zz_tool() -> None:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        gov.call(zz_tool)
    keys = {dict(labels)["key"]: v for (name, labels), v in scrape(gov).items() if name == "agt_breaker_state"}
    assert keys == {"agent:agent": 1, "tool:zz_tool": 1}
    assert sample(scrape(gov), "agt_breakers", state="closed") == 2  # the totals still count every breaker


def test_audit_queue_depth_and_writer_lag_read_the_batch_writer(tmp_path):
    log = AuditLog(tmp_path / "audit", allow_key_in_log_dir=True, batch_interval=3600)  # the writer sleeps until flushed
    gov = governor(audit=log)
    for _ in range(3):
        gov.call(read_file, ("/ws/alice/a.md",), agent="alice")
    s = scrape(gov)
    assert sample(s, "agt_audit_queue_depth") >= 3  # the three decisions (and the registration's trust record)
    assert sample(s, "agt_audit_writer_lag_seconds") > 0
    log.flush()
    s = scrape(gov)
    assert (sample(s, "agt_audit_queue_depth"), sample(s, "agt_audit_writer_lag_seconds")) == (0, 0)
    log.close()


def test_an_audit_sink_without_a_queue_exports_no_backlog_gauges():
    s = scrape(governor())
    assert sample(s, "agt_audit_queue_depth") is None and sample(s, "agt_audit_up") == 1


# --- registries, rendering, serving ----------------------------------------------------------------------


def test_two_governors_in_one_process_keep_separate_registries():
    a, b = governor(), governor()
    a.call(read_file, ("/ws/alice/a.md",), agent="alice")
    assert a.metrics.registry is not b.metrics.registry
    assert a.metrics.value("agt_decisions_total", gate="policy", engine="yaml", effect="allow", outcome="admitted") == 1
    assert b.metrics.value("agt_decisions_total", gate="policy", engine="yaml", effect="allow", outcome="admitted") is None


def test_a_registry_given_is_the_one_filled():
    registry = CollectorRegistry()
    gov = Governor("yaml", STARTER, metrics=GovernorMetrics(registry=registry))
    gov.call(lambda: None, tool="read_doc")
    assert registry.get_sample_value("agt_decisions_total", {"gate": "policy", "engine": "yaml", "effect": "allow",
                                                              "outcome": "admitted"}) == 1


def test_a_registry_holds_the_metrics_of_one_governor_only():
    registry = CollectorRegistry()
    GovernorMetrics(registry=registry)
    with pytest.raises(ValueError, match="registry of its own"):
        GovernorMetrics(registry=registry)


def test_one_governor_metrics_cannot_serve_two_governors():
    metrics = GovernorMetrics()
    Governor("yaml", STARTER, metrics=metrics)
    with pytest.raises(ValueError, match="one per Governor"):
        Governor("yaml", STARTER, metrics=metrics)


def test_metrics_of_the_wrong_type_are_refused_naming_what_is_accepted():
    with pytest.raises(TypeError, match="GovernorMetrics"):
        Governor("yaml", STARTER, metrics=CollectorRegistry())


def test_render_without_metrics_says_how_to_turn_them_on():
    with pytest.raises(ValueError, match="metrics=True"):
        render(Governor("yaml", STARTER))


def test_asgi_app_serves_the_text_format():
    import httpx

    gov = governor()
    gov.call(read_file, ("/ws/alice/a.md",), agent="alice")

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi_app(gov)), base_url="http://agt") as client:
            return await client.get("/metrics")

    response = asyncio.run(get())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert {"agt_decisions", "agt_gate_duration_seconds", "agt_breaker_state", "agt_approvals_pending"} <= set(families)
    assert [s.value for s in families["agt_decisions"].samples if s.name == "agt_decisions_total"] == [1.0]


def test_the_openmetrics_form_parses_with_the_strict_parser():
    from prometheus_client.openmetrics.exposition import generate_latest
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

    gov = governor()
    gov.call(read_file, ("/ws/alice/a.md",), agent="alice")
    families = {f.name: f.type for f in openmetrics_families(generate_latest(gov.metrics.registry).decode())}
    assert families["agt_decisions"] == "counter" and families["agt_gate_duration_seconds"] == "histogram"


def test_instrument_refuses_an_object_without_the_governor_methods_it_wraps():
    class NotAGovernor:
        engine = None

    with pytest.raises(TypeError, match="observe.py lists"):
        instrument(NotAGovernor(), GovernorMetrics())  # type: ignore[arg-type]


def test_metrics_and_tracing_off_import_neither_library():
    code = (
        "import sys\n"
        "from agt.runtime import Governor\n"
        f"gov = Governor('yaml', {STARTER!r})\n"
        "gov.call(lambda: None, tool='read_doc')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('prometheus_client', 'opentelemetry'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_metrics_off_leave_the_governor_methods_untouched():
    gov = Governor("yaml", STARTER)
    assert "decide" not in vars(gov) and "begin" not in vars(gov) and gov.metrics is None
