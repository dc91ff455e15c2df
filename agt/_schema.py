"""JSON Schema validation of action documents: a compiled check (fastjsonschema) for the common, valid case, and
the ``jsonschema`` library for the rest, which decides and names the offending field."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable

from agt.errors import ActionError

if TYPE_CHECKING:
    import jsonschema


@lru_cache(maxsize=1)
def action_schema() -> dict[str, Any]:
    return json.loads(resources.files("agt.schema").joinpath("action.schema.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    import jsonschema  # here, not at import: ~45 ms of start-up for code that never validates (issue 14)

    schema = action_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@lru_cache(maxsize=1)
def _fast_check() -> Callable[[Any], Any] | None:
    """The schema compiled to Python by fastjsonschema (~15 µs a document, against jsonschema's ~200 µs), or None
    where it is not installed. It only ever says "valid" first: jsonschema stays the authority (see below)."""
    try:
        import fastjsonschema
    except ImportError:
        return None
    # fastjsonschema compiles ``uniqueItems`` to a recursive closure made afresh on every call: a reference cycle
    # per document, so the garbage collector ran every ~140 decisions in agt serve. The one list that has it,
    # agent.roles, holds strings (the compiled check proves that first), so a set says the same without a cycle.
    schema = copy.deepcopy(action_schema())
    roles = schema["properties"]["agent"]["properties"]["roles"]
    if roles.pop("uniqueItems", None) is not True or roles.get("items") != {"type": "string"} or _has_unique_items(schema):
        raise RuntimeError("action.schema.json changed where _fast_check relies on it: agent.roles is the one "
                           "uniqueItems list, of strings")
    compiled = fastjsonschema.compile(schema)

    def check(doc: Any) -> None:
        compiled(doc)
        listed = doc["agent"].get("roles")
        if listed is not None and len(set(listed)) != len(listed):
            raise ValueError("agent.roles has duplicates")

    return check


def _has_unique_items(node: Any) -> bool:
    if isinstance(node, dict):
        return "uniqueItems" in node or any(_has_unique_items(v) for v in node.values())
    return isinstance(node, list) and any(_has_unique_items(v) for v in node)


def validate_action_document(doc: Any) -> None:
    """Raise ActionError for the first schema violation, naming the field by its dotted path.

    A document the compiled check accepts is valid; any other goes to jsonschema, which decides and names the
    field. Where the two could disagree (fastjsonschema implements draft 7, the schema says 2020-12; the keywords
    it uses mean the same in both), a disagreement can only send a valid document the slow way: the compiled
    check never decides a refusal (tests/test_schema_validation.py checks it accepts nothing jsonschema refuses)."""
    fast = _fast_check()
    if fast is not None:
        try:
            fast(doc)
            return
        except Exception:  # noqa: BLE001 - JsonSchemaException, or anything else: jsonschema decides
            pass
    try:
        errors = sorted(_validator().iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    except RecursionError:
        raise ActionError("<document>", "nested too deeply to validate") from None
    if errors:
        err = errors[0]
        path = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else ""
            path = f"{path}.{missing}".strip(".")
            raise ActionError(path, "is required")
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            extra = sorted(k for k in err.instance if k not in allowed)
            if extra:
                raise ActionError(f"{path}.{extra[0]}".strip("."), f"unknown field {extra[0]!r}; {err.message}")
        raise ActionError(path or "<document>", err.message)
