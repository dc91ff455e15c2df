"""JSON Schema validation of action documents, through the ``jsonschema`` library."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

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


def validate_action_document(doc: Any) -> None:
    """Raise ActionError for the first schema violation, naming the field by its dotted path."""
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
