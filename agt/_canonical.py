"""The one canonical JSON form agt hashes and signs: sorted keys, no whitespace, UTF-8, no HTML
escaping, decimals as JSON numbers with their exact digits. It is also OPA's canonical form for bundle
data files, so bundle hashes match OPA's."""

from __future__ import annotations

from typing import Any

from agt import _json


def canonical_json(value: Any, *, allow_nan: bool = True) -> bytes:
    return _json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan).encode("utf-8")
