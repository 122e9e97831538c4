from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from airflow_provider_fulfillment.hooks.stream import StreamHook
from airflow_provider_fulfillment.http import (
    FulfillmentAPIError,
    FulfillmentAuthError,
)
from tests.fakes import Recorder, json_response, params_of

UTC = UTC
PACIFIC_OFFSET = "-08:00"


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


def test_stream_raw_mode_matches_models(stream):
    hook, fake, rec = stream([stream_order(i, T0 + timedelta(hours=i)) for i in range(45)])
    window = (T0 + timedelta(hours=10), T0 + timedelta(hours=30))
    raw = list(hook.iter_orders(window=window, raw=True))
    assert [r["id"] for r in raw] == [o.id for o in hook.iter_orders(window=window)] == list(range(10, 30))
