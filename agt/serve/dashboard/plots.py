"""Small SVG plots drawn on the server: no script, no network, every label escaped."""

from __future__ import annotations

import time
from typing import Mapping, Sequence

from agt.serve.dashboard._html import Markup, join, render

EFFECT_CLASS = {"allow": "allow", "require_approval": "approval", "deny": "deny"}


def _svg(width: int, height: int, label: str, body: Sequence[Markup]) -> Markup:
    return Markup(render('<svg class="plot" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}">'
                         '<title>{label}</title>', w=width, h=height, label=label) + join(body) + Markup("</svg>"))


def decisions_per_minute(buckets: Sequence[tuple[float, Mapping[str, int]]]) -> Markup:
    """Stacked bars, one per minute: allow, require_approval, deny."""
    width, height, left, bottom = 640, 180, 36, 20
    peak = max([sum(c.values()) for _, c in buckets] + [1])
    slot = (width - left) / max(1, len(buckets))
    body: list[Markup] = [render('<text class="axis" x="2" y="12">{peak}</text><text class="axis" x="2" y="{y}">0</text>',
                                 peak=peak, y=height - bottom)]
    for i, (start, counts) in enumerate(buckets):
        y = height - bottom
        for effect in ("allow", "require_approval", "deny"):
            n = counts.get(effect, 0)
            if not n:
                continue
            h = n / peak * (height - bottom - 10)
            y -= h
            body.append(render('<rect class="{cls}" x="{x}" y="{y}" width="{w}" height="{h}">'
                               '<title>{when} {effect}: {n}</title></rect>',
                               cls=EFFECT_CLASS[effect], x=f"{left + i * slot + 1:.1f}", y=f"{y:.1f}",
                               w=f"{max(1.0, slot - 2):.1f}", h=f"{h:.1f}", when=time.strftime("%H:%M", time.gmtime(start)),
                               effect=effect, n=n))
        if i % 5 == 0:
            body.append(render('<text class="axis" x="{x}" y="{y}">{label}</text>', x=f"{left + i * slot:.1f}", y=height - 4,
                               label=time.strftime("%H:%M", time.gmtime(start))))
    return _svg(width, height, "decisions per minute by effect (UTC)", body)


def horizontal_bars(items: Sequence[tuple[str, float]], label: str, unit: str = "", css: str = "deny") -> Markup:
    """One labelled bar per item (the label is the item's name, escaped)."""
    width, row_h, name_w = 640, 22, 260
    height = max(1, len(items)) * row_h + 4
    peak = max([v for _, v in items] + [1])
    body: list[Markup] = []
    for i, (name, value) in enumerate(items):
        y = i * row_h + 2
        w = value / peak * (width - name_w - 80)
        body.append(render('<text class="label" x="0" y="{ty}">{name}</text>'
                           '<rect class="{cls}" x="{x}" y="{y}" width="{w}" height="{h}"><title>{name}: {value}</title></rect>'
                           '<text class="axis" x="{vx}" y="{ty}">{value}{unit}</text>',
                           ty=y + 15, name=name if len(name) <= 36 else name[:35] + "…", cls=css, x=name_w, y=y,
                           w=f"{max(1.0, w):.1f}", h=row_h - 6, value=_num(value), unit=unit, vx=f"{name_w + w + 6:.1f}"))
    if not items:
        body.append(Markup('<text class="axis" x="0" y="16">none yet</text>'))
    return _svg(width, height, label, body)


def trust_over_time(points: Sequence[tuple[float, int]], now: float) -> Markup:
    """The score as a step line over the ring boundaries (300, 700, 900)."""
    width, height, left = 640, 200, 40
    if not points:
        return _svg(width, 40, "trust over time", [Markup('<text class="axis" x="0" y="16">no trust record yet</text>')])
    t0, t1 = points[0][0], max(now, points[-1][0] + 1)

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * (width - left - 10)

    def y(score: float) -> float:
        return 10 + (1000 - score) / 1000 * (height - 30)

    body: list[Markup] = []
    for boundary, name in ((900, "ring 0"), (700, "ring 1"), (300, "ring 2")):
        body.append(render('<line class="band" x1="{l}" x2="{r}" y1="{y}" y2="{y}"/><text class="axis" x="0" y="{ty}">{b}</text>'
                           '<text class="axis" x="{r2}" y="{ty}">{name}</text>', l=left, r=width - 10, y=f"{y(boundary):.1f}",
                           ty=f"{y(boundary) + 4:.1f}", b=boundary, name=name, r2=width - 60))
    path = [f"M{x(points[0][0]):.1f},{y(points[0][1]):.1f}"]
    for t, score in points[1:]:
        path.append(f"H{x(t):.1f}V{y(score):.1f}")
    path.append(f"H{x(t1):.1f}")
    body.append(render('<path class="trust" d="{d}"/>', d="".join(path)))
    body.append(render('<text class="axis" x="{l}" y="{b}">{start}</text><text class="axis" x="{r}" y="{b}">{end}</text>',
                       l=left, r=width - 70, b=height - 4, start=time.strftime("%H:%M:%S", time.gmtime(t0)),
                       end=time.strftime("%H:%M:%S", time.gmtime(t1))))
    return _svg(width, height, "trust score over time, with the ring boundaries", body)


def _num(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
