"""The generated world: determinism, consistency, documented vocabularies, planted ground truth, scale."""

from __future__ import annotations

import re
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta

from airflow_provider_fulfillment.sandbox.world import DEFAULT_END, World
from airflow_provider_fulfillment.sandbox.world_dcl import STAGES
from airflow_provider_fulfillment.sandbox.world_dropstream import (
    CLOSED_STATES,
    OPEN_STATES,
    ORDER_ERROR_STATES,
    ORDER_STATES,
    SHIPMENT_ERROR_STATES,
    SHIPMENT_STATES,
)
from airflow_provider_fulfillment.sandbox.world_stream import STATUSES

DOC_ORDER_STATES = set(
    [
        "archived",
        "bundled",
        "canceled",
        "delayed_processing",
        "delayed_sending_completion_acknowledgement",
        "delayed_sending_receipt_acknowledgement",
        "delayed_sending_to_warehouse",
        "error",
        "error_processing",
        "error_sending_completion_acknowledgement",
        "error_sending_receipt_acknowledgement",
        "error_sending_to_warehouse",
        "new",
        "new_manual",
        "partially_shipped",
        "pending_shipment",
        "processing",
        "queued",
        "ready_for_warehouse",
        "scheduled_completion_acknowledgement",
        "scheduled_processing_order",
        "scheduled_receipt_acknowledgement",
        "scheduled_request",
        "sending_completion_acknowledgement",
        "sending_receipt_acknowledgement",
        "sending_to_warehouse",
        "sent_completion_acknowledgement",
        "sent_to_warehouse",
        "shipped",
        "skipped",
        "split",
        "waiting",
    ]
)
DOC_SHIPMENT_STATES = {
    "new",
    "ready_for_shipment_notification",
    "scheduled_notify_of_shipment",
    "scheduled_processing_shipment",
    "errored_processing",
    "delayed_notifying_of_shipment",
    "errored_notifying_of_shipment",
    "notified_shipped",
    "archived",
}
DOC_STREAM_STATUSES = set(
    [
        "order_received",
        "additional_document_required",
        "awaiting_waybill_generation",
        "awaiting_prepayment",
        "prepayment_received",
        "client_to_schedule_pickup",
        "admin_to_schedule_pickup",
        "system_to_schedule_pickup",
        "awaiting_pickup",
        "awaiting_swap_out",
        "pickup_missed",
        "in_transit",
        "partially_delivered",
        "delivered",
        "invoice_paid",
        "incomplete",
        "cancelled",
        "lost_in_transit",
    ]
)
END = DEFAULT_END


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_vocabularies_are_exactly_the_documented_ones():
    assert set(ORDER_STATES) == DOC_ORDER_STATES
    assert set(SHIPMENT_STATES) == DOC_SHIPMENT_STATES
    assert set(STATUSES) == DOC_STREAM_STATUSES


def test_same_seed_same_records_different_seed_different_records():
    a, b, c = World(seed=7, orders=3000), World(seed=7, orders=3000), World(seed=8, orders=3000)
    for i in (0, 1, 1234, 2999):
        assert a.dropstream.order_bytes(i) == b.dropstream.order_bytes(i)
        p = i % a.dropstream.n_shipments
        assert a.dropstream.shipment_bytes(p) == b.dropstream.shipment_bytes(p)
        assert a.dcl.order_bytes(i % a.dcl.n) == b.dcl.order_bytes(i % b.dcl.n)
        assert a.stream.order_dict(i % a.stream.n, "x") == b.stream.order_dict(i % b.stream.n, "x")
    assert a.truth == b.truth
    assert a.dropstream.order_bytes(5) != c.dropstream.order_bytes(5)


def test_dropstream_orders_are_consistent(all_orders):
    ids = [o["id"] for o in all_orders]
    created = [o["created_at"] for o in all_orders]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert created == sorted(created)
    assert ts(created[0]) >= END - timedelta(days=90) and ts(created[-1]) < END
    external_item_ids = [it["external_order_item_id"] for o in all_orders for it in o["order_items"]]
    assert len(set(external_item_ids)) == len(external_item_ids)
    # only documented item fields (issue 11): no item id, no quantity
    assert all({"id", "quantity"}.isdisjoint(it) for o in all_orders for it in o["order_items"])
    states = Counter(o["fulfillment_state"] for o in all_orders)
    assert set(states) <= DOC_ORDER_STATES
    # a realistic mix: every category is present
    for group in (OPEN_STATES, ORDER_ERROR_STATES, {"canceled"}, {"partially_shipped"}, {"shipped"}):
        assert sum(states[s] for s in group) > 0, group
    assert states["shipped"] > len(all_orders) // 2
    for o in all_orders[:200]:
        assert ts(o["ordered_at"]) <= ts(o["created_at"])
        assert ts(o["requested_ship_date"]) > ts(o["created_at"])
        assert o["shipping_address"]["country"] and o["order_items"]


def test_dropstream_shipments_reference_orders_and_items(shared_sandbox, all_orders, all_shipments):
    truth = shared_sandbox.world.truth
    ds = shared_sandbox.world.dropstream
    orders = {o["id"]: o for o in all_orders}
    ids = [s["id"] for s in all_shipments]
    assert ids == sorted(ids)
    assert [s["created_at"] for s in all_shipments] == sorted(s["created_at"] for s in all_shipments)
    orphans, foreign = set(), set()
    shipped_items: dict[int, set[int]] = {}
    for s in all_shipments:
        assert s["state"] in DOC_SHIPMENT_STATES
        assert ts(s["shipped_at"]) <= ts(s["created_at"]) < END
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", s["expected_delivery_date"])
        order = orders.get(s["order_id"])
        if order is None:
            orphans.add(s["id"])
            continue
        assert order["fulfillment_warehouse_id"] == s["warehouse_id"]
        assert ts(s["shipped_at"]) >= ts(order["created_at"])
        on_order = set(ds.item_ids(ds.order_index(order["id"])))  # the link the docs do not show
        sent = {it["id"] for it in s["order_items"]}
        if not sent <= on_order:
            foreign.add(s["id"])
        shipped_items.setdefault(order["id"], set()).update(sent & on_order)
    assert orphans == truth.orphan_shipments and len(orphans) == 5
    assert foreign == truth.foreign_item_shipments and len(foreign) == 5
    partial = {oid for oid, o in orders.items() if o["fulfillment_state"] == "partially_shipped"}
    assert partial == truth.partially_shipped
    for oid in partial:  # partially shipped: a strict, non-empty subset of the items shipped
        assert shipped_items[oid] and shipped_items[oid] < set(ds.item_ids(ds.order_index(oid)))
    shipped_no_shipment = {
        oid for oid, o in orders.items() if o["fulfillment_state"] == "shipped" and oid not in shipped_items
    }
    assert shipped_no_shipment == truth.shipped_without_shipment and len(shipped_no_shipment) == 5
    # orders awaiting shipment never have one
    assert not any(orders[oid]["fulfillment_state"] in OPEN_STATES for oid in shipped_items)


def test_truth_sets_match_the_records(shared_sandbox, all_orders, all_shipments):
    truth = shared_sandbox.world.truth
    with_shipment = {s["order_id"] for s in all_shipments}
    late = {
        o["id"]
        for o in all_orders
        if o["fulfillment_state"] in OPEN_STATES
        and ts(o["requested_ship_date"]) < END
        and o["id"] not in with_shipment
    }
    past = {
        o["id"]
        for o in all_orders
        if o["fulfillment_state"] not in CLOSED_STATES
        and ts(o["requested_ship_date"]) < END
        and o["id"] not in with_shipment
    }
    assert late == truth.late and len(late) > 0
    assert past == truth.unshipped_past_deadline
    assert truth.shipped_without_shipment <= past
    assert {
        o["id"] for o in all_orders if o["fulfillment_state"] in ORDER_ERROR_STATES
    } == truth.errored_orders
    assert {s["id"] for s in all_shipments if s["state"] in SHIPMENT_ERROR_STATES} == truth.errored_shipments
    assert {o["id"] for o in all_orders if o["fulfillment_state"] == "canceled"} == truth.canceled
    assert truth.errored_shipments and truth.errored_orders and truth.canceled
    assert truth.summary()["late"] == len(late)


def test_expected_id_helpers_follow_half_open_windows(shared_sandbox, all_orders):
    w = shared_sandbox.world.dropstream
    start, end = datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 11, 8, tzinfo=UTC)
    expected = [o["id"] for o in all_orders if start <= ts(o["created_at"]) < end]
    assert w.order_ids(window=(start, end)) == expected
    expected = [o["id"] for o in all_orders if start <= ts(o["ordered_at"]) < end]
    assert w.order_ids(window=(start, end), field="ordered_at") == expected


def test_dcl_orders_are_consistent(all_dcl_orders):
    numbers = [o["order_number"] for o in all_dcl_orders]
    assert len(set(numbers)) == len(numbers)
    stages = Counter(o["order_stage"] for o in all_dcl_orders)
    assert set(stages) <= set(STAGES) and {10, 60, 62} <= set(stages)
    assert all(2 <= s <= 70 for s in stages)
    for o in all_dcl_orders:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", o["received_date"])
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}-0[78]:00", o["modified_at"])
        assert o["stage_description"] == STAGES[o["order_stage"]]
        if o["order_stage"] in (60, 62, 70, 50):
            assert o["shipments"], o["order_number"]
            for s in o["shipments"]:
                assert s["packages"] and all(p["tracking_number"] for p in s["packages"])
                assert s["reference1"] == s["packages"][0]["tracking_number"]
        else:
            assert o["shipments"] is None
        if o["order_stage"] == 60:  # fully shipped: every unit of every line shipped
            ordered = Counter()
            for line in o["order_lines"]:
                ordered[line["line_number"]] += line["quantity"]
            shipped = Counter()
            for s in o["shipments"]:
                for sl in s["shipped_lines"]:
                    shipped[sl["line_number"]] += sl["quantity"]
            assert shipped == ordered
        if o["order_stage"] == 62:  # closed short: less shipped than ordered
            total_ordered = sum(line["quantity"] for line in o["order_lines"])
            total_shipped = sum(sl["quantity"] for s in o["shipments"] for sl in s["shipped_lines"])
            assert total_shipped < total_ordered
    both = {o["modified_at"][-6:] for o in all_dcl_orders}
    assert both == {"-08:00", "-07:00"} or both <= {"-08:00", "-07:00"}
    assert any(o["is_cancelled"] for o in all_dcl_orders)
    bundles = [line for o in all_dcl_orders for line in o["order_lines"] if line["bundle_lines"]]
    assert bundles and all(len(b["bundle_lines"]) == 2 for b in bundles)
    lots = [
        it
        for o in all_dcl_orders
        for s in (o["shipments"] or [])
        for p in s["packages"]
        for it in p["shipped_items"]
        if it["lot_details"]
    ]
    assert lots and all(sum(d["quantity"] for d in it["lot_details"]) == it["quantity"] for it in lots)


def test_dcl_extended_dates(shared_sandbox):
    w = shared_sandbox.world.dcl
    o = w.order_dict(5, extended_date=True)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", o["received_date"])
    assert o["received_date"].startswith(w.order_dict(5)["received_date"])


def test_stream_orders_are_consistent(shared_sandbox):
    w = shared_sandbox.world.stream
    orders = list(w.iter_orders("http://sandbox"))
    assert {o["status"] for o in orders} == DOC_STREAM_STATUSES
    assert [o["id"] for o in orders] == sorted(o["id"] for o in orders)
    for o in orders:
        assert re.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} UTC", o["created_at"])
        assert o["destination_address"]["country"]["iso_code_2"]
        invoiced = o["invoice_data"] is not None
        assert invoiced == (o["invoice_number"] is not None)
        if invoiced:
            assert o["status"] in ("delivered", "invoice_paid")
            assert any(li["description"] == "VAT & Duties" for li in o["invoice_data"]["line_items"])
        assert o["commercial_invoice_link"].startswith(
            f"http://sandbox/stream/documents/{o['id']}/commercial_invoice?"
        )
        if o["status"] in ("delivered", "invoice_paid"):
            assert o["date_delivered"] and o["proof_of_delivery_link"]
        else:
            assert o["proof_of_delivery_link"] is None or o["status"] == "partially_delivered"
    assert w.order(orders[3]["reference_number"])["id"] == orders[3]["id"]


def test_a_million_order_world_starts_without_materialising_orders():
    tracemalloc.start()
    try:
        world = World(seed=1, orders=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    ds = world.dropstream
    assert peak < 64 * 2**20, peak  # compact arrays only: a materialised order is ~3.4 KB
    assert len(ds._record_bytes) == 0  # no order was generated
    assert "_ship_keys" not in vars(ds)  # the shipment index is built on first use only
    assert "truth" not in vars(ds)
    last = ds.order(ds.order_id(999_999))
    assert last is not None and ts(last["created_at"]) < END
    assert ds.order_ids(external_display_id="SO1009999") == [last["id"]]
