"""The HTML helpers escape by default: a value from the log can only ever become text."""

from __future__ import annotations

from agt.serve.dashboard._html import Markup, esc, join, render
from agt.serve.dashboard.plots import horizontal_bars

ATTACK = '<img src=x onerror="alert(1)">'


def test_render_escapes_every_value_including_quotes() -> None:
    out = render('<a title="{t}">{t}</a>', t=ATTACK)
    assert "<img" not in out and "&quot;alert(1)&quot;" in out


def test_adding_a_plain_string_to_markup_escapes_it() -> None:
    assert Markup("<b>") + ATTACK + Markup("</b>") == "<b>" + str(esc(ATTACK)) + "</b>"
    assert isinstance(ATTACK + Markup("<br>"), Markup)
    assert "<img" not in ATTACK + Markup("<br>")


def test_join_keeps_markup_and_escapes_text() -> None:
    assert join([Markup("<i>x</i>"), "<y>"]) == "<i>x</i>&lt;y&gt;"


def test_plot_labels_from_the_log_are_escaped() -> None:
    svg = horizontal_bars([(ATTACK, 3.0)], "top denying rules")
    assert "<img" not in svg and "&lt;img" in svg
