"""Framework adapters, importable as ``agt.adapters.*``: each is a thin layer on one shared core.

| module | framework | the hook it uses |
|---|---|---|
| ``agt.adapters.langchain`` | LangChain 1.x / LangGraph | ``AgentMiddleware.wrap_tool_call``; ``ToolNode(wrap_tool_call=)`` |
| ``agt.adapters.openai_agents`` | OpenAI Agents SDK | ``FunctionTool.on_invoke_tool``; ``needs_approval`` |
| ``agt.adapters.crewai`` | CrewAI | the before/after tool-call hooks |
| ``agt.adapters.mcp`` | MCP | a governing proxy server in front of an upstream server |
| ``agt.adapters.adk`` | Google ADK | ``BasePlugin.before_tool_callback`` / ``after_tool_callback`` |
| ``agt.adapters.pydantic_ai`` | PydanticAI | a capability's ``wrap_tool_execute`` |

Each framework is an extra (``pip install 'agt[langchain]'``); importing an adapter without it raises an
:class:`ImportError` that names the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import a framework module, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"this agt adapter needs {module!r}: pip install 'agt[{extra}]' ({exc})") from exc
