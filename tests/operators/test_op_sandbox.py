"""Every operator and sensor through `dag.test()` against the sandbox on loopback (real hooks, real HTTP).

The sandbox's world is fixed in time (it ends 2026-01-01T00:00Z and spans 90 days), generated from a
seed; its ground truth says which ids a window holds and which discrepancies were planted.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fulfillment.models.dcl import DclOrder
from airflow_provider_fulfillment.models.dropstream import DropStreamOrder
from airflow_provider_fulfillment.models.stream import StreamOrder
from airflow_provider_fulfillment.operators._storage import iter_documents, to_path
from airflow_provider_fulfillment.operators.alert import FulfillmentErrorStateOperator
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from airflow_provider_fulfillment.operators.reconcile import FulfillmentReconcileOperator
from airflow_provider_fulfillment.sensors.state import OrderStateSensor, ShipmentStateSensor
from tests.fakes import sandbox_connections

pytestmark = pytest.mark.integration

DAY_START = datetime(2025, 12, 1, tzinfo=UTC)
DAY_END = datetime(2025, 12, 2, tzinfo=UTC)  # the @daily interval of logical date 2025-12-02


@pytest.fixture(scope="module")
def sandbox():
    with sandbox_connections(seed=7, orders=3000) as server:
        yield server


@pytest.fixture
def clean_faults(sandbox):
    sandbox.reset_faults()
    yield sandbox
    sandbox.reset_faults()


def dag_id(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:200]


def read_ids(uri: str, key: str) -> list:
    return [
        (doc[key] if isinstance(doc, dict) else json.loads(doc)[key]) for doc in iter_documents(to_path(uri))
    ]


def local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


# ------------------------------------------------------------------------------------ extract


def test_extract_known_interval_of_each_vendor(request, run_dag, xcom, sandbox, tmp_path):
    with DAG(dag_id(request), schedule="@daily", start_date=DAY_START, catchup=False) as dag:
        for task_id, conn_id, resource in (
            ("ds_orders", "dropstream_default", "orders"),
            ("ds_shipments", "dropstream_default", "shipments"),
            ("dcl_orders", "dcl_default", "orders"),
            ("stream_orders", "stream_default", "orders"),
        ):
            FulfillmentExtractOperator(
                task_id=task_id, conn_id=conn_id, resource=resource, destination=str(tmp_path)
            )
    run = run_dag(dag, DAY_END)
    assert run.state == "success"
    world, window = sandbox.world, (DAY_START, DAY_END)

    expected_orders = world.dropstream.order_ids(window=window)
    assert len(expected_orders) > 10
    assert read_ids(xcom(run, "ds_orders")["uri"], "id") == sorted(expected_orders)
    assert read_ids(xcom(run, "ds_shipments")["uri"], "id") == sorted(
        world.dropstream.shipment_ids(window=window)
    )
    dcl_numbers = read_ids(xcom(run, "dcl_orders")["uri"], "order_number")
    assert sorted(dcl_numbers) == sorted(world.dcl.order_numbers(window=window, field="modified_at"))
    assert len(dcl_numbers) == len(set(dcl_numbers))
    stream_ids = read_ids(xcom(run, "stream_orders")["uri"], "id")
    assert sorted(stream_ids) == sorted(world.stream.order_ids(window=window))
    assert len(stream_ids) == len(set(stream_ids))

    manifest = xcom(run, "ds_orders")
    assert manifest["records"] == len(expected_orders)
    assert manifest["uri"] == (
        f"file://{tmp_path}/vendor=dropstream/resource=orders/date=2025-12-01/20251201T000000Z_20251202T000000Z.jsonl"
    )
    assert xcom(run, "dcl_orders")["window_field"] == "modified_at"
    assert xcom(run, "stream_orders")["vendor"] == "stream"


def test_rerun_overwrites_with_the_same_bytes(request, run_dag, xcom, sandbox, tmp_path):
    with DAG(dag_id(request), schedule="@daily", start_date=DAY_START, catchup=False) as dag:
        FulfillmentExtractOperator(
            task_id="gz", conn_id="dropstream_default", destination=str(tmp_path), compression="gzip"
        )
        FulfillmentExtractOperator(
            task_id="pq", conn_id="dcl_default", destination=str(tmp_path), format="parquet"
        )
    first_run = run_dag(dag, DAY_END)
    first = {task: xcom(first_run, task) for task in ("gz", "pq")}
    before = {task: local(first[task]["uri"]).read_bytes() for task in ("gz", "pq")}
    second_run = run_dag(dag, DAY_END)
    for task in ("gz", "pq"):
        second = xcom(second_run, task)
        assert first[task]["records"] > 0
        assert second["uri"] == first[task]["uri"]
        assert second["sha256"] == first[task]["sha256"]
        assert local(second["uri"]).read_bytes() == before[task]
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 2


def test_a_fault_past_the_retries_leaves_no_file(
    request, run_dag, clean_faults, tmp_path, failures, monkeypatch
):
    # No retries on this connection, small pages, and every 2nd /orders request answers 503: the
    # first page is written to the temporary file, the second request fails the task.
    conn = json.loads(clean_faults.conn_env()["AIRFLOW_CONN_DROPSTREAM_DEFAULT"])
    conn["extra"] = {"max_attempts": 1}
    monkeypatch.setenv("AIRFLOW_CONN_DROPSTREAM_DEFAULT", json.dumps(conn))
    clean_faults.set_faults(error_every=2, error_prefix="/dropstream/orders")
    with DAG(dag_id(request), schedule="@daily", start_date=DAY_START, catchup=False) as dag:
        FulfillmentExtractOperator(
            task_id="extract",
            conn_id="dropstream_default",
            destination=str(tmp_path),
            filters={"limit": 5},
            on_failure_callback=failures,
        )
    run = run_dag(dag, DAY_END)
    assert run.state == "failed"
    assert "HTTP 503" in str(failures.errors["extract"])
    assert clean_faults.counters().count(path="/dropstream/orders", status=200) >= 1  # something was read
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_parquet_and_jsonl_agree_for_every_vendor(request, run_dag, xcom, sandbox, tmp_path):
    cases = {
        "dropstream": ("dropstream_default", DropStreamOrder),
        "dcl": ("dcl_default", DclOrder),
        "stream": ("stream_default", StreamOrder),
    }
    with DAG(dag_id(request), schedule="@daily", start_date=DAY_START, catchup=False) as dag:
        for vendor, (conn_id, _) in cases.items():
            for fmt in ("jsonl", "parquet"):
                FulfillmentExtractOperator(
                    task_id=f"{vendor}_{fmt}",
                    conn_id=conn_id,
                    destination=str(tmp_path),
                    format=fmt,
                    row_group_size=4,
                )
    run = run_dag(dag, DAY_END)
    assert run.state == "success"
    for vendor, (_, model) in cases.items():
        from_json = [
            model.model_validate_json(d) for d in iter_documents(to_path(xcom(run, f"{vendor}_jsonl")["uri"]))
        ]
        from_parquet = [
            model.model_validate(d) for d in iter_documents(to_path(xcom(run, f"{vendor}_parquet")["uri"]))
        ]
        assert from_json, vendor
        assert from_parquet == from_json, vendor  # same records, same values, same order
        assert [r.to_common() for r in from_parquet] == [r.to_common() for r in from_json]


# ------------------------------------------------------------------------------------ reconcile


def _whole_world_dag(name: str, sandbox, **reconcile_kwargs) -> DAG:
    world = sandbox.world
    window = (world.start.isoformat(), world.end.isoformat())
    with DAG(name, schedule=None, start_date=DAY_START, catchup=False) as dag:
        orders = FulfillmentExtractOperator(
            task_id="orders", conn_id="dropstream_default", window=window, compression="gzip"
        )
        shipments = FulfillmentExtractOperator(
            task_id="shipments",
            conn_id="dropstream_default",
            resource="shipments",
            window=window,
            format="parquet",
        )
        FulfillmentReconcileOperator(
            task_id="reconcile",
            orders=orders.output,
            shipments=shipments.output,
            as_of=world.end.isoformat(),
            **reconcile_kwargs,
        )
    return dag


def test_reconcile_finds_every_planted_discrepancy_and_no_other(request, run_dag, xcom, sandbox, tmp_path):
    dag = _whole_world_dag(dag_id(request), sandbox, destination=str(tmp_path))
    run = run_dag(dag, None)
    assert run.state == "success"
    truth = sandbox.world.truth
    ds = sandbox.world.dropstream
    summary = xcom(run, "reconcile")
    assert summary["orders_read"] == ds.n
    assert summary["shipments_read"] == ds.n_shipments
    findings = [json.loads(line) for line in local(summary["uri"]).read_text().splitlines()]
    found: dict[str, set[int]] = defaultdict(set)
    for finding in findings:
        found[finding["kind"]].add(int(finding["record_id"]))
    # late is independent of errored: pre-ship errors past their deadline are late too
    assert found["late_order"] == truth.unshipped_past_deadline - truth.shipped_without_shipment
    assert found["late_order"] >= truth.late
    assert found["shipped_without_shipment"] == truth.shipped_without_shipment
    assert found["orphan_shipment"] == truth.orphan_shipments
    foreign_orders = {ds.shipment(sid)["order_id"] for sid in truth.foreign_item_shipments}
    assert found["item_mismatch"] == foreign_orders
    assert found["errored_order"] == truth.errored_orders
    assert found["errored_shipment"] == truth.errored_shipments
    assert summary["counts"] == {kind: len(found[kind]) for kind in summary["counts"]}
    assert summary["open"] == len(findings)
    assert summary["uri"].startswith(f"file://{tmp_path}/vendor=dropstream/resource=findings/")
    mismatch = next(f for f in findings if f["kind"] == "item_mismatch")
    assert mismatch["details"]["reason"] == "more_items_than_ordered"
    assert mismatch["details"]["quantity_checked"] is False
    assert mismatch["details"]["shipped_items"] == mismatch["details"]["ordered_items"] + 1


def test_reconcile_fails_past_a_threshold(request, run_dag, xcom, sandbox, tmp_path, failures):
    dag = _whole_world_dag(
        dag_id(request),
        sandbox,
        destination=str(tmp_path),
        fail_on={"orphan_shipment": 0, "late_order": 100_000},
        on_failure_callback=failures,
    )
    run = run_dag(dag, None)
    assert run.state == "failed"
    message = str(failures.errors["reconcile"])
    assert message.startswith("reconciliation found more than allowed: orphan_shipment 5 > 0 (open: ")
    summary = xcom(run, "reconcile", key="summary")
    assert summary["counts"]["orphan_shipment"] == 5
    assert local(summary["uri"]).exists()


# ------------------------------------------------------------------------------------ alert


def test_alert_fails_listing_the_errored_orders(request, run_dag, xcom, sandbox, failures):
    with DAG(dag_id(request), schedule=None, start_date=DAY_START, catchup=False) as dag:
        FulfillmentErrorStateOperator(
            task_id="alert",
            conn_id="dropstream_default",
            max_listed=3,
            on_failure_callback=failures,
            retries=2,
        )
    run = run_dag(dag, None)
    assert run.state == "failed"
    truth = sandbox.world.truth
    error = failures.errors["alert"]
    assert isinstance(error, AirflowFailException)
    message = str(error)
    n = len(truth.errored_orders)
    assert message.startswith(f"DropStream (conn dropstream_default): {n} orders in errored states: ")
    assert f"; and {n - 3} more" in message
    report = xcom(run, "alert", key="errored")
    assert report["count"] == n and len(report["records"]) == min(n, 200)
    assert {int(r["id"]) for r in report["records"]} <= truth.errored_orders
    listed = [
        f"{r['id']} ({r['number']}) {r['raw_status']} since {r['since']}" for r in report["records"][:3]
    ]
    assert message.split(" in errored states: ")[1].startswith("; ".join(listed))
    sinces = [r["since"] for r in report["records"]]
    assert sinces == sorted(sinces)  # oldest first
    expected_by_state = {
        state: len(ids)
        for state, ids in truth.order_ids_by_state.items()
        if state.startswith("error") and ids
    }
    assert report["by_state"] == expected_by_state


def test_alert_soft_mode_returns_them(request, run_dag, xcom, sandbox):
    truth = sandbox.world.truth
    with DAG(dag_id(request), schedule=None, start_date=DAY_START, catchup=False) as dag:
        FulfillmentErrorStateOperator(
            task_id="orders", conn_id="dropstream_default", soft=True, max_returned=1000
        )
        FulfillmentErrorStateOperator(
            task_id="shipments",
            conn_id="dropstream_default",
            resource="shipments",
            soft=True,
            max_returned=1000,
        )
        FulfillmentErrorStateOperator(task_id="tolerated", conn_id="dropstream_default", threshold=100_000)
        FulfillmentErrorStateOperator(
            task_id="not_stuck", conn_id="dropstream_default", stuck_for=timedelta(days=36500)
        )
        FulfillmentErrorStateOperator(
            task_id="one_state",
            conn_id="dropstream_default",
            soft=True,
            states=["error_processing"],
            max_returned=1000,
        )
        FulfillmentErrorStateOperator(
            task_id="stream", conn_id="stream_default", soft=True, max_returned=1000
        )
        FulfillmentErrorStateOperator(task_id="dcl", conn_id="dcl_default", soft=True, max_returned=1000)
    run = run_dag(dag, None)
    assert run.state == "success"
    assert {int(r["id"]) for r in xcom(run, "orders")["records"]} == truth.errored_orders
    assert {int(r["id"]) for r in xcom(run, "shipments")["records"]} == truth.errored_shipments
    assert xcom(run, "tolerated")["count"] == len(truth.errored_orders)
    assert xcom(run, "not_stuck")["count"] == 0
    assert {int(r["id"]) for r in xcom(run, "one_state")["records"]} == truth.order_ids_by_state[
        "error_processing"
    ]
    world = sandbox.world
    stream_errored = set().union(
        *(
            ids
            for status, ids in world.stream.ids_by_status().items()
            if status in ("additional_document_required", "pickup_missed", "incomplete", "lost_in_transit")
        )
    )
    assert {int(r["id"]) for r in xcom(run, "stream")["records"]} == stream_errored
    dcl_errored = {
        n for n in world.dcl.numbers_by_stage()[2] if not world.dcl.cancelled(world.dcl.order_index(n))
    }
    assert {r["id"] for r in xcom(run, "dcl")["records"]} == dcl_errored
    assert xcom(run, "dcl")["states"] == ["2"]


# ------------------------------------------------------------------------------------ sensors


def _ids_in_state(sandbox, state: str) -> list[int]:
    return sorted(sandbox.world.truth.order_ids_by_state[state])


def test_sensors_against_the_sandbox(request, run_dag, xcom, clean_faults, failures, task_states):
    sandbox = clean_faults
    shipped = _ids_in_state(sandbox, "shipped")[0]
    errored = _ids_in_state(sandbox, "error_sending_to_warehouse")[0]
    shipment = sandbox.world.dropstream.shipment(
        sorted(sandbox.world.truth.shipment_ids_by_state["notified_shipped"])[0]
    )
    with DAG(dag_id(request), schedule=None, start_date=DAY_START, catchup=False) as dag:
        OrderStateSensor(task_id="shipped", conn_id="dropstream_default", order_id=shipped, poke_interval=0.1)
        OrderStateSensor(
            task_id="errored",
            conn_id="dropstream_default",
            order_id=errored,
            poke_interval=0.1,
            on_failure_callback=failures,
        )
        ShipmentStateSensor(
            task_id="tracking",
            conn_id="dropstream_default",
            tracking_number=shipment["tracking_number"],
            poke_interval=0.1,
            deferrable=True,
        )
        OrderStateSensor(
            task_id="errored_deferrable",
            conn_id="dropstream_default",
            order_id=errored,
            poke_interval=0.1,
            deferrable=True,
            on_failure_callback=failures,
        )
    run = run_dag(dag, None)
    assert task_states(run) == {
        "shipped": "success",
        "errored": "failed",
        "tracking": "success",
        "errored_deferrable": "failed",
    }
    assert xcom(run, "shipped")["raw_status"] == "shipped"
    assert xcom(run, "tracking")["raw_status"] == "notified_shipped"
    for task in ("errored", "errored_deferrable"):
        assert isinstance(failures.errors[task], AirflowFailException)
        assert f"order {errored} is in error_sending_to_warehouse (error) since " in str(
            failures.errors[task]
        )
    assert sandbox.counters().count(path=f"/dropstream/orders/{errored}") == 2  # once each: failed at once


@pytest.mark.parametrize("vendor", ["dropstream", "dcl", "stream"])
def test_trigger_against_the_sandbox(sandbox, vendor):
    """The async path (aget_hook, aget_state through the HTTP core) of every vendor, on real HTTP."""
    import asyncio

    from airflow_provider_fulfillment.triggers.state import FulfillmentStateTrigger

    world = sandbox.world
    if vendor == "dropstream":
        ident, target = str(_ids_in_state(sandbox, "shipped")[0]), "shipped"
    elif vendor == "dcl":
        ident = sorted(
            n for n in world.dcl.numbers_by_stage()[60] if not world.dcl.cancelled(world.dcl.order_index(n))
        )[0]
        target = "60"  # a raw DCL stage
    else:
        ident, target = str(sorted(world.stream.ids_by_status()["delivered"])[0]), "delivered"
    trigger = FulfillmentStateTrigger(f"{vendor}_default", "order", ident, [target], ["error"], 0.05)

    async def events():
        return [event async for event in trigger.run()]

    (event,) = asyncio.run(events())
    assert event.payload["status"] == "ok", event.payload
    assert event.payload["state"]["ident"] == ident and event.payload["state"]["vendor"] == vendor
