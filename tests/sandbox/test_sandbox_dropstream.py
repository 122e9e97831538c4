"""DropStream over HTTP: auth, every filter, sorts, both paging modes, the 10,000 cap, session expiry.

Expectations come from fully materialised records filtered in plain Python, not from the sandbox's
own query engine.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from airflow_provider_fulfillment.sandbox.app import DEFAULT_CREDENTIALS


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


A = datetime(2025, 11, 10, tzinfo=UTC)
B = datetime(2025, 11, 12, 6, 30, tzinfo=UTC)


# ----------------------------------------------------------------------------- auth


def test_token_endpoint(sb, http):
    url = "/dropstream/auth/token"
    creds = (DEFAULT_CREDENTIALS["dropstream_user"], DEFAULT_CREDENTIALS["dropstream_password"])
    r = http.post(url, auth=creds, json={"grant_type": "client_credentials"})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["access_token"].count(".") == 2  # JWT-looking
    r = http.post(url, auth=("sandbox-api-user", "wrong"), json={"grant_type": "client_credentials"})
    assert r.status_code == 401 and "error" in r.json()
    assert http.post(url, json={"grant_type": "client_credentials"}).status_code == 401
    r = http.post(url, auth=creds, json={"grant_type": "password"})
    assert r.status_code == 400 and "grant_type" in r.json()["error"]


def test_requests_need_a_valid_token(sb, http):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        r = http.get("/dropstream/orders", headers=headers)
        assert r.status_code == 401 and r.json()["error"]
    assert http.get("/dropstream/stores").status_code == 401


def test_token_expires_after_ttl(sb, ds, helpers):
    sb.set_faults(token_expire_after=0.2)
    assert ds.get("/stores").status_code == 200
    time.sleep(0.3)
    r = ds.get("/stores")
    assert r.status_code == 401 and r.json() == {"error": "token expired"}
    ds.client.headers["Authorization"] = f"Bearer {helpers.ds_token(ds.client, sb.url)}"
    assert ds.get("/stores").status_code == 200


def test_token_expires_after_n_uses(sb, ds):
    sb.set_faults(token_max_uses=2)
    assert [ds.get("/stores").status_code for _ in range(3)] == [200, 200, 401]
    assert sb.counters().select(path="/dropstream/stores", status=401)[0].fault == "token_expired"


# ----------------------------------------------------------------------------- filters


def check_orders(ds, helpers, params, expected_ids):
    records, _ = helpers.session(ds, "orders", {**params, "limit": 1000})
    assert helpers.ids(records) == expected_ids
    return records


def test_no_filter_returns_every_order(sb, ds, all_orders):
    first = ds.json("/orders", {"page": 1, "limit": 1000})
    assert first["total_count"] == 10_000  # capped
    session = ds.json("/orders", {"limit": 5})
    assert session["total_count"] == len(all_orders)


@pytest.mark.parametrize(
    ("params", "predicate"),
    [
        ({"created_at_min": A.isoformat()}, lambda o: ts(o["created_at"]) >= A),
        (
            {"created_at_max": "2025-10-15T00:00:00Z"},
            lambda o: ts(o["created_at"]) < datetime(2025, 10, 15, tzinfo=UTC),
        ),
        (
            {"created_at_min": "2025-11-10T00:00:00Z", "created_at_max": "2025-11-12T01:30:00-05:00"},
            lambda o: A <= ts(o["created_at"]) < B,
        ),
        (
            {"ordered_at_min": "2025-11-10", "ordered_at_max": "2025-11-12T06:30:00Z"},
            lambda o: A <= ts(o["ordered_at"]) < B,
        ),
        ({"store_id": "1345"}, lambda o: o["store_id"] == 1345),
        ({"store_id": "Jane's Goods"}, lambda o: o["store_id"] == 1234),
        ({"state": "pending_shipment"}, lambda o: o["fulfillment_state"] == "pending_shipment"),
        (
            {"state": "shipped", "store_id": "1456"},
            lambda o: o["fulfillment_state"] == "shipped" and o["store_id"] == 1456,
        ),
        (
            {"state": "canceled", "created_at_min": "2025-12-01"},
            lambda o: (
                o["fulfillment_state"] == "canceled"
                and ts(o["created_at"]) >= datetime(2025, 12, 1, tzinfo=UTC)
            ),
        ),
        ({"store_id": "999"}, lambda o: False),
    ],
)
def test_order_filters(sb, ds, helpers, all_orders, params, predicate):
    expected = [o["id"] for o in all_orders if predicate(o)]
    check_orders(ds, helpers, params, expected)
    assert sb.world.dropstream.order_ids(**params) == expected


def test_order_exact_id_filters(sb, ds, helpers, all_orders):
    o = all_orders[4321]
    check_orders(ds, helpers, {"external_id": o["external_id"]}, [o["id"]])
    check_orders(ds, helpers, {"external_display_id": o["external_display_id"]}, [o["id"]])
    check_orders(ds, helpers, {"external_id": "12345"}, [])
    check_orders(
        ds,
        helpers,
        {"external_id": o["external_id"], "state": o["fulfillment_state"], "store_id": str(o["store_id"])},
        [o["id"]],
    )


@pytest.mark.parametrize(
    ("params", "predicate"),
    [
        (
            {"shipped_at_min": "2025-11-10T00:00:00Z", "shipped_at_max": "2025-11-12T06:30:00Z"},
            lambda s: A <= ts(s["shipped_at"]) < B,
        ),
        (
            {"created_at_min": "2025-11-10T00:00:00Z", "created_at_max": "2025-11-12T06:30:00Z"},
            lambda s: A <= ts(s["created_at"]) < B,
        ),
        ({"state": "errored_notifying_of_shipment"}, lambda s: s["state"] == "errored_notifying_of_shipment"),
        ({"warehouse_id": "Tulsa Warehouse"}, lambda s: s["warehouse_id"] == 6426),
        (
            {"warehouse_id": "3229", "state": "notified_shipped"},
            lambda s: s["warehouse_id"] == 3229 and s["state"] == "notified_shipped",
        ),
    ],
)
def test_shipment_filters(sb, ds, helpers, all_shipments, params, predicate):
    expected = [s["id"] for s in all_shipments if predicate(s)]
    records, _ = helpers.session(ds, "shipments", {**params, "limit": 1000})
    assert helpers.ids(records) == expected and expected
    assert sb.world.dropstream.shipment_ids(**params) == expected


def test_shipment_filters_through_the_order(sb, ds, helpers, all_orders, all_shipments):
    orders = {o["id"]: o for o in all_orders}
    customers = sb.world.dropstream.customers
    cust = customers[3]
    by_customer = [
        s["id"]
        for s in all_shipments
        if s["order_id"] in orders and orders[s["order_id"]]["customer_email"] == cust["email"]
    ]
    for value in (str(cust["id"]), cust["name"]):
        records, _ = helpers.session(ds, "shipments", {"customer_id": value, "limit": 1000})
        assert helpers.ids(records) == by_customer
    by_store = [
        s["id"]
        for s in all_shipments
        if s["order_id"] in orders and orders[s["order_id"]]["store_id"] == 1789
    ]
    records, _ = helpers.session(ds, "shipments", {"store_id": "Copper Kettle Co.", "limit": 1000})
    assert helpers.ids(records) == by_store
    one = all_shipments[777]
    assert helpers.ids(ds.json("/shipments", {"tracking_number": one["tracking_number"]})["shipments"]) == [
        one["id"]
    ]
    assert ds.json("/shipments", {"tracking_number": "1Z0000000000000000"})["shipments"] == []


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"foo": "1"}, "unknown parameter: foo"),
        ({"tracking_number": "x"}, "unknown parameter: tracking_number"),
        ({"limit": "0"}, "invalid limit"),
        ({"limit": "1001"}, "invalid limit"),
        ({"limit": "ten"}, "invalid limit"),
        ({"page": "0"}, "invalid page"),
        ({"state": "lost"}, "unknown state"),
        ({"created_at_min": "the day after"}, "invalid date for created_at_min"),
        ({"store_id": "No Such Store"}, "store not found"),
        ({"sort": "order_items"}, "cannot sort orders by"),
    ],
)
def test_bad_order_parameters_are_400(ds, params, fragment):
    r = ds.get("/orders", params)
    assert r.status_code == 400
    assert fragment in r.json()["error"]


def test_bad_shipment_parameters_are_400(ds):
    for params, fragment in (
        ({"ordered_at_min": "2025-01-01"}, "unknown parameter: ordered_at_min"),
        ({"sort": "order_items"}, "cannot sort shipments by"),  # every documented scalar sorts
        ({"warehouse_id": "Atlantis"}, "warehouse not found"),
        ({"customer_id": "Nobody Inc"}, "customer not found"),
    ):
        r = ds.get("/shipments", params)
        assert r.status_code == 400 and fragment in r.json()["error"], r.text


def test_natural_language_dates(sb, ds, helpers, all_orders):
    now = datetime(2025, 12, 17, 15, 30, tzinfo=UTC)  # a Wednesday
    sb.app.config.clock = lambda: now
    cases = {
        "last monday": datetime(2025, 12, 15, tzinfo=UTC),
        "two hours ago": datetime(2025, 12, 17, 13, 30, tzinfo=UTC),
        "dec 1": datetime(2025, 12, 1, tzinfo=UTC),
        "December 1st 2025": datetime(2025, 12, 1, tzinfo=UTC),
    }
    for text, instant in cases.items():
        expected = [o["id"] for o in all_orders if ts(o["created_at"]) >= instant]
        check_orders(ds, helpers, {"created_at_min": text}, expected)
    expected = [o["id"] for o in all_orders if ts(o["created_at"]) < now]
    check_orders(ds, helpers, {"created_at_max": "now"}, expected)


def test_natural_language_dates_use_the_real_clock(sb, ds):
    # The world ends on 2026-01-01: relative to the real now, nothing was created in the last hours
    assert ds.json("/orders", {"created_at_min": "two hours ago"})["total_count"] == 0
    assert ds.json("/orders", {"created_at_max": "now", "limit": 1})["total_count"] == sb.world.orders


# ----------------------------------------------------------------------------- sorting


def test_sort_by_property_and_last_sort_wins(sb, ds, helpers, all_orders):
    params = {"created_at_min": "2025-12-01"}
    subset = [o for o in all_orders if ts(o["created_at"]) >= datetime(2025, 12, 1, tzinfo=UTC)]
    by_store = [o["id"] for o in sorted(subset, key=lambda o: (o["store_id"], o["id"]))]
    check_orders(ds, helpers, {**params, "sort": "store_id"}, by_store)
    by_state = [o["id"] for o in sorted(subset, key=lambda o: (o["fulfillment_state"], o["id"]))]
    records, _ = helpers.session(
        ds,
        "orders",
        [
            ("sort", "store_id"),
            ("created_at_min", "2025-12-01"),
            ("sort", "fulfillment_state"),
            ("limit", "1000"),
        ],
    )
    assert helpers.ids(records) == by_state
    by_ordered = [o["id"] for o in sorted(subset, key=lambda o: (o["ordered_at"], o["id"]))]
    check_orders(ds, helpers, {**params, "sort": "ordered_at"}, by_ordered)
    by_total = [o["id"] for o in sorted(subset, key=lambda o: (o["declared_value"], o["id"]))]
    check_orders(ds, helpers, {**params, "sort": "declared_value"}, by_total)  # not indexed: generated
    check_orders(ds, helpers, {**params, "sort": "id"}, [o["id"] for o in subset])


def test_shipment_sorts(sb, ds, helpers, all_shipments):
    subset = [s for s in all_shipments if ts(s["created_at"]) >= datetime(2025, 12, 10, tzinfo=UTC)]
    for prop in ("tracking_number", "shipped_at", "warehouse_id", "state", "created_at"):
        records, _ = helpers.session(
            ds, "shipments", {"created_at_min": "2025-12-10", "sort": prop, "limit": 1000}
        )
        assert helpers.ids(records) == [s["id"] for s in sorted(subset, key=lambda s: (s[prop], s["id"]))], (
            prop
        )


# ----------------------------------------------------------------------------- page-based paging


def test_page_based_paging_covers_everything_once(sb, ds, helpers, all_orders):
    params = {"state": "shipped", "created_at_min": "2025-11-01", "limit": 333}
    expected = [
        o["id"]
        for o in all_orders
        if o["fulfillment_state"] == "shipped" and ts(o["created_at"]) >= datetime(2025, 11, 1, tzinfo=UTC)
    ]
    records, envelopes = helpers.pages(ds, "orders", params)
    assert helpers.ids(records) == expected
    assert envelopes[0] == {
        "page": 1,
        "limit": 333,
        "total_count": len(expected),
        "total_pages": -(-len(expected) // 333),
    }
    assert all("max_total_reached" not in e and "session_id" not in e for e in envelopes)
    past = ds.json("/orders", {**params, "page": envelopes[-1]["page"] + 1})
    assert past["orders"] == []


def test_page_based_cap_at_ten_thousand(sb, ds, helpers, all_orders):
    first = ds.json("/orders", {"page": 1, "limit": 1000})
    assert first["max_total_reached"] is True
    assert first["total_count"] == 10_000 and first["total_pages"] == 10
    records, envelopes = helpers.pages(ds, "orders", {"limit": 1000})
    assert helpers.ids(records) == [o["id"] for o in all_orders[:10_000]]
    assert all(e["max_total_reached"] is True for e in envelopes)
    assert ds.json("/orders", {"page": 11, "limit": 1000})["orders"] == []
    # a limit that does not divide 10,000: the last page stops at the cap
    last = ds.json("/orders", {"page": 34, "limit": 300})
    assert [o["id"] for o in last["orders"]] == [o["id"] for o in all_orders[9900:10_000]]
    assert ds.json("/orders", {"page": 35, "limit": 300})["orders"] == []
    # default limit is 100
    assert ds.json("/orders", {"page": 1})["limit"] == 100


# ----------------------------------------------------------------------------- session-based paging


def test_session_paging_params_persist(sb, ds, helpers, all_orders):
    params = {"store_id": "Blue Fern Home", "sort": "ordered_at", "limit": 250}
    subset = [o for o in all_orders if o["store_id"] == 1567]
    expected = [o["id"] for o in sorted(subset, key=lambda o: (o["ordered_at"], o["id"]))]
    records, envelopes = helpers.session(ds, "orders", params)
    assert helpers.ids(records) == expected
    sid = envelopes[0]["session_id"]
    assert envelopes[0] == {
        "session_id": sid,
        "page": 1,
        "limit": 250,
        "total_count": len(expected),
        "total_pages": -(-len(expected) // 250),
    }
    assert [e["page"] for e in envelopes] == list(range(1, len(envelopes) + 1))
    assert all(e == {"session_id": sid, "page": e["page"], "limit": 250} for e in envelopes[1:])
    # the exact requests the client sent: only session_id after the first
    sent = sb.counters().params("/dropstream/orders")
    assert sent[0] == {"store_id": "Blue Fern Home", "sort": "ordered_at", "limit": "250"}
    assert all(p == {"session_id": sid} for p in sent[1:])


def test_session_beyond_ten_thousand_and_empty_last_page(sb, ds, helpers, all_orders):
    records, envelopes = helpers.session(ds, "orders", {"limit": 1000})
    assert helpers.ids(records) == [o["id"] for o in all_orders]
    # 12,000 is a multiple of 1000: the session ends with an empty page
    assert len(envelopes) == 13
    shipments, _ = helpers.session(ds, "shipments", {"limit": 1000})
    assert len(shipments) == sb.world.dropstream.n_shipments


def test_session_continuation_takes_only_session_id(sb, ds):
    sid = ds.json("/orders", {"limit": 10})["session_id"]
    r = ds.get("/orders", {"session_id": sid, "limit": 10})
    assert r.status_code == 400 and "limit" in r.json()["error"]
    r = ds.get("/orders", {"session_id": sid, "page": 2})
    assert r.status_code == 400
    assert ds.json("/orders", {"session_id": sid})["page"] == 2  # the session survived the bad requests


def test_unknown_session_is_404(ds):
    r = ds.get("/orders", {"session_id": "0b5a7f8e-0000-4000-8000-000000000000"})
    assert r.status_code == 404
    assert r.json() == {"error": "session 0b5a7f8e-0000-4000-8000-000000000000 not found or expired"}
    sid = ds.json("/orders", {"limit": 10})["session_id"]
    assert ds.get("/shipments", {"session_id": sid}).status_code == 404  # a session belongs to its endpoint


def test_session_expires_after_its_last_request(sb, ds):
    sb.set_faults(session_expire_after=0.25)
    sid = ds.json("/orders", {"limit": 10})["session_id"]
    for page in range(2, 6):  # each request refreshes the expiry: 4 x 0.1 s > 0.25 s in total
        time.sleep(0.1)
        assert ds.json("/orders", {"session_id": sid})["page"] == page
    time.sleep(0.35)
    r = ds.get("/orders", {"session_id": sid})
    assert r.status_code == 404 and r.json() == {"error": f"session {sid} not found or expired"}
    assert sb.counters().select(status=404)[0].fault == "session_expired"


def test_session_expires_after_n_pages(sb, ds):
    sb.set_faults(session_max_pages=2)
    sid = ds.json("/orders", {"limit": 10})["session_id"]
    assert ds.json("/orders", {"session_id": sid})["page"] == 2
    assert ds.get("/orders", {"session_id": sid}).status_code == 404
    assert ds.get("/orders", {"session_id": sid}).status_code == 404


def test_expire_sessions_handle(sb, ds):
    sid = ds.json("/orders", {"limit": 10})["session_id"]
    sb.expire_sessions()
    assert ds.get("/orders", {"session_id": sid}).status_code == 404


# ----------------------------------------------------------------------------- single records and directories


def test_get_order(sb, ds, all_orders):
    o = all_orders[1000]
    assert ds.json(f"/orders/{o['id']}") == {"order": o}
    for bad in (o["id"] + 1 if o["id"] + 1 != all_orders[1001]["id"] else o["id"] + 2, 1, "abc"):
        r = ds.get(f"/orders/{bad}")
        assert r.status_code == 404 and "not found" in r.json()["error"]


def test_directories(sb, ds):
    stores = ds.json("/stores")
    assert stores["stores"] == sb.world.dropstream.stores and stores["total_count"] == len(stores["stores"])
    assert ds.json("/warehouses")["warehouses"] == sb.world.dropstream.warehouses
    customers = sb.world.dropstream.customers
    page = ds.json("/customers", {"limit": 10, "page": 2})
    assert page["customers"] == customers[10:20] and page["total_count"] == len(customers)
    assert ds.get("/customers", {"name": "x"}).status_code == 400


def test_page_of_a_thousand_is_one_json_document(sb, ds):
    r = ds.get("/orders", {"limit": 1000, "page": 2})
    body = r.json()
    assert len(body["orders"]) == 1000 and r.headers["content-type"] == "application/json"
    assert r.content.startswith(b'{"orders":[{"id":') and r.content.endswith(
        b'"total_pages":10,"max_total_reached":true}'
    )
