"""The one canonical JSON form agt hashes and signs: sorted keys, no whitespace, UTF-8, no HTML
escaping, decimals as JSON numbers with their exact digits. It is also OPA's canonical form for bundle
data files, so bundle hashes match OPA's.

The form is the standard library's ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
encoded as UTF-8, byte for byte. orjson writes it about five times faster, and writes the same bytes for
every string, integer, key order and structure; it differs only where this module lets ``json`` write
instead (tests/test_canonical.py holds both to it):

- a float below 1e-4 in size: orjson writes ``1e-7`` and ``0.00001`` where ``repr`` writes ``1e-07``
  and ``1e-05``; every other finite float is written alike (both print the shortest round-trip digits);
- NaN and infinities, which orjson writes as ``null``;
- anything orjson refuses or is told to pass on: integers past 64 bits, nesting past 254 levels, keys that
  are not strings, subclasses of str, int, dict and list (``json`` reads them through their own methods),
  dataclasses, dates, Decimals and lone surrogates.

So orjson's output is kept only when it holds none of ``null``, ``e-`` or ``0.0000`` (a string holding one
only costs the slower encoder). orjson also writes an Enum member as its value and a UUID as its string,
which ``json`` refuses; the ``json`` path does the same, so the two never disagree on what is encodable.
"""

from __future__ import annotations

import enum
import json
import uuid
from typing import Any

import orjson

from agt import _json


def _as_orjson_writes(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# What ``json.dumps`` would build for these options on every call, built once: an encoder only reads its options,
# so one instance serves every thread.
_ENCODERS = {allow_nan: json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan,
                                         default=_as_orjson_writes)
             for allow_nan in (True, False)}

_ORJSON_OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
                   | orjson.OPT_PASSTHROUGH_DATETIME)


def _pass_on(value: Any) -> Any:
    raise TypeError("left to json")


def canonical_json_if_orjson(value: Any) -> bytes | None:
    """``canonical_json(value)`` when orjson's bytes are it, else None (the value is then left to ``json``). Bytes from
    here also say how ``value`` is built: dicts, lists and tuples of exactly those types, string keys, no lone
    surrogates (the audit log's masking reads keys off them)."""
    try:
        fast = orjson.dumps(value, default=_pass_on, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is one
        return None
    return fast if b"null" not in fast and b"e-" not in fast and b"0.0000" not in fast else None


def canonical_json(value: Any, *, allow_nan: bool = True) -> bytes:
    fast = canonical_json_if_orjson(value)
    if fast is not None:
        return fast
    try:
        text = _ENCODERS[bool(allow_nan)].encode(value)
    except TypeError:  # a Decimal (or a type JSON has no form for): agt's encoder writes the one, names the other
        text = _json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)
    return text.encode("utf-8")
