"""Translate an agt Action into a Cedar request and entity set (docs/cedar-mapping.md).

* principal: ``Agent::"<agent.id>"`` with ``trust_score`` and optional ``workspace`` (a Directory);
  each role becomes a ``Role`` parent.
* action: ``Action::"<action.kind>"``; ``write`` and ``delete`` are also ``in Action::"mutate"``.
* resource: ``File::"<path>"`` / ``Directory::"<path>"`` for file resources, with every ancestor
  directory as a parent (the root ``/`` excluded); otherwise ``Resource::"<id>"`` with its ``type``;
  ``Resource::""`` of type ``""`` when the action has no resource.
* context: tool, params (the called tool's params declared in the catalog, typed; ``{}`` without one),
  params_text, facts (the flat fields of ``action.facts``: :data:`FACT_FIELDS`), session_id, task_id, stage, environment (only when set), action_type and the three counters.

Agent and resource attributes beyond these are not visible to Cedar; the schema is closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agt.action import Action
from agt.catalog import Catalog

CedarEntity = dict[str, Any]


# The Action hierarchy of the bundled schema, as entities: supplied with each request so that
# `action in Action::"mutate"` holds when Cedar evaluates without re-validating the request.
KIND_GROUPS: dict[str, tuple[str, ...]] = {
    "read": (), "execute": (), "network": (), "message": (), "delegate": (),
    "write": ("mutate",), "delete": ("mutate",),
}
ACTION_ENTITIES: list[dict[str, Any]] = [
    {"uid": {"type": "Action", "id": g}, "attrs": {}, "parents": []} for g in ("mutate",)
] + [
    {"uid": {"type": "Action", "id": k}, "attrs": {}, "parents": [{"type": "Action", "id": g} for g in groups]}
    for k, groups in KIND_GROUPS.items()
]


def _uid(etype: str, eid: str) -> dict[str, str]:
    return {"type": etype, "id": eid}


def ancestor_dirs(path: str) -> list[str]:
    """Proper ancestors of ``path``, nearest first; the filesystem root is not one."""
    parts = path.split("/")
    out = []
    for i in range(len(parts) - 1, 0, -1):
        d = "/".join(parts[:i])
        if d and d != path:
            out.append(d)
    return out


def _directory_chain(path: str, entities: dict[tuple[str, str], CedarEntity]) -> None:
    """Add Directory entities for ``path`` and all its ancestors, each the parent of the previous."""
    chain = ([path] if path and path != "/" else []) + ancestor_dirs(path)
    for i, d in enumerate(chain):
        key = ("Directory", d)
        if key in entities:
            break
        parents = [_uid("Directory", chain[i + 1])] if i + 1 < len(chain) else []
        entities[key] = {"uid": _uid("Directory", d), "attrs": {}, "parents": parents}


def to_cedar(action: Action, catalog: Catalog | None = None) -> tuple[dict[str, Any], list[CedarEntity]]:
    """Return (request, entities) for cedarpy.is_authorized."""
    return cedar_request(action, catalog), cedar_entities(action)


def attribute_tags(attributes: Any, prefix: str = "") -> dict[str, str]:
    """``context.attributes`` as Cedar tags: one tag per string leaf, named by its dotted path (``user.role``).
    Cedar tags have one type, so a leaf that is not a string is not carried: a rule on it is not portable to Cedar."""
    tags: dict[str, str] = {}
    for key, value in attributes.items():
        name = f"{prefix}{key}"
        if isinstance(value, str):
            tags[name] = value
        elif isinstance(value, dict):
            tags.update(attribute_tags(value, name + "."))
    return tags


def entities_key(action: Action) -> tuple[Any, ...]:
    """Everything :func:`cedar_entities` reads: equal keys give equal entity sets."""
    agent, res = action.agent, action.resource
    workspace = agent.attributes.get("workspace")
    return (
        agent.id, agent.trust_score, agent.roles, workspace if isinstance(workspace, str) else None,
        (res.type, res.id) if res is not None else None,
        tuple(sorted(attribute_tags(action.context.attributes).items())) if action.context.attributes else (),
    )


def cedar_entities(action: Action) -> list[CedarEntity]:
    agent, res = action.agent, action.resource
    entities: dict[tuple[str, str], CedarEntity] = {}

    agent_attrs: dict[str, Any] = {} if agent.trust_score is None else {"trust_score": agent.trust_score}
    workspace = agent.attributes.get("workspace")
    if isinstance(workspace, str) and workspace:
        agent_attrs["workspace"] = {"__entity": _uid("Directory", workspace)}
        _directory_chain(workspace, entities)
    for role in agent.roles:
        entities[("Role", role)] = {"uid": _uid("Role", role), "attrs": {}, "parents": []}
    entities[("Attributes", "")] = {"uid": _uid("Attributes", ""), "attrs": {}, "parents": [],
                                    "tags": attribute_tags(action.context.attributes)}
    principal = _uid("Agent", agent.id)
    entities[("Agent", agent.id)] = {
        "uid": principal,
        "attrs": agent_attrs,
        "parents": [_uid("Role", r) for r in agent.roles],
    }

    if res is not None and res.type in ("file", "directory"):
        etype = "File" if res.type == "file" else "Directory"
        resource = _uid(etype, res.id)
        dirs = ancestor_dirs(res.id)
        if dirs:
            _directory_chain(dirs[0], entities)
        if etype == "Directory":
            _directory_chain(res.id, entities)
        else:
            entities[(etype, res.id)] = {
                "uid": resource,
                "attrs": {},
                "parents": [_uid("Directory", dirs[0])] if dirs else [],
            }
    else:
        rtype, rid = (res.type, res.id) if res is not None else ("", "")
        resource = _uid("Resource", rid)
        entities[("Resource", rid)] = {"uid": resource, "attrs": {"type": rtype}, "parents": []}
    return list(entities.values())


def resource_uid(action: Action) -> dict[str, str]:
    res = action.resource
    if res is None:
        return _uid("Resource", "")
    if res.type == "file":
        return _uid("File", res.id)
    if res.type == "directory":
        return _uid("Directory", res.id)
    return _uid("Resource", res.id)


FACT_FIELDS: dict[str, tuple[str, ...]] = {
    "shell": ("params", "parsed", "programs", "program_families", "program_flags", "program_args", "redirects",
              "recursive_deletes", "deletes_system_path", "writes_device", "command_substitution",
              "process_substitution", "variable_expansion", "eval", "pipe_to_shell", "parse_error"),
    "sql": ("params", "parsed", "types", "objects", "without_where", "parse_error"),
}
"""The facts Cedar sees: the flat sets and booleans (Cedar cannot look inside the ``commands`` and
``statements`` lists of records; the flat fields say the same as membership tests)."""


def cedar_facts(facts: Any) -> dict[str, Any]:
    """``action.facts`` as the ``Facts`` record of the schema."""
    return {
        **{part: {f: facts[part][f] for f in fields} for part, fields in FACT_FIELDS.items()},
        "parse_error": facts["parse_error"],
    }


def _task_id(action: Action, catalog: Catalog | None) -> str:
    return action.context.task_id or action.context.session_id


CONTEXT_FIELDS: dict[str, Callable[[Action, Catalog | None], Any]] = {
    "tool": lambda a, c: a.action.tool,
    "params": lambda a, c: c.cedar_params(a) if c is not None else {},
    "params_text": lambda a, c: a.action.params_text,
    "session_id": lambda a, c: a.context.session_id,
    "task_id": _task_id,
    "stage": lambda a, c: a.context.stage.value,
    "action_type": lambda a, c: a.action.action_type,
    "attributes": lambda a, c: {"__entity": {"type": "Attributes", "id": ""}},
    "tokens_used": lambda a, c: a.context.tokens_used,
    "tool_calls": lambda a, c: a.context.tool_calls,
    "files_changed": lambda a, c: a.context.files_changed,
    "facts": lambda a, c: cedar_facts(a.action.facts),
    "environment": lambda a, c: a.context.environment,
}
"""Each attribute of ``context`` and how it is read from the action (``catalog`` types the declared params; its
check must have passed). The one definition: :func:`cedar_request` sends them all, the Cedar engine only those
its policies read."""

OPTIONAL_FIELDS = frozenset({"environment"})
"""Attributes left out of ``context`` when their value is None (the schema declares them optional)."""


def cedar_request(action: Action, catalog: Catalog | None = None, *, facts: bool = True) -> dict[str, Any]:
    """The request; ``catalog`` types the declared params (its check must have passed). ``facts=False`` leaves
    ``context.facts`` out, for a caller that adds it itself."""
    context = {}
    for name, read in CONTEXT_FIELDS.items():
        if name == "facts" and not facts:
            continue
        value = read(action, catalog)
        if value is not None or name not in OPTIONAL_FIELDS:
            context[name] = value
    return {
        "principal": _uid("Agent", action.agent.id),
        "action": _uid("Action", action.action.kind.value),
        "resource": resource_uid(action),
        "context": context,
    }
