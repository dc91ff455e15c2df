"""Framework adapters (LangChain, OpenAI Agents SDK, CrewAI, MCP, ...), importable as ``agt.adapters.*``.

Empty for now: each adapter only has to build an :class:`agt.Action` and call an engine or the runtime.
"""
