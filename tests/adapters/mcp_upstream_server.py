"""The upstream MCP server the proxy tests put agt in front of: the shared scenario's tools, over stdio.

Run as a script it serves stdio (``python mcp_upstream_server.py``); each tool body that runs appends a
line to the file named by $AGT_TEST_RAN_FILE, so a test in another process can see what ran.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenario import RAN, TOOLS  # noqa: E402

from mcp.server.mcpserver import MCPServer  # noqa: E402


def upstream() -> MCPServer:
    """A real MCPServer serving the scenario's tools (their bodies append to scenario.RAN)."""
    server = MCPServer("scenario-upstream")
    for fn in TOOLS:
        server.tool()(_recorded(fn))
    return server


def _recorded(fn):
    import functools

    @functools.wraps(fn)
    def tool(**kwargs):
        result = fn(**kwargs)
        ran_file = os.environ.get("AGT_TEST_RAN_FILE")
        if ran_file:
            with open(ran_file, "a", encoding="utf-8") as f:
                f.write(json.dumps(RAN[-1]) + "\n")
        return result

    return tool


if __name__ == "__main__":
    upstream().run("stdio")
