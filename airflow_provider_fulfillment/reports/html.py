"""The self-contained HTML report of one reconciliation run (pure: data in, HTML out).

One file, readable anywhere (mailed, opened from object storage, attached to a ticket): the
stylesheet is inlined, charts are inline SVG, there is no script and nothing is fetched. Links to
Airflow (the run, the task instances, the Fulfillment page) are absolute under `base_url` when one
is known, so they work from wherever the file is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from airflow_provider_fulfillment.reports.overview import Overview
from airflow_provider_fulfillment.reports.sections import (
    airflow_links,
    fulfillment_url,
    stylesheet,
    summary_cards,
    vendor_section,
    when,
)
from airflow_provider_fulfillment.rules.types import RunRef

OLDEST_SHOWN = 10


def _summary_table(summary: Mapping[str, Any]) -> str:
    """The run's own counts (the XCom summary): plain numbers, whatever keys the operator returns."""
    rows = []
    for key, value in summary.items():
        if isinstance(value, Mapping):
            value = (
                ", ".join(f"{k} {v}" for k, v in value.items() if not isinstance(v, Mapping | list)) or "—"
            )
        elif isinstance(value, list):
            value = f"{len(value)} item(s)" if value and not isinstance(value[0], str) else ", ".join(value)
        rows.append(
            f'<tr><th>{escape(str(key))}</th><td data-testid="summary-{escape(str(key))}">{escape(str(value))}</td></tr>'
        )
    return f'<table class="grid summary">{"".join(rows)}</table>'


def render_report(
    overview: Overview,
    *,
    run: RunRef,
    summary: Mapping[str, Any] | None = None,
    base_url: str = "",
    title: str = "Reconciliation report",
) -> str:
    """The report of `run`: its summary, the ledger's state after it, the oldest open findings per vendor."""
    links = airflow_links(base_url)
    run_url, task_url = links
    page = fulfillment_url(base_url, run.dag_id, run.run_id)
    heading = " / ".join(part for part in (run.dag_id, run.run_id, run.task_id) if part)
    run_link = (
        f'<a href="{escape(task_url(run) if run.task_id else run_url(run))}">{escape(heading)}</a>'
        if run.dag_id and run.run_id
        else escape(heading or "—")
    )
    sections = "".join(
        vendor_section(v, links, days=overview.days, findings_limit=OLDEST_SHOWN) for v in overview.vendors
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}: {escape(heading)}</title><style>{stylesheet()}</style></head><body>"
        f'<header class="top"><h1>{escape(title)}</h1>'
        f'<span class="muted" data-testid="as-of">as of {when(overview.as_of)}</span></header>'
        f'<p>Run {run_link} · <a href="{escape(page)}">the Fulfillment page</a></p>'
        f"<h2>This run</h2>{_summary_table(summary or {})}"
        f"<h2>The ledger after this run</h2>{summary_cards(overview)}{sections}</body></html>"
    )


__all__ = ["OLDEST_SHOWN", "render_report"]
