"""Hand-written inline SVG charts: axes, point clouds, lines, bars. No dependency.

A point cloud is one `<path>` of zero-length round-capped segments (``M x y h0``), about
14 bytes a point, so thousands of points stay small and render fast. Coordinates are
rounded to 0.1 px.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Tick = tuple[float, str]


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[Tick]:
    """About `n` round tick values in [lo, hi] with short labels.

    >>> nice_ticks(0, 1, 5)
    [(0.0, '0'), (0.2, '0.2'), (0.4, '0.4'), (0.6, '0.6'), (0.8, '0.8'), (1.0, '1')]
    >>> [t[1] for t in nice_ticks(0, 12_000, 4)]
    ['0', '5,000', '10,000']
    """
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [(lo, fmt(lo))] if math.isfinite(lo) else []
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        v = round(k * step, 12)
        ticks.append((v, fmt(v)))
        k += 1
    return ticks


def fmt(v: float) -> str:
    """A short label: thousands separators for large numbers, 3 significant digits else.

    >>> fmt(12500.0), fmt(0.00123), fmt(3.0), fmt(float("nan"))
    ('12,500', '0.00123', '3', '–')
    """
    if not math.isfinite(v):
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _coords(xs: Floats, ys: Floats) -> list[tuple[float, float]]:
    return list(zip(np.round(xs, 1).tolist(), np.round(ys, 1).tolist(), strict=True))


class Plot:
    """One chart: data ranges mapped into a `width` x `height` box with margins."""

    def __init__(self, width: int, height: int, xlim: tuple[float, float],
                 ylim: tuple[float, float], *, title: str = "", xlabel: str = "",
                 ylabel: str = "", left: int = 56, bottom: int = 38, right: int = 26) -> None:
        self.w, self.h = width, height
        self.x0, self.x1 = left, width - right
        self.y0, self.y1 = height - bottom, 26 if title else 10
        lo, hi = xlim
        self.xlim = (lo, hi if hi > lo else lo + 1)
        lo, hi = ylim
        self.ylim = (lo, hi if hi > lo else lo + 1)
        self.parts: list[str] = []
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self.legend_items: list[tuple[str, str]] = []

    def sx(self, v: npt.ArrayLike) -> Floats:
        lo, hi = self.xlim
        return self.x0 + (np.asarray(v, np.float64) - lo) / (hi - lo) * (self.x1 - self.x0)

    def sy(self, v: npt.ArrayLike) -> Floats:
        lo, hi = self.ylim
        return self.y0 - (np.asarray(v, np.float64) - lo) / (hi - lo) * (self.y0 - self.y1)

    def axes(self, xticks: Sequence[Tick] | None = None,
             yticks: Sequence[Tick] | None = None) -> Plot:
        xt = nice_ticks(*self.xlim) if xticks is None else xticks
        yt = nice_ticks(*self.ylim, n=4) if yticks is None else yticks
        out = [f'<rect x="{self.x0}" y="{self.y1}" width="{self.x1 - self.x0}" '
               f'height="{self.y0 - self.y1}" class="frame"/>']
        for v, label in xt:
            x = float(self.sx(v))
            if self.x0 - 0.5 <= x <= self.x1 + 0.5:
                out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.y1}" y2="{self.y0}" '
                           f'class="grid"/><text x="{x:.1f}" y="{self.y0 + 14}" '
                           f'class="tick" text-anchor="middle">{escape(label)}</text>')
        for v, label in yt:
            y = float(self.sy(v))
            if self.y1 - 0.5 <= y <= self.y0 + 0.5:
                out.append(f'<line x1="{self.x0}" x2="{self.x1}" y1="{y:.1f}" y2="{y:.1f}" '
                           f'class="grid"/><text x="{self.x0 - 5}" y="{y + 4:.1f}" '
                           f'class="tick" text-anchor="end">{escape(label)}</text>')
        if self.title:
            out.append(f'<text x="{self.x0}" y="16" class="title">{escape(self.title)}</text>')
        if self.xlabel:
            out.append(f'<text x="{(self.x0 + self.x1) / 2:.0f}" y="{self.h - 6}" '
                       f'class="label" text-anchor="middle">{escape(self.xlabel)}</text>')
        if self.ylabel:
            yc = (self.y0 + self.y1) / 2
            out.append(f'<text x="12" y="{yc:.0f}" class="label" text-anchor="middle" '
                       f'transform="rotate(-90 12 {yc:.0f})">{escape(self.ylabel)}</text>')
        self.parts[:0] = out
        return self

    def points(self, x: npt.ArrayLike, y: npt.ArrayLike, color: str, size: float = 3.0,
               label: str = "", opacity: float = 1.0) -> Plot:
        xs, ys = self.sx(x), self.sy(y)
        if len(xs):
            d = "".join(f"M{a} {b}h0" for a, b in _coords(xs, ys))
            self.parts.append(f'<path d="{d}" stroke="{color}" stroke-width="{size}" '
                              f'stroke-linecap="round" stroke-opacity="{opacity}"/>')
        if label:
            self.legend_items.append((color, label))
        return self

    def marks(self, x: npt.ArrayLike, y: npt.ArrayLike, titles: Sequence[str], color: str,
              r: float = 4.0, label: str = "") -> Plot:
        """Hollow circles with a hover title each (for a few labelled points)."""
        for (a, b), t in zip(_coords(self.sx(x), self.sy(y)), titles, strict=True):
            self.parts.append(f'<circle cx="{a}" cy="{b}" r="{r}" fill="none" stroke="{color}"'
                              f' stroke-width="1.5"><title>{escape(t)}</title></circle>')
        if label:
            self.legend_items.append((color, label))
        return self

    def line(self, x: npt.ArrayLike, y: npt.ArrayLike, color: str, width: float = 1.5,
             label: str = "", dash: str = "") -> Plot:
        pts = " ".join(f"{a},{b}" for a, b in _coords(self.sx(x), self.sy(y)))
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                          f'stroke-width="{width}"{extra}/>')
        if label:
            self.legend_items.append((color, label))
        return self

    def hline(self, y: float, color: str, label: str = "", dash: str = "4 3") -> Plot:
        return self.line(self.xlim, [y, y], color, 1.2, label, dash)

    def vlines(self, xs: Sequence[float], color: str, label: str = "") -> Plot:
        for x in xs:
            px = float(self.sx(x))
            self.parts.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{self.y1}" '
                              f'y2="{self.y0}" stroke="{color}" stroke-width="1.5"/>')
        if label and len(xs):
            self.legend_items.append((color, label))
        return self

    def bars(self, lo: npt.ArrayLike, hi: npt.ArrayLike, heights: npt.ArrayLike, color: str,
             label: str = "") -> Plot:
        """Vertical bars from 0 (or the bottom of the y range) to `heights`."""
        base = float(self.sy(max(self.ylim[0], 0.0)))
        for a, b, t in zip(self.sx(lo).tolist(), self.sx(hi).tolist(),
                           self.sy(heights).tolist(), strict=True):
            self.parts.append(f'<rect x="{a + 0.5:.1f}" y="{min(t, base):.1f}" '
                              f'width="{max(b - a - 1, 0.5):.1f}" height="{abs(base - t):.1f}" '
                              f'fill="{color}"/>')
        if label:
            self.legend_items.append((color, label))
        return self

    def svg(self) -> str:
        """The chart; the legend goes in rows under it (labels wrap at the chart width)."""
        legend, x, y = [], float(self.x0), self.h + 4
        for color, label in self.legend_items:
            span = 18 + 6.3 * len(label) + 14
            if x + span > self.w and x > self.x0:
                x, y = float(self.x0), y + 16
            legend.append(f'<rect x="{x:.0f}" y="{y}" width="10" height="10" fill="{color}"/>'
                          f'<text x="{x + 14:.0f}" y="{y + 9}" class="tick">{escape(label)}'
                          "</text>")
            x += span
        height = self.h + (y - self.h + 16 if legend else 0)
        body = "".join(self.parts + legend)
        return (f'<svg viewBox="0 0 {self.w} {height}" width="{self.w}" height="{height}" '
                f'role="img" aria-label="{escape(self.title)}">{body}</svg>')


def hbars(items: Sequence[tuple[str, float]], *, title: str, lo: float = 0.0, hi: float = 1.0,
          ref: float | None = None, width: int = 560, color: str = "#3b6fb6") -> str:
    """Horizontal bars, one per (name, value), with an optional reference line."""
    row = 20
    left = 10 + 7 * max((len(n) for n, _ in items), default=4)
    p = Plot(width, 48 + row * len(items), (lo, hi), (0, len(items)), title=title,
             left=min(left, width // 2), right=48)
    for k, (name, value) in enumerate(items):
        y = float(p.sy(len(items) - k - 0.5))
        x = float(p.sx(min(max(value, lo), hi))) if math.isfinite(value) else p.x0
        p.parts.append(f'<rect x="{p.x0}" y="{y - 7:.1f}" width="{x - p.x0:.1f}" height="14" '
                       f'fill="{color}"/><text x="{p.x0 - 5}" y="{y + 4:.1f}" class="tick" '
                       f'text-anchor="end">{escape(name)}</text><text x="{x + 4:.1f}" '
                       f'y="{y + 4:.1f}" class="tick">{fmt(value)}</text>')
    if ref is not None:
        x = float(p.sx(ref))
        p.parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{p.y1}" y2="{p.y0}" '
                       f'stroke="#888" stroke-dasharray="4 3"/>')
    return p.axes(yticks=[]).svg()
