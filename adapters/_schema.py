"""The tool's own argument schema, applied before the policy decides: what the policy sees is what the tool gets.

Frameworks validate a model's arguments with the tool's schema (pydantic, mostly) *after* the hook, and pydantic
coerces: ``"true"``, ``1`` and ``"yes"`` become ``True``, a missing argument takes its default. A policy that reads
``params.recursive == true`` would then allow ``"recursive": "yes"`` and the tool would run with ``True``. So the
adapters hand agt the tool's JSON Schema, and the arguments must match it **strictly** (no coercion: a string is
not a boolean) before anything is decided; missing arguments get the schema's defaults, so the policy sees them.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any, Mapping

import jsonschema
from jsonschema import Draft202012Validator, validators

__all__ = ["SchemaMismatch", "conform", "with_defaults"]


class SchemaMismatch(ValueError):
    """The arguments do not match the tool's declared schema."""


def _is_integer(checker: Any, value: Any) -> bool:
    # Exact decimals (agt reads JSON numbers with a fraction as Decimal): 5.0 is the integer 5, as in JSON Schema.
    if isinstance(value, Decimal):
        return value.is_finite() and value == value.to_integral_value()
    return Draft202012Validator.TYPE_CHECKER.is_type(value, "integer")


def _is_number(checker: Any, value: Any) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    return Draft202012Validator.TYPE_CHECKER.is_type(value, "number")


_TYPES = Draft202012Validator.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_number})
_Validator = validators.extend(Draft202012Validator, type_checker=_TYPES)


def conform(params: Mapping[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` checked strictly against ``schema`` (a JSON Schema object), with the schema's top-level
    defaults filled in for missing arguments (a default satisfies ``required`` and is not itself checked, as
    the framework leaves it). No schema: the params as they are. Raises SchemaMismatch."""
    out = dict(params)
    if schema is None:
        return out
    if not isinstance(schema, Mapping):
        raise SchemaMismatch(f"the tool's argument schema is not a JSON Schema object ({type(schema).__name__})")
    out = with_defaults(out, schema)
    filled = out.keys() - params.keys()
    try:
        validator = _Validator(schema)
        # What the model sent is checked; a filled-in default is the tool's own and is not (pydantic does not
        # validate defaults either: `tag: str = None` is common), though it does count as given.
        errors = sorted((e for e in validator.iter_errors(out) if not (e.absolute_path and e.absolute_path[0] in filled)),
                        key=lambda e: list(e.absolute_path))
    except (jsonschema.SchemaError, jsonschema.exceptions.UnknownType, TypeError, ValueError) as exc:
        raise SchemaMismatch(f"the tool's argument schema cannot be applied: {exc}") from None
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "(the arguments)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SchemaMismatch(f"{where}: {first.message}{more}; the tool's schema allows no other form, so agt does not "
                             "guess what the framework would coerce it to")
    return out


def with_defaults(arguments: Mapping[str, Any], schema: Any) -> dict[str, Any]:
    """``arguments`` with the schema's top-level defaults for the arguments left out: what :func:`conform` gives
    the policy, for an adapter to hand the tool as well."""
    out = dict(arguments)
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if isinstance(properties, Mapping):
        for name, prop in properties.items():
            if name not in out and isinstance(prop, Mapping) and "default" in prop:
                out[name] = copy.deepcopy(prop["default"])
    return out
