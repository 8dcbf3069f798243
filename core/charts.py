"""Server-side SVG charts drawn from report data. Pure Python: no Django.

Why SVG from the server rather than a JavaScript chart library: the page is complete
without running any script (a tablet, a screen reader, a PDF print and a test all see the
same chart), there is nothing to pin or serve beyond our own code, and each chart carries
a <title> and <desc> so it is announced rather than skipped. Lives in `customers`, the
lowest app, so every app above can draw with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ["#0b5cad", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#4d7c0f"]


@dataclass
class Series:
    name: str
    x: Sequence[float]
    y: Sequence[float]
    lo: Sequence[float] | None = None  # optional band (confidence interval)
    hi: Sequence[float] | None = None
    step: bool = False  # survival curves are step functions
    dashed: bool = False


@dataclass
class Frame:
    width: int = 640
    height: int = 300
    left: int = 56
    right: int = 16
    top: int = 16
    bottom: int = 44
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)
    parts: list[str] = field(default_factory=list)

    def sx(self, x: float) -> float:
        lo, hi = self.x_range
        return self.left + (x - lo) / ((hi - lo) or 1.0) * (self.width - self.left - self.right)

    def sy(self, y: float) -> float:
        lo, hi = self.y_range
        return self.height - self.bottom - (y - lo) / ((hi - lo) or 1.0) * (self.height - self.top - self.bottom)


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.ceil(lo / step) * step
    ticks, value = [], start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.3g}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _open(frame: Frame, title: str, description: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} {frame.height}" '
        f'role="img" class="chart" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>",
    ]


def _axes(frame: Frame, x_label: str, y_label: str, y_percent: bool, x_percent: bool = False) -> list[str]:
    out = []
    for tick in nice_ticks(*frame.y_range):
        y = frame.sy(tick)
        out.append(f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#374151">{_fmt(tick, y_percent)}</text>')
    for tick in nice_ticks(*frame.x_range):
        x = frame.sx(tick)
        out.append(f'<text x="{x:.1f}" y="{frame.height - frame.bottom + 16}" text-anchor="middle" font-size="11" fill="#374151">{_fmt(tick, x_percent)}</text>')
    base = frame.height - frame.bottom
    out.append(f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{base}" y2="{base}" stroke="#6b7280"/>')
    out.append(f'<text x="{(frame.left + frame.width - frame.right) / 2:.0f}" y="{frame.height - 6}" text-anchor="middle" font-size="12" fill="#111827">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(14 {(frame.top + base) / 2:.0f}) rotate(-90)" text-anchor="middle" font-size="12" fill="#111827">{escape(y_label)}</text>')
    return out


def _legend(frame: Frame, names: Sequence[str]) -> list[str]:
    out, x = [], frame.left + 8
    for i, name in enumerate(names):
        color = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x}" y="{frame.top}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{x + 14}" y="{frame.top + 9}" font-size="11" fill="#111827">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return out


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_percent: bool = False,
    x_percent: bool = False,
    y_range: tuple[float, float] | None = None,
    zero_line: bool = False,
) -> str:
    xs = [v for s in series for v in _finite(s.x)]
    ys = [v for s in series for v in _finite(s.y) + _finite(s.lo or []) + _finite(s.hi or [])]
    frame = Frame(x_range=(min(xs, default=0.0), max(xs, default=1.0)))
    if y_range is None:
        lo, hi = min(ys, default=0.0), max(ys, default=1.0)
        pad = (hi - lo) * 0.08 or 0.01
        y_range = (lo - pad if lo < 0 or zero_line else min(0.0, lo), hi + pad)
    frame.y_range = y_range
    description = "; ".join(
        f"{s.name}: {len(s.x)} points from {_fmt(_finite(s.y)[0], y_percent)} to {_fmt(_finite(s.y)[-1], y_percent)}"
        for s in series if _finite(s.y)
    )
    out = _open(frame, title, description) + _axes(frame, x_label, y_label, y_percent, x_percent)
    if zero_line and y_range[0] < 0 < y_range[1]:
        y0 = frame.sy(0)
        out.append(f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{y0:.1f}" y2="{y0:.1f}" stroke="#111827" stroke-dasharray="4 3"/>')
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        points = [(frame.sx(x), frame.sy(y)) for x, y in zip(s.x, s.y) if y is not None]
        if s.lo is not None and s.hi is not None:
            upper = [(frame.sx(x), frame.sy(h)) for x, h in zip(s.x, s.hi) if h is not None]
            lower = [(frame.sx(x), frame.sy(lo_)) for x, lo_ in zip(s.x, s.lo) if lo_ is not None]
            band = _path(upper, s.step) + " " + _path(list(reversed(lower)), s.step, move=False) + " Z"
            out.append(f'<path d="{band}" fill="{color}" fill-opacity="0.15" stroke="none"/>')
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        out.append(f'<path class="series" data-name="{escape(s.name)}" d="{_path(points, s.step)}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
    out += _legend(frame, [s.name for s in series])
    out.append("</svg>")
    return "".join(out)


def _path(points: list[tuple[float, float]], step: bool, move: bool = True) -> str:
    if not points:
        return ""
    parts = [("M" if move else "L") + f"{points[0][0]:.1f},{points[0][1]:.1f}"]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if step:
            parts.append(f"L{x1:.1f},{y0:.1f}")
        parts.append(f"L{x1:.1f},{y1:.1f}")
    return " ".join(parts)


def interval_chart(
    rows: Sequence[tuple[str, float, float, float]], *, title: str, value_label: str, percent: bool = False
) -> str:
    """One dot with its interval per row: (name, value, low, high). Rates per arm, lifts."""
    values = [v for _, m, lo, hi in rows for v in (m, lo, hi) if v is not None]
    lo_, hi_ = min(values, default=0.0), max(values, default=1.0)
    pad = (hi_ - lo_) * 0.1 or 0.01
    height = 40 + 34 * len(rows) + 40
    frame = Frame(width=640, height=height, left=150, top=20, bottom=40,
                  x_range=(min(0.0, lo_ - pad) if percent else lo_ - pad, hi_ + pad), y_range=(0, len(rows)))
    def said(value: float | None) -> str:
        return "n/a" if value is None else _fmt(value, percent)

    description = "; ".join(f"{name}: {said(m)} ({said(lo)} to {said(hi)})" for name, m, lo, hi in rows)
    out = _open(frame, title, description)
    for tick in nice_ticks(*frame.x_range):
        x = frame.sx(tick)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top}" y2="{height - frame.bottom}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{x:.1f}" y="{height - frame.bottom + 16}" text-anchor="middle" font-size="11" fill="#374151">{_fmt(tick, percent)}</text>')
    out.append(f'<text x="{(frame.left + frame.width) / 2:.0f}" y="{height - 6}" text-anchor="middle" font-size="12">{escape(value_label)}</text>')
    for i, (name, m, lo, hi) in enumerate(rows):
        y = frame.top + 17 + 34 * i
        color = PALETTE[i % len(PALETTE)]
        out.append(f'<text x="{frame.left - 8}" y="{y + 4}" text-anchor="end" font-size="12">{escape(name)}</text>')
        if lo is not None and hi is not None:
            out.append(f'<line x1="{frame.sx(lo):.1f}" x2="{frame.sx(hi):.1f}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="3"/>')
        if m is not None:
            out.append(f'<circle class="point" cx="{frame.sx(m):.1f}" cy="{y}" r="5" fill="{color}"/>')
    out.append("</svg>")
    return "".join(out)


def sparkline(values: Sequence[float], *, title: str, width: int = 120, height: int = 28) -> str:
    finite = _finite(values)
    if len(finite) < 2:
        return f'<svg viewBox="0 0 {width} {height}" role="img" class="spark"><title>{escape(title)}</title></svg>'
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    step = (width - 4) / (len(finite) - 1)
    points = " ".join(f"{2 + i * step:.1f},{height - 3 - (v - lo) / span * (height - 6):.1f}" for i, v in enumerate(finite))
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" class="spark">'
        f"<title>{escape(title)}: from {_fmt(finite[0], False)} to {_fmt(finite[-1], False)}</title>"
        f'<polyline points="{points}" fill="none" stroke="{PALETTE[0]}" stroke-width="1.5"/></svg>'
    )


def size_trend(values: Sequence[float], *, title: str) -> tuple[str, str]:
    """(sparkline SVG or "", words) for sizes at each refresh. A line needs two different
    values: one refresh, or the same size every time, is said in words instead of drawn
    as an empty box or a flat line that reads like "nothing here"."""
    finite = _finite(values)
    if not finite:
        return "", "not refreshed yet"
    if len(finite) == 1:
        return "", "one refresh so far: the trend starts at the next"
    if min(finite) == max(finite):
        return "", f"unchanged at {finite[-1]:,.0f} over {len(finite)} refreshes"
    return sparkline(finite, title=title), f"{finite[0]:,.0f} to {finite[-1]:,.0f} over {len(finite)} refreshes"


def matrix_chart(labels_from: Sequence[str], labels_to: Sequence[str], counts: Sequence[Sequence[int]], *, title: str) -> str:
    """A transition matrix as a heat map: rows are where customers were, columns where they went."""
    cell, left, top = 56, 160, 110
    width, height = left + cell * len(labels_to) + 10, top + cell * len(labels_from) + 10
    peak = max((c for row in counts for c in row), default=1) or 1
    description = "; ".join(
        f"{a} to {b}: {counts[i][j]}" for i, a in enumerate(labels_from) for j, b in enumerate(labels_to) if counts[i][j]
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart">',
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>",
    ]
    for j, name in enumerate(labels_to):
        x = left + cell * j + cell / 2
        out.append(f'<text transform="translate({x:.0f} {top - 6}) rotate(-40)" font-size="11">{escape(name)}</text>')
    for i, name in enumerate(labels_from):
        y = top + cell * i
        out.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4:.0f}" text-anchor="end" font-size="11">{escape(name)}</text>')
        for j in range(len(labels_to)):
            value = counts[i][j]
            shade = value / peak
            fill = f"rgba(11,92,173,{0.08 + 0.85 * shade:.2f})"
            text = "#fff" if shade > 0.5 else "#111827"
            x = left + cell * j
            out.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}"/>')
            out.append(f'<text x="{x + cell / 2 - 1:.0f}" y="{y + cell / 2 + 4:.0f}" text-anchor="middle" font-size="11" fill="{text}">{value}</text>')
    out.append("</svg>")
    return "".join(out)
