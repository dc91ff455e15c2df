"""A lexical guard run on Cedar text before cedarpy parses it.

Cedar's parser turns nesting and operator chains into a recursive tree, and deep enough input
overflows the native stack: ``[[[…`` 800 levels deep, or 100,000 ``&&`` in a row, kill the whole
process with a segmentation fault instead of raising. Real policies are nowhere near either bound, so
anything past them is refused as a :class:`PolicyLoadError` with its line before Cedar sees it.
"""

from __future__ import annotations

import re

from agt.errors import PolicyLoadError

MAX_NESTING = 64
"""Brackets ``( [ {`` open at once."""

MAX_OPERATORS = 1_000
"""Operators in one statement (up to its ``;``): each may add a level to Cedar's expression tree."""

_TOKEN = re.compile(
    r'(?P<skip>//[^\n]*|"(?:[^"\\]|\\.)*"|\s+)'
    r"|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<end>;)"
    r"|(?P<op>&&|\|\||[=!<>]=|[-+*!<>.]|\b(?:if|in|has|like|is)\b)"
    r"|(?P<other>[A-Za-z_][A-Za-z0-9_]*|.)",
    re.DOTALL,
)


def check_cedar_text(text: str, source: str) -> None:
    """Raise PolicyLoadError (file and line) for nesting or operator chains past the bounds."""
    depth = operators = 0
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "open":
            depth += 1
            if depth > MAX_NESTING:
                raise PolicyLoadError(f"brackets nest deeper than {MAX_NESTING} levels", file=source, line=_line(text, m.start()))
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "end" and depth == 0:
            operators = 0
        elif kind == "op":
            operators += 1
            if operators > MAX_OPERATORS:
                raise PolicyLoadError(f"more than {MAX_OPERATORS} operators in one statement", file=source, line=_line(text, m.start()))


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
