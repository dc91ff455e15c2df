"""agt.adapters.mcp against the real MCP Python SDK 2.3: a real client, the proxy's real low-level Server,
and a real upstream MCPServer whose tool bodies record what ran (scenario.RAN). No network.

The SDK is async-only (there is no sync client or server), so every test here is async through anyio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OTEL_SDK_DISABLED", "true")  # the proxy's Server carries the SDK's OpenTelemetry middleware

mcp = pytest.importorskip("mcp")
anyio = pytest.importorskip("anyio")

from mcp.server.mcpserver import MCPServer  # noqa: E402

from agt.adapters.mcp import APPROVAL_META_KEY, GoverningProxy  # noqa: E402
from agt.audit.log import select  # noqa: E402
from agt.runtime.governor import Governor  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from mcp_upstream_server import upstream  # noqa: E402
from scenario import (  # noqa: E402
    ALLOWED, APPROVAL_RULE, DENIED, DENY_RULE, ENGINE_ERROR, NEEDS_APPROVAL, POLICY, RAN, BrokenScenario, Scenario,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def scenario(tmp_path):
    s = Scenario(tmp_path)
    yield s
    s.close()


def text_of(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def ran_tools() -> list[str]:
    return [name for name, _ in RAN]


# --- allowed, denied, audited ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_allowed_call_is_forwarded_to_the_upstream_and_its_result_returned(scenario, mode):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot")
    async with mcp.Client(proxy.server, mode=mode) as client:
        result = await client.call_tool(*ALLOWED)
    assert not result.is_error
    assert text_of(result) == "sunny in Paris"
    assert RAN == [ALLOWED]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_denied_call_never_reaches_the_upstream_and_the_client_reads_the_rule(scenario, mode):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot")
    async with mcp.Client(proxy.server, mode=mode) as client:
        result = await client.call_tool(*DENIED)
    assert result.is_error
    assert DENY_RULE in text_of(result) and "do not retry" in text_of(result)
    assert result.meta["agt/denied"]["rule_ids"] == [DENY_RULE]
    assert "send_email" not in ran_tools()


async def test_the_audit_log_holds_the_rule_ids_of_the_proxied_calls(scenario):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot")
    async with mcp.Client(proxy.server) as client:
        await client.call_tool(*ALLOWED)
        await client.call_tool(*DENIED)
    assert {DENY_RULE, "default"} <= scenario.audited_rules()


async def test_tools_list_passes_the_upstream_tools_through(scenario):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot")
    async with mcp.Client(proxy.server) as client:
        listed = await client.list_tools()
    by_name = {t.name: t for t in listed.tools}
    assert set(by_name) == {"get_weather", "send_email", "transfer_funds"}
    assert by_name["get_weather"].input_schema["properties"] == {"city": {"title": "City", "type": "string"}}


async def test_an_engine_error_denies_every_call_and_no_tool_runs(tmp_path):
    broken = BrokenScenario(tmp_path)
    proxy = GoverningProxy(broken.governor, upstream(), agent_id="bot")
    async with mcp.Client(proxy.server) as client:
        results = [await client.call_tool(*call) for call in (ALLOWED, DENIED, NEEDS_APPROVAL)]
    broken.close()
    assert all(r.is_error and ENGINE_ERROR in text_of(r) for r in results)
    assert RAN == []
    assert ENGINE_ERROR in broken.audited_rules()


async def test_an_upstream_tool_error_reaches_the_client_and_counts_as_a_failure(scenario):
    server = MCPServer("failing")

    @server.tool()
    def get_quote(symbol: str) -> str:
        """Always fails."""
        raise RuntimeError("market closed")

    proxy = GoverningProxy(scenario.governor, server, agent_id="bot")
    async with mcp.Client(proxy.server) as client:
        result = await client.call_tool("get_quote", {"symbol": "X"})
    assert result.is_error and text_of(result) == "Error executing tool get_quote"  # MCPServer's own error text
    scenario.audit.flush()
    errors = [rec["result"].get("tool_error", "") for rec in select(scenario.log_dir, kind="decision")]
    assert any(e.startswith("UpstreamToolError") and "get_quote" in e for e in errors)


# --- approvals: wait -----------------------------------------------------------------------------------
async def test_wait_mode_holds_the_call_until_the_cfo_approves_then_runs_it_once(scenario):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot")
    voter = scenario.vote_when_pending()
    async with mcp.Client(proxy.server) as client:
        result = await client.call_tool(*NEEDS_APPROVAL)
    voter.join()
    assert not result.is_error and text_of(result) == "transferred 500"
    assert RAN == [NEEDS_APPROVAL]
    assert len(scenario.requests()) == 1
    assert APPROVAL_RULE in scenario.audited_rules()


async def test_wait_mode_a_cfo_denial_is_a_denied_result_and_nothing_runs(scenario):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot")
    voter = scenario.vote_when_pending(approve=False)
    async with mcp.Client(proxy.server) as client:
        result = await client.call_tool(*NEEDS_APPROVAL)
    voter.join()
    assert result.is_error and "approval-denied" in text_of(result)
    assert RAN == []


# --- approvals: native ---------------------------------------------------------------------------------
async def test_native_pending_call_returns_input_required_naming_agts_approval(scenario):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot", approvals="native")
    async with mcp.Client(proxy.server) as client:
        result = await client.session.call_tool(*NEEDS_APPROVAL, allow_input_required=True)
    assert isinstance(result, mcp.types.InputRequiredResult)
    (request,) = scenario.requests()
    assert result.meta[APPROVAL_META_KEY]["id"] == request.id
    assert result.meta[APPROVAL_META_KEY]["rule_ids"] == [APPROVAL_RULE]
    assert result.request_state  # sealed by the SDK's request-state boundary
    assert RAN == []


async def test_native_retry_with_the_request_state_reuses_one_request_and_runs_once_approved(scenario):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot", approvals="native")
    async with mcp.Client(proxy.server) as client:
        first = await client.session.call_tool(*NEEDS_APPROVAL, allow_input_required=True)
        again = await client.session.call_tool(*NEEDS_APPROVAL, allow_input_required=True,
                                               request_state=first.request_state)
        assert isinstance(again, mcp.types.InputRequiredResult) and RAN == []
        assert len(scenario.requests()) == 1
        scenario.vote(scenario.requests()[0].id)
        done = await client.session.call_tool(*NEEDS_APPROVAL, allow_input_required=True,
                                              request_state=again.request_state)
    assert isinstance(done, mcp.types.CallToolResult) and not done.is_error
    assert text_of(done) == "transferred 500"
    assert RAN == [NEEDS_APPROVAL]
    assert len(scenario.requests()) == 1


async def test_native_the_sdk_clients_own_retry_loop_polls_one_request_until_approved(scenario):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot", approvals="native")
    voter = scenario.vote_when_pending()
    async with mcp.Client(proxy.server, input_required_max_rounds=1000) as client:
        result = await client.call_tool(*NEEDS_APPROVAL)  # the SDK retries each InputRequiredResult itself
    voter.join()
    assert not result.is_error and text_of(result) == "transferred 500"
    assert len(scenario.requests()) == 1
    assert RAN == [NEEDS_APPROVAL]


async def test_native_on_an_older_protocol_the_error_names_the_approval_and_a_retry_reuses_it(scenario):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot", approvals="native")
    async with mcp.Client(proxy.server, mode="legacy") as client:
        first = await client.call_tool(*NEEDS_APPROVAL)
        (request,) = scenario.requests()
        assert first.is_error and request.id in text_of(first)
        assert first.meta[APPROVAL_META_KEY]["id"] == request.id
        assert (await client.call_tool(*NEEDS_APPROVAL)).is_error  # still pending: the same request
        assert len(scenario.requests()) == 1
        scenario.vote(request.id)
        done = await client.call_tool(*NEEDS_APPROVAL)
    assert not done.is_error and RAN == [NEEDS_APPROVAL]
    assert len(scenario.requests()) == 1


async def test_a_forged_request_state_is_refused_before_the_proxy_reads_it(scenario):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot", approvals="native")
    async with mcp.Client(proxy.server) as client:
        await client.session.call_tool(*NEEDS_APPROVAL, allow_input_required=True)
        forged = json.dumps({"agt_approval": scenario.requests()[0].id})
        with pytest.raises(mcp.MCPError, match="requestState"):
            await client.session.call_tool(*NEEDS_APPROVAL, allow_input_required=True, request_state=forged)
    assert RAN == []


async def test_an_approval_granted_for_one_call_does_not_run_another(scenario):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot", approvals="native")
    async with mcp.Client(proxy.server, mode="legacy") as client:
        await client.call_tool(*NEEDS_APPROVAL)
        scenario.vote(scenario.requests()[0].id)
        other = await client.call_tool("transfer_funds", {"amount": 900})
    assert other.is_error and "transfer_funds" not in ran_tools()
    assert len(scenario.requests()) == 2  # the other call asks on its own


# --- the upstream tool's own schema decides the arguments ------------------------------------------------
LIST_POLICY = """\
apiVersion: governance.toolkit/v1
name: no-recursive-listing
default_action: allow
rules:
  - name: no-recursive-listing
    condition: "tool_name == 'list_files' and action.params.recursive == true"
    action: deny
    priority: 100
    message: Recursive listings are refused.
"""


def listing_upstream() -> MCPServer:
    server = MCPServer("listing")

    @server.tool()
    def list_files(folder: str, recursive: bool = True) -> str:
        """Lists a folder; recursively unless told not to."""
        RAN.append(("list_files", {"folder": folder, "recursive": recursive}))
        return f"listed {folder} recursive={recursive!r}"

    return server


@pytest.fixture
def listing(tmp_path):
    RAN.clear()
    (tmp_path / "policy.yaml").write_text(LIST_POLICY)
    from agt.audit import AuditLog

    governor = Governor("yaml", str(tmp_path / "policy.yaml"),
                        audit=AuditLog(tmp_path / "audit", key_path=tmp_path / "audit.key"))
    yield governor
    governor.close()


async def test_a_string_for_a_boolean_argument_is_denied_before_the_upstream_runs(listing):
    proxy = GoverningProxy(listing, listing_upstream(), agent_id="bot")
    async with mcp.Client(proxy.server) as client:
        result = await client.call_tool("list_files", {"folder": "docs", "recursive": "true"})
    assert result.is_error and "adapter-arguments" in text_of(result) and "recursive" in text_of(result)
    assert RAN == []  # MCPServer would have coerced "true" to True and listed recursively


async def test_an_omitted_defaulted_argument_is_decided_with_its_default(listing):
    proxy = GoverningProxy(listing, listing_upstream(), agent_id="bot")
    async with mcp.Client(proxy.server) as client:
        await client.list_tools()
        result = await client.call_tool("list_files", {"folder": "docs"})
    assert result.is_error and "no-recursive-listing" in text_of(result)
    assert RAN == []


async def test_arguments_that_match_the_schema_are_forwarded_as_the_policy_saw_them(listing):
    proxy = GoverningProxy(listing, listing_upstream(), agent_id="bot")
    async with mcp.Client(proxy.server) as client:  # no tools/list first: the proxy fetches the schema itself
        result = await client.call_tool("list_files", {"folder": "docs", "recursive": False})
    assert not result.is_error and text_of(result) == "listed docs recursive=False"
    assert RAN == [("list_files", {"folder": "docs", "recursive": False})]


async def test_a_call_to_a_tool_the_upstream_does_not_list_is_denied_and_audited(scenario):
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot")
    async with mcp.Client(proxy.server) as client:
        result = await client.call_tool("format_disk", {"device": "sda"})
    assert result.is_error and "adapter-unknown-tool" in text_of(result)
    assert result.meta["agt/denied"]["rule_ids"] == ["adapter-unknown-tool"]
    assert "adapter-unknown-tool" in scenario.audited_rules()


# --- what the client sends cannot grow the proxy without bound ------------------------------------------------
async def test_the_calls_held_for_an_approval_are_bounded_per_connection(scenario, monkeypatch):
    import agt.adapters.mcp as proxy_module

    links: list = []

    class RecordedLink(proxy_module._Link):
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            super().__init__(*args, **kwargs)
            links.append(self)

    monkeypatch.setattr(proxy_module, "HELD_LIMIT", 3)
    monkeypatch.setattr(proxy_module, "_Link", RecordedLink)
    proxy = GoverningProxy(scenario.governor, upstream(), agent_id="bot", approvals="native")
    async with mcp.Client(proxy.server, mode="legacy") as client:
        for amount in range(101, 109):  # eight calls, each waiting for the CFO
            assert (await client.call_tool("transfer_funds", {"amount": amount})).is_error
        [link] = links
        assert len(link.held) == 3 and len(link.by_approval) == 3
        assert (await client.call_tool("transfer_funds", {"amount": 108})).is_error  # the newest is still held:
        assert len(scenario.requests()) == 8  # its retry found its request
    assert RAN == []


# --- hide_denied ---------------------------------------------------------------------------------------
HIDE_POLICY = """\
apiVersion: governance.toolkit/v1
name: hide
default_action: allow
rules:
  - name: no-shell
    condition: "tool_name == 'run_shell'"
    action: deny
  - name: no-outside-mail
    condition: "tool_name == 'send_email' and action.params.to endswith '@evil.example'"
    action: deny
  - name: no-reports-for-bot
    condition: "tool_name == 'get_report' and agent_id == 'other-bot'"
    action: deny
"""


def hide_upstream() -> MCPServer:
    server = MCPServer("hide")

    @server.tool()
    def run_shell(cmd: str) -> str:
        """Denied by a rule on the tool name alone."""
        RAN.append(("run_shell", {"cmd": cmd}))
        return "ran"

    @server.tool()
    def delete_records(table: str) -> str:
        """A delete tool: ring 2 (default trust) may not run it."""
        RAN.append(("delete_records", {"table": table}))
        return "deleted"

    @server.tool()
    def send_email(to: str) -> str:
        """Denied only for some arguments."""
        RAN.append(("send_email", {"to": to}))
        return "sent"

    @server.tool()
    def get_report(name: str) -> str:
        """Denied only for another agent."""
        RAN.append(("get_report", {"name": name}))
        return "report"

    return server


def hide_governor(tmp_path, **options) -> Governor:
    policy = tmp_path / "hide.yaml"
    policy.write_text(HIDE_POLICY)
    return Governor("yaml", str(policy), **options)


async def test_hide_denied_hides_trust_ring_and_tool_name_rules_but_not_argument_rules(tmp_path):
    proxy = GoverningProxy(hide_governor(tmp_path), hide_upstream(), agent_id="bot", hide_denied=True)
    assert proxy.always_denied("run_shell") == "no-shell"
    assert proxy.always_denied("delete_records") == "trust-ring"
    async with mcp.Client(proxy.server) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
    assert listed == {"send_email", "get_report"}


async def test_a_hidden_tool_called_anyway_is_still_governed_and_denied(tmp_path):
    proxy = GoverningProxy(hide_governor(tmp_path), hide_upstream(), agent_id="bot", hide_denied=True)
    async with mcp.Client(proxy.server) as client:
        await client.list_tools()
        result = await client.call_tool("run_shell", {"cmd": "id"})
    assert result.is_error and "no-shell" in text_of(result)
    assert RAN == []


async def test_hide_denied_follows_the_agents_trust_and_the_mode(tmp_path):
    from agt.action import Agent

    trusted = GoverningProxy(hide_governor(tmp_path), hide_upstream(), agent_id=Agent("bot", trust_score=950),
                             hide_denied=True)
    assert trusted.always_denied("delete_records") is None
    audit_mode = GoverningProxy(hide_governor(tmp_path, mode="audit"), hide_upstream(), agent_id="bot", hide_denied=True)
    assert audit_mode.always_denied("run_shell") is None  # audit mode lets the call run: it must stay listed


async def test_without_hide_denied_every_tool_is_listed(tmp_path):
    proxy = GoverningProxy(hide_governor(tmp_path), hide_upstream(), agent_id="bot")
    async with mcp.Client(proxy.server) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
    assert listed == {"run_shell", "delete_records", "send_email", "get_report"}


# --- the CLI, end to end over stdio --------------------------------------------------------------------
def agt_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agt.cli", *args], capture_output=True, text=True, timeout=120, **kw)


async def test_agt_mcp_proxy_over_stdio_governs_audits_and_files_approvals_agt_approvals_sees(tmp_path):
    keys, registry, db, audit = tmp_path / "keys", tmp_path / "approvers.json", tmp_path / "approvals.db", tmp_path / "audit"
    made = agt_cli("approvals", "keygen", "cfo", "--keys", str(keys), "--registry", str(registry))
    assert made.returncode == 0, made.stderr
    ran_file = tmp_path / "ran.jsonl"
    env = {**os.environ, "AGT_TEST_RAN_FILE": str(ran_file), "OTEL_SDK_DISABLED": "true"}
    params = mcp.StdioServerParameters(
        command=sys.executable, cwd=str(ROOT), env=env,
        args=["-m", "agt.cli", "mcp", "proxy", "--policy", POLICY, "--agent", "bot", "--audit-log", str(audit),
              "--audit-key", str(tmp_path / "audit.key"), "--approvals", str(db), "--approvers", str(registry),
              "--approval-mode", "native", "--", sys.executable, str(HERE / "mcp_upstream_server.py")])
    async with mcp.Client(params) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        allowed = await client.call_tool(*ALLOWED)
        denied = await client.call_tool(*DENIED)
        pending = await client.session.call_tool(*NEEDS_APPROVAL, allow_input_required=True)
    assert listed == {"get_weather", "send_email", "transfer_funds"}
    assert not allowed.is_error and text_of(allowed) == "sunny in Paris"
    assert denied.is_error and DENY_RULE in text_of(denied)
    assert isinstance(pending, mcp.types.InputRequiredResult)
    approval_id = pending.meta[APPROVAL_META_KEY]["id"]
    assert [json.loads(line)[0] for line in ran_file.read_text().splitlines()] == ["get_weather"]
    audited = {r["id"] for rec in select(audit, kind="decision") for r in rec["result"].get("reasons", [])}
    assert {DENY_RULE, "default"} <= audited
    listed_requests = agt_cli("approvals", "list", "--db", str(db), "--registry", str(registry), "--json")
    assert listed_requests.returncode == 0, listed_requests.stderr
    (request,) = json.loads(listed_requests.stdout)
    assert request["id"] == approval_id and request["status"] == "pending" and request["tool"] == "transfer_funds"


def test_agt_mcp_proxy_without_the_mcp_package_exits_2_naming_the_extra(tmp_path):
    blocked = ("import sys; sys.modules['mcp'] = None; sys.argv = ['agt', 'mcp', 'proxy', '--policy', sys.argv[1], "
               "'--agent', 'bot', '--', 'true']; from agt.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", blocked, POLICY], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 2
    assert "pip install 'agt[mcp]'" in result.stderr
    assert result.stdout == ""


# --- the example ---------------------------------------------------------------------------------------
def test_the_offline_example_runs_and_shows_allowed_denied_and_approved():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "mcp_proxy.py")], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "OTEL_SDK_DISABLED": "true"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "get_weather: ok: sunny in Paris" in out
    assert "send_email: DENIED" in out and "block-external-email" in out
    assert "transfer_funds: ok: transferred 500" in out
    assert "tool bodies that ran upstream: get_weather, transfer_funds" in out
