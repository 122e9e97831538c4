"""Write a reconciliation run's HTML report (the reconcile operator calls this after syncing findings).

The report (`reports.html`, pure) shows the run's summary and the ledger as that run left it. It is
written atomically under `<root>/reports/dag_id=<dag>/run_id=<run>/<task>.html`, root being the
operator's destination or `$AIRFLOW_HOME/fulfillment`, any fsspec URL (`s3://...`) included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_fulfillment.operators._storage import atomic_write, default_root, to_path, uri_of
from airflow_provider_fulfillment.reports.html import render_report
from airflow_provider_fulfillment.reports.ledger_view import load_overview
from airflow_provider_fulfillment.rules.types import RunRef


def _segment(value: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", value or "none")


def report_path(root: ObjectStoragePath, run: RunRef) -> ObjectStoragePath:
    return (
        root
        / "reports"
        / f"dag_id={_segment(run.dag_id)}"
        / f"run_id={_segment(run.run_id)}"
        / f"{_segment(run.task_id)}.html"
    )


def write_run_report(
    ledger: Any,
    *,
    run: RunRef,
    summary: Mapping[str, Any],
    as_of: datetime,
    root: ObjectStoragePath,
    base_url: str = "",
) -> str:
    """Render the report from `ledger` as of `as_of`, write it, return its URI."""
    overview = load_overview(ledger, now=as_of)
    html = render_report(overview, run=run, summary=summary, base_url=base_url)
    path = report_path(root, run)
    with atomic_write(path) as sink:
        sink.write(html.encode("utf-8"))
    return uri_of(path)


def report_for_run(
    ledger_conn_id: str,
    *,
    run: RunRef,
    summary: Mapping[str, Any],
    as_of: datetime,
    destination: Any = None,
    destination_conn_id: str | None = None,
) -> str:
    """What the reconcile operator calls: the report of its run under its destination (or the default root)."""
    from airflow_provider_fulfillment.ledger import Ledger
    from airflow_provider_fulfillment.operators.links import ui_base_url

    root = default_root() if destination in (None, "") else to_path(destination, destination_conn_id)
    with Ledger(ledger_conn_id) as ledger:
        return write_run_report(
            ledger, run=run, summary=summary, as_of=as_of, root=root, base_url=ui_base_url()
        )


__all__ = ["report_for_run", "report_path", "write_run_report"]
