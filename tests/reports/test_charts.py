"""Charts are well-formed SVG whose marks carry the values they draw."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from airflow_provider_fulfillment.reports.charts import bar_chart, line_chart, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"


def marks(svg: str, tag: str) -> list[tuple[str, str]]:
    root = ET.fromstring(svg)
    return [
        (m.get("data-label"), m.get("data-value")) for m in root.iter(f"{SVG}{tag}") if m.get("data-value")
    ]


def test_bar_chart_values_and_heights():
    svg = bar_chart([("< 1 h", 3), ("1–6 h", 0), ("≥ 7 d", 6)], label="t <&> x")
    assert marks(svg, "rect") == [("< 1 h", "3"), ("1–6 h", "0"), ("≥ 7 d", "6")]
    heights = [float(r.get("height")) for r in ET.fromstring(svg).iter(f"{SVG}rect")]
    assert heights[2] == 2 * heights[0] and heights[1] == 0


def test_stacked_bars_skip_empty_segments():
    svg = stacked_bars(
        {"late_order": {"<1d": 2, "1-3d": 0}, "item_mismatch": {"<1d": 0, "1-3d": 1}}, label="x"
    )
    assert marks(svg, "rect") == [("late_order <1d", "2"), ("item_mismatch 1-3d", "1")]


def test_line_chart_one_point_per_day():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    svg = line_chart([(start + timedelta(days=i), n) for i, n in enumerate([0, 4, 2])], label="open")
    assert marks(svg, "circle") == [("2026-01-01", "0"), ("2026-01-02", "4"), ("2026-01-03", "2")]
    assert len(list(ET.fromstring(svg).iter(f"{SVG}polyline"))) == 1


def test_empty_charts_render():
    for svg in (bar_chart([], label="a"), line_chart([], label="b"), stacked_bars({}, label="c")):
        assert ET.fromstring(svg).tag == f"{SVG}svg"
