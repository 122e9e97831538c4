from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from airflow_provider_fulfillment.hooks.dcl import DclHook
from airflow_provider_fulfillment.http import (
    FulfillmentAuthError,
    FulfillmentError,
    FulfillmentVendorError,
)
from airflow_provider_fulfillment.models._types import parse_dcl_datetime
from tests.fakes import Recorder, json_response, params_of

UTC = UTC
PACIFIC_OFFSET = "-08:00"


def dcl_order(n: int, modified: str, **over):
    order = {
        "order_number": f"ORD{n}",
        "order_stage": 60,
        "is_cancelled": False,
        "received_date": "2025-11-03",
        "modified_at": modified,
        "order_lines": [{"line_number": 1, "item_number": "SKU1", "quantity": 2, "price": 2.99}],
        "shipments": [
            {
                "ship_id": 9000 + n,
                "ship_date": "2025-11-04",
                "packages": [
                    {
                        "tracking_number": f"1Z{n}",
                        "delivery_status": "Delivered",
                        "shipped_items": [{"item_number": "SKU1", "line_number": 1, "quantity": 2}],
                    }
                ],
            }
        ],
    }
    order.update(over)
    return order


def _instant(text: str) -> datetime:
    return parse_dcl_datetime(text)


class FakeDcl:
    def __init__(self, orders, ignore_modified=False):
        self.orders = orders
        self.ignore_modified = ignore_modified

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != httpx.BasicAuth("acct", "pw-dcl-123")._auth_header:
            return json_response(401, {"error_code": 401, "error_message": "Authorization has been denied"})
        params = params_of(request)
        page, size = int(params.get("page", 1)), int(params.get("page_size", 100))
        rows = self.orders
        if "order_numbers" in params:
            rows = [o for o in rows if o["order_number"] in params["order_numbers"].split(",")]
        # `modified_*` exactly, as DCL filters them (the reads are slices of modification time).
        # (an order without `modified_at` passes: the hook, not the fake, must refuse it)
        if "modified_from" in params and not self.ignore_modified:
            low = _instant(params["modified_from"])
            rows = [o for o in rows if "modified_at" not in o or _instant(o["modified_at"]) >= low]
        if "modified_to" in params and not self.ignore_modified:
            high = _instant(params["modified_to"])
            rows = [o for o in rows if "modified_at" not in o or _instant(o["modified_at"]) <= high]
        chunk = rows[(page - 1) * size : page * size]
        return json_response(200, {"error_code": 0, "error_message": "", "orders": chunk})


@pytest.fixture
def dcl(set_connection):
    def make(orders, **extra):
        rec = Recorder(FakeDcl(orders))
        set_connection(
            "dcl_test", "dcl", "http://dcl.test/dcl/api/v1", "acct", "pw-dcl-123", max_wait=0, **extra
        )
        return DclHook("dcl_test", transport=httpx.MockTransport(rec)), rec

    return make


def _modified(minutes: int) -> str:
    # Pacific local times with an explicit offset, as DCL sends modified_at.
    return (datetime(2025, 11, 3, 8, 0) + timedelta(minutes=minutes)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    ) + PACIFIC_OFFSET


def test_dcl_reads_as_slices_cut_at_the_modification_times_seen(dcl):
    """Page 1 goes without bounds (a small read is one request); full, it is cut at the quartiles
    of the modification times it showed, each slice one page: no page past page 1 is read."""
    hook, rec = dcl([dcl_order(i, _modified(i)) for i in range(250)], max_concurrency=1)
    numbers = [o.order_number for o in hook.iter_orders(page_size=100, status="shipped")]
    assert sorted(numbers) == sorted(f"ORD{i}" for i in range(250)) and len(numbers) == 250
    sent = rec.data_requests("/dcl/api/v1/orders")
    assert sent[0] == {"status": "shipped", "page_size": "100", "page": "1"}
    assert len(sent) == 5 and {p["page"] for p in sent} == {"1"}
    assert all(p["status"] == "shipped" for p in sent)


def test_dcl_exactly_full_page_is_cut_never_taken_as_whole(dcl):
    """200 orders at 100 a page: the full page 1 is not the end; its slices read the rest."""
    hook, rec = dcl([dcl_order(i, _modified(i)) for i in range(200)], max_concurrency=1)
    assert sorted(o.order_number for o in hook.iter_orders()) == sorted(f"ORD{i}" for i in range(200))
    assert len(rec.requests) == 5 and {p["page"] for p in rec.data_requests("/dcl/api/v1/orders")} == {"1"}


def _in_flight(fake, fail_on=None):
    """A handler counting requests in flight (at most, and now); the `fail_on`-th answers error 7."""
    import threading

    lock, state = threading.Lock(), {"in_flight": 0, "max": 0, "served": 0}

    def handler(request):
        with lock:
            state["in_flight"] += 1
            state["max"] = max(state["max"], state["in_flight"])
            state["served"] += 1
            served = state["served"]
        try:
            if served == fail_on:
                return json_response(200, {"error_code": 7, "error_message": "Database busy", "orders": None})
            return fake(request)
        finally:
            with lock:
                state["in_flight"] -= 1

    return handler, state


@pytest.mark.parametrize("concurrency", [2, 4])
def test_dcl_fetch_ahead_is_exact_and_bounded(set_connection, concurrency):
    set_connection(
        "dcl_c",
        "dcl",
        "http://dcl.test/dcl/api/v1",
        "acct",
        "pw-dcl-123",
        max_wait=0,
        max_concurrency=concurrency,
    )
    # modification times in no relation to the order (a permutation): slices cut at quartiles
    handler, state = _in_flight(FakeDcl([dcl_order(i, _modified((i * 37) % 1050)) for i in range(1050)]))
    rec = Recorder(handler)
    hook = DclHook("dcl_c", transport=httpx.MockTransport(rec))
    numbers = [o.order_number for o in hook.iter_orders(page_size=50)]
    assert sorted(numbers) == sorted(f"ORD{i}" for i in range(1050)) and len(numbers) == 1050
    sent = rec.data_requests("/dcl/api/v1/orders")
    assert {p["page"] for p in sent} == {"1"} and state["max"] <= concurrency and state["in_flight"] == 0
    # 1 + 4 + 16 + 64: a sample of 50 times says nothing of the total; quartiles, three levels deep
    assert len(sent) == 85


def test_dcl_error_mid_fetch_ahead_leaves_nothing_in_flight(set_connection):
    handler, state = _in_flight(FakeDcl([dcl_order(i, _modified(i)) for i in range(1000)]), fail_on=4)
    set_connection(
        "dcl_c", "dcl", "http://dcl.test/dcl/api/v1", "acct", "pw-dcl-123", max_wait=0, max_concurrency=3
    )
    hook = DclHook("dcl_c", transport=httpx.MockTransport(handler))
    seen = []
    with pytest.raises(FulfillmentVendorError, match="page=1.*error_code 7: Database busy"):
        for order in hook.iter_orders(page_size=100):
            seen.append(order)
    # page 1 (100), cut at its 80th percentile: the lower slice brings none new, the upper 80; the
    # 4th request (a slice of the upper) fails
    assert len(seen) == len({o.order_number for o in seen}) == 180
    assert state["in_flight"] == 0 and state["max"] <= 3


def test_dcl_refuses_a_server_that_ignores_the_modified_filter(set_connection):
    """Such a server answers every slice in full: the read stops at the first, naming the filter."""
    set_connection("dcl_c", "dcl", "http://dcl.test/dcl/api/v1", "acct", "pw-dcl-123", max_wait=0)
    rec = Recorder(FakeDcl([dcl_order(i, _modified(i)) for i in range(250)], ignore_modified=True))
    hook = DclHook("dcl_c", transport=httpx.MockTransport(rec))
    with pytest.raises(
        FulfillmentError, match="^DCL ignored the modified_from/modified_to filter: /orders with "
    ):
        list(hook.iter_orders())
    # page 1, then its two slices, issued together: the first answered names the filter, and the
    # other is cancelled if it has not gone out yet (it had not, once, in CI). Nothing is cut again.
    first, *slices = rec.data_requests("/dcl/api/v1/orders")
    assert "modified_from" not in first and "modified_to" not in first
    assert 1 <= len(slices) <= 2 and all({"modified_from", "modified_to"} & set(part) for part in slices)


def test_dcl_error_code_in_200_raises(dcl):
    hook, rec = dcl([dcl_order(1, _modified(1))])
    rec.script = [json_response(200, {"error_code": 12, "error_message": "Invalid filter", "orders": None})]
    with pytest.raises(FulfillmentVendorError, match="HTTP 200: error_code 12: Invalid filter"):
        list(hook.iter_orders())


@pytest.mark.parametrize("raw", [False, True, "bytes"])
def test_dcl_error_code_in_200_without_orders_raises_the_vendor_error_on_every_path(dcl, raw):
    """A real DCL may leave `orders` out of an error answer: still its error, never "no orders"."""
    hook, rec = dcl([dcl_order(1, _modified(1))])
    rec.script = [json_response(200, {"error_code": 12, "error_message": "Invalid filter"})]
    with pytest.raises(FulfillmentVendorError, match="HTTP 200: error_code 12: Invalid filter"):
        list(hook.iter_orders(raw=raw))


def test_dcl_window_on_modified_at_is_sent_with_offsets_and_trimmed(dcl):
    # 08:00-08:09 Pacific = 16:00-16:09 UTC.
    hook, rec = dcl([dcl_order(i, _modified(i)) for i in range(10)])
    start = datetime(2025, 11, 3, 16, 2, tzinfo=UTC)
    window = (start, start + timedelta(minutes=5))
    assert [o.order_number for o in hook.iter_orders(window=window)] == [
        "ORD2",
        "ORD3",
        "ORD4",
        "ORD5",
        "ORD6",
    ]
    sent = rec.data_requests("/dcl/api/v1/orders")[0]
    assert sent["modified_from"] == "2025-11-03T16:01:59+00:00"
    assert sent["modified_to"] == "2025-11-03T16:07:01+00:00"


def test_dcl_received_window_uses_pacific_whole_days(dcl):
    hook, rec = dcl([dcl_order(1, _modified(1), received_date="2025-11-03T23:30:00")])
    window = (
        datetime(2025, 11, 3, 8, 0, tzinfo=UTC),
        datetime(2025, 11, 4, 8, 0, tzinfo=UTC),
    )  # one Pacific day
    assert [o.order_number for o in hook.iter_orders(window=window, window_field="received_date")] == ["ORD1"]
    sent = rec.data_requests("/dcl/api/v1/orders")[0]
    assert sent["received_from"] == "2025-11-02T23:59:59"
    assert sent["received_to"] == "2025-11-03"
    assert sent["extended_date"] == "true"


def test_dcl_shipments_come_from_nested_shipments_with_order_number(dcl):
    hook, rec = dcl([dcl_order(1, _modified(1)), dcl_order(2, _modified(2), shipments=None)])
    shipments = list(hook.iter_shipments())
    assert [(s.ship_id, s.order_number) for s in shipments] == [(9001, "ORD1")]
    common = hook.normalize("shipments", shipments[0])
    assert common.order_id == "ORD1" and common.tracking_numbers == ["1Z1"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"page_size": 101}, "'page_size' must be from 1 to 100, got 101"),
        ({"filter": "colour eq 1"}, "unknown tag 'colour'"),
        ({"filter": "order_stage between 4"}, "unknown operator 'between'"),
        ({"filter": 'custom_field1 eq "open'}, "unbalanced quote"),
        ({"received_to": "2025-13-01"}, "is not a real date"),
        ({"modified_from": "yesterday"}, "cannot parse 'yesterday'"),
        ({"extended_date": "yes"}, "must be true or false"),
        ({"state": "x"}, "unknown filter(s) 'state'"),
    ],
)
def test_dcl_bad_input_raises_before_any_request(dcl, kwargs, message):
    hook, rec = dcl([])
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        hook.iter_orders(**kwargs)
    assert rec.requests == []


def test_dcl_filter_expression_is_normalised(dcl):
    hook, rec = dcl([])
    list(hook.iter_orders(filter='order_stage gt 40,custom_field1 eq "A, B"'))
    assert (
        rec.data_requests("/dcl/api/v1/orders")[0]["filter"] == 'order_stage gt 40, custom_field1 eq "A, B"'
    )


def test_dcl_wrong_password_is_a_clear_auth_error(set_connection):
    set_connection("dcl_bad", "dcl", "http://dcl.test/dcl/api/v1", "acct", "wrong")
    hook = DclHook("dcl_bad", transport=httpx.MockTransport(FakeDcl([])))
    with pytest.raises(
        FulfillmentAuthError, match="connection 'dcl_bad'.*HTTP 401: Authorization has been denied"
    ):
        list(hook.iter_orders())


def test_dcl_order_and_shipment_state(dcl):
    hook, rec = dcl([dcl_order(1, _modified(1)), dcl_order(2, _modified(2), order_stage=10, shipments=None)])
    assert hook.get_state("order", "ORD2").status == "processing"
    assert hook.get_state("shipment", "ORD2").found is False
    shipped = hook.get_state("shipment", "ORD1")
    assert shipped.found and shipped.status == "delivered"
    assert hook.get_order("ORD1").order_number == "ORD1"


# --------------------------------------------------------------------------- Stream


def test_dcl_raw_shipments_carry_order_number_and_trim_like_models(dcl):
    orders = [dcl_order(i, _modified(i)) for i in range(10)]
    hook, rec = dcl(orders)
    start = datetime(2025, 11, 3, 16, 2, tzinfo=UTC)
    window = (start, start + timedelta(minutes=3))
    raw = list(hook.iter_shipments(window=window, raw=True))
    models = list(hook.iter_shipments(window=window))
    assert [r["order_number"] for r in raw] == [m.order_number for m in models] == ["ORD2", "ORD3", "ORD4"]
    assert hook.normalize("shipments", raw[0]) == models[0].to_common()
    assert "order_number" not in orders[2]["shipments"][0]  # the source object is left as it was


def test_dcl_order_without_the_window_field_is_named_by_its_identity(dcl):
    """A DCL order has no `id`: the error names it by (account_number, order_number)."""
    order = dcl_order(1, _modified(1), account_number="ACC7")
    del order["modified_at"]
    hook, rec = dcl([order])
    start = datetime(2025, 11, 3, 16, 0, tzinfo=UTC)
    with pytest.raises(Exception) as caught:
        list(hook.iter_orders(window=(start, start + timedelta(minutes=5))))
    assert str(caught.value) == (
        "connection 'dcl_test': dcl record ('ACC7', 'ORD1') has no 'modified_at', so it cannot be "
        "placed in the window; has the API's schema changed?"
    )


def test_a_dcl_shipment_read_alone_names_its_order_and_account():
    """Order numbers are unique per account only: a shipment carries both, as vendor JSON and as a model."""
    from airflow_provider_fulfillment.models.dcl import DclOrder

    orders = [
        dcl_order(1, "2025-11-04T10:00:00", account_number="10502"),
        dcl_order(2, "2025-11-04T10:00:00"),
    ]
    as_json = list(DclHook._shipments_of(iter(orders)))
    as_models = list(DclHook._shipments_of(iter([DclOrder.model_validate(o) for o in orders])))
    assert [(s["ship_id"], s["order_number"], s.get("account_number")) for s in as_json] == [
        (9001, "ORD1", "10502"),
        (9002, "ORD2", None),
    ]
    assert [(s.ship_id, s.order_number, s.account_number) for s in as_models] == [
        (9001, "ORD1", "10502"),
        (9002, "ORD2", None),
    ]
    assert "account_number" not in as_json[1]  # nothing invented where the order names no account
    assert "account_number" not in as_models[1].model_dump(exclude_unset=True)
