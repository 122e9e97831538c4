"""The daily ledger DAG over three days of a moving sandbox: exact transitions, findings, alerts.

Day 1 reads the whole (30-day) world into an empty ledger; between runs the sandbox clock moves a
day. Each day the ledger must hold exactly what the sandbox serves, the open findings must be
exactly what the rules find in the sandbox's own records, what opened and resolved exactly the
difference from the day before, and each finding is notified once when it opens, reminded daily,
and notified once when it resolves.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_fulfillment.ledger import Ledger, LedgerOrder, LedgerShipment
from airflow_provider_fulfillment.models.dcl import DclOrder
from airflow_provider_fulfillment.models.dropstream import DropStreamOrder, DropStreamShipment
from airflow_provider_fulfillment.models.states import DROPSTREAM_SHIPMENT_TERMINAL
from airflow_provider_fulfillment.models.stream import StreamOrder
from airflow_provider_fulfillment.rules.reconcile import account_of, reconcile
from airflow_provider_fulfillment.rules.types import record_key

pytestmark = pytest.mark.integration

DAY1 = datetime(2026, 1, 1, tzinfo=UTC)  # the sandbox world's end: the first run's interval end


@pytest.fixture(scope="module")
def moving_sandbox() -> Iterator[Any]:
    from airflow_provider_fulfillment.sandbox.testing import run_sandbox

    with run_sandbox(seed=11, orders=600, days=30, dcl_orders=120, stream_orders=60) as server:
        yield server


def world_records(world: Any) -> tuple[list[Any], list[Any]]:
    """The sandbox's records now, as common orders and shipments (independent of the pipeline);
    DCL's with their account, as the ledger holds them."""
    ds, dcl, stream = world.dropstream, world.dcl, world.stream
    orders = [DropStreamOrder.model_validate_json(ds.order_bytes(i)).to_common() for i in range(ds.n)]
    shipments = [
        DropStreamShipment.model_validate_json(ds.shipment_bytes(p)).to_common()
        for p in range(ds.n_shipments)
    ]
    for j in range(dcl.n):
        order = DclOrder.model_validate_json(dcl.order_bytes(j))
        account = order.account_number or ""
        orders.append(LedgerOrder(**{**order.to_common().model_dump(), "account": account}))
        shipments.extend(
            LedgerShipment(**{**shipment.model_dump(), "account": account})
            for shipment in order.to_common_shipments()
        )
    for s in range(stream.n):
        order = StreamOrder.model_validate(stream.order_dict(s, "http://127.0.0.1"))
        orders.append(order.to_common())
        shipments.append(order.to_common_shipment())
    return orders, shipments


def record_states(records: Any) -> dict[tuple[str, str], str]:
    """(vendor, ledger record_id) -> raw status: "10501/D1" for DCL, the bare id elsewhere."""
    return {(r.vendor, record_key(account_of(r), r.id)): r.raw_status for r in records}


def test_three_days_of_a_moving_world(
    airflow_db, dagbag, moving_sandbox, monkeypatch, tmp_path, xcom
) -> None:
    from tests.conftest import _register

    for name, value in moving_sandbox.conn_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "AIRFLOW_CONN_FULFILLMENT_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.db")})
    )
    dag = dagbag.dags["example_fulfillment_daily_ledger"]
    _register(dag)
    world = moving_sandbox.world
    previous_open: set[tuple[str, str, str]] = set()
    previous_states: dict[tuple[str, str], str] = {}
    sent: Counter[tuple[str, str, str, str]] = Counter()
    for day in range(3):
        now = DAY1 + timedelta(days=day)
        if day:
            moving_sandbox.advance("1d")
        with Ledger("fulfillment_ledger") as ledger:
            open_before = ledger.open_record_ids("dropstream", "shipments")
        run = dag.test(logical_date=now)
        assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}

        orders, shipments = world_records(world)
        expected = {f.key for f in reconcile(orders, shipments, as_of=now)}
        summary = xcom(run, "reconcile")
        assert summary["as_of"] == now.isoformat()
        with Ledger("fulfillment_ledger") as ledger:
            held = record_states(ledger.iter_records("orders"))
            # a Stream order is its own shipment: after it ships, its shipment row follows it
            held |= record_states(ledger.iter_records("shipments", vendor="stream"))
            open_rows = {row.key for row in ledger.findings()}
            changes = [
                c
                for c in ledger.state_changes()
                if c.run_id == run.run_id and (c.resource == "order" or c.vendor == "stream")
            ]
            alerts = ledger.alerts(since=now, limit=100_000)
            open_after = ledger.open_record_ids("dropstream", "shipments")
        now_states = record_states(orders)
        assert held == now_states  # the ledger holds exactly what the vendors serve today
        assert open_rows == expected
        # DropStream shipments stay open until notified_shipped or archived: capture re-reads the
        # ones in flight, and the open set is exactly those the sandbox has not yet notified.
        captured = xcom(run, "capture_dropstream_shipments")["capture"]
        assert captured["open_in_ledger"] == len(open_before)
        served = {s.id: s.raw_status for s in shipments if s.vendor == "dropstream"}
        assert open_after == {i: raw for i, raw in served.items() if raw not in DROPSTREAM_SHIPMENT_TERMINAL}
        if day:  # the day before's open set shrank by exactly the ones notified since
            notified = {i for i in open_before if served[i] in DROPSTREAM_SHIPMENT_TERMINAL}
            assert notified and set(open_before) - set(open_after) == notified
        opened, resolved = expected - previous_open, previous_open - expected
        assert summary["opened"] == len(opened) and summary["resolved"] == len(resolved)
        assert summary["still_open"] == len(expected & previous_open)
        if day:
            moved = {key for key, raw in now_states.items() if previous_states.get(key) != raw}
            assert moved and {(c.vendor, c.record_id) for c in changes} == moved
            assert {c.status for c in changes} >= {"shipped", "canceled"}
            assert opened and resolved  # the world moved: some things went wrong, some were fixed
        # alerts: opened once for each new finding, a daily reminder for the others, resolved once
        events = Counter((a.vendor, a.kind, a.record_id, a.event) for a in alerts)
        assert {key for key, n in events.items() if key[3] == "opened"} == {(*k, "opened") for k in opened}
        assert {key for key, n in events.items() if key[3] == "reminder"} == {
            (*k, "reminder") for k in expected & previous_open
        }
        assert {key for key, n in events.items() if key[3] == "resolved"} == {
            (*k, "resolved") for k in resolved
        }
        assert set(events.values()) == {1}
        sent.update(events)
        report = xcom(run, "alert")
        assert (report["opened"], report["reminder"], report["resolved"]) == (
            len(opened),
            len(expected & previous_open),
            len(resolved),
        )
        sla_rows = xcom(run, "sla")["rows"]
        assert {row["metric"] for row in sla_rows} >= {"open_findings", "time_to_ship"}
        previous_open, previous_states = expected, now_states

    assert all(n == 1 for key, n in sent.items() if key[3] in ("opened", "resolved"))
    rerun = dag.test(logical_date=DAY1 + timedelta(days=2))  # the last day again: nothing new
    assert rerun.state == "success"
    again = xcom(rerun, "alert")
    assert (again["opened"], again["reminder"], again["resolved"]) == (0, 0, 0)
    assert (xcom(rerun, "reconcile")["opened"], xcom(rerun, "reconcile")["resolved"]) == (0, 0)
