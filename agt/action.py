"""The common action document: one canonical, engine-neutral description of what an agent wants to do.

Four parts: ``agent`` (who), ``action`` (which tool, of which kind, with which params), ``resource``
(on what; optional) and ``context`` (session, stage, counters, environment, time).
Values are normalized on construction (see :mod:`agt._normalize`), so no engine ever sees a value it
cannot represent. The JSON Schema ships as ``agt/schema/action.schema.json``.

The top-level mappings are read-only views; values nested inside them are plain dicts and lists owned by
the action, and must not be mutated (``params_text``, ``facts`` and ``document`` are computed once).
"""

from __future__ import annotations

import enum
import json
import re
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from agt import _json, _normalize
from agt._normalize import normalize_dict as _normalize_dict
from agt._schema import validate_action_document
from agt.facts import NO_FACTS as _NO_FACTS, ROLE_NAMES as _ROLE_NAMES, derive_facts
from agt.errors import ActionError


class Kind(str, enum.Enum):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    EXECUTE = "execute"
    NETWORK = "network"
    MESSAGE = "message"
    DELEGATE = "delegate"


class Stage(str, enum.Enum):
    PRE_INPUT = "pre_input"
    PRE_TOOL = "pre_tool"
    POST_TOOL = "post_tool"
    PRE_OUTPUT = "pre_output"


FILE_RESOURCE_TYPES = frozenset({"file", "directory"})
"""Resource types whose ids are paths, canonicalized so ``..`` cannot escape a prefix check."""


class _once:
    """A value computed on first use and kept in the instance's ``__dict__``, like functools.cached_property but
    without the lock Python 3.11's takes on every first access (one lock for every instance of the class).
    Two threads racing on a new action may each compute it; both compute the same value from the same
    immutable fields, and one is kept."""

    def __init__(self, func: Any) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.func(obj)
        return obj.__dict__.setdefault(self.name, value)


_setattr = object.__setattr__
_MAX_INT = _normalize.MAX_INT
_MAX_STRING = _normalize.MAX_STRING_LENGTH


_type = type
"""The builtin, for the constructors whose field named ``type`` hides it."""

# Hand-written __init__: Agent, Operation, Resource, Context and Action are frozen dataclasses (eq, hash, repr,
# fields, replace) with ``init=False`` and an ``__init__`` of their own, because the generated one pays an
# ``object.__setattr__`` per field: about a microsecond per action. Each takes the fields in the dataclass's order,
# with its defaults, checks and normalizes them, then writes them once into the instance's ``__dict__`` (a frozen
# instance is never written again). tests/test_action_init.py proves each equal to the generated ``__init__`` with
# the same checks as a ``__post_init__``: same values, same refusals.


def _set_mapping(obj: object, name: str, value: dict) -> None:
    """Store a read-only view publicly and the dict behind it privately, for the shared document."""
    _setattr(obj, name, MappingProxyType(value))
    _setattr(obj, _PRIVATE[name], value)


_PRIVATE = {"attributes": "_attributes_dict", "params": "_params_dict"}


def _require_str(value: Any, field: str, *, allow_empty: bool = True) -> str:
    if type(value) is not str:
        raise ActionError(field, f"must be a string, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ActionError(field, "must not be empty")
    if len(value) > _normalize.MAX_STRING_LENGTH or not value.isascii():
        # Too long, or text that may hold a lone surrogate: the one string check names the field.
        _normalize.normalize_value(value, field)
    return value


def _require_count(value: Any, field: str) -> int:
    if type(value) is int and 0 <= value <= _normalize.MAX_INT:
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ActionError(field, f"must be a whole number, got {value!r}")
    value = int.__int__(value)  # an int subclass as the int it holds: its own comparisons could lie about the range
    if value < 0:
        raise ActionError(field, f"must not be negative, got {value}")
    return _normalize.normalize_value(value, field)


def _enum(cls: type[enum.Enum], value: Any, field: str) -> Any:
    if type(value) is cls:
        return value
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)  # type: ignore[attr-defined]
        raise ActionError(field, f"{value!r} is not one of: {allowed}") from None


@dataclass(frozen=True, init=False)
class Agent:
    id: str
    roles: tuple[str, ...] = ()
    trust_score: int | None = None
    """Set by the caller or by the Governor's TrustManager; absent from the document otherwise (never invented)."""
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, id: str, roles: tuple[str, ...] = (), trust_score: int | None = None,
                 attributes: Mapping[str, Any] | None = None) -> None:
        # Written by hand (see "Hand-written __init__" above); `attributes=None` is the empty mapping, as it always was.
        if not (type(id) is str and id and len(id) <= _MAX_STRING and id.isascii()):
            _require_str(id, "agent.id", allow_empty=False)
        if type(roles) is tuple and (not roles or (len(roles) == 1 and type(roles[0]) is str and len(roles[0]) <= _MAX_STRING
                                                   and roles[0].isascii())):
            pass  # the common case, none or one plain role: already the sorted, distinct tuple built below
        elif isinstance(roles, str) or not isinstance(roles, (list, tuple, set, frozenset)):
            raise ActionError("agent.roles", "must be a list of strings")
        else:
            roles = tuple(sorted({_require_str(r, "agent.roles[]") for r in roles}))
        score = trust_score
        if score is not None and not (type(score) is int and 0 <= score <= 1000):
            if isinstance(score, bool) or not isinstance(score, int) or not 0 <= int.__int__(score) <= 1000:
                raise ActionError("agent.trust_score", f"must be a whole number from 0 to 1000, got {score!r}")
            score = int.__int__(score)  # an int subclass as the int it holds (its comparisons could lie)
        attrs = _normalize.normalize_mapping(attributes, "agent.attributes")
        if "workspace" in attrs:
            # Every engine compares paths against it; anything but text would mean something different
            # (or error) in each, so it is refused here, once, naming the field. (A normalized str is checked already.)
            workspace = attrs["workspace"]
            if type(workspace) is not str:
                _require_str(workspace, "agent.attributes.workspace")
            attrs["workspace"] = _normalize.canonical_path(workspace)
        self.__dict__.update(id=id, roles=roles, trust_score=score, attributes=MappingProxyType(attrs), _attributes_dict=attrs)

    def with_trust_score(self, score: int) -> "Agent":
        """This agent with another trust score. Skips re-normalizing attributes, which are already
        normalized: the runtime calls this on every governed call."""
        if isinstance(score, bool) or not isinstance(score, int) or not 0 <= int.__int__(score) <= 1000:
            raise ActionError("agent.trust_score", f"must be a whole number from 0 to 1000, got {score!r}")
        score = int.__int__(score)
        clone = object.__new__(Agent)
        for name in ("id", "roles", "attributes", "_attributes_dict"):
            object.__setattr__(clone, name, getattr(self, name))
        object.__setattr__(clone, "trust_score", score)
        return clone

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "roles": list(self.roles), "attributes": _normalize.copy_json(dict(self.attributes))}
        if self.trust_score is not None:
            out["trust_score"] = self.trust_score
        return out


@dataclass(frozen=True, init=False)
class Operation:
    """The ``action`` part: the tool, its kind, and its params."""

    tool: str
    kind: Kind = Kind.EXECUTE
    params: Mapping[str, Any] = field(default_factory=dict)
    type: str | None = None
    """AGT's action type: the tool's own verb (``send_email``, ``drop``). The caller sets it; when it does not,
    it is the tool name. Never agt's ``kind`` (docs/agt-compatibility.md, "action.type")."""

    def __init__(self, tool: str, kind: Kind | str = Kind.EXECUTE, params: Mapping[str, Any] | None = None,
                 type: str | None = None) -> None:  # `type`: the field; the builtin is _type here
        # By hand: see "Hand-written __init__" above.
        if not (_type(tool) is str and tool and len(tool) <= _MAX_STRING and tool.isascii()):
            _require_str(tool, "action.tool", allow_empty=False)
        if type is not None:
            _require_str(type, "action.type", allow_empty=False)
        if _type(kind) is not Kind:
            kind = _enum(Kind, kind, "action.kind")
        normalized = (_normalize_dict(params, "action.params", 0) if _type(params) is dict  # the common case, one call less
                      else _normalize.normalize_mapping(params, "action.params"))
        # params_text and resources are pure functions of the normalized params that cannot fail, and every decision
        # reads them: worked out here, they cost no descriptor call later. Facts are parsed on first use (a parser
        # could raise where the engine's guard would turn it into a deny), unless no param can hold a command or SQL.
        self.__dict__.update(tool=tool, kind=kind, params=MappingProxyType(normalized), type=type, _params_dict=normalized,
                             params_text=_normalize.params_text(normalized), resources=infer_resources(normalized))
        if normalized.keys().isdisjoint(_ROLE_NAMES):
            self.__dict__["facts"] = _NO_FACTS  # what derive_facts returns for these params, without the call

    @property
    def action_type(self) -> str:
        return self.type if self.type is not None else self.tool

    # params_text and resources are set by __init__; as _once values they are still worked out for an instance built
    # some other way (object.__new__ and a copied __dict__ without them), and tests compare __init__'s with theirs.
    @_once
    def params_text(self) -> str:
        """Canonical text of every string param, the one place pattern rules look (derived, never supplied)."""
        return _normalize.params_text(self._params_dict)  # type: ignore[attr-defined]

    @_once
    def resources(self) -> tuple["Resource", ...]:
        """:func:`infer_resources` of the params, worked out once (derived, never supplied)."""
        return infer_resources(self._params_dict)  # type: ignore[attr-defined]

    @_once
    def facts(self) -> Mapping[str, Any]:
        """What the command and SQL params mean, parsed once (derived, never supplied; see
        docs/action-schema.md, "Derived facts"). Read-only: shared by every engine."""
        return derive_facts(self.tool, self.kind._value_, self._params_dict)  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "kind": self.kind.value,
            "type": self.action_type,
            "params": _normalize.copy_json(dict(self.params)),
            "params_text": self.params_text,
            "facts": _normalize.copy_json(self.facts),
        }


@dataclass(frozen=True, init=False)
class Resource:
    type: str
    id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, type: str, id: str, attributes: Mapping[str, Any] | None = None) -> None:
        # By hand: see "Hand-written __init__" above.
        _require_str(type, "resource.type", allow_empty=False)
        rid = _require_str(id, "resource.id")
        if type in FILE_RESOURCE_TYPES:
            rid = _normalize.canonical_path(rid)
        attrs = _normalize.normalize_mapping(attributes, "resource.attributes")
        self.__dict__.update(type=type, id=rid, attributes=MappingProxyType(attrs), _attributes_dict=attrs)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "attributes": _normalize.copy_json(dict(self.attributes))}


_PRE_TOOL = Stage.PRE_TOOL

_second_text: tuple[int, str] = (-1, "")


def _now() -> str:
    """RFC 3339 UTC with microseconds. The seconds part is formatted once per second, not per call; the cache
    is one tuple, read and replaced whole, so a thread never pairs one second's number with another's text."""
    global _second_text
    ns = time.time_ns()
    second = ns // 1_000_000_000
    cached = _second_text
    if cached[0] != second:
        cached = _second_text = (second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)))
    # Digits 9 to 4 from the end of the nanoseconds since the epoch are the microseconds of the second, zero-padded:
    # a slice, not a format (nor a division).
    return cached[1] + str(ns)[-9:-3] + "Z"


@dataclass(frozen=True, init=False)
class Context:
    """Where and when. Counters count *including* the action being decided (see docs/action-schema.md)."""

    session_id: str = "default"
    task_id: str = ""
    stage: Stage = Stage.PRE_TOOL
    tokens_used: int = 0
    tool_calls: int = 0
    files_changed: int = 0
    environment: str | None = None
    """Absent unless the caller (or the Governor) sets one: a rule on it then matches nothing, and ``!=`` holds."""
    timestamp: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """Free-form caller context (AGT's flat context: ``message``, ``user.role``, ...), read by AGT-format rules."""

    def __init__(self, session_id: str = "default", task_id: str = "", stage: Stage | str = Stage.PRE_TOOL,
                 tokens_used: int = 0, tool_calls: int = 0, files_changed: int = 0, environment: str | None = None,
                 timestamp: str = "", attributes: Mapping[str, Any] | None = None) -> None:
        # By hand: see "Hand-written __init__" above.
        if not (type(session_id) is str and type(task_id) is str and len(session_id) + len(task_id) <= _MAX_STRING
                and session_id.isascii() and task_id.isascii()):  # else: check each, naming the field
            _require_str(session_id, "context.session_id")
            _require_str(task_id, "context.task_id")
        if type(stage) is not Stage:
            stage = _enum(Stage, stage, "context.stage")
        t, c, f = tokens_used, tool_calls, files_changed
        if not (type(t) is int and type(c) is int and type(f) is int
                and 0 <= t <= _MAX_INT and 0 <= c <= _MAX_INT and 0 <= f <= _MAX_INT):  # else: check and convert each
            t = _require_count(t, "context.tokens_used")
            c = _require_count(c, "context.tool_calls")
            f = _require_count(f, "context.files_changed")
        if environment is not None:
            _require_str(environment, "context.environment")
        if type(timestamp) is not str or len(timestamp) > _MAX_STRING or not timestamp.isascii():
            _require_str(timestamp, "context.timestamp")
        # None, the default, without a call: the new empty dict normalize_mapping would return.
        attrs = {} if attributes is None else _normalize.normalize_mapping(attributes, "context.attributes")
        self.__dict__.update(session_id=session_id, task_id=task_id, stage=stage, tokens_used=t, tool_calls=c,
                             files_changed=f, environment=environment, timestamp=timestamp or _now(),
                             attributes=MappingProxyType(attrs), _attributes_dict=attrs)

    @classmethod
    def _for_call(cls, session_id: str, task_id: str, tokens_used: int, tool_calls: int, files_changed: int,
                  environment: str | None, attributes: Mapping[str, Any] | None) -> Context:
        """The context the runtime builds for each call (stage pre_tool, stamped now). Plain values, the common
        case, skip the dataclass machinery; anything else goes through ``Context(...)``, whose checks name the field."""
        # Three exact ints are all within 0 … _MAX_INT exactly when their bitwise or is: a negative int has the sign
        # bit set (so has the or), and the or of ints below 2**63 stays below it while one above makes it so.
        if not (type(session_id) is str and type(task_id) is str and len(session_id) + len(task_id) <= _MAX_STRING
                and session_id.isascii() and task_id.isascii()
                and type(tokens_used) is int and type(tool_calls) is int and type(files_changed) is int
                and 0 <= tokens_used | tool_calls | files_changed <= _MAX_INT
                and (environment is None or (type(environment) is str and len(environment) <= _MAX_STRING
                                             and environment.isascii()))):
            return cls(session_id, task_id, Stage.PRE_TOOL, tokens_used, tool_calls, files_changed, environment,
                       attributes=attributes if attributes is not None else {})
        attrs = {} if attributes is None else _normalize.normalize_mapping(attributes, "context.attributes")
        ctx = object.__new__(cls)
        # Frozen: each field is written once, here, as the generated __init__ would write it.
        ctx.__dict__.update(session_id=session_id, task_id=task_id, stage=_PRE_TOOL, tokens_used=tokens_used,
                            tool_calls=tool_calls, files_changed=files_changed, environment=environment,
                            timestamp=_now(), attributes=MappingProxyType(attrs), _attributes_dict=attrs)
        return ctx

    def to_dict(self) -> dict[str, Any]:
        out = {
            "session_id": self.session_id,
            "task_id": self.task_id or self.session_id,
            "stage": self.stage._value_,  # a plain attribute: .value is a descriptor call, on every action
            "tokens_used": self.tokens_used,
            "tool_calls": self.tool_calls,
            "files_changed": self.files_changed,
            "timestamp": self.timestamp,
            "attributes": _normalize.copy_json(self._attributes_dict) if self._attributes_dict else {},  # type: ignore[attr-defined]
        }
        if self.environment is not None:
            out["environment"] = self.environment
        return out


def _document(agent: Agent, op: Operation, res: Resource | None, ctx: Context, facts: Mapping[str, Any]) -> dict[str, Any]:
    """:attr:`Action.document` of these parts; ``facts`` is ``op.facts``."""
    agent_doc = {"id": agent.id, "roles": list(agent.roles), "attributes": agent._attributes_dict}  # type: ignore[attr-defined]
    if agent.trust_score is not None:
        agent_doc["trust_score"] = agent.trust_score
    return {
        "agent": agent_doc,
        "action": {"tool": op.tool, "kind": op.kind._value_, "type": op.tool if op.type is None else op.type,  # action_type
                   "params": op._params_dict, "params_text": op.params_text, "facts": facts},  # type: ignore[attr-defined]
        "resource": None if res is None else {"type": res.type, "id": res.id, "attributes": res._attributes_dict},  # type: ignore[attr-defined]
        "context": ctx.to_dict(),
    }


_NEW_CONTEXT: Any = object()
"""Action's default context: a new ``Context()`` per action, as the field's default_factory says (``None`` is refused)."""


@dataclass(frozen=True, init=False)
class Action:
    agent: Agent
    action: Operation
    resource: Resource | None = None
    context: Context = field(default_factory=Context)

    def __init__(self, agent: Agent, action: Operation, resource: Resource | None = None,
                 context: Context = _NEW_CONTEXT) -> None:
        # By hand: see "Hand-written __init__" above.
        if context is _NEW_CONTEXT:
            context = Context()
        if not (type(agent) is Agent and type(action) is Operation and type(context) is Context and (
                resource is None or type(resource) is Resource)):  # else: the exact classes pass every check below
            for name, value, cls in (("agent", agent, Agent), ("action", action, Operation), ("context", context, Context)):
                if not isinstance(value, cls):
                    raise ActionError(name, f"must be an {cls.__name__}")
            if resource is not None and not isinstance(resource, Resource):
                raise ActionError("resource", "must be a Resource or None")
            self.__dict__.update(agent=agent, action=action, resource=resource, context=context)
            return  # the document of a subclass's instance is built on first use, as it always was
        facts = action.__dict__.get("facts")
        if facts is None:  # facts still to parse: the document waits for its first use, where an engine's guard stands
            self.__dict__.update(agent=agent, action=action, resource=resource, context=context)
        else:  # every part known: the document now costs no descriptor call on its first use
            self.__dict__.update(agent=agent, action=action, resource=resource, context=context,
                                 document=_document(agent, action, resource, context, facts))

    @_once
    def document(self) -> Mapping[str, Any]:
        """The canonical JSON document, built once and shared: engines read it, nobody may mutate it.
        It shares the action's own normalized params and attributes instead of copying them; use
        :meth:`to_dict` for a copy of your own. (Built with the action when its facts are known, else on first use.)"""
        return _document(self.agent, self.action, self.resource, self.context, self.action.facts)

    def to_dict(self) -> dict[str, Any]:
        """A copy of :attr:`document` the caller may change."""
        return _normalize.copy_json(self.document)

    def to_json(self, *, indent: int | None = None) -> str:
        return _json.dumps(self.document, indent=indent, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, doc: Any) -> "Action":
        """Validate ``doc`` against the JSON Schema, then build and normalize the typed action."""
        validate_action_document(doc)
        agent, op, ctx = doc["agent"], doc["action"], doc.get("context") or {}
        res = doc.get("resource")
        return cls(
            agent=Agent(
                id=agent["id"],
                roles=tuple(agent.get("roles", ())),
                trust_score=agent.get("trust_score"),
                attributes=agent.get("attributes") or {},
            ),
            action=Operation(
                tool=op["tool"],
                kind=op.get("kind") or infer_kind(op["tool"]),
                params=op.get("params") or {},
                type=op.get("type"),
            ),
            resource=Resource(res["type"], res["id"], res.get("attributes") or {}) if res else None,
            context=Context(**{k: v for k, v in ctx.items()}),
        )

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "<input>") -> "Action":
        try:
            doc = _json.loads(text)  # numbers with a fraction stay exact decimals, never floats
        except json.JSONDecodeError as exc:
            raise ActionError("", f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
        except RecursionError:
            raise ActionError("", f"{source}: JSON nested too deeply to parse") from None
        return cls.from_dict(doc)


# --- building an action from a plain Python tool call ------------------------------------------

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NAMESPACE_WORDS = frozenset({"fs", "file", "files", "filesystem"})

_KIND_PREFIXES: tuple[tuple[Kind, tuple[str, ...]], ...] = (
    (Kind.DELETE, ("delete", "remove", "drop", "truncate", "destroy", "purge", "rm", "rmdir", "unlink", "erase")),
    (Kind.WRITE, ("write", "create", "update", "save", "edit", "append", "put", "insert", "modify", "set", "move", "rename",
                  "upload", "patch", "copy", "cp", "mv", "touch", "mkdir", "overwrite", "replace", "str_replace", "ln", "link",
                  "symlink", "tee", "chmod", "chown")),
    (Kind.READ, ("read", "get", "list", "search", "query", "find", "lookup", "describe", "view", "cat", "ls")),
    (Kind.MESSAGE, ("send", "email", "notify", "post", "reply", "message", "sms", "slack")),
    (Kind.NETWORK, ("http", "fetch", "download", "request", "browse", "web", "curl", "api")),
    (Kind.DELEGATE, ("delegate", "spawn", "handoff", "assign")),
    (Kind.EXECUTE, ("run", "exec", "execute", "shell", "bash", "sh", "eval", "python", "terminal", "command")),
)


_WRITE_TOOLS = frozenset({"apply_patch", "apply_diff", "apply_edit", "str_replace_editor", "str_replace_based_edit_tool",
                          "file_write", "multi_edit", "multiedit", "notebook_edit", "notebookedit"})
"""Whole tool names that write files although their first word says nothing (``apply_discount`` is no write)."""


def infer_kind(tool: str) -> Kind:
    """Guess a tool's kind from the first word of its name; unknown tools count as ``execute``,
    the kind the starter policy treats most carefully. Tools that create, move, copy or patch files
    are writes; tools that delete them are deletes (the starter's workspace rule covers both)."""
    if type(tool) is str:
        known = _KINDS.get(tool)
        if known is not None:
            return known
        kind = _infer_kind(tool)
        if len(tool) <= 256:  # a pure function of the name: a cached answer is the same answer
            if len(_KINDS) >= 4096:
                _KINDS.clear()
            _KINDS[tool] = kind
        return kind
    return _infer_kind(tool)


_KINDS: dict[str, Kind] = {}


def _infer_kind(tool: str) -> Kind:
    # camelCase and PascalCase split like snake_case: WriteFile and writeFile are write_file.
    name = _CAMEL_BOUNDARY.sub("_", tool).replace("-", "_").replace(".", "_").replace("/", "_").lower()
    if name in _WRITE_TOOLS:
        return Kind.WRITE
    words = [w for w in name.split("_") if w]
    # A namespace word (fs_write, file_delete) says where, not what: the next word decides.
    first = words[1] if len(words) > 1 and words[0] in _NAMESPACE_WORDS else (words[0] if words else "")
    for kind, words in _KIND_PREFIXES:
        if first in words:
            return kind
    return Kind.EXECUTE


PATH_PARAMS = (
    "path", "file_path", "filepath", "filename", "file",
    "dest", "destination", "dst", "target", "target_path", "destination_path", "dest_path", "to_path", "new_path",
    "output_path", "output_file", "out_path",
    "src", "source", "source_path", "src_path", "from_path", "old_path", "input_path",
)
"""Params whose text value names a file, in the order the primary resource is taken from (docs/action-schema.md)."""

PATH_LIST_PARAMS = ("paths", "files", "file_paths", "sources", "targets")
"""Params whose list of texts names several files."""

_PATH_NAMES = (*PATH_PARAMS, *PATH_LIST_PARAMS)
_PATH_ORDER = {name: i for i, name in enumerate(_PATH_NAMES)}


def _file_resource(canonical_id: str) -> Resource:
    """``Resource("file", canonical_id)`` for an id already checked and canonical: nothing left to validate.
    Immutable and equal for equal ids, so one per short id is kept and shared between actions."""
    res = _FILES.get(canonical_id)
    if res is None:
        res = object.__new__(Resource)
        _setattr(res, "type", "file")
        _setattr(res, "id", canonical_id)
        _set_mapping(res, "attributes", {})
        if len(canonical_id) <= 512:
            if len(_FILES) >= 4096:
                _FILES.clear()
            _FILES[canonical_id] = res
    return res


_FILES: dict[str, Resource] = {}


def _path_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The keys of a params dict that name files, in :data:`_PATH_NAMES` order, matched whatever their case; of
    keys equal but for case, the last (as a dict of lower-cased keys would keep). A pure function of the keys,
    so it is worked out once per set of param names."""
    known = _PATH_KEYS.get(keys)
    if known is None:
        last = {k.lower(): k for k in keys}  # later keys win, as in {k.lower(): v for k, v in params.items()}
        known = tuple(last[n] for n in sorted((n for n in last if n in _PATH_ORDER), key=_PATH_ORDER.__getitem__))
        if len(keys) <= 64:
            if len(_PATH_KEYS) >= 4096:
                _PATH_KEYS.clear()
            _PATH_KEYS[keys] = known
    return known


_PATH_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _one_file(path: str) -> tuple[Resource]:
    """What :func:`infer_resources` returns for params naming the one file ``path`` (a non-empty text). A pure
    function of the text, immutable and built of shared resources: one per short text is kept in ``_ONE_FILE``."""
    found = (_file_resource(_normalize.canonical_path(_require_str(path, "resource.id"))),)
    if len(path) <= 512:
        if len(_ONE_FILE) >= 4096:
            _ONE_FILE.clear()
        _ONE_FILE[path] = found
    return found


_ONE_FILE: dict[str, tuple[Resource]] = {}


_TYPED_RESOURCES = (("table", "table"), ("database", "database"), ("url", "url"), ("to", "recipient"))
"""Params whose text names the one resource of a call that names no file, in that order, and the resource's type."""
_TYPED_NAMES = frozenset(name for name, _ in _TYPED_RESOURCES)


def infer_resources(params: Mapping[str, Any]) -> tuple[Resource, ...]:
    """Every file the params name (:data:`PATH_PARAMS`, then :data:`PATH_LIST_PARAMS`), each once and in
    that order; without any, the one table, database, url or recipient they name, if any. A move or copy
    names two files, and a policy must see both: the runtime decides the call once per file."""
    # Names match whatever their case (Path, FILE_PATH), and each takes a text or a list of texts: a path
    # param holding a list, or a list param holding one text, must not slip past the workspace rule.
    if type(params) is dict or type(params) is MappingProxyType:
        keys = tuple(params)
        known = _PATH_KEYS.get(keys)  # _path_keys's own cache, read here first: a call less on every action
        if known is None:
            known = _path_keys(keys)
        if len(known) == 1:
            value = params[known[0]]
            if type(value) is str and value:
                # The common case, one file param holding one text: what the general path below returns for it.
                one = _ONE_FILE.get(value)
                return one if one is not None else _one_file(value)
        elif not known and _TYPED_NAMES.isdisjoint(keys):
            return ()  # no param names a file, a table, a database, a url or a recipient: what the loops below find
        values = [params[k] for k in known]
    else:
        by_name = {k.lower(): v for k, v in params.items()} if any(not k.islower() for k in params) else params
        values = [by_name.get(name) for name in _PATH_NAMES]
    found: list[str] = []
    for value in values:
        if isinstance(value, str) and value:
            found.append(value)
        elif isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str) and v)
    if found:
        # Canonical ids, each once, in order; each checked as Resource("file", p) checks its id.
        if len(found) == 1:  # the common case: one file, nothing to deduplicate
            return (_file_resource(_normalize.canonical_path(_require_str(found[0], "resource.id"))),)
        files = {_normalize.canonical_path(_require_str(p, "resource.id")): None for p in found}
        return tuple(_file_resource(p) for p in files)
    for name, rtype in _TYPED_RESOURCES:
        value = params.get(name)
        if isinstance(value, str) and value:
            return (Resource(rtype, value),)
    return ()


def infer_resource(params: Mapping[str, Any]) -> Resource | None:
    """The primary resource: the first of :func:`infer_resources`."""
    found = infer_resources(params)
    return found[0] if found else None


def from_call(
    tool: str,
    kwargs: Mapping[str, Any] | None = None,
    *,
    agent: Agent | str = "agent",
    kind: Kind | str | None = None,
    resource: Resource | None = None,
    context: Context | None = None,
    action_type: str | None = None,
) -> Action:
    """Build an Action from a Python tool call: a function name and its keyword arguments.

    Kind and resource are inferred when not given (see :func:`infer_kind`, :func:`infer_resource`).
    """
    # No copy of kwargs: Operation normalizes the params into a dict of its own.
    op = Operation(tool, kind or infer_kind(tool), kwargs, action_type)  # kwargs=None: no params, as {} would be
    if resource is None:
        found = op.resources
        resource = found[0] if found else None
    return Action(agent if isinstance(agent, Agent) else Agent(agent), op, resource, context or Context())


# --- AGT's flat context ------------------------------------------------------------------------

_AGT_CONTEXT_FIELDS = {
    "tool_name": "tool", "tool": "tool", "agent_id": "agent", "agent_did": "agent", "trust_score": "trust_score",
    "roles": "roles", "environment": "environment", "session_id": "session_id", "task_id": "task_id", "stage": "stage",
    "token_count": "tokens_used", "tokens_used": "tokens_used", "tool_call_count": "tool_calls", "tool_calls": "tool_calls",
    "files_changed": "files_changed",
}


def from_agt_context(context: Mapping[str, Any], *, params: Mapping[str, Any] | None = None,
                     kind: Kind | str | None = None) -> Action:
    """An Action from the flat context dict an AGT engine is called with (``evaluate({"tool_name": ..., ...})``).

    The well-known names become agt fields (docs/agt-compatibility.md, "Flat context"): ``tool_name``, ``agent_did``/
    ``agent_id``, ``trust_score``, ``roles``, ``environment``, ``session_id``, ``task_id``, ``stage``,
    ``token_count``/``tokens_used``, ``tool_call_count``/``tool_calls``, ``files_changed``; ``action`` (a verb) or
    ``action: {type: ...}`` becomes ``action.type``. Everything else goes into ``context.attributes`` as given. A name
    the context does not hold stays missing: no environment, no trust score is invented.
    """
    rest: dict[str, Any] = {}
    known: dict[str, Any] = {}
    action_type: str | None = None
    for key, value in context.items():
        if key == "action" and isinstance(value, str):
            action_type = value
        elif key == "action" and isinstance(value, Mapping) and isinstance(value.get("type"), str):
            action_type = value["type"]
            extra = {k: v for k, v in value.items() if k != "type"}
            if extra:
                rest["action"] = extra
        elif key in _AGT_CONTEXT_FIELDS:
            known[_AGT_CONTEXT_FIELDS[key]] = value
        else:
            rest[key] = value
    tool = known.pop("tool", None) or action_type or "unknown"
    agent_kw: dict[str, Any] = {"id": known.pop("agent", None) or "agent"}
    if "roles" in known:
        agent_kw["roles"] = tuple(known.pop("roles"))
    if "trust_score" in known:
        agent_kw["trust_score"] = known.pop("trust_score")
    op = Operation(tool=tool, kind=kind or infer_kind(tool), params=dict(params or {}), type=action_type)
    return Action(agent=Agent(**agent_kw), action=op, resource=infer_resource(op.params),
                  context=Context(attributes=rest, **known))
