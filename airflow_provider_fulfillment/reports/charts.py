"""Charts as inline SVG, rendered on the server: no script, no font or asset from anywhere.

Shared by the Fulfillment page and the per-run HTML report. Every mark carries a `<title>` (the
browser's tooltip) and a `data-value`, so a test can read the numbers a chart shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

PALETTE = ("#2563eb", "#f59e0b", "#dc2626", "#7c3aed", "#059669", "#db2777", "#0891b2")
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _nice_max(value: float) -> float:
    """The axis top: 1, 2 or 5 times a power of ten, at least `value` (and at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(bars: Sequence[tuple[str, float]], *, label: str, width: int = 360, height: int = 180) -> str:
    """Vertical bars, one per (label, value), with the value above each bar."""
    left, bottom, top = 30, 34, 16
    plot_h = height - bottom - top
    top_value = _nice_max(max((v for _, v in bars), default=0))
    slot = (width - left - 8) / max(1, len(bars))
    body = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 4}" y2="{height - bottom}" stroke="#9ca3af"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" {_FONT} fill="#6b7280">{top_value:g}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" {_FONT} fill="#6b7280">0</text>',
    ]
    for i, (name, value) in enumerate(bars):
        bar_h = plot_h * value / top_value
        x = left + i * slot + slot * 0.15
        y = height - bottom - bar_h
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{bar_h:.1f}" '
            f'fill="{PALETTE[0]}" data-label="{escape(name)}" data-value="{value:g}">'
            f"<title>{escape(name)}: {value:g}</title></rect>"
        )
        body.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle" {_FONT}>{value:g}</text>'
        )
        body.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 14}" text-anchor="middle" {_FONT} '
            f'fill="#374151">{escape(name)}</text>'
        )
    return _svg(width, height, label, body)


def stacked_bars(
    rows: Mapping[str, Mapping[str, int]], *, label: str, width: int = 420, row_height: int = 22
) -> str:
    """One horizontal bar per row, stacked by column (e.g. finding kind × age bucket), with a legend."""
    columns = list(next(iter(rows.values()), {}).keys())
    left, legend_h = 120, 22
    height = legend_h + row_height * max(1, len(rows)) + 6
    total_max = max((sum(r.values()) for r in rows.values()), default=0) or 1
    scale = (width - left - 40) / total_max
    body = []
    for j, column in enumerate(columns):
        x = left + j * 78
        body.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>')
        body.append(f'<text x="{x + 14}" y="13" {_FONT}>{escape(column)}</text>')
    for i, (row, counts) in enumerate(rows.items()):
        y = legend_h + i * row_height
        body.append(
            f'<text x="{left - 6}" y="{y + row_height * 0.65:.1f}" text-anchor="end" {_FONT}>{escape(row)}</text>'
        )
        x = float(left)
        for j, column in enumerate(columns):
            value = counts.get(column, 0)
            if value:
                w = value * scale
                body.append(
                    f'<rect class="bar" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_height - 6}" '
                    f'fill="{PALETTE[j % len(PALETTE)]}" data-label="{escape(row)} {escape(column)}" '
                    f'data-value="{value}"><title>{escape(row)}, {escape(column)}: {value}</title></rect>'
                )
                x += w
        body.append(
            f'<text x="{x + 4:.1f}" y="{y + row_height * 0.65:.1f}" {_FONT}>{sum(counts.values())}</text>'
        )
    return _svg(width, height, label, body)


def line_chart(
    points: Sequence[tuple[datetime, float]], *, label: str, width: int = 420, height: int = 180
) -> str:
    """A line over daily points, with a dot (and its value as tooltip) at each."""
    left, bottom, top, right = 30, 30, 14, 10
    plot_w, plot_h = width - left - right, height - bottom - top
    top_value = _nice_max(max((v for _, v in points), default=0))
    step = plot_w / max(1, len(points) - 1)
    coords = [
        (left + i * step, height - bottom - plot_h * value / top_value) for i, (_, value) in enumerate(points)
    ]
    body = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#9ca3af"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" {_FONT} fill="#6b7280">{top_value:g}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" {_FONT} fill="#6b7280">0</text>',
    ]
    if coords:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[2]}" stroke-width="2"/>')
    for (moment, value), (x, y) in zip(points, coords, strict=True):
        day = moment.strftime("%Y-%m-%d")
        body.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{PALETTE[2]}" '
            f'data-label="{day}" data-value="{value:g}"><title>{day}: {value:g}</title></circle>'
        )
    if points:
        anchors = {0: "start", len(points) // 2: "middle", len(points) - 1: "end"}
        for index, anchor in sorted(anchors.items()):
            x = coords[index][0]
            body.append(
                f'<text x="{x:.1f}" y="{height - bottom + 14}" text-anchor="{anchor}" {_FONT} fill="#374151">'
                f"{points[index][0].strftime('%m-%d')}</text>"
            )
    return _svg(width, height, label, body)
