"""Operator extra links: what each button opens, and that Airflow stores it when the task finishes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from airflow.sdk import DAG

from airflow_provider_fulfillment import get_provider_info
from airflow_provider_fulfillment.operators import extract as extract_module
from airflow_provider_fulfillment.operators.alert import FulfillmentErrorStateOperator
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from airflow_provider_fulfillment.operators.links import (
    ExtractOutputLink,
    FulfillmentRunLink,
    ReconcileReportLink,
    fulfillment_page_url,
    output_url,
)
from airflow_provider_fulfillment.operators.reconcile import FulfillmentReconcileOperator
from tests.operators.helpers import BASE, FakeHook, ds_order

UI = "https://airflow.example.com"


def test_fulfillment_page_link_is_the_nav_view_filtered_to_the_run():
    assert fulfillment_page_url("daily", "manual__2026-01-01T00:00:00+00:00", UI) == (
        f"{UI}/plugin/fulfillment/fulfillment/?dag_id=daily&run_id=manual__2026-01-01T00%3A00%3A00%2B00%3A00"
    )


def test_output_links_per_storage():
    assert (
        output_url("file:///data/x=1/a.jsonl", UI)
        == f"{UI}/fulfillment/files?uri=file%3A%2F%2F%2Fdata%2Fx%3D1%2Fa.jsonl"
    )
    assert output_url("s3://bucket/vendor=dcl/a b.jsonl", UI) == (
        "https://s3.console.aws.amazon.com/s3/object/bucket?prefix=vendor%3Ddcl/a%20b.jsonl"
    )
    assert (
        output_url("gs://b/k.jsonl", UI)
        == "https://console.cloud.google.com/storage/browser/_details/b/k.jsonl"
    )
    assert output_url("abfs://c/k", UI) == "abfs://c/k"


def test_operators_declare_their_links_and_the_provider_registers_them():
    names = {
        op: [link.name for link in op.operator_extra_links]
        for op in (FulfillmentExtractOperator, FulfillmentReconcileOperator, FulfillmentErrorStateOperator)
    }
    assert names == {
        FulfillmentExtractOperator: ["Output"],
        FulfillmentReconcileOperator: ["Fulfillment", "Report"],
        FulfillmentErrorStateOperator: ["Fulfillment"],
    }
    module = "airflow_provider_fulfillment.operators.links"
    assert get_provider_info()["extra-links"] == [
        f"{module}.{cls.__name__}" for cls in (FulfillmentRunLink, ExtractOutputLink, ReconcileReportLink)
    ]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeHook:
    hook = FakeHook([ds_order(i) for i in range(3)])
    hook.settings = SimpleNamespace(base_url="http://127.0.0.1:9/dropstream")  # read for lineage
    monkeypatch.setattr(extract_module, "get_hook", lambda conn_id: hook)
    return hook


def test_a_finished_extract_stores_its_output_link(request, monkeypatch, run_dag, xcom, fake, tmp_path):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", UI + "/")
    dag_id = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)
    with DAG(dag_id, schedule="@daily", start_date=BASE, catchup=False) as dag:
        FulfillmentExtractOperator(task_id="extract", conn_id="dropstream_default", destination=str(tmp_path))
    run = run_dag(dag, datetime(2025, 10, 2, tzinfo=UTC))
    assert run.state == "success"
    uri = xcom(run, "extract")["uri"]
    assert (
        xcom(run, "extract", key="_link_ExtractOutputLink")
        == f"{UI}/fulfillment/files?uri={quote(uri, safe='')}"
    )
