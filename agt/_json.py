"""JSON that carries exact decimals: a :class:`~decimal.Decimal` is written as a JSON number with its
own digits, never through a float, and read back as a Decimal.

The standard library cannot write a number it did not format itself, so documents holding a Decimal
go through simplejson's ``RawJSON``; everything else takes the faster standard encoder.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import simplejson


def decimal_text(value: Decimal) -> str:
    """The JSON text of a decimal, a function of its value alone (so hashes do not depend on how it was
    spelt). Where a float prints the same value, its text is used: a record written when that number was a
    float re-encodes to the same bytes."""
    if not value.is_finite():
        raise ValueError(f"{value} is not a JSON number")
    text = repr(float(value))
    if text not in ("inf", "-inf") and Decimal(text) == value:
        return text
    return str(value)


def _raw_decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return simplejson.RawJSON(decimal_text(value))
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(
    value: Any,
    *,
    sort_keys: bool = False,
    separators: tuple[str, str] | None = None,
    indent: int | None = None,
    ensure_ascii: bool = True,
    allow_nan: bool = True,
) -> str:
    """``json.dumps`` with the same options, writing a Decimal as a JSON number with its exact digits."""
    options = dict(sort_keys=sort_keys, separators=separators, indent=indent, ensure_ascii=ensure_ascii, allow_nan=allow_nan)
    try:
        return json.dumps(value, **options)  # type: ignore[arg-type]
    except TypeError:
        pass
    return simplejson.dumps(value, default=_raw_decimal, use_decimal=False, **options)  # type: ignore[arg-type]


def loads(text: str | bytes) -> Any:
    """``json.loads``, reading every number with a fraction or an exponent as an exact Decimal."""
    return json.loads(text, parse_float=Decimal)
