"""One rule that makes any event storable in the audit log.

UTF-8 cannot encode a lone surrogate (``"\\ud800"``, which Python strings and JSON's ``\\ud800``
escapes can hold), and JSON cannot hold every Python value. A record that cannot be encoded must not
stop the log, so it is rewritten once, where it enters the log:

* a lone surrogate becomes the six characters ``\\udXXX`` (lowercase hex), so the text still says what it was;
* a value JSON has no form for becomes its ``str()``, or ``<Type: str() raised Error>`` when even that fails;
* a container met again inside itself becomes ``<circular>``; one nested deeper than ``MAX_DEPTH`` becomes
  ``<nested too deeply>``.

Only events that fail to encode take this path: the common case costs nothing.
"""

from __future__ import annotations

import re
from typing import Any

MAX_DEPTH = 200
_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_text(text: str) -> str:
    """``text`` with every lone surrogate written as ``\\udXXX``; other text is returned as it is."""
    if text.isascii():
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def safe_str(value: Any) -> str:
    """``str(value)``, encodable as UTF-8, for any object: a ``__str__`` that raises gives its type instead."""
    try:
        text = value if isinstance(value, str) else str(value)
        if not isinstance(text, str):
            raise TypeError(f"__str__ returned {type(text).__name__}")
    except Exception as exc:  # noqa: BLE001 - any object must have a text form for the log
        return f"<{type(value).__name__}: str() raised {type(exc).__name__}>"
    return escape_text(text)


def safe_document(value: Any, _depth: int = 0, _path: frozenset[int] = frozenset()) -> Any:
    """A copy of ``value`` that canonical JSON can always encode (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, (dict, list, tuple)):
        if id(value) in _path:
            return "<circular>"
        if _depth >= MAX_DEPTH:
            return "<nested too deeply>"
        inner = _path | {id(value)}
        if isinstance(value, dict):
            return {_key(k): safe_document(v, _depth + 1, inner) for k, v in value.items()}
        return [safe_document(v, _depth + 1, inner) for v in value]
    return safe_str(value)


def _key(key: Any) -> str:
    # Keys become strings (as JSON would make them), so keys of mixed types still sort.
    if isinstance(key, bool) or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    return safe_str(key)
