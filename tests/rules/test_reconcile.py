"""rules.reconcile: each rule on hand-made common records, exact findings out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from airflow_provider_fulfillment.models.common import LineItem, Order, Shipment
from airflow_provider_fulfillment.rules.reconcile import ReconcilePolicy, reconcile

AS_OF = datetime(2025, 10, 10, tzinfo=UTC)
OLD = datetime(2025, 10, 1, tzinfo=UTC)  # long past the default 2-day deadline at AS_OF
FRESH = datetime(2025, 10, 9, 12, tzinfo=UTC)  # within it


def order(vendor, ident, status, raw, *, created=OLD, ship_by=None, items=(), since=None):
    return Order(
        vendor=vendor,
        id=ident,
        number=f"N{ident}",
        status=status,
        raw_status=raw,
        created_at=created,
        status_since=since,
        ship_by=ship_by,
        items=[LineItem(line_id=line, sku=sku, quantity=q) for line, sku, q in items],
    )


def shipment(vendor, ident, order_id, status="shipped", raw="", *, items=(), when=OLD + timedelta(hours=5)):
    return Shipment(
        vendor=vendor,
        id=ident,
        order_id=order_id,
        status=status,
        raw_status=raw or status,
        tracking_numbers=[f"T{ident}"],
        created_at=when,
        items=[LineItem(line_id=line, sku=sku, quantity=q) for line, sku, q in items],
    )


def keys(findings):
    return [finding.key for finding in findings]


def test_late_errored_shipped_without_shipment_and_closed():
    orders = [
        order("dropstream", "1", "pending", "new"),  # late
        order("dropstream", "2", "processing", "sent_to_warehouse", created=FRESH),  # not yet due
        order(
            "dropstream", "3", "error", "error_processing", since=OLD + timedelta(hours=1)
        ),  # errored and late
        order("dropstream", "4", "shipped", "shipped"),  # says shipped, no shipment
        order("dropstream", "5", "canceled", "canceled"),  # closed: never late
        order("dropstream", "6", "processing", "bundled"),  # closed by policy
        order("dropstream", "7", "pending", "new", ship_by=AS_OF + timedelta(hours=1)),  # ship-by wins
        order("dropstream", "8", "processing", "pending_shipment"),  # shipped: not late
    ]
    shipments = [shipment("dropstream", "S8", "8")]
    findings = reconcile(orders, shipments, as_of=AS_OF)
    assert keys(findings) == [
        ("dropstream", "errored_order", "3"),
        ("dropstream", "late_order", "1"),
        ("dropstream", "late_order", "3"),
        ("dropstream", "shipped_without_shipment", "4"),
    ]
    late = findings[1]
    assert late.since == OLD + timedelta(days=2)
    assert late.severity == "warning"
    assert late.details == {
        "number": "N1",
        "status": "pending",
        "raw_status": "new",
        "deadline": "2025-10-03T00:00:00+00:00",
        "shipment_ids": [],
        "summary": "order 1 (new) should have shipped by 2025-10-03T00:00:00+00:00 "
        "(creation + 2d) and has no shipment",
    }
    errored = findings[0]
    assert (errored.severity, errored.since) == ("critical", OLD + timedelta(hours=1))
    assert errored.details["summary"] == "order 3 is in error_processing (error)"


def test_a_shorter_deadline_and_an_unshipped_shipment_do_not_count_as_shipped():
    orders = [order("dcl", "A", "processing", "40", created=FRESH)]
    not_left = [shipment("dcl", "P1", "A", status="processing", raw="packing")]
    assert keys(reconcile(orders, not_left, as_of=AS_OF)) == []
    policy = ReconcilePolicy(ship_deadline=timedelta(hours=6))
    assert keys(reconcile(orders, not_left, as_of=AS_OF, policy=policy)) == [("dcl", "late_order", "A")]


def test_orphans_and_errored_shipments():
    orders = [order("dropstream", "1", "shipped", "shipped")]
    shipments = [
        shipment("dropstream", "S1", "1", status="error", raw="errored_processing"),
        shipment("dropstream", "S2", "999"),  # unknown order
        shipment("dropstream", "S3", None),  # names no order
    ]
    findings = reconcile(orders, shipments, as_of=AS_OF)
    assert keys(findings) == [
        ("dropstream", "errored_shipment", "S1"),
        ("dropstream", "orphan_shipment", "S2"),
        ("dropstream", "orphan_shipment", "S3"),
    ]
    assert [f.resource for f in findings] == ["shipment"] * 3
    assert findings[1].details == {
        "shipment_id": "S2",
        "order_id": "999",
        "status": "shipped",
        "raw_status": "shipped",
        "tracking_numbers": ["TS2"],
        "summary": "shipment S2 refers to order 999, which is unknown",
    }
    assert findings[2].details["summary"] == "shipment S3 names no order"


def test_dcl_lines_skus_and_quantities():
    orders = [
        # fully shipped but line 1 short, line 2 not shipped
        order("dcl", "A", "shipped", "60", items=[("1", "X", Decimal(2)), ("2", "Y", Decimal(1))]),
        # in progress: more shipped than ordered
        order("dcl", "B", "processing", "40", items=[("1", "X", Decimal(1))]),
        # a line that is not on the order
        order("dcl", "C", "processing", "40", items=[("1", "X", Decimal(1))]),
        # in progress, less shipped so far: fine
        order("dcl", "D", "processing", "40", items=[("1", "X", Decimal(3))]),
    ]
    shipments = [
        shipment("dcl", "PA", "A", items=[("1", "X", Decimal(1))]),
        shipment("dcl", "PB", "B", items=[("1", "X", Decimal(2))]),
        shipment("dcl", "PC", "C", items=[("1", "X", Decimal(1)), ("9", "Z", Decimal(1))]),
        shipment("dcl", "PD", "D", items=[("1", "X", Decimal(1))]),
    ]
    findings = reconcile(orders, shipments, as_of=AS_OF)
    assert keys(findings) == [
        ("dcl", "item_mismatch", "A"),
        ("dcl", "item_mismatch", "B"),
        ("dcl", "item_mismatch", "C"),
    ]
    a, b, c = findings
    assert a.details["lines"] == [
        {
            "shipment_id": None,
            "line_id": "1",
            "sku": "X",
            "ordered": "2",
            "shipped": "1",
            "reason": "quantity",
        },
        {
            "shipment_id": None,
            "line_id": "2",
            "sku": "Y",
            "ordered": "1",
            "shipped": "0",
            "reason": "quantity",
        },
    ]
    assert a.details["summary"] == "order A: line 1: ordered 2, shipped 1; line 2: ordered 1, shipped 0"
    assert (a.details["reason"], a.details["quantity_checked"], "note" in a.details) == (
        "quantity",
        True,
        False,
    )
    assert b.details["summary"] == "order B: line 1: ordered 1, shipped 2"
    assert c.details["lines"] == [
        {
            "shipment_id": "PC",
            "line_id": "9",
            "sku": "Z",
            "ordered": None,
            "shipped": "1",
            "reason": "not_on_order",
        }
    ]
    assert c.details["reason"] == "not_on_order"


def test_missing_quantities_are_said_not_silently_skipped():
    orders = [order("dcl", "A", "shipped", "60", items=[(None, "X", None)])]
    shipments = [shipment("dcl", "PA", "A", items=[(None, "Q", None)])]
    (finding,) = reconcile(orders, shipments, as_of=AS_OF)
    assert finding.details["quantity_checked"] is False
    assert finding.details["note"] == "DCL documents no item quantities: quantities were not compared"
    assert finding.details["summary"] == "order A: SKU Q: not on the order"


def test_dropstream_compares_only_what_it_documents():
    """Shipment order_items are bare ids no documented order field links to: count them, say so."""
    items = [("ext-1", "RED", None), ("ext-2", "BLUE", None)]
    orders = [
        order("dropstream", "1", "shipped", "shipped", items=items),  # one extra item shipped
        order("dropstream", "2", "shipped", "shipped", items=items),  # split over two shipments: fine
        order("dropstream", "3", "processing", "partially_shipped", items=items),  # partial: fine
    ]
    shipments = [
        shipment(
            "dropstream", "S1", "1", items=[("701", None, None), ("702", None, None), ("999", None, None)]
        ),
        shipment("dropstream", "S2a", "2", items=[("801", None, None)]),
        shipment("dropstream", "S2b", "2", items=[("802", None, None)]),
        shipment("dropstream", "S3", "3", items=[("901", None, None)]),
    ]
    (finding,) = reconcile(orders, shipments, as_of=AS_OF)
    assert finding.key == ("dropstream", "item_mismatch", "1")
    assert finding.details == {
        "number": "N1",
        "status": "shipped",
        "raw_status": "shipped",
        "deadline": "2025-10-03T00:00:00+00:00",
        "shipment_ids": ["S1"],
        "reason": "more_items_than_ordered",
        "ordered_items": 2,
        "shipped_items": 3,
        "shipped_item_ids": ["701", "702", "999"],
        "quantity_checked": False,
        "note": "DropStream documents no field linking a shipment's order_items to the order's items: only "
        "the number of distinct items was compared; DropStream documents no item quantities: quantities "
        "were not compared",
        "summary": "order 1: its shipments carry 3 distinct items, the order has 2",
    }


def test_stream_orders_are_their_own_shipments():
    orders = [
        order("stream", "10", "pending", "order_received"),  # late: its own status has not shipped
        order("stream", "11", "shipped", "in_transit"),
        order("stream", "12", "error", "pickup_missed"),
    ]
    shipments = [
        shipment("stream", "10", "10", status="pending", raw="order_received"),
        shipment("stream", "11", "11", status="shipped", raw="in_transit"),
        shipment("stream", "12", "12", status="error", raw="pickup_missed"),
        shipment("stream", "13", "13", status="shipped", raw="in_transit"),  # order not given: no orphan
    ]
    assert keys(reconcile(orders, shipments, as_of=AS_OF)) == [
        ("stream", "errored_order", "12"),
        ("stream", "late_order", "10"),
        ("stream", "late_order", "12"),
    ]


def test_vendors_never_cross_match():
    orders = [order("dcl", "1", "processing", "40")]
    shipments = [shipment("dropstream", "S", "1")]
    assert keys(reconcile(orders, shipments, as_of=AS_OF)) == [
        ("dcl", "late_order", "1"),
        ("dropstream", "orphan_shipment", "S"),
    ]


def test_orders_stream_past_the_index_once():
    """Orders are consumed lazily, once: a generator works."""
    seen = []

    def orders():
        for n in range(3):
            seen.append(n)
            yield order("dropstream", str(n), "processing", "sent_to_warehouse")

    assert len(reconcile(orders(), iter(()), as_of=AS_OF)) == 3
    assert seen == [0, 1, 2]


def test_bad_arguments():
    with pytest.raises(ValueError, match="as_of must be timezone-aware"):
        reconcile([], [], as_of=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="ship_deadline must not be negative"):
        ReconcilePolicy(ship_deadline=timedelta(hours=-1))


def test_two_dcl_accounts_sharing_an_order_number_are_two_records_named_by_account():
    """A finding's record_id is "account/number" where the record has an account: two accounts'
    "D1" are two findings, each matched with its own account's shipments."""
    from airflow_provider_fulfillment.ledger import LedgerOrder, LedgerShipment

    def d(account, ident, status="processing", raw="20", **fields):
        return LedgerOrder(**order("dcl", ident, status, raw, **fields).model_dump(), account=account)

    def s(account, ident, order_id, status="shipped"):
        return LedgerShipment(**shipment("dcl", ident, order_id, status).model_dump(), account=account)

    orders = [d("10501", "D1"), d("10502", "D1"), d("10502", "D2", "error", "2")]
    shipments = [s("10501", "77", "D1", "error"), s("10502", "78", "D9")]
    found = reconcile(orders, shipments, as_of=AS_OF)
    assert [(f.key, f.account, f.details["summary"]) for f in found] == [
        (("dcl", "errored_order", "10502/D2"), "10502", "order 10502/D2 is in 2 (error)"),
        (("dcl", "errored_shipment", "10501/77"), "10501", "shipment 10501/77 is in error (error)"),
        (
            ("dcl", "late_order", "10502/D1"),
            "10502",
            "order 10502/D1 (20) should have shipped by 2025-10-03T00:00:00+00:00 (creation + 2d) "
            "and has no shipment",
        ),
        (
            ("dcl", "late_order", "10502/D2"),
            "10502",
            "order 10502/D2 (2) should have shipped by 2025-10-03T00:00:00+00:00 (creation + 2d) "
            "and has no shipment",
        ),
        (
            ("dcl", "orphan_shipment", "10502/78"),
            "10502",
            "shipment 10502/78 refers to order 10502/D9, which is unknown",
        ),
    ]
    # 10501's D1 has a shipment that left (errored after leaving): not late; 10502's D1 has none.
    assert ("dcl", "late_order", "10501/D1") not in {f.key for f in found}
