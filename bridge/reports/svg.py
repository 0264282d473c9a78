"""Tiny inline SVG charts: no JavaScript, no fonts or styles fetched, so a page opens offline.

Every chart is a string of `<svg>` to paste into HTML; text is escaped here, values are
plain numbers, and `None` in a series means "no data" (a gap, not a zero).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["PALETTE", "bar_chart", "hbar_chart", "line_chart", "nice_max", "stacked_bar"]

PALETTE = ("#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04")
_AXIS = "#94a3b8"
_TEXT = "#475569"
_FONT = "font-family='system-ui,sans-serif' font-size='11'"


def nice_max(value: float) -> float:
    """A round number at or above `value` for the top of an axis (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _num(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2g}" if value < 1 else f"{value:.1f}"


def _open(width: int, height: int, title: str) -> str:
    return (
        f"<svg class='wide' viewBox='0 0 {width} {height}' "
        f"width='{width}' height='{height}' role='img' aria-label='{escape(title)}'>"
        f"<title>{escape(title)}</title>"
    )


def _frame(
    width: int, height: int, top: float, unit: str, x_labels: Sequence[str]
) -> tuple[list[str], float, float, float, float]:
    """Axes, grid and labels; returns the parts and the plot box (left, right, y0, y1)."""
    left, right, y0, y1 = 44.0, width - 8.0, 10.0, height - 22.0
    parts = []
    for i in range(3):
        value = top * i / 2
        y = y1 - (y1 - y0) * i / 2
        parts.append(
            f"<line x1='{left}' x2='{right}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e2e8f0'/>"
            f"<text x='{left - 4}' y='{y + 4:.1f}' text-anchor='end' fill='{_TEXT}' {_FONT}>"
            f"{escape(_num(value) + unit)}</text>"
        )
    parts.append(f"<line x1='{left}' x2='{right}' y1='{y1}' y2='{y1}' stroke='{_AXIS}'/>")
    for i, label in enumerate(x_labels):
        if not label:
            continue
        x = left + (right - left) * i / max(len(x_labels) - 1, 1)
        anchor = "start" if i == 0 else "end" if i == len(x_labels) - 1 else "middle"
        parts.append(
            f"<text x='{x:.1f}' y='{height - 6}' text-anchor='{anchor}' fill='{_TEXT}' {_FONT}>"
            f"{escape(label)}</text>"
        )
    return parts, left, right, y0, y1


def bar_chart(
    values: Sequence[float | None],
    *,
    title: str,
    width: int = 420,
    height: int = 140,
    color: str = PALETTE[0],
    unit: str = "",
    x_labels: Sequence[str] = (),
) -> str:
    """Vertical bars over time, oldest first; `x_labels` are spread along the axis."""
    top = nice_max(max((v for v in values if v is not None), default=0.0))
    parts, left, right, y0, y1 = _frame(width, height, top, unit, x_labels)
    slot = (right - left) / max(len(values), 1)
    for i, value in enumerate(values):
        if not value:
            continue
        h = (y1 - y0) * value / top
        parts.append(
            f"<rect x='{left + i * slot + slot * 0.1:.1f}' y='{y1 - h:.1f}' "
            f"width='{max(slot * 0.8, 1):.1f}' height='{h:.1f}' fill='{color}'>"
            f"<title>{escape(_num(value) + unit)}</title></rect>"
        )
    return _open(width, height, title) + "".join(parts) + "</svg>"


def line_chart(
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    width: int = 420,
    height: int = 140,
    colors: Sequence[str] = PALETTE,
    unit: str = "",
    x_labels: Sequence[str] = (),
) -> str:
    """One line per series over the same time slots; gaps where a value is None."""
    found = [v for values in series.values() for v in values if v is not None]
    top = nice_max(max(found, default=0.0))
    parts, left, right, y0, y1 = _frame(width, height, top, unit, x_labels)
    for (name, values), color in zip(series.items(), colors, strict=False):
        step = (right - left) / max(len(values) - 1, 1)
        runs: list[list[str]] = [[]]
        for i, value in enumerate(values):
            if value is None:
                runs.append([])
                continue
            runs[-1].append(f"{left + i * step:.1f},{y1 - (y1 - y0) * value / top:.1f}")
        for run in runs:
            if len(run) == 1:
                x, y = run[0].split(",")
                parts.append(f"<circle cx='{x}' cy='{y}' r='2.5' fill='{color}'/>")
            elif run:
                parts.append(
                    f"<polyline points='{' '.join(run)}' fill='none' stroke='{color}' "
                    f"stroke-width='2' stroke-linejoin='round'><title>{escape(name)}</title>"
                    "</polyline>"
                )
    return _open(width, height, title) + "".join(parts) + "</svg>"


def hbar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 420,
    colors: Sequence[str] = PALETTE,
    unit: str = "",
) -> str:
    """Labelled horizontal bars, one per item, each with its value at its end."""
    row, label_w = 22, min(160, 12 + 7 * max((len(label) for label, _ in items), default=4))
    height = max(row * len(items), row) + 4
    top = max((value for _, value in items), default=0.0) or 1.0
    room = width - label_w - 60
    parts = []
    for i, (label, value) in enumerate(items):
        y = 2 + i * row
        w = room * value / top
        color = colors[i % len(colors)]
        parts.append(
            f"<text x='{label_w - 6}' y='{y + 15}' text-anchor='end' fill='{_TEXT}' {_FONT}>"
            f"{escape(label)}</text>"
            f"<rect x='{label_w}' y='{y + 3}' width='{max(w, 1):.1f}' height='{row - 6}' "
            f"rx='3' fill='{color}'/>"
            f"<text x='{label_w + w + 6:.1f}' y='{y + 15}' fill='#0f172a' {_FONT}>"
            f"{escape(_num(value) + unit)}</text>"
        )
    return _open(width, height, title) + "".join(parts) + "</svg>"


def stacked_bar(
    parts: Sequence[tuple[str, int, str]], *, title: str, width: int = 860, height: int = 28
) -> str:
    """One bar split into (label, count, color) segments, each as wide as its share."""
    total = sum(count for _, count, _ in parts)
    shapes, x = [], 0.0
    for label, count, color in parts:
        if count <= 0 or total == 0:
            continue
        w = width * count / total
        shapes.append(
            f"<rect x='{x:.2f}' y='0' width='{w:.2f}' height='{height}' fill='{color}'>"
            f"<title>{escape(f'{label}: {count}')}</title></rect>"
        )
        x += w
    if not shapes:
        shapes.append(f"<rect width='{width}' height='{height}' fill='#e2e8f0'/>")
    return _open(width, height, title).replace("<svg ", "<svg preserveAspectRatio='none' ", 1) + (
        "".join(shapes) + "</svg>"
    )
