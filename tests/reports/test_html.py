"""The run report: one self-contained file with the run's summary, charts and oldest open findings."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from airflow_provider_fulfillment.reports.html import OLDEST_SHOWN, render_report
from airflow_provider_fulfillment.reports.overview import build_overview
from airflow_provider_fulfillment.rules.types import FindingRow, RunRef

NOW = datetime(2026, 1, 10, tzinfo=UTC)
RUN = RunRef("daily", "manual__2026-01-10T00:00:00+00:00", "reconcile")


def finding(i: int) -> FindingRow:
    opened = NOW - timedelta(hours=i)
    return FindingRow(
        "dcl", "late_order", f"O-{i}", "", "order", "warning", opened, NOW, None, None, {}, RUN, RunRef()
    )


def report(rows, **kwargs) -> str:
    overview = build_overview(findings=rows, alerts=[], changes=[], errored=[], now=NOW, as_of=NOW)
    return render_report(overview, run=RUN, **kwargs)


def test_self_contained_no_script_nothing_fetched():
    html = report([finding(1)], summary={"open": 1})
    assert "<style>" in html and "<script" not in html and "<link" not in html
    assert not re.search(
        r'(src|href)="https?://(?!airflow\.example)', html.replace("http://www.w3.org/2000/svg", "")
    )
    assert "<svg" in html


def test_summary_and_the_oldest_open_findings_only():
    rows = [finding(i) for i in range(OLDEST_SHOWN + 5)]
    html = report(rows, summary={"open": len(rows), "counts": {"late_order": len(rows), "item_mismatch": 0}})
    assert re.search(r'data-testid="summary-open">15<', html)
    assert re.search(r'data-testid="summary-counts">late_order 15, item_mismatch 0<', html)
    shown = re.findall(r'data-testid="findings-dcl-row" data-kind="late_order" data-record="([^"]+)"', html)
    assert shown == [f"O-{i}" for i in range(14, 4, -1)]  # the 10 oldest, oldest first
    assert f"The {OLDEST_SHOWN} oldest of 15 open findings." in html


def test_links_are_absolute_under_the_base_url():
    html = report([finding(1)], base_url="https://airflow.example/")
    run = "manual__2026-01-10T00%3A00%3A00%2B00%3A00"
    assert f'href="https://airflow.example/dags/daily/runs/{run}/tasks/reconcile"' in html
    assert (
        f'href="https://airflow.example/plugin/fulfillment/fulfillment/?dag_id=daily&amp;run_id={run}"'
        in html
    )
