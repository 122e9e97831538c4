"""DCL over HTTP: Basic auth, filters and their date semantics, the filter language, paging, errors."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

PACIFIC = ZoneInfo("America/Los_Angeles")


def all_pages(dcl, params, page_size=100):
    out, page = [], 1
    while True:
        body = dcl.json("/orders", {**params, "page": page, "page_size": page_size})
        assert body["error_code"] == 0 and body["error_message"] == ""
        out.extend(body["orders"])
        if len(body["orders"]) < page_size:
            return out
        page += 1


def numbers(orders):
    return [o["order_number"] for o in orders]


def first_ship(o):
    if not o["shipments"]:
        return None
    return date.fromisoformat(o["shipments"][0]["ship_date"][:10])


def test_basic_auth(sb):
    with httpx.Client(base_url=sb.url) as c:
        for auth in (None, ("sandbox-dcl-login", "wrong")):
            r = c.get("/dcl/api/v1/orders", auth=auth)
            assert r.status_code == 401
            assert r.json() == {
                "error_code": 401,
                "error_message": "Authorization has been denied for this request.",
            }


def test_all_orders_in_pages_until_a_short_page(dcl, all_dcl_orders):
    got = all_pages(dcl, {}, page_size=100)
    assert got == all_dcl_orders
    assert numbers(all_pages(dcl, {}, page_size=7)) == numbers(all_dcl_orders)
    body = dcl.json("/orders", {"page": len(all_dcl_orders) // 100 + 2})
    assert body == {"error_code": 0, "error_message": "", "orders": []}
    assert len(dcl.json("/orders")["orders"]) == 100  # default page_size


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"page_size": "101"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page": "0"}, "page"),
        ({"limit": "5"}, "Unknown parameter"),
        ({"status": "lost"}, "status"),
        ({"received_from": "yesterday"}, "received_from"),
        ({"received_to": "12/01/2025"}, "received_to"),
        ({"fields": "order_number,nope"}, "nope"),
        ({"extended_date": "maybe"}, "extended_date"),
        ({"filter": 'color eq "red"'}, "tag"),
        ({"filter": "order_stage like 10"}, "operator"),
        ({"filter": "order_stage gt"}, "filter"),
        ({"filter": "custom_field1 eq ABC123"}, "filter"),
        ({"filter": 'custom_field1 eq "ABC123'}, "unterminated"),
        ({"filter": 'order_stage eq "sixty"'}, "numeric"),
    ],
)
def test_bad_parameters(dcl, params, fragment):
    r = dcl.get("/orders", params)
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == 400 and fragment in body["error_message"], body


@pytest.mark.parametrize(
    ("status", "predicate"),
    [
        ("any", lambda o: True),
        ("open", lambda o: not o["is_cancelled"] and o["order_stage"] < 60),
        ("shipped", lambda o: o["order_stage"] in (60, 62, 70)),
        ("cancelled", lambda o: o["is_cancelled"]),
        ("on_hold", lambda o: o["order_stage"] == 2),
        ("back_order", lambda o: o["is_back_order"]),
    ],
)
def test_status(dcl, all_dcl_orders, status, predicate):
    expected = numbers([o for o in all_dcl_orders if predicate(o)])
    assert expected
    assert numbers(all_pages(dcl, {"status": status})) == expected


def test_order_numbers(dcl, all_dcl_orders):
    picked = [all_dcl_orders[i]["order_number"] for i in (900, 5, 77)]
    got = all_pages(dcl, {"order_numbers": f"{picked[0]}, {picked[1]},{picked[2]},NOPE-1"})
    assert numbers(got) == sorted(picked, key=lambda n: int(n.split("-")[1]))


def test_received_range_whole_days_in_pacific(dcl, all_dcl_orders):
    def local_day(o):
        return date.fromisoformat(o["received_date"])

    expected = numbers([o for o in all_dcl_orders if date(2025, 11, 3) <= local_day(o) <= date(2025, 11, 5)])
    assert expected
    assert numbers(all_pages(dcl, {"received_from": "2025-11-03", "received_to": "2025-11-05"})) == expected
    # the time part of received_to is ignored: the whole day is included
    assert (
        numbers(all_pages(dcl, {"received_from": "2025-11-03", "received_to": "2025-11-05T00:00:01"}))
        == expected
    )
    # received_from with a time is a local (Pacific) instant
    ext = [
        dcl_ext
        for dcl_ext in all_pages(
            dcl,
            {"received_from": "2025-11-03T12:00:00", "received_to": "2025-11-05", "extended_date": "true"},
        )
    ]
    assert all(o["received_date"] >= "2025-11-03T12:00:00" for o in ext)
    assert len(ext) < len(expected)


def test_shipped_range(dcl, all_dcl_orders):
    expected = numbers(
        [
            o
            for o in all_dcl_orders
            if first_ship(o) and date(2025, 12, 1) <= first_ship(o) <= date(2025, 12, 2)
        ]
    )
    assert expected
    assert numbers(all_pages(dcl, {"shipped_from": "2025-12-01", "shipped_to": "2025-12-02"})) == expected


def test_modified_range_offsetless_is_pacific(dcl, all_dcl_orders):
    lo = datetime(2025, 11, 20, 8, 0, tzinfo=PACIFIC)
    hi = datetime(2025, 11, 21, 17, 30, tzinfo=PACIFIC)
    expected = numbers([o for o in all_dcl_orders if lo <= datetime.fromisoformat(o["modified_at"]) <= hi])
    assert expected
    local = all_pages(dcl, {"modified_from": "2025-11-20T08:00:00", "modified_to": "2025-11-21T17:30:00"})
    assert numbers(local) == expected
    as_utc = {
        "modified_from": lo.astimezone(UTC).isoformat(),
        "modified_to": hi.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert numbers(all_pages(dcl, as_utc)) == expected
    summer = all_pages(dcl, {"modified_from": "2025-10-15T00:00:00", "modified_to": "2025-10-15T23:59:59"})
    assert summer and all(o["modified_at"].endswith("-07:00") for o in summer)


def test_world_helper_windows(sb, all_dcl_orders):
    a, b = datetime(2025, 11, 20, tzinfo=UTC), datetime(2025, 11, 27, tzinfo=UTC)
    expected = [
        o["order_number"] for o in all_dcl_orders if a <= datetime.fromisoformat(o["modified_at"]) < b
    ]
    assert sb.world.dcl.order_numbers(window=(a, b)) == expected


@pytest.mark.parametrize(
    ("expr", "predicate"),
    [
        ("order_stage gt 40", lambda o: o["order_stage"] > 40),
        ("order_stage ge 60", lambda o: o["order_stage"] >= 60),
        ("order_stage lt 10", lambda o: o["order_stage"] < 10),
        ("order_stage le 10", lambda o: o["order_stage"] <= 10),
        ("order_stage eq 62", lambda o: o["order_stage"] == 62),
        ('order_stage neq "60"', lambda o: o["order_stage"] != 60),
        ("order_status eq 3", lambda o: o["order_status"] == 3),
        (
            'custom_field1 eq "ABC123", order_type eq "REST"',
            lambda o: o["custom_field1"] == "ABC123" and o["order_type"] == "REST",
        ),
        (
            'order_stage gt 40, custom_field1 eq "VIP"',
            lambda o: o["order_stage"] > 40 and o["custom_field1"] == "VIP",
        ),
        (
            'shipping_carrier eq "UPS", shipping_service neq "Ground"',
            lambda o: o["shipping_carrier"] == "UPS" and o["shipping_service"] != "Ground",
        ),
        ('account_number eq "10502"', lambda o: o["account_number"] == "10502"),
        ("account_number eq 10502", lambda o: o["account_number"] == "10502"),
        ('customer_number neq ""', lambda o: o["customer_number"] != ""),
        ('system_id eq "T"', lambda o: o["system_id"] == "T"),
        ('po_number ge "100500"', lambda o: o["po_number"] >= "100500"),
        (
            'custom_field2 eq "WHOLESALE", custom_field3 eq "GIFT"',
            lambda o: o["custom_field2"] == "WHOLESALE" and o["custom_field3"] == "GIFT",
        ),
        ("custom_field4 eq 'RUSH'", lambda o: o["custom_field4"] == "RUSH"),
        ('custom_field5 eq "X"', lambda o: o["custom_field5"] == "X"),
        ('custom_field1 eq "a, b"', lambda o: False),  # a comma inside quotes does not split terms
        ("ORDER_STAGE EQ 10", lambda o: o["order_stage"] == 10),
    ],
)
def test_filter_expressions(dcl, all_dcl_orders, expr, predicate):
    expected = numbers([o for o in all_dcl_orders if predicate(o)])
    assert numbers(all_pages(dcl, {"filter": expr})) == expected


def test_filter_combines_with_parameters(dcl, all_dcl_orders):
    expected = numbers(
        [
            o
            for o in all_dcl_orders
            if o["order_stage"] == 60 and "2025-12-01" <= o["received_date"] <= "2025-12-10"
        ]
    )
    got = all_pages(
        dcl, {"filter": "order_stage eq 60", "received_from": "2025-12-01", "received_to": "2025-12-10"}
    )
    assert numbers(got) == expected and expected


def test_fields_and_extended_date(dcl, all_dcl_orders):
    body = dcl.json("/orders", {"fields": "order_number,received_date,modified_at", "page_size": 3})
    assert body["orders"] == [
        {k: o[k] for k in ("order_number", "received_date", "modified_at")} for o in all_dcl_orders[:3]
    ]
    ext = dcl.json("/orders", {"extended_date": "true", "page_size": 100})["orders"]
    for o, plain in zip(ext, all_dcl_orders[:100], strict=True):
        assert len(o["received_date"]) == 19 and o["received_date"].startswith(plain["received_date"])
        for s, ps in zip(o["shipments"] or [], plain["shipments"] or [], strict=True):
            assert len(s["ship_date"]) == 19 and s["ship_date"].startswith(ps["ship_date"])
        assert o["ordered_date"] == plain["ordered_date"]


def test_error_code_inside_http_200(sb, dcl):
    sb.set_faults(dcl_error_every=2, dcl_error_code=1001, dcl_error_message="Database timeout")
    first = dcl.get("/orders", {"page_size": 1})
    second = dcl.get("/orders", {"page_size": 1})
    assert first.status_code == 200 and first.json()["error_code"] == 0
    assert second.status_code == 200
    assert second.json() == {"error_code": 1001, "error_message": "Database timeout", "orders": None}
    assert [r.fault for r in sb.counters().requests] == [None, "dcl_error"]


def test_own_rate_limit(sb, dcl):
    sb.set_faults(dcl_rate_limit=3, dcl_rate_window=0.4)
    statuses = [dcl.get("/orders", {"page_size": 1}) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    limited = statuses[-1]
    assert limited.json()["error_code"] == 429
    assert 0 < float(limited.headers["retry-after"]) <= 0.4
    time.sleep(float(limited.headers["retry-after"]) + 0.05)
    assert dcl.get("/orders", {"page_size": 1}).status_code == 200
    assert sb.counters().count(path="/dcl/api/v1/orders", status=429) == 1


def test_dates_beyond_the_world_are_empty(dcl):
    future = (datetime(2026, 1, 1) + timedelta(days=2)).date().isoformat()
    assert dcl.json("/orders", {"received_from": future})["orders"] == []
