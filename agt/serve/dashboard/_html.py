"""HTML built from strings where every value is escaped unless it is already :class:`Markup`.

The audit log is written by what the agent asked for (tool names, params, agent ids, approval notes): every
one of those strings is attacker-controlled, so escaping is the default and the exception is explicit.
"""

from __future__ import annotations

import html
from typing import Any, Iterable


class Markup(str):
    """Text that is already HTML: built here from escaped parts, never from a value read from the log.
    Adding a plain string to it escapes that string, so a concatenation can only ever add text."""

    def __add__(self, other: Any) -> "Markup":
        return Markup(str.__add__(self, esc(other)))

    def __radd__(self, other: Any) -> "Markup":
        return Markup(str.__add__(esc(other), self))


def esc(value: Any) -> Markup:
    """``value`` as HTML text (quotes escaped too, so it is safe inside an attribute)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def render(template: str, **values: Any) -> Markup:
    """``template`` (trusted, written in this package) with each ``{name}`` replaced by its escaped value."""
    return Markup(template.format(**{k: esc(v) for k, v in values.items()}))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    return Markup(sep.join(esc(p) for p in parts))
