from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from airflow_provider_fulfillment.hooks.dcl import DclHook
from airflow_provider_fulfillment.hooks.stream import StreamHook
from airflow_provider_fulfillment.http import (
    FulfillmentAPIError,
    FulfillmentAuthError,
    FulfillmentVendorError,
)
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


class FakeDcl:
    def __init__(self, orders):
        self.orders = orders

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != httpx.BasicAuth("acct", "pw-dcl-123")._auth_header:
            return json_response(401, {"error_code": 401, "error_message": "Authorization has been denied"})
        params = params_of(request)
        page, size = int(params.get("page", 1)), int(params.get("page_size", 100))
        rows = self.orders
        if "order_numbers" in params:
            rows = [o for o in rows if o["order_number"] in params["order_numbers"].split(",")]
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


def test_dcl_pages_until_a_short_page(dcl):
    hook, rec = dcl([dcl_order(i, _modified(i)) for i in range(250)], max_concurrency=1)
    numbers = [o.order_number for o in hook.iter_orders(page_size=100, status="shipped")]
    assert numbers == [f"ORD{i}" for i in range(250)]
    assert [p["page"] for p in rec.data_requests("/dcl/api/v1/orders")] == ["1", "2", "3"]
    assert rec.data_requests("/dcl/api/v1/orders")[0] == {
        "status": "shipped",
        "page_size": "100",
        "page": "1",
    }


def test_dcl_full_last_page_needs_one_empty_page(dcl):
    hook, rec = dcl([dcl_order(i, _modified(i)) for i in range(200)], max_concurrency=1)
    assert len(list(hook.iter_orders())) == 200
    assert len(rec.requests) == 3


@pytest.mark.parametrize("concurrency", [2, 4])
def test_dcl_fetch_ahead_is_ordered_exact_and_bounded(dcl, concurrency):
    hook, rec = dcl([dcl_order(i, _modified(i)) for i in range(1050)], max_concurrency=concurrency)
    numbers = [o.order_number for o in hook.iter_orders(page_size=50)]
    assert numbers == [f"ORD{i}" for i in range(1050)]
    pages = sorted(int(p["page"]) for p in rec.data_requests("/dcl/api/v1/orders"))
    # 21 full pages and one short one; at most `concurrency - 1` more were asked for ahead of it.
    assert pages[:22] == list(range(1, 23)) and len(pages) <= 22 + concurrency - 1


def test_dcl_error_mid_fetch_ahead_leaves_nothing_in_flight(set_connection):
    import threading

    orders = [dcl_order(i, _modified(i)) for i in range(1000)]
    fake = FakeDcl(orders)
    lock, state = threading.Lock(), {"in_flight": 0, "max": 0}

    def handler(request):
        with lock:
            state["in_flight"] += 1
            state["max"] = max(state["max"], state["in_flight"])
        try:
            if params_of(request).get("page") == "4":
                return json_response(200, {"error_code": 7, "error_message": "Database busy", "orders": None})
            return fake(request)
        finally:
            with lock:
                state["in_flight"] -= 1

    set_connection(
        "dcl_c", "dcl", "http://dcl.test/dcl/api/v1", "acct", "pw-dcl-123", max_wait=0, max_concurrency=3
    )
    hook = DclHook("dcl_c", transport=httpx.MockTransport(handler))
    seen = []
    with pytest.raises(FulfillmentVendorError, match="page=4.*error_code 7: Database busy"):
        for order in hook.iter_orders(page_size=100):
            seen.append(order)
    assert len(seen) == 300 and state["in_flight"] == 0 and state["max"] <= 3


def test_dcl_error_code_in_200_raises(dcl):
    hook, rec = dcl([dcl_order(1, _modified(1))])
    rec.script = [json_response(200, {"error_code": 12, "error_message": "Invalid filter", "orders": None})]
    with pytest.raises(FulfillmentVendorError, match="HTTP 200: error_code 12: Invalid filter"):
        list(hook.iter_orders())


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


def stream_order(n: int, created: datetime, status: str = "in_transit"):
    return {
        "id": n,
        "reference_number": f"SHIP-{n}",
        "status": status,
        "created_at": created.strftime("%Y/%m/%d %H:%M:%S UTC"),
        "value_of_goods": 10.5,
    }


class FakeStream:
    def __init__(self, orders):
        self.orders = orders
        self.tokens = 0
        self.valid = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/sign_in"):
            body = json.loads(request.content)
            if body != {"api_user": {"email": "ops@example.com", "password": "stream-pw-999"}}:
                return httpx.Response(401, text="Access token is missing or invalid.")
            self.tokens += 1
            token = f"tok{self.tokens}"
            self.valid.add(token)
            return json_response(200, {"token": token})
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid:
            return httpx.Response(401, text="Access token is missing or invalid.")
        if "/orders/" in request.url.path:
            key = request.url.path.rsplit("/", 1)[1]
            found = [o for o in self.orders if str(o["id"]) == key or o["reference_number"] == key]
            return (
                json_response(200, {"order": found[0]})
                if found
                else json_response(404, {"success": False, "error": "Not found"})
            )
        params = params_of(request)
        rows = [o for o in self.orders if "status" not in params or o["status"] == params["status"]]
        page = int(params.get("page", 1))
        count = max(1, -(-len(rows) // 20))
        return json_response(
            200,
            {
                "orders": rows[(page - 1) * 20 : page * 20],
                "meta": {"page_count": count, "record_count": len(rows)},
            },
        )


@pytest.fixture
def stream(set_connection):
    def make(orders, password="stream-pw-999"):
        fake = FakeStream(orders)
        rec = Recorder(fake)
        set_connection(
            "st", "stream", "http://st.test/stream/client_api/v2", "ops@example.com", password, max_wait=0
        )
        return StreamHook("st", transport=httpx.MockTransport(rec)), fake, rec

    return make


T0 = datetime(2025, 8, 4, tzinfo=UTC)


def test_stream_concurrent_pages_in_order_without_duplicates(stream):
    hook, fake, rec = stream([stream_order(i, T0 + timedelta(hours=i)) for i in range(205)])
    assert [o.id for o in hook.iter_orders()] == list(range(205))
    pages = sorted(int(p["page"]) for p in rec.data_requests("/stream/client_api/v2/orders"))
    assert pages == list(range(1, 12))


def test_stream_pages_by_page_count_and_signs_in_once(stream):
    hook, fake, rec = stream([stream_order(i, T0 + timedelta(hours=i)) for i in range(45)])
    assert [o.id for o in hook.iter_orders()] == list(range(45))
    assert rec.paths() == ["/stream/client_api/v2/auth/sign_in"] + ["/stream/client_api/v2/orders"] * 3
    assert fake.tokens == 1


def test_stream_window_is_client_side_and_half_open(stream):
    hook, fake, rec = stream([stream_order(i, T0 + timedelta(hours=i)) for i in range(30)])
    window = (T0 + timedelta(hours=3), T0 + timedelta(hours=6))
    assert [o.id for o in hook.iter_orders(window=window)] == [3, 4, 5]
    assert all(set(p) == {"page"} for p in rec.data_requests("/stream/client_api/v2/orders"))


def test_stream_token_expiry_renews_once(stream):
    hook, fake, rec = stream([stream_order(1, T0)])
    list(hook.iter_orders())
    fake.valid.clear()
    assert [o.id for o in hook.iter_orders()] == [1]
    assert fake.tokens == 2


def test_stream_bad_credentials_plain_text_401(stream):
    hook, fake, rec = stream([], password="wrong-password")
    with pytest.raises(FulfillmentAuthError, match="Access token is missing or invalid"):
        list(hook.iter_orders())


def test_stream_unknown_status_rejected_before_request(stream):
    hook, fake, rec = stream([])
    with pytest.raises(ValueError, match="unknown Stream order status 'shipped'"):
        hook.iter_orders(status="shipped")
    assert rec.requests == []


def test_stream_order_by_reference_number_and_shipment_view(stream):
    hook, fake, rec = stream([stream_order(7, T0, status="lost_in_transit")])
    assert hook.get_order("SHIP-7").id == 7
    state = hook.get_state("shipment", "SHIP-7")
    assert (state.status, state.raw_status) == ("error", "lost_in_transit")
    shipments = list(hook.iter_shipments())
    assert hook.normalize("shipments", shipments[0]).id == "7"


def test_stream_error_body_message(stream):
    hook, fake, rec = stream([])
    rec.script = [None, json_response(400, {"success": False, "error": "Invalid input, object invalid"})]
    with pytest.raises(FulfillmentAPIError, match="HTTP 400: Invalid input, object invalid"):
        list(hook.iter_orders())


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


def test_stream_raw_mode_matches_models(stream):
    hook, fake, rec = stream([stream_order(i, T0 + timedelta(hours=i)) for i in range(45)])
    window = (T0 + timedelta(hours=10), T0 + timedelta(hours=30))
    raw = list(hook.iter_orders(window=window, raw=True))
    assert [r["id"] for r in raw] == [o.id for o in hook.iter_orders(window=window)] == list(range(10, 30))
