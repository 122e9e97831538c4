"""HTML fragments of an `Overview`, shared by the Fulfillment page and the per-run report (pure).

Every number a person checks carries a `data-testid`, so the browser test reads exactly the figure
shown, and every run a finding or alert came from links back to Airflow (the run, the task instance).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from html import escape
from importlib.resources import files
from urllib.parse import quote, urlencode

from airflow_provider_fulfillment.reports.charts import bar_chart, line_chart, stacked_bars
from airflow_provider_fulfillment.reports.overview import Overview, VendorOverview, finding_age
from airflow_provider_fulfillment.rules._format import duration
from airflow_provider_fulfillment.rules.sla import AGE_BUCKETS
from airflow_provider_fulfillment.rules.types import AlertRow, FindingRow, RunRef

RunLinker = Callable[[RunRef], str]


def stylesheet() -> str:
    """The one stylesheet: served by the page as a static file, inlined into reports."""
    return files("airflow_provider_fulfillment.plugins").joinpath("static/fulfillment.css").read_text("utf-8")


def airflow_links(base_url: str = "") -> tuple[RunLinker, RunLinker]:
    """(link to a DAG run, link to a task instance) in Airflow 3's UI under `base_url` ('' = same site)."""
    base = base_url.rstrip("/")

    def run_url(ref: RunRef) -> str:
        return f"{base}/dags/{quote(ref.dag_id or '', safe='')}/runs/{quote(ref.run_id or '', safe='')}"

    def task_url(ref: RunRef) -> str:
        return f"{run_url(ref)}/tasks/{quote(ref.task_id or '', safe='')}"

    return run_url, task_url


def fulfillment_url(base_url: str = "", dag_id: str | None = None, run_id: str | None = None) -> str:
    """The Fulfillment page inside the Airflow UI (a deep link into its nav view), optionally one run's."""
    query = f"?{urlencode({'dag_id': dag_id, 'run_id': run_id})}" if dag_id and run_id else ""
    return f"{base_url.rstrip('/')}/plugin/fulfillment/fulfillment/{query}"


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "—"


def ago(span: timedelta | None) -> str:
    return duration(span) if span is not None else "—"


def hours(seconds: float | None) -> str:
    return duration(timedelta(seconds=seconds)) if seconds is not None else "—"


def run_cell(ref: RunRef, links: tuple[RunLinker, RunLinker], testid: str) -> str:
    """The run (and task) that did something, as links; '—' when the ledger has no run for it."""
    if not ref.dag_id or not ref.run_id:
        return "<td>—</td>"
    run_url, task_url = links
    task = (
        f' · <a class="airflow" data-testid="{testid}-task" href="{escape(task_url(ref))}">{escape(ref.task_id)}</a>'
        if ref.task_id
        else ""
    )
    return (
        f'<td><a class="airflow" data-testid="{testid}-run" href="{escape(run_url(ref))}">'
        f"{escape(ref.dag_id)} / {escape(ref.run_id)}</a>{task}</td>"
    )


def _details(finding: FindingRow) -> str:
    details = finding.details if isinstance(finding.details, dict) else {}
    text = details.get("summary") or details.get("detail")
    if not text:
        text = json.dumps(finding.details, sort_keys=True, default=str) if finding.details else ""
    return escape(str(text)[:200])


def findings_table(
    rows: list[FindingRow], as_of: datetime, links: tuple[RunLinker, RunLinker], *, testid: str
) -> str:
    if not rows:
        return f'<p class="empty" data-testid="{testid}-empty">None.</p>'
    body = []
    for i, f in enumerate(rows):
        age = "" if not f.is_open else ago(finding_age(f, as_of))
        body.append(
            f'<tr data-testid="{testid}-row" data-kind="{escape(f.kind)}" data-record="{escape(f.record_id)}">'
            f'<td class="kind {escape(f.severity)}">{escape(f.kind)}</td><td>{escape(f.record_id)}</td>'
            f"<td>{escape(f.resource)}</td><td>{when(f.since)}</td><td>{when(f.opened_at)}</td>"
            f'<td class="num">{age}</td>'
            f"<td>{when(f.resolved_at) if f.resolved_at else ''}</td>"
            f"{run_cell(f.opened_by, links, f'{testid}-{i}-opened')}"
            f"{run_cell(f.resolved_by, links, f'{testid}-{i}-resolved')}"
            f'<td class="details">{_details(f)}</td></tr>'
        )
    return (
        f'<table class="rows" data-testid="{testid}"><thead><tr><th>kind</th><th>record</th><th>resource</th>'
        "<th>since</th><th>opened</th><th>age</th><th>resolved</th><th>found by</th><th>resolved by</th>"
        f"<th>details</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def alerts_table(rows: list[AlertRow], links: tuple[RunLinker, RunLinker], *, testid: str) -> str:
    if not rows:
        return f'<p class="empty" data-testid="{testid}-empty">No alerts.</p>'
    body = [
        f'<tr data-testid="{testid}-row" data-event="{escape(a.event)}">'
        f'<td>{when(a.sent_at)}</td><td class="event {escape(a.event)}">{escape(a.event)}</td>'
        f"<td>{escape(a.kind)}</td><td>{escape(a.record_id)}</td><td>{escape(a.message[:160])}</td>"
        f"{run_cell(a.sent_by, links, f'{testid}-{i}-sent')}</tr>"
        for i, a in enumerate(rows)
    ]
    return (
        f'<table class="rows" data-testid="{testid}"><thead><tr><th>sent</th><th>event</th><th>kind</th>'
        f"<th>record</th><th>message</th><th>sent by</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def kind_age_table(v: VendorOverview) -> str:
    table = v.open_by_kind_and_age()
    if not table:
        return f'<p class="empty" data-testid="open-{escape(v.vendor)}-empty">No open findings.</p>'
    head = "".join(f"<th>{escape(label)}</th>" for label, _ in AGE_BUCKETS)
    rows = []
    for kind, buckets in table.items():
        cells = "".join(
            f'<td class="num" data-testid="open-{escape(v.vendor)}-{escape(kind)}-{i}">{n}</td>'
            for i, n in enumerate(buckets.values())
        )
        total = sum(buckets.values())
        rows.append(
            f"<tr><td>{escape(kind)}</td>{cells}"
            f'<td class="num total" data-testid="open-{escape(v.vendor)}-{escape(kind)}">{total}</td></tr>'
        )
    return (
        f'<table class="grid"><thead><tr><th>kind</th>{head}<th>total</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        + stacked_bars(table, label=f"{v.vendor}: open findings by kind and age")
    )


def errored_table(v: VendorOverview) -> str:
    if not v.errored:
        return f'<p class="empty" data-testid="errored-{escape(v.vendor)}-empty">No errored records.</p>'
    body = [
        f'<tr data-testid="errored-{escape(v.vendor)}-row" data-record="{escape(r.record_id)}">'
        f"<td>{escape(r.resource)}</td><td>{escape(r.record_id)}</td><td>{escape(r.raw_status)}</td>"
        f'<td>{when(r.since)}</td><td class="num">{ago(r.errored_for(v.as_of))}</td></tr>'
        for r in v.errored
    ]
    return (
        '<table class="rows"><thead><tr><th>resource</th><th>record</th><th>vendor state</th><th>since</th>'
        f"<th>errored for</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def sla_charts(v: VendorOverview, days: int) -> str:
    ship, error = v.time_to_ship, v.time_in_error
    return (
        '<div class="charts">'
        f'<figure><figcaption>Time to ship <span class="stat" data-testid="ship-{escape(v.vendor)}">'
        f"{ship.count} orders · median {hours(ship.median)} · p90 {hours(ship.p90)}</span></figcaption>"
        f"{bar_chart(ship.histogram(), label=f'{v.vendor}: time to ship')}</figure>"
        f'<figure><figcaption>Time in error <span class="stat" data-testid="error-{escape(v.vendor)}">'
        f"{error.count} episodes · median {hours(error.median)} · p90 {hours(error.p90)}</span></figcaption>"
        f"{bar_chart(error.histogram(), label=f'{v.vendor}: time in error')}</figure>"
        f"<figure><figcaption>Open findings, last {days} days</figcaption>"
        f"{line_chart(v.open_over_time, label=f'{v.vendor}: open findings over time')}</figure>"
        "</div>"
    )


def summary_cards(overview: Overview) -> str:
    cards = []
    for v in overview.vendors:
        alerts = v.alert_counts()
        cards.append(
            f'<div class="card" data-testid="card-{escape(v.vendor)}"><h3>{escape(v.vendor)}</h3>'
            f'<p><b data-testid="open-{escape(v.vendor)}">{len(v.open_findings)}</b> open findings</p>'
            f'<p><b data-testid="errored-{escape(v.vendor)}">{len(v.errored)}</b> errored records</p>'
            f'<p><b data-testid="resolved-{escape(v.vendor)}">{len(v.resolved_findings)}</b> resolved</p>'
            f'<p class="muted">recent alerts: {alerts["opened"]} opened · {alerts["reminder"]} reminders · '
            f"{alerts['resolved']} resolved</p></div>"
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def vendor_section(
    v: VendorOverview, links: tuple[RunLinker, RunLinker], *, days: int, findings_limit: int | None = None
) -> str:
    vendor = escape(v.vendor)
    shown = v.open_findings if findings_limit is None else v.open_findings[:findings_limit]
    more = (
        f'<p class="muted">The {len(shown)} oldest of {len(v.open_findings)} open findings.</p>'
        if len(shown) < len(v.open_findings)
        else ""
    )
    return (
        f'<section class="vendor" id="vendor-{vendor}" data-testid="vendor-{vendor}"><h2>{vendor}</h2>'
        f"<h3>Open findings by kind and age</h3>{kind_age_table(v)}"
        f"<h3>SLA</h3>{sla_charts(v, days)}"
        f"<h3>Errored records</h3>{errored_table(v)}"
        f"<h3>Open findings</h3>{more}{findings_table(shown, v.as_of, links, testid=f'findings-{vendor}')}"
        f"<h3>Recently resolved</h3>"
        f"{findings_table(v.resolved_findings[:20], v.as_of, links, testid=f'resolved-list-{vendor}')}"
        f"<h3>Recent alerts</h3>{alerts_table(v.alerts, links, testid=f'alerts-{vendor}')}"
        "</section>"
    )
