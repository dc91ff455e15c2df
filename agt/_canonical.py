"""The one canonical JSON form agt hashes and signs: sorted keys, no whitespace, UTF-8, no HTML
escaping, decimals as JSON numbers with their exact digits. It is also OPA's canonical form for bundle
data files, so bundle hashes match OPA's."""

from __future__ import annotations

import json
from typing import Any

from agt import _json

# What ``json.dumps`` would build for these options on every call, built once: an encoder only reads its options,
# so one instance serves every thread. The audit writer encodes each record twice through it.
_ENCODERS = {allow_nan: json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)
             for allow_nan in (True, False)}


def canonical_json(value: Any, *, allow_nan: bool = True) -> bytes:
    try:
        text = _ENCODERS[bool(allow_nan)].encode(value)
    except TypeError:  # a Decimal (or a type JSON has no form for): agt's encoder writes the one, names the other
        text = _json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)
    return text.encode("utf-8")
