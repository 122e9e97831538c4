"""OpenLineage from extraction and the ledger load: the datasets named, and the events Airflow's
OpenLineage listener really emits for a DAG run (captured by an in-memory transport)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from openlineage.client.transport.transport import Config, Transport

from airflow_provider_fulfillment.lineage import endpoint_dataset, file_dataset, ledger_table_dataset

END = datetime(2026, 1, 1, tzinfo=UTC)


class MemoryConfig(Config):
    pass


class MemoryTransport(Transport):
    """Keeps every event the OpenLineage client emits, in this process."""

    kind = "memory"
    config_class = MemoryConfig
    events: ClassVar[list[Any]] = []

    def __init__(self, config: MemoryConfig) -> None:
        pass

    def emit(self, event: Any) -> None:
        MemoryTransport.events.append(event)


class FakeHook:
    def __init__(self, uri: str) -> None:
        self.uri = uri

    def get_uri(self) -> str:
        return self.uri


def test_dataset_names_follow_openlineage_conventions_and_carry_no_secrets():
    assert endpoint_dataset("https://api.getdropstream.com", "dropstream", "shipments") == (
        "https://api.getdropstream.com",
        "/shipments",
    )
    assert endpoint_dataset("http://127.0.0.1:8088/dcl/api/v1/", "dcl", "shipments") == (
        "http://127.0.0.1:8088",
        "/dcl/api/v1/orders",
    )
    assert file_dataset("file:///data/vendor=dcl/x.jsonl") == ("file", "/data/vendor=dcl/x.jsonl")
    assert file_dataset("s3://bucket/fulfillment/x.jsonl") == ("s3://bucket", "fulfillment/x.jsonl")
    assert ledger_table_dataset(FakeHook("sqlite:////tmp/l.db"), "fulfillment_orders") == (
        "sqlite:///tmp/l.db",
        "fulfillment_orders",
    )
    assert ledger_table_dataset(
        FakeHook("postgresql://u:secret@db.example:6432/ops"), "fulfillment_orders"
    ) == ("postgres://db.example:6432", "ops.public.fulfillment_orders")


@pytest.fixture
def lineage_events(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Airflow's OpenLineage listener on, emitting in a thread of this process to MemoryTransport."""
    from airflow.providers.openlineage import conf as ol_conf
    from airflow.providers.openlineage.plugins import listener as ol_listener

    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps({"type": f"{__name__}.MemoryTransport"}))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "True")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__DISABLED", "False")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "fulfillment-tests")
    for name in dir(ol_conf):
        getattr(getattr(ol_conf, name), "cache_clear", lambda: None)()
    MemoryTransport.events.clear()
    listener = ol_listener.get_openlineage_listener()
    listener.adapter._client = None  # a client built from the settings above
    # The provider's plugin registers its listener only if OpenLineage was configured when the plugin
    # was first imported (not so when an earlier test imported it): register it for this test.
    from airflow.listeners.listener import get_listener_manager as core_listeners
    from airflow.sdk.listener import get_listener_manager as task_listeners

    added = [
        manager for manager in (task_listeners(), core_listeners()) if not manager.pm.is_registered(listener)
    ]
    for manager in added:
        manager.add_listener(listener)
    yield MemoryTransport.events
    for manager in added:
        manager.pm.unregister(listener)
    listener.adapter._client = None
    for name in dir(ol_conf):
        getattr(getattr(ol_conf, name), "cache_clear", lambda: None)()


def completes(events: list[Any]) -> dict[str, Any]:
    """The COMPLETE event of each task, by task id."""
    found = {}
    for event in events:
        if str(getattr(event.eventType, "value", event.eventType)) == "COMPLETE" and "." in event.job.name:
            found[event.job.name.rsplit(".", 1)[1]] = event
    return found


def test_a_dag_run_emits_the_endpoint_the_file_and_the_ledger_table_with_row_counts(
    run_dag, lineage_events, tmp_path, monkeypatch
):
    from airflow.sdk import DAG

    from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
    from airflow_provider_fulfillment.operators.ledger import FulfillmentLedgerLoadOperator
    from airflow_provider_fulfillment.sandbox.testing import run_sandbox

    ledger = tmp_path / "ledger.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_FULFILLMENT_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(ledger)})
    )
    with run_sandbox(seed=5, orders=200) as sandbox:
        for name, value in sandbox.conn_env().items():
            monkeypatch.setenv(name, value)
        with DAG("lineage_check", schedule=None, start_date=END) as dag:
            extract = FulfillmentExtractOperator(
                task_id="extract",
                conn_id="dropstream_default",
                resource="orders",
                destination=str(tmp_path / "files"),
                window=(END - timedelta(days=3), END),
            )
            FulfillmentLedgerLoadOperator(task_id="load", manifests=extract.output)
        run = run_dag(dag, END)
    assert run.state == "success"

    events = completes(lineage_events)
    assert set(events) >= {"extract", "load"}, [e.job.name for e in lineage_events]
    extracted = events["extract"]
    base = sandbox.conn_env()["AIRFLOW_CONN_DROPSTREAM_DEFAULT"]
    host = json.loads(base)["host"]
    [source] = extracted.inputs
    assert (source.namespace, source.name) == (host.rsplit("/dropstream", 1)[0], "/dropstream/orders")
    [written] = extracted.outputs
    files = list((tmp_path / "files").rglob("*.jsonl"))
    assert len(files) == 1
    lines = files[0].read_text().splitlines()
    assert (written.namespace, written.name) == ("file", str(files[0]))
    stats = written.outputFacets["outputStatistics"]
    assert (stats.rowCount, stats.size) == (len(lines), files[0].stat().st_size)
    assert stats.rowCount > 0

    loaded = events["load"]
    assert [(d.namespace, d.name) for d in loaded.inputs] == [("file", str(files[0]))]
    [table] = loaded.outputs
    assert (table.namespace, table.name) == (f"sqlite://{ledger}", "fulfillment_orders")
    assert table.outputFacets["outputStatistics"].rowCount == len(lines)  # a fresh ledger: all inserted
