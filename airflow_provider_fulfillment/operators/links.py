"""Operator extra links (the buttons on a task instance in the Airflow UI).

Airflow 3 computes each link on the worker when the task finishes and keeps it in XCom, so these
read only the task's own XCom and configuration, never the ledger:

- "Fulfillment": the Fulfillment page filtered to the task's DAG run (reconcile and alert tasks).
- "Output": what an extract task wrote (its manifest's `uri`).
- "Report": the reconcile task's HTML report (its summary's `report_uri`).

Local files open through the Fulfillment app's `/files` route (behind the login); object-store
URIs open in their cloud console; anything else is linked as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlparse

from airflow.sdk import BaseOperatorLink

from airflow_provider_fulfillment.plugins import URL_PREFIX
from airflow_provider_fulfillment.reports.sections import fulfillment_url

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


def ui_base_url() -> str:
    """`[api] base_url` without its trailing slash; '' (same site) when unset."""
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "").rstrip("/")


def fulfillment_page_url(dag_id: str, run_id: str, base_url: str | None = None) -> str:
    """The Fulfillment page inside the Airflow UI, filtered to one DAG run."""
    return fulfillment_url(ui_base_url() if base_url is None else base_url, dag_id, run_id)


def output_url(uri: str, base_url: str | None = None) -> str:
    """Where a person can open `uri`: the /files route for local files, a console for object stores."""
    base = ui_base_url() if base_url is None else base_url.rstrip("/")
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return f"{base}{URL_PREFIX}/files?{urlencode({'uri': uri})}"
    key = parsed.path.lstrip("/")
    if parsed.scheme in ("s3", "s3a"):
        return f"https://s3.console.aws.amazon.com/s3/object/{parsed.netloc}?prefix={quote(key)}"
    if parsed.scheme in ("gs", "gcs"):
        return f"https://console.cloud.google.com/storage/browser/_details/{parsed.netloc}/{quote(key)}"
    return uri


def _returned(ti_key: TaskInstanceKey, *, failed_key: str | None = None) -> dict[str, Any]:
    """The task's returned dict. A task that did not succeed returned nothing: only `failed_key` is
    read then (a reconcile over its thresholds pushes its summary as `summary` before failing), so a
    failed task's links cost no lookups that can only miss."""
    from airflow.sdk.execution_time.xcom import XCom

    state = str(getattr(ti_key, "state", None) or "success").lower()
    key = "return_value" if state.endswith("success") else failed_key
    value = XCom.get_value(ti_key=ti_key, key=key) if key else None
    return value if isinstance(value, dict) else {}


class FulfillmentRunLink(BaseOperatorLink):
    """The Fulfillment page, showing what this task's DAG run found, resolved and alerted."""

    name = "Fulfillment"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return fulfillment_page_url(ti_key.dag_id, ti_key.run_id)


class ExtractOutputLink(BaseOperatorLink):
    """The file the extract task wrote ('' before it has written one)."""

    name = "Output"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        uri = _returned(ti_key).get("uri")
        return output_url(uri) if uri else ""


class ReconcileReportLink(BaseOperatorLink):
    """The reconciliation's HTML report ('' when the run wrote none)."""

    name = "Report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        uri = _returned(ti_key, failed_key="summary").get("report_uri")
        return output_url(uri) if uri else ""


__all__ = [
    "ExtractOutputLink",
    "FulfillmentRunLink",
    "ReconcileReportLink",
    "fulfillment_page_url",
    "output_url",
]
