"""One treatment for values not every engine can represent, applied before any engine sees an action.

See docs/action-schema.md ("Value normalization"). In short:

* a number with a fraction is an exact Decimal (a float becomes the decimal its ``repr`` prints); a number
  without one is an int, however it was written (``3.0`` is ``3``); NaN and infinity are rejected;
* bytes become text if they are UTF-8, and are rejected otherwise;
* integers outside Cedar's signed 64-bit range are rejected;
* tuples become lists, sets become sorted lists, datetimes become ISO 8601 strings, enums their value;
* nesting deeper than MAX_DEPTH and strings longer than MAX_STRING_LENGTH are rejected;
* any other type is rejected.

A rejection is an :class:`~agt.errors.ActionError` naming the field; callers turn it into a deny.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
import posixpath
import re
import unicodedata
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Mapping

from agt import _json
from agt.errors import ActionError

MAX_DEPTH = 16
"""Containers (objects and lists) may nest at most this deep, counting the ``params`` or ``attributes``
object itself as level 1: so at most ``MAX_DEPTH - 1`` levels inside it."""

MAX_STRING_LENGTH = 65_536
"""Characters allowed in any one string value."""

MIN_INT, MAX_INT = -(2**63), 2**63 - 1
"""Cedar's Long range; Rego and YAML could go further, but parity cannot."""

MAX_DECIMAL_DIGITS = 64
"""Significant digits allowed in a decimal."""

MAX_DECIMAL_EXPONENT = 400
"""A decimal's magnitude lies within 1e-400 … 1e400 (every float does)."""

JSONValue = Any


def normalize_value(value: Any, field: str, depth: int = 0) -> JSONValue:
    """Return the portable JSON form of ``value``, or raise ActionError naming ``field``."""
    # Exact-type fast paths for what JSON and most tool calls carry; subclasses take the slow path.
    t = type(value)
    if t is str:
        if len(value) > MAX_STRING_LENGTH or not value.isascii():
            _check_string(value, field)
        return value
    if t is int:
        if not MIN_INT <= value <= MAX_INT:
            raise ActionError(field, f"integer {value} is outside the signed 64-bit range every engine supports")
        return value
    if t is dict:
        return normalize_dict(value, field, depth)
    # bool before int: it is an int subclass.
    if value is None or isinstance(value, bool):
        return value
    # A subclass of int or str becomes the plain value it holds, read through the base type: its own comparisons,
    # __eq__, __str__ or __int__ could lie about the range, or be what a YAML rule compares where OPA and Cedar see JSON.
    if isinstance(value, int):
        value = int.__int__(value)
        if not MIN_INT <= value <= MAX_INT:
            raise ActionError(field, f"integer {value} is outside the signed 64-bit range every engine supports")
        return value
    if isinstance(value, str):
        return _check_string(str.__str__(value), field)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ActionError(field, f"{value!r} is not a number every engine can represent; NaN and infinity are rejected")
        # The shortest text that reads back as this float: 0.1 is the decimal 0.1, not 0.1000000000000000055….
        return normalize_decimal(Decimal(repr(value)), field)
    if isinstance(value, Decimal):
        return normalize_decimal(value, field)
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return _check_string(bytes(value).decode("utf-8"), field)
        except UnicodeDecodeError:
            raise ActionError(field, "bytes that are not valid UTF-8 cannot be represented; pass text or base64") from None
    if isinstance(value, enum.Enum):
        return normalize_value(value.value, field, depth)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return _check_string(str(value), field)
    if isinstance(value, Mapping):
        # Other mappings become a plain dict and take the dict path above, with its key checks.
        return normalize_value(dict(value.items()), field, depth)
    if isinstance(value, (list, tuple)):
        _check_depth(field, depth)
        return [normalize_value(item, f"{field}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        _check_depth(field, depth)
        items = [normalize_value(item, f"{field}[]", depth + 1) for item in value]
        return sorted(items, key=lambda v: _json.dumps(v, sort_keys=True))
    raise ActionError(field, f"values of type {type(value).__name__} cannot be represented in an action document")


def normalize_dict(value: dict, field: str, depth: int) -> dict[str, JSONValue]:
    """normalize_value of a plain dict, and normalize_mapping of one (``depth`` 0): the top-level params and attributes."""
    if depth >= MAX_DEPTH:
        _check_depth(field, depth)  # raises, naming the field
    out: dict[str, JSONValue] = {}
    for key, item in value.items():
        if type(key) is not str:
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise ActionError(field, f"object keys must be strings, got {type(key).__name__}")
            key = str.__str__(key) if isinstance(key, str) else int.__repr__(key)  # the text it holds, not its __str__
            if key in value or key in out:
                raise ActionError(f"{field}.{key}", "an integer key and a string key collide once both are text")
        if len(key) > MAX_STRING_LENGTH or not key.isascii():
            _check_string(key, f"{field}.{key[:40]}")
        ti = type(item)
        if ti is str and len(item) <= MAX_STRING_LENGTH and item.isascii():
            out[key] = item  # what normalize_value returns for it, without naming a field nobody reads
        elif ti is int and MIN_INT <= item <= MAX_INT:
            out[key] = item
        else:
            out[key] = normalize_value(item, f"{field}.{key}", depth + 1)
    return out


def normalize_decimal(value: Decimal, field: str) -> int | Decimal:
    """One exact form per value: trailing zeros of the fraction go (``100.10`` is ``100.1``), and a value
    without a fraction is an int (``100.00`` is ``100``). Never rounds: what cannot be kept exactly is rejected."""
    if not value.is_finite():
        raise ActionError(field, f"{value} is not a number every engine can represent; NaN and infinity are rejected")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if not any(digits):
        return 0
    while exponent < 0 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    if exponent >= 0:
        if len(digits) + exponent > 19:  # more digits than any signed 64-bit integer has
            raise ActionError(field, f"integer {value} is outside the signed 64-bit range every engine supports")
        return normalize_value(int(value), field)
    if len(digits) > MAX_DECIMAL_DIGITS or abs(len(digits) + exponent - 1) > MAX_DECIMAL_EXPONENT:
        raise ActionError(
            field, f"decimal {value} has more than {MAX_DECIMAL_DIGITS} significant digits or a magnitude beyond "
            f"1e±{MAX_DECIMAL_EXPONENT}; it cannot be kept exactly"
        )
    return Decimal((sign, digits, exponent))


def copy_json(value: JSONValue) -> JSONValue:
    """Copy a normalized JSON value; far cheaper than copy.deepcopy for plain dicts and lists."""
    t = type(value)
    if t is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if t is list:
        return [copy_json(v) for v in value]
    return value


def normalize_mapping(value: Any, field: str) -> dict[str, JSONValue]:
    if type(value) is dict:  # the common case first, decided by one test
        return normalize_dict(value, field, 0) if value else {}  # {}: a new dict, as the normalized copy would be
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ActionError(field, f"must be an object, got {type(value).__name__}")
    return normalize_value(value, field)


def _check_string(value: str, field: str) -> str:
    if len(value) > MAX_STRING_LENGTH:
        raise ActionError(field, f"string of {len(value)} characters exceeds the limit of {MAX_STRING_LENGTH}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate has no UTF-8 or JSON form: engines would disagree on it.
            raise ActionError(field, "text with an unpaired surrogate cannot be represented") from None
    return value


def _check_depth(field: str, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise ActionError(field, f"nesting deeper than {MAX_DEPTH} levels is rejected")


# --- derived text for pattern rules -----------------------------------------------------------

_QUOTES = str.maketrans("", "", "'\"`\u2018\u2019\u201c\u201d")
_WHITESPACE = re.compile(r"\s+")


def canonical_text(value: str) -> str:
    """Fold a string the way every engine sees it in pattern rules.

    NFKC (so full-width and compatibility forms fold), drop invisible format characters such as
    zero-width spaces, casefold, drop quote characters, collapse whitespace runs to one space.
    """
    if value.isascii():
        return _fold_ascii(value)
    text = unicodedata.normalize("NFKC", value)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = text.casefold().translate(_QUOTES)
    # str.split() splits on exactly the characters ``\s`` matches (str.isspace, checked over every code
    # point in tests/test_normalize_fast.py) and drops them at both ends: _WHITESPACE.sub(" ", text).strip().
    return " ".join(text.split())


def _fold_ascii(value: str) -> str:
    """canonical_text of an ASCII string. ASCII has no compatibility forms and no format characters, and holds
    only three of the quote characters: deleting them with str.replace is what ``translate(_QUOTES)`` does, at a
    tenth of the cost (translate through a dict costs about 1 µs per string)."""
    text = value.lower()
    if "'" in text or '"' in text or "`" in text:
        text = text.replace("'", "").replace('"', "").replace("`", "")
    return " ".join(text.split())


def params_text(params: Mapping[str, JSONValue]) -> str:
    """All string values in ``params`` as canonical text, one line per value.

    A list of scalars is one value whose items are joined by spaces, so ``["rm", "-rf", "/"]`` reads
    as ``rm -rf /``. Separate params stay on separate lines, so a pattern never spans two params.
    """
    if type(params) is dict and len(params) == 1:
        (value,) = params.values()
        if type(value) is str and value.isascii():
            return _fold_ascii(value)  # one line, or none if it folds to nothing: what the loop below joins
    lines: list[str] = []  # never an empty line: each is appended only if it holds text
    if type(params) is dict:  # the common case, a dict of texts, without a call per value
        for key in sorted(params):
            value = params[key]
            if type(value) is str and value.isascii():
                text = _fold_ascii(value)
                if text:
                    lines.append(text)
            else:
                _collect_text(value, lines)
    else:
        _collect_text(params, lines)
    return "\n".join(lines)


def _collect_text(value: JSONValue, lines: list[str]) -> None:
    t = type(value)
    if t is str:  # exact types first: a normalized action holds nothing else; the checks below decide the rest
        _append(lines, canonical_text(value))
    elif t is dict:
        for key in sorted(value):
            _collect_text(value[key], lines)
    elif t is int or t is bool or value is None:
        pass
    elif t is not list and isinstance(value, str):
        _append(lines, canonical_text(value))
    elif t is not list and isinstance(value, Mapping):
        for key in sorted(value):
            _collect_text(value[key], lines)
    elif isinstance(value, list):
        if value and all(not isinstance(v, (Mapping, list)) for v in value):
            _append(lines, canonical_text(" ".join(v if isinstance(v, str) else _json.dumps(v) for v in value)))
        else:
            for item in value:
                _collect_text(item, lines)


def _append(lines: list[str], text: str) -> None:
    if text:
        lines.append(text)


_SLASHES = re.compile(r"^/+")


_PATHS: dict[str, str] = {}
"""canonical_path's results for short paths: a pure function of the text, so a hit is the same answer."""
_PATHS_MAX, _PATH_CACHED_LENGTH = 4096, 512


def canonical_path(path: str) -> str:
    """Resolve ``.``/``..`` and duplicate slashes so a prefix check cannot be walked around."""
    if not path:
        return path
    if type(path) is str:
        known = _PATHS.get(path)
        if known is not None:
            return known
    out = posixpath.normpath(_SLASHES.sub("/", path))
    if type(path) is str and len(path) <= _PATH_CACHED_LENGTH:
        if len(_PATHS) >= _PATHS_MAX:
            _PATHS.clear()
        _PATHS[path] = out
    return out
