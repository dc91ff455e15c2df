"""The tool catalog: which params each tool takes, and their types (docs/action-schema.md#typed-params).

``catalog.yaml`` sits beside the policy files (or is passed as ``catalog=``)::

    tools:
      refund:
        params:
          amount: decimal
          order_id: {type: string, required: true}

It does two things, the same for every engine:

* **checks** a call's declared params before any engine decides: a value that does not fit its declared
  type, or a required param that is missing, is a deny with reason ``engine_error`` (:meth:`Catalog.denial`);
* **types** the params for Cedar: the Cedar schema's ``context.params`` record is generated from it, so a
  Cedar policy can read ``context.params.amount`` (:meth:`Catalog.cedar_params`, :meth:`Catalog.cedar_type`).

Undeclared params stay visible to YAML and Rego; Cedar cannot see them.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

from agt.action import Action
from agt.decision import Decision, fail_closed
from agt.errors import ActionError, PolicyLoadError

CATALOG_FILE = "catalog.yaml"

CEDAR_DECIMAL_PLACES = 4
"""Cedar's ``decimal`` keeps four fractional digits; a declared decimal that needs more is a type error."""

CEDAR_DECIMAL_MAX = Decimal("922337203685477.5807")
CEDAR_DECIMAL_MIN = Decimal("-922337203685477.5808")

# Printable, and safe inside a quoted Cedar attribute name.
_PARAM_NAME = re.compile(r"^[^\"\\\x00-\x1f\x7f]{1,128}$")


class CatalogError(PolicyLoadError):
    """A catalog file or mapping is malformed; the message names the file, the line and the field."""


class ParamType(str, enum.Enum):
    STRING = "string"
    LONG = "long"
    DECIMAL = "decimal"
    BOOL = "bool"
    STRING_SET = "set<string>"

    @property
    def cedar(self) -> str:
        return _CEDAR_TYPES[self]


_CEDAR_TYPES = {
    ParamType.STRING: "String",
    ParamType.LONG: "Long",
    ParamType.DECIMAL: "decimal",
    ParamType.BOOL: "Bool",
    ParamType.STRING_SET: "Set<String>",
}
_TYPE_NAMES = ", ".join(t.value for t in ParamType)


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    required: bool = False
    line: int | None = None


@dataclass(frozen=True)
class Catalog:
    tools: Mapping[str, Mapping[str, Param]]
    """tool name -> param name -> its declaration."""
    source: str = "<catalog>"
    digest: str = ""
    """A content hash, folded into the revision of every engine that uses the catalog."""

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<catalog>") -> "Catalog":
        """Build a catalog from ``{"tools": {name: {"params": {param: type}}}}``; raises CatalogError."""
        return _parse(data, source, "sha256:" + hashlib.sha256(_stable_text(data).encode()).hexdigest()[:16])

    def params_of(self, tool: str) -> Mapping[str, Param]:
        return self.tools.get(tool, {})

    def declared_names(self) -> frozenset[str]:
        """Every param name some tool declares: the attributes of Cedar's ``context.params``."""
        return frozenset(name for params in self.tools.values() for name in params)

    # --- the check every engine runs first -------------------------------------------------------
    def check(self, action: Action) -> None:
        """Raise ActionError naming the param when a declared param does not fit its type."""
        tool = action.action.tool
        declared = self.tools.get(tool)
        if not declared:
            return
        params = action.action.params
        for name, param in declared.items():
            if name not in params:
                if param.required:
                    raise ActionError(f"action.params.{name}", f"tool {tool!r} requires this param{self._where(param)}")
                continue
            problem = _type_problem(param.type, params[name])
            if problem:
                raise ActionError(
                    f"action.params.{name}", f"tool {tool!r} declares it {param.type.value}: {problem}{self._where(param)}"
                )

    def _where(self, param: Param) -> str:
        return f" ({self.source}:{param.line})" if param.line else f" ({self.source})"

    def denial(self, action: Action, engine: str, revision: str) -> Decision | None:
        """The fail-closed deny for an action whose declared params do not fit, or None when they do."""
        try:
            self.check(action)
        except ActionError as exc:
            return fail_closed(f"catalog: {exc}", engine=engine, revision=revision)
        except Exception as exc:  # noqa: BLE001 - not an Action, or one built around the checks: still a deny
            return fail_closed(f"catalog: cannot check the action: {type(exc).__name__}: {exc}", engine=engine, revision=revision)
        return None

    # --- Cedar ------------------------------------------------------------------------------------
    def cedar_type(self) -> str:
        """The record type of ``context.params``: every declared param, optional, since each tool
        declares only its own. One name has one type across tools (checked at load)."""
        attrs: dict[str, ParamType] = {}
        for params in self.tools.values():
            for name, param in params.items():
                attrs[name] = param.type
        return "{" + ", ".join(f"{json.dumps(n)}?: {t.cedar}" for n, t in sorted(attrs.items())) + "}"

    def cedar_params(self, action: Action) -> dict[str, Any]:
        """The called tool's declared params as Cedar values (after :meth:`check` passed)."""
        declared = self.tools.get(action.action.tool)
        if not declared:
            return {}
        params = action.action.params
        return {name: _cedar_value(p.type, params[name]) for name, p in declared.items() if name in params}


def _type_problem(ptype: ParamType, value: Any) -> str | None:
    if ptype is ParamType.STRING:
        return None if type(value) is str else _got(value)
    if ptype is ParamType.BOOL:
        return None if type(value) is bool else _got(value)
    if ptype is ParamType.LONG:
        return None if type(value) is int else _got(value)
    if ptype is ParamType.STRING_SET:
        if type(value) is list and all(type(v) is str for v in value):
            return None
        return _got(value) if type(value) is not list else "every item must be a string"
    # decimal: an integer or an exact decimal that Cedar's decimal holds without rounding
    if type(value) is int:
        value = Decimal(value)
    elif type(value) is not Decimal:
        return _got(value)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > CEDAR_DECIMAL_PLACES:
        return f"{value} has more than {CEDAR_DECIMAL_PLACES} fractional digits (Cedar's decimal); it is rejected, never rounded"
    if not CEDAR_DECIMAL_MIN <= value <= CEDAR_DECIMAL_MAX:
        return f"{value} is outside Cedar's decimal range {CEDAR_DECIMAL_MIN} … {CEDAR_DECIMAL_MAX}"
    return None


def _got(value: Any) -> str:
    names = {str: "string", bool: "bool", int: "integer", Decimal: "decimal", list: "list", dict: "object", type(None): "null"}
    return f"got {names.get(type(value), type(value).__name__)} {json.dumps(value, default=str)[:60]}"


def _cedar_value(ptype: ParamType, value: Any) -> Any:
    if ptype is ParamType.DECIMAL:
        text = format(Decimal(value), "f")
        return {"__extn": {"fn": "decimal", "arg": text if "." in text else text + ".0"}}
    return value


# --- loading ------------------------------------------------------------------------------------


def load_catalog(path: str | Path) -> Catalog:
    """Read a ``catalog.yaml``; raises CatalogError naming the file, line and field."""
    from agt.engines.yaml_policy import _read_yaml  # the YAML reader that keeps line numbers

    p = Path(path)
    if not p.is_file():
        raise CatalogError("catalog file does not exist", file=str(p))
    try:
        data, text = _read_yaml(p)
    except PolicyLoadError as exc:
        raise CatalogError(exc.message, file=str(p), line=exc.line) from None
    return _parse(data, str(p), "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16])


def find_catalog(policy: str | Path | None) -> Path | None:
    """The ``catalog.yaml`` in a policy directory, or beside a policy file. ``policy`` may list several
    paths joined with os.pathsep (OPA loads several); at most one of them may have a catalog."""
    if policy is None:
        return None
    found: list[Path] = []
    for part in str(policy).split(os.pathsep):
        if not part:
            continue
        p = Path(part)
        candidate = (p if p.is_dir() else p.parent) / CATALOG_FILE
        if candidate.is_file() and candidate.resolve() not in {f.resolve() for f in found}:
            found.append(candidate)
    if len(found) > 1:
        raise CatalogError(f"more than one {CATALOG_FILE} beside the policy: {', '.join(map(str, found))}; pass catalog=")
    return found[0] if found else None


def resolve_catalog(catalog: "Catalog | str | Path | Mapping[str, Any] | None", policy: str | Path | None) -> Catalog | None:
    """What an engine's ``catalog=`` option means: a Catalog, a path to a catalog file, a mapping in the
    file's shape, or None to use the ``catalog.yaml`` beside the policy (if there is one)."""
    if isinstance(catalog, Catalog):
        return catalog
    if isinstance(catalog, (str, Path)):
        return load_catalog(catalog)
    if isinstance(catalog, Mapping):
        return Catalog.from_dict(catalog)
    if catalog is not None:
        raise CatalogError(f"catalog= must be a Catalog, a path or a mapping, got {type(catalog).__name__}")
    found = find_catalog(policy)
    return load_catalog(found) if found else None


def with_catalog(revision: str, catalog: Catalog | None) -> str:
    """An engine's revision, changed by the catalog it checks with."""
    if catalog is None:
        return revision
    return "sha256:" + hashlib.sha256(f"{revision}\0{catalog.digest}".encode()).hexdigest()[:16]


def _stable_text(data: Any) -> str:
    try:
        return json.dumps(data, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(data)


def _line(node: Any, key: str | None = None) -> int | None:
    if key is not None:
        return getattr(node, "key_lines", {}).get(key) or getattr(node, "line", None)
    return getattr(node, "line", None)


def _parse(data: Any, source: str, digest: str) -> Catalog:
    def fail(message: str, field: str, line: int | None) -> CatalogError:
        return CatalogError(f"{field}: {message}" if field else message, file=source, line=line)

    if not isinstance(data, Mapping) or not isinstance(data.get("tools"), Mapping):
        raise fail("a catalog is a mapping with a 'tools' mapping: tools: {refund: {params: {amount: decimal}}}", "", _line(data))
    extra = sorted(set(data) - {"tools", "description"})
    if extra:
        raise fail(f"unknown key {extra[0]!r}; a catalog has 'tools' (and 'description')", str(extra[0]), _line(data, str(extra[0])))
    tools: dict[str, dict[str, Param]] = {}
    first_type: dict[str, tuple[ParamType, str, int | None]] = {}
    for tool, spec in data["tools"].items():
        tfield = f"tools.{tool}"
        tline = _line(data["tools"], str(tool))
        if not isinstance(tool, str) or not tool:
            raise fail("a tool name must be non-empty text", tfield, tline)
        if not isinstance(spec, Mapping):
            raise fail("a tool is a mapping with a 'params' mapping", tfield, tline)
        extra = sorted(set(spec) - {"params", "description"})
        if extra:
            raise fail(f"unknown key {extra[0]!r}; a tool has 'params' (and 'description')", tfield, _line(spec, str(extra[0])))
        raw_params = spec.get("params") or {}
        if not isinstance(raw_params, Mapping):
            raise fail("'params' maps each param name to its type", f"{tfield}.params", _line(spec, "params"))
        params: dict[str, Param] = {}
        for name, pspec in raw_params.items():
            pfield = f"{tfield}.params.{name}"
            pline = _line(raw_params, str(name))
            if not isinstance(name, str) or not _PARAM_NAME.match(name):
                raise fail("a param name must be printable text without quotes or backslashes", pfield, pline)
            param = _parse_param(name, pspec, pline, lambda m: fail(m, pfield, pline))
            seen = first_type.get(name)
            if seen is not None and seen[0] is not param.type:
                raise fail(
                    f"is {param.type.value} here but {seen[0].value} for tool {seen[1]!r} (line {seen[2]}): Cedar sees every "
                    "tool's params in one context.params record, so a param name has one type across tools",
                    pfield, pline,
                )
            first_type.setdefault(name, (param.type, tool, pline))
            params[name] = param
        tools[tool] = params
    return Catalog(tools=tools, source=source, digest=digest)


def _parse_param(name: str, spec: Any, line: int | None, fail: Any) -> Param:
    required = False
    if isinstance(spec, Mapping):
        extra = sorted(set(spec) - {"type", "required", "description"})
        if extra:
            raise fail(f"unknown key {extra[0]!r}; a param has 'type', 'required' (and 'description')")
        required = spec.get("required", False)
        if not isinstance(required, bool):
            raise fail(f"'required' must be true or false, got {required!r}")
        spec = spec.get("type")
    if not isinstance(spec, str):
        raise fail(f"a param's type is one of {_TYPE_NAMES}, got {spec!r}")
    try:
        ptype = ParamType(spec.strip().lower().replace(" ", ""))
    except ValueError:
        raise fail(f"unknown type {spec!r}; use one of {_TYPE_NAMES}") from None
    return Param(name, ptype, required, line)
