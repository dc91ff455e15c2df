"""JSON Schema validation of action documents: a compiled check (fastjsonschema) for the common, valid case, and
the ``jsonschema`` library for the rest, which decides and names the offending field."""

from __future__ import annotations

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
    return fastjsonschema.compile(action_schema())


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
