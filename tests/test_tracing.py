"""agt.runtime.tracing: spans from a real Governor, through the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agt.action import Agent
from agt.errors import ApprovalRequired, GovernanceDenied
from agt.runtime import Governor
from agt.runtime.tracing import GovernorTracing
from approval_helpers import Approvers

ROOT = Path(__file__).resolve().parents[1]
STARTER = str(ROOT / "policies" / "starter.yaml")
APPROVERS = Approvers("comms-lead")


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter) -> TracerProvider:
    p = TracerProvider()
    p.add_span_processor(SimpleSpanProcessor(exporter))
    yield p
    p.shutdown()


def governor(tracing, **options) -> Governor:
    gov = Governor("yaml", STARTER, tracing=tracing, approvers=APPROVERS.registry, **options)
    gov.register_agent(Agent("alice", roles=("developer",), trust_score=720, attributes={"workspace": "/ws/alice"}))
    return gov


def spans(exporter) -> dict[str, list]:
    out: dict[str, list] = {}
    for s in exporter.get_finished_spans():
        out.setdefault(s.name, []).append(s)
    return out


def one(exporter, name: str):
    found = spans(exporter)[name]
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


def read_file(path: str) -> str:
    return "ok"


def test_allowed_call_is_one_span(exporter, provider):
    governor(provider).call(read_file, ("/ws/alice/a.md",), agent="alice")
    assert list(spans(exporter)) == ["agt.call"] and one(exporter, "agt.call").parent is None


def test_detailed_tracing_adds_begin_and_finish_children_to_the_call_span(exporter, provider):
    governor(GovernorTracing(provider, detailed=True)).call(read_file, ("/ws/alice/a.md",), agent="alice")
    call, begin, finish = one(exporter, "agt.call"), one(exporter, "agt.begin"), one(exporter, "agt.finish")
    assert begin.parent.span_id == call.context.span_id and finish.parent.span_id == call.context.span_id
    assert finish.attributes["agt.outcome"] == "admitted" and call.attributes["agt.outcome"] == "admitted"
    assert "agt.outcome" not in begin.attributes  # an admitted call's decision is recorded after its tool ran


def test_call_span_carries_the_decision(exporter, provider):
    governor(provider).call(read_file, ("/ws/alice/a.md",), agent="alice")
    attrs = dict(one(exporter, "agt.call").attributes)
    assert attrs == {"agt.tool": "read_file", "agt.agent": "alice", "agt.gate": "policy", "agt.engine": "yaml",
                     "agt.effect": "allow", "agt.outcome": "admitted", "agt.rule_ids": ("default",)}


def test_denied_call_is_not_an_error_and_names_the_rule(exporter, provider):
    with pytest.raises(GovernanceDenied):
        governor(provider).call(lambda path, content: None, ("/etc/passwd", "x"), tool="write_file", agent="alice")
    call = one(exporter, "agt.call")
    assert call.status.status_code is StatusCode.UNSET
    assert (call.attributes["agt.effect"], call.attributes["agt.outcome"]) == ("deny", "denied")
    assert call.attributes["agt.rule_ids"] == ("workspace-write-only",)
    assert [e.name for e in call.events] == ["agt.decision"]


def test_a_tool_that_raises_marks_the_call_span_as_an_error_with_the_exception(exporter, provider):
    def broken(path: str) -> str:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        governor(provider).call(broken, ("/ws/alice/a.md",), tool="read_file", agent="alice")
    call = one(exporter, "agt.call")
    assert call.status.status_code is StatusCode.ERROR
    assert [e.attributes["exception.type"] for e in call.events if e.name == "exception"] == ["RuntimeError"]


def test_detailed_tracing_shows_the_failed_phase_under_the_call(exporter, provider):
    def broken(path: str) -> str:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        governor(GovernorTracing(provider, detailed=True)).call(broken, ("/ws/alice/a.md",), tool="read_file", agent="alice")
    assert one(exporter, "agt.fail").parent.span_id == one(exporter, "agt.call").context.span_id


def test_the_tool_runs_inside_the_call_span(exporter, provider):
    tracer = provider.get_tracer("the-tool")

    def traced_tool(path: str) -> str:
        with tracer.start_as_current_span("tool.work"):
            return "ok"

    governor(provider).call(traced_tool, ("/ws/alice/a.md",), tool="read_file", agent="alice")
    assert one(exporter, "tool.work").parent.span_id == one(exporter, "agt.call").context.span_id


def test_a_governed_call_inside_a_tool_gets_its_own_call_span_and_leaves_the_outer_decision_alone(exporter, provider):
    gov = governor(provider)

    def outer(path: str) -> str:
        with pytest.raises(GovernanceDenied):
            gov.call(lambda path, content: None, ("/etc/passwd", "x"), tool="write_file", agent="alice")
        return "ok"

    gov.call(outer, ("/ws/alice/a.md",), tool="read_file", agent="alice")
    calls = {s.attributes["agt.tool"]: s for s in spans(exporter)["agt.call"]}
    assert calls["write_file"].parent.span_id == calls["read_file"].context.span_id
    assert calls["read_file"].attributes["agt.effect"] == "allow"
    assert calls["write_file"].attributes["agt.effect"] == "deny"


def test_two_phases_without_call_make_begin_and_finish_spans_of_their_own(exporter, provider):
    gov = governor(provider)
    ticket = gov.begin("read_file", {"path": "/ws/alice/a.md"}, agent="alice")
    gov.finish(ticket, "ok")
    begin, finish = one(exporter, "agt.begin"), one(exporter, "agt.finish")
    assert begin.parent is None and finish.parent is None
    assert finish.attributes["agt.outcome"] == "admitted"
    assert (finish.attributes["agt.tool"], finish.attributes["agt.agent"]) == ("read_file", "alice")


def test_gate_spans_are_children_of_the_phase_they_ran_in(exporter, provider):
    governor(GovernorTracing(provider, detailed=True)).call(read_file, ("/ws/alice/a.md",), agent="alice")
    by_name = spans(exporter)
    begin, finish = one(exporter, "agt.begin"), one(exporter, "agt.finish")
    for gate in ("trust", "policy", "reliability"):  # no rate limits here: the rate gate is not spanned
        assert [s.parent.span_id for s in by_name[f"agt.gate.{gate}"]] == [begin.context.span_id]
    for gate in ("output", "audit"):
        assert [s.parent.span_id for s in by_name[f"agt.gate.{gate}"]] == [finish.context.span_id]


def test_gate_spans_are_off_by_default(exporter, provider):
    governor(provider).call(read_file, ("/ws/alice/a.md",), agent="alice")
    assert not [n for n in spans(exporter) if n.startswith("agt.gate.")]


def test_an_approval_held_call_records_the_opened_request_on_its_span(exporter, provider):
    gov = governor(provider, blocking_approvals=False)
    with pytest.raises(ApprovalRequired) as info:
        gov.call(lambda to, body: None, kwargs={"to": "a@x", "body": "hi"}, tool="send_email", agent="alice")
    call = one(exporter, "agt.call")
    approval = [e.attributes for e in call.events if e.name == "agt.approval"]
    assert approval == [{"agt.approval.event": "opened", "agt.approval.request_id": info.value.request_id}]
    assert (call.attributes["agt.outcome"], call.attributes["agt.approval.request_id"]) == ("held", info.value.request_id)
    assert call.status.status_code is StatusCode.UNSET


def test_async_call_spans_nest_like_sync_ones(exporter, provider):
    async def aread(path: str) -> str:
        return "ok"

    asyncio.run(governor(GovernorTracing(provider, detailed=True)).acall(aread, ("/ws/alice/a.md",), tool="read_file",
                                                                          agent="alice"))
    call, begin = one(exporter, "agt.call"), one(exporter, "agt.begin")
    assert begin.parent.span_id == call.context.span_id
    assert call.attributes["agt.effect"] == "allow"


def test_metrics_and_tracing_together_both_see_the_call(exporter, provider):
    gov = Governor("yaml", STARTER, metrics=True, tracing=provider)
    gov.call(lambda: None, tool="read_doc")
    assert one(exporter, "agt.call").attributes["agt.outcome"] == "admitted"
    assert gov.metrics.value("agt_decisions_total", gate="policy", engine="yaml", effect="allow", outcome="admitted") == 1


def test_tracing_of_the_wrong_type_is_refused_naming_what_is_accepted():
    with pytest.raises(TypeError, match="TracerProvider"):
        Governor("yaml", STARTER, tracing="on")


def test_tracing_without_the_otel_extra_names_the_extra_to_install():
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # the otel extra is not installed\n"
        "from agt.runtime import Governor\n"
        "try:\n"
        f"    Governor('yaml', {STARTER!r}, tracing=True)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.startswith("AgtError ") and "pip install 'agt[otel]'" in out.stdout
