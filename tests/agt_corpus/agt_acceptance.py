"""What AGT's two Python policy loaders accept, restated from their source (v4.1.0; the mesh loader is unchanged
at HEAD): agentmesh ``Policy.from_yaml`` (``governance.toolkit/v1``) and agent_os ``PolicyDocument.from_yaml``
(``version: "1.0"``). Both are pydantic models: unknown keys are ignored, a ``str`` field refuses a number.
This module decides which loader accepts a parsed document; it does not evaluate anything.
"""

from __future__ import annotations

import re
from typing import Any

MESH_ACTIONS = {"allow", "deny", "warn", "require_approval", "log"}
MESH_STAGES = {"pre_input", "pre_tool", "post_tool", "pre_output"}
MESH_API_VERSIONS = {"governance.toolkit/v1", "1.0"}
OS_ACTIONS = {"allow", "deny", "audit", "block"}
OS_OPERATORS = {"eq", "ne", "gt", "lt", "gte", "lte", "in", "not_in", "matches", "contains"}
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, str) and v.strip().lstrip("-").isdigit())


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(_str(x) for x in v)


def mesh_accepts(data: Any) -> bool:
    """agentmesh ``Policy.from_yaml``: a mapping with a ``name``; rules with a text ``condition``."""
    if not isinstance(data, dict):
        return False
    api = data.get("apiVersion")
    if api is not None and api not in MESH_API_VERSIONS:
        return False
    if not _str(data.get("name")):
        return False
    for key in ("version", "scope"):
        if key in data and not _str(data[key]):
            return False
    if "description" in data and data["description"] is not None and not _str(data["description"]):
        return False
    if "agent" in data and data["agent"] is not None and not _str(data["agent"]):
        return False
    if "agents" in data and not _str_list(data["agents"]):
        return False
    if data.get("default_action", "deny") not in ("allow", "deny"):
        return False
    ext = data.get("extends")
    if ext is not None and not (_str(ext) or _str_list(ext)):
        return False
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        return False
    for r in rules:
        if not isinstance(r, dict) or not _str(r.get("name")) or not _str(r.get("condition")):
            return False
        if r.get("action", "deny") not in MESH_ACTIONS or r.get("stage", "pre_tool") not in MESH_STAGES:
            return False
        if r.get("limit") is not None and not (_str(r["limit"]) and _LIMIT.match(r["limit"])):
            return False
        if "approvers" in r and not _str_list(r["approvers"]):
            return False
        if "priority" in r and not _int(r["priority"]):
            return False
        if "enabled" in r and not isinstance(r["enabled"], bool):
            return False
    return True


def os_accepts(data: Any) -> bool:
    """agent_os ``PolicyDocument.model_validate``: every field optional; rules with a structured condition."""
    if not isinstance(data, dict):
        return False
    for key in ("version", "name", "description"):
        if key in data and not _str(data[key]):
            return False
    if "scope" in data and data["scope"] is not None and not _str(data["scope"]):
        return False
    for key in ("network_allowlist", "tool_allowlist"):
        if key in data and not _str_list(data[key]):
            return False
    if "inherit" in data and not isinstance(data["inherit"], bool):
        return False
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict) or defaults.get("action", "allow") not in OS_ACTIONS:
        return False
    for key in ("max_tokens", "max_tool_calls"):
        if key in defaults and not _int(defaults[key]):
            return False
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        return False
    for r in rules:
        if not isinstance(r, dict) or not _str(r.get("name")) or r.get("action") not in OS_ACTIONS:
            return False
        c = r.get("condition")
        if not isinstance(c, dict) or not _str(c.get("field")) or c.get("operator") not in OS_OPERATORS or "value" not in c:
            return False
        if "priority" in r and not _int(r["priority"]):
            return False
        if "message" in r and not _str(r["message"]):
            return False
    return True


def looks_like_policy(data: Any) -> bool:
    """The documents worth a corpus entry: policies with rules, or an apiVersion/version/defaults header."""
    if not isinstance(data, dict):
        return False
    return (
        isinstance(data.get("rules"), list)
        or data.get("apiVersion") == "governance.toolkit/v1"
        or (isinstance(data.get("defaults"), dict) and "version" in data)
    )


def accepting_loader(data: Any) -> str | None:
    """``mesh`` or ``agent_os`` (the first that accepts, mesh first when a document has text conditions), or None."""
    if not looks_like_policy(data):
        return None
    if mesh_accepts(data) and any(isinstance(r, dict) and isinstance(r.get("condition"), str) for r in data.get("rules") or []) :
        return "mesh"
    if os_accepts(data) and data.get("rules"):
        return "agent_os"
    if mesh_accepts(data):
        return "mesh"
    if os_accepts(data):
        return "agent_os"
    return None
