"""The Fulfillment page's HTML (pure: an `Overview` in, a document out)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import urlencode

from airflow_provider_fulfillment.reports.overview import Overview
from airflow_provider_fulfillment.reports.sections import airflow_links, summary_cards, vendor_section, when

FINDINGS_SHOWN = 100  # open findings listed per vendor, oldest first (the counts cover them all)


def _filter_form(root: str, vendors: Sequence[str], chosen: str | None) -> str:
    options = "".join(
        f'<option value="{escape(v)}"{" selected" if v == chosen else ""}>{escape(v)}</option>'
        for v in vendors
    )
    return (
        f'<form class="filters" method="get" action="{escape(root)}/">'
        f'<label>Vendor <select name="vendor" data-testid="vendor-filter"><option value="">all</option>{options}'
        '</select></label><noscript><button type="submit">Show</button></noscript></form>'
    )


def render_page(
    overview: Overview, *, root: str, vendors: Sequence[str], vendor: str | None, ledger_label: str
) -> str:
    """`root` is where the app is mounted (its static files and links live under it)."""
    links = airflow_links()
    run = overview.run
    note = ""
    if run is not None:
        label = " / ".join(part for part in (run.dag_id, run.run_id, run.task_id) if part)
        keep = urlencode({"vendor": vendor}) if vendor else ""
        note = (
            f'<p class="filter-note" data-testid="run-filter">Findings and alerts of run <b>{escape(label)}</b> '
            f'only. <a href="{escape(root)}/?{escape(keep)}">Show all</a></p>'
        )
    sections = "".join(
        vendor_section(v, links, days=overview.days, findings_limit=FINDINGS_SHOWN) for v in overview.vendors
    )
    if not overview.vendors:
        sections = '<p class="empty" data-testid="ledger-empty">The ledger holds no findings, alerts or state changes yet.</p>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>Fulfillment</title><link rel="stylesheet" href="{escape(root)}/static/fulfillment.css">'
        f'<script defer src="{escape(root)}/static/fulfillment.js"></script></head><body>'
        '<header class="top"><h1>Fulfillment</h1>'
        f'<span class="muted" data-testid="as-of">as of {when(overview.as_of)}</span>'
        f'<span class="muted">ledger: {escape(ledger_label)}</span>'
        f"{_filter_form(root, vendors, vendor)}</header>{note}"
        f"{summary_cards(overview)}{sections}</body></html>"
    )
