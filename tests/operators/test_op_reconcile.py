"""FulfillmentReconcileOperator on hand-made inputs: each rule, the input forms, thresholds, options.

(The run against the sandbox's planted discrepancies, through `dag.test()`, is in test_op_sandbox.py.)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fulfillment.models.common import LineItem, Order, Shipment
from airflow_provider_fulfillment.operators.reconcile import KINDS, FulfillmentReconcileOperator
from tests.operators.helpers import ds_order, ds_shipment

AS_OF = datetime(2025, 10, 10, tzinfo=UTC)
OLD = datetime(2025, 10, 1, tzinfo=UTC)  # long past any deadline at AS_OF
FRESH = datetime(2025, 10, 9, 12, tzinfo=UTC)  # within the default 2-day deadline at AS_OF


def order(vendor: str, ident: str, status: str, raw: str, *, created=OLD, ship_by=None, items=()) -> Order:
    return Order(vendor=vendor, id=ident, number=f"N{ident}", status=status, raw_status=raw, created_at=created,
                 ship_by=ship_by, items=[LineItem(line_id=ln, sku=s, quantity=q) for ln, s, q in items])  # fmt: skip


def shipment(vendor: str, ident: str, order_id: str | None, status: str = "shipped", raw: str = "", *, items=(),
             tracking=("T1",)) -> Shipment:  # fmt: skip
    return Shipment(vendor=vendor, id=ident, order_id=order_id, status=status, raw_status=raw or status,
                    tracking_numbers=list(tracking), created_at=OLD + timedelta(hours=5),
                    items=[LineItem(line_id=ln, sku=s, quantity=q) for ln, s, q in items])  # fmt: skip


def write(path: Path, records: list[Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for record in records:
            handle.write(
                (record.model_dump_json() if hasattr(record, "model_dump_json") else json.dumps(record))
                + "\n"
            )
    return f"file://{path}"


def hive(root: Path, vendor: str, resource: str, suffix: str = ".common.jsonl") -> Path:
    return (
        root
        / f"vendor={vendor}"
        / f"resource={resource}"
        / "date=2025-10-01"
        / (f"20251001T000000Z_20251010T000000Z{suffix}")
    )


def reconcile(orders: Any, shipments: Any, context: dict | None = None, **kwargs) -> tuple[dict, list[dict]]:
    kwargs.setdefault("as_of", AS_OF.isoformat())
    op = FulfillmentReconcileOperator(task_id="r", orders=orders, shipments=shipments, **kwargs)
    summary = op.execute(context or {})  # type: ignore[arg-type]
    findings = [
        json.loads(line) for line in Path(summary["uri"].removeprefix("file://")).read_text().splitlines()
    ]
    assert summary["records"] == len(findings)
    assert summary["counts"] == {kind: sum(f["kind"] == kind for f in findings) for kind in KINDS}
    return summary, findings


def kinds(findings: list[dict]) -> list[tuple[str, str | None, str | None]]:
    return sorted((f["kind"], f["order_id"], f["shipment_id"]) for f in findings)


def test_quantities_where_the_vendor_gives_them(tmp_path):
    orders = [
        # fully shipped (DCL 60) but one line short and one line not shipped at all
        order("dcl", "A", "shipped", "60", items=[("1", "X", Decimal(2)), ("2", "Y", Decimal(1))]),
        # in progress, more shipped than ordered
        order("dcl", "B", "processing", "40", items=[("1", "X", Decimal(1))]),
        # in progress, partly shipped: fine
        order("dcl", "C", "processing", "50", items=[("1", "X", Decimal(3))]),
        # shipped exactly, over two shipments: fine
        order("dcl", "D", "shipped", "60", items=[("1", "X", Decimal(2))]),
    ]
    shipments = [
        shipment("dcl", "s1", "A", items=[("1", "X", Decimal(1))]),
        shipment("dcl", "s2", "B", items=[("1", "X", Decimal(3))]),
        shipment("dcl", "s3", "C", items=[("1", "X", Decimal(1))]),
        shipment("dcl", "s4", "D", items=[("1", "X", Decimal(1))]),
        shipment("dcl", "s5", "D", items=[("1", "X", Decimal(1))]),
    ]
    summary, findings = reconcile(
        write(hive(tmp_path, "dcl", "orders"), orders), write(hive(tmp_path, "dcl", "shipments"), shipments)
    )
    assert kinds(findings) == [("item_mismatch", "A", None), ("item_mismatch", "B", None)]
    a = next(f for f in findings if f["order_id"] == "A")
    assert a["reason"] == "quantity" and a["shipment_ids"] == ["s1"]
    assert a["lines"] == [
        {"line_id": "1", "sku": "X", "ordered": "2", "shipped": "1"},
        {"line_id": "2", "sku": "Y", "ordered": "1", "shipped": "0"},
    ]
    assert "line 1: ordered 2, shipped 1" in a["detail"]
    b = next(f for f in findings if f["order_id"] == "B")
    assert b["lines"] == [{"line_id": "1", "sku": "X", "ordered": "1", "shipped": "3"}]
    # next to the inputs, under the orders' window
    assert summary["uri"] == (
        f"file://{tmp_path}/vendor=dcl/resource=discrepancies/date=2025-10-01/20251001T000000Z_20251010T000000Z.jsonl"
    )


def test_items_not_on_the_order_by_line_or_by_sku(tmp_path):
    orders = [
        order("dropstream", "1", "shipped", "shipped", items=[("10", "X", None), ("11", "Y", None)]),
        order("stream", "2", "shipped", "in_transit", items=[(None, "X", None)]),
    ]
    shipments = [
        shipment("dropstream", "s1", "1", items=[("10", None, None), ("99", None, None)]),
        shipment("dropstream", "s2", "1", items=[("11", None, None)]),
        shipment("stream", "s3", "2", items=[(None, "Z", None)]),
    ]
    _, findings = reconcile(write(tmp_path / "o.jsonl", orders), write(tmp_path / "s.jsonl", shipments))
    assert kinds(findings) == [("item_mismatch", "1", "s1"), ("item_mismatch", "2", "s3")]
    assert [f["lines"] for f in findings if f["order_id"] == "1"] == [
        [{"line_id": "99", "sku": None, "ordered": None, "shipped": None}]
    ]
    assert all(f["reason"] == "not_on_order" for f in findings)


def test_late_errored_shipped_and_closed(tmp_path):
    orders = [
        order("dropstream", "late", "processing", "pending_shipment"),  # no ship_by: created + 2 days
        order("dropstream", "byship", "pending", "new", created=FRESH, ship_by=AS_OF - timedelta(hours=1)),
        order("dropstream", "fresh", "processing", "pending_shipment", created=FRESH),
        order("dropstream", "err", "error", "error_processing"),
        order("dropstream", "ghost", "shipped", "shipped"),
        order("dropstream", "cancel", "canceled", "canceled"),
        order("dropstream", "bundle", "processing", "bundled"),
        order("dropstream", "ok", "shipped", "shipped"),
    ]
    shipments = [
        shipment("dropstream", "s1", "ok"),
        shipment("dropstream", "s2", "ok", "error", "errored_processing"),
    ]
    _, findings = reconcile(write(tmp_path / "o.jsonl", orders), write(tmp_path / "s.jsonl", shipments))
    assert kinds(findings) == [
        ("errored_order", "err", None),
        ("errored_shipment", "ok", "s2"),
        ("late_unshipped", "byship", None),
        ("late_unshipped", "late", None),
        ("shipped_without_shipment", "ghost", None),
    ]
    by_order = {f["order_id"]: f for f in findings if f["kind"] != "errored_shipment"}
    assert by_order["late"]["deadline"] == (OLD + timedelta(days=2)).isoformat()
    assert by_order["late"]["age_seconds"] == int((AS_OF - OLD - timedelta(days=2)).total_seconds())
    assert by_order["late"]["late"] is True and by_order["err"]["late"] is True
    assert by_order["late"]["detail"] == (
        "order late (pending_shipment) should have shipped by 2025-10-03T00:00:00+00:00 (created + 2d) "
        "and has no shipment"
    )
    assert "past its deadline" in by_order["err"]["detail"]
    assert by_order["byship"]["deadline"] == (AS_OF - timedelta(hours=1)).isoformat()
    # a longer deadline and no closed states change the verdicts
    _, findings = reconcile(
        write(tmp_path / "o.jsonl", orders), write(tmp_path / "s.jsonl", shipments),
        ship_deadline=timedelta(days=30), closed_states={}, destination=str(tmp_path / "out"),
    )  # fmt: skip
    assert [f["order_id"] for f in findings if f["kind"] == "late_unshipped"] == ["byship"]
    _, findings = reconcile(
        write(tmp_path / "o.jsonl", orders), write(tmp_path / "s.jsonl", shipments),
        closed_states={}, destination=str(tmp_path / "out2"),
    )  # fmt: skip
    assert sorted(f["order_id"] for f in findings if f["kind"] == "late_unshipped") == [
        "bundle",
        "byship",
        "late",
    ]


def test_stream_orders_are_their_own_shipments(tmp_path):
    orders = [
        order("stream", "1", "pending", "order_received"),
        order("stream", "2", "shipped", "in_transit"),
        order("stream", "3", "error", "pickup_missed"),
        order("stream", "4", "delivered", "delivered"),
    ]
    shipments = [shipment("stream", o.id, o.id, o.status, o.raw_status) for o in orders] + [
        shipment("stream", "9", "9", "error", "lost_in_transit")
    ]  # its order was not read
    _, findings = reconcile(write(tmp_path / "o.jsonl", orders), write(tmp_path / "s.jsonl", shipments),
                            orphans="report")  # fmt: skip
    # the errored order is reported once (as an order); a lone errored self-shipment as a shipment
    assert kinds(findings) == [
        ("errored_order", "3", None),
        ("errored_shipment", "9", "9"),
        ("late_unshipped", "1", None),
    ]


def test_several_vendors_never_cross_match(tmp_path):
    orders = [order("dropstream", "7", "shipped", "shipped"), order("dcl", "8", "shipped", "60")]
    shipments = [shipment("dcl", "s", "7"), shipment("dropstream", "t", "8")]
    summary, findings = reconcile(
        [write(tmp_path / "a.common.jsonl", orders[:1]), write(tmp_path / "b.common.jsonl", orders[1:])],
        write(tmp_path / "s.common.jsonl", shipments),
    )
    assert kinds(findings) == [
        ("orphan_shipment", "7", "s"), ("orphan_shipment", "8", "t"),
        ("shipped_without_shipment", "7", None), ("shipped_without_shipment", "8", None),
    ]  # fmt: skip
    assert summary["vendors"] == ["dcl", "dropstream"]
    assert "/vendor=multi/resource=discrepancies/" in summary["uri"]


def test_raw_vendor_files_by_uri_and_by_manifest(tmp_path):
    orders = [ds_order(1, state="shipped"), ds_order(2)]
    shipments = [ds_shipment(1, 1001, item_ids=[10010, 10011]), ds_shipment(2, None)]
    orders_uri = write(hive(tmp_path, "dropstream", "orders", ".jsonl"), orders)
    shipments_uri = write(hive(tmp_path, "dropstream", "shipments", ".jsonl"), shipments)
    _, by_uri = reconcile(orders_uri, shipments_uri)
    manifest = {"uri": orders_uri, "vendor": "dropstream", "resource": "orders", "normalized": False}
    _, by_manifest = reconcile([manifest], [shipments_uri])
    assert (
        kinds(by_uri)
        == kinds(by_manifest)
        == [("late_unshipped", "1002", None), ("orphan_shipment", None, "5002")]
    )
    orphan = next(f for f in by_uri if f["kind"] == "orphan_shipment")
    assert orphan["detail"] == "shipment 5002 names no order" and orphan["tracking_numbers"] == ["1Z00005002"]
    with pytest.raises(AirflowFailException, match="unknown vendor"):
        reconcile(write(tmp_path / "plain" / "o.jsonl", orders), shipments_uri)


def test_thresholds_fail_after_writing(tmp_path):
    orders = write(tmp_path / "o.jsonl", [order("dcl", "1", "error", "2"), order("dcl", "2", "error", "2")])
    shipments = write(tmp_path / "s.jsonl", [shipment("dcl", "s", "x")])

    class TI:
        pushed: dict = {}

        def xcom_push(self, key, value):
            self.pushed[key] = value

    ti = TI()
    with pytest.raises(AirflowFailException) as failed:
        reconcile(orders, shipments, context={"ti": ti}, fail_on={"total": 2, "errored_order": 5})
    assert str(failed.value).startswith(
        "reconciliation found discrepancies above thresholds: total 3 > 2 (all: "
    )
    assert ti.pushed["summary"]["counts"]["errored_order"] == 2
    assert Path(ti.pushed["summary"]["uri"].removeprefix("file://")).exists()
    summary, _ = reconcile(orders, shipments, fail_on={"total": 3}, orphans="ignore")
    assert summary["counts"]["orphan_shipment"] == 0 and summary["orphans"] == "ignore"


def test_input_and_argument_errors(tmp_path):
    orders_uri = write(hive(tmp_path, "dcl", "orders"), [order("dcl", "1", "shipped", "60")])
    with pytest.raises(AirflowFailException, match="resource=orders, not shipments"):
        reconcile(orders_uri, orders_uri)
    with pytest.raises(AirflowFailException, match="holds shipments, not orders"):
        reconcile({"uri": orders_uri, "resource": "shipments"}, orders_uri)
    with pytest.raises(AirflowFailException, match="cannot tell the format"):
        reconcile(orders_uri, "file:///tmp/x.csv")
    with pytest.raises(ValueError, match="fail_on: unknown kind"):
        FulfillmentReconcileOperator(task_id="r", orders=[], shipments=[], fail_on={"lost": 1})
    with pytest.raises(ValueError, match="needs conn_id"):
        FulfillmentReconcileOperator(task_id="r", orders=[], shipments=[], orphans="lookup")


def test_as_of_defaults_to_the_interval_end(tmp_path):
    orders = write(tmp_path / "o.jsonl", [order("dropstream", "1", "processing", "new", created=FRESH)])
    shipments = write(tmp_path / "s.jsonl", [])
    op = FulfillmentReconcileOperator(task_id="r", orders=orders, shipments=shipments)
    summary = op.execute({"data_interval_end": AS_OF + timedelta(days=5)})  # type: ignore[arg-type]
    assert summary["as_of"] == (AS_OF + timedelta(days=5)).isoformat()
    assert summary["counts"]["late_unshipped"] == 1
    # no window in the inputs' names: the file is named after as_of, in the orders' folder
    assert summary["uri"] == f"file://{tmp_path}/vendor=multi/resource=discrepancies/date=2025-10-15/" \
                             "20251015T000000Z_20251015T000000Z.jsonl"  # fmt: skip


def test_duration_text():
    from airflow_provider_fulfillment.operators._format import duration

    assert [duration(timedelta(seconds=s)) for s in (5, 90, 3600, 86400 * 2, 86400 + 6 * 3600 + 60)] == [
        "5s",
        "1m",
        "1h",
        "2d",
        "1d 6h 1m",
    ]


def test_orders_stream_past_the_shipment_index(tmp_path):
    """60,000 orders, 10 shipments: the peak of Python allocations stays far below the orders' size."""
    import tracemalloc

    path = tmp_path / "orders.common.jsonl"
    with path.open("w") as handle:
        for i in range(60_000):
            item = [("1", "SKU", Decimal(1))]
            handle.write(
                order("dcl", str(i), "processing", "40", created=FRESH, items=item).model_dump_json() + "\n"
            )
    shipments = write(tmp_path / "s.common.jsonl", [shipment("dcl", f"s{i}", str(i)) for i in range(10)])
    tracemalloc.start()
    try:
        summary, findings = reconcile(f"file://{path}", shipments)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary["orders_read"] == 60_000 and findings == []
    assert peak < 8 * 2**20 < path.stat().st_size
