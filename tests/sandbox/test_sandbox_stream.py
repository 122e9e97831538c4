"""Stream over HTTP: sign-in, listing (20 a page, meta), status filter, single orders, error formats,
document links that expire, token expiry."""

from __future__ import annotations

import time

import httpx
import pytest

from airflow_provider_fulfillment.sandbox.testing import run_sandbox
from airflow_provider_fulfillment.sandbox.world_stream import STATUSES

SIGN_IN = "/stream/client_api/v2/auth/sign_in"


def test_sign_in(sb, http):
    r = http.post(
        SIGN_IN, json={"api_user": {"email": "sandbox@example.com", "password": "sandbox-stream-password"}}
    )
    assert r.status_code == 200 and list(r.json()) == ["token"]
    r = http.post(SIGN_IN, json={"api_user": {"email": "sandbox@example.com", "password": "nope"}})
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/plain")
    r = http.post(SIGN_IN, json={"email": "sandbox@example.com"})
    assert r.status_code == 400 and r.json() == {"success": False, "error": "Invalid input, object invalid"}


def test_unauthorized_is_plain_text(sb, http):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = http.get("/stream/client_api/v2/orders", headers=headers)
        assert r.status_code == 401
        assert r.text == "Access token is missing or invalid."
        assert r.headers["content-type"].startswith("text/plain")


def test_listing_pages_and_meta(sb, stream):
    w = sb.world.stream
    first = stream.json("/orders")
    assert first["meta"] == {"page_count": -(-w.n // 20), "record_count": w.n}
    assert len(first["orders"]) == 20
    ids = []
    for page in range(1, first["meta"]["page_count"] + 1):
        ids += [o["id"] for o in stream.json("/orders", {"page": page})["orders"]]
    assert ids == w.order_ids()
    beyond = stream.json("/orders", {"page": first["meta"]["page_count"] + 1})
    assert beyond["orders"] == [] and beyond["meta"] == first["meta"]


@pytest.mark.parametrize("status", STATUSES)
def test_status_filter(sb, stream, status):
    expected = sb.world.stream.order_ids(status=status)
    assert expected, status
    body = stream.json("/orders", {"status": status})
    assert body["meta"] == {"page_count": -(-len(expected) // 20), "record_count": len(expected)}
    ids = []
    for page in range(1, body["meta"]["page_count"] + 1):
        page_orders = stream.json("/orders", {"status": status, "page": page})["orders"]
        assert all(o["status"] == status for o in page_orders)
        ids += [o["id"] for o in page_orders]
    assert ids == expected


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"status": "shipped"}, "unknown status"),
        ({"page": "0"}, "page"),
        ({"page": "x"}, "page"),
        ({"limit": "5"}, "unknown parameter"),
    ],
)
def test_bad_parameters(stream, params, fragment):
    r = stream.get("/orders", params)
    assert r.status_code == 400
    body = r.json()
    assert body["success"] is False and fragment in body["error"]


def test_single_order_by_id_or_reference(sb, stream):
    listed = stream.json("/orders", {"page": 3})["orders"][4]
    by_id = stream.json(f"/orders/{listed['id']}")
    by_ref = stream.json(f"/orders/{listed['reference_number']}")
    assert by_id == by_ref == {"order": listed}
    assert listed["created_at"].endswith(" UTC")
    r = stream.get("/orders/99999999")  # as the docs show: 400 "Invalid input, object invalid"
    assert r.status_code == 400 and r.json() == {"success": False, "error": "Invalid input, object invalid"}
    assert stream.get("/orders/SHIP-1999-000001").status_code == 400


def test_document_links_expire():
    with run_sandbox(seed=3, orders=200, link_ttl=0.3) as sb, httpx.Client(base_url=sb.url) as c:
        token = c.post(
            SIGN_IN,
            json={"api_user": {"email": "sandbox@example.com", "password": "sandbox-stream-password"}},
        ).json()["token"]
        c.headers["Authorization"] = f"Bearer {token}"
        order = c.get("/stream/client_api/v2/orders").json()["orders"][0]
        link = order["commercial_invoice_link"]
        assert link.startswith(f"{sb.url}/stream/documents/{order['id']}/commercial_invoice?signature=")
        doc = httpx.get(link)  # no bearer token: the link is signed
        assert doc.status_code == 200 and doc.headers["content-type"] == "application/pdf"
        assert httpx.get(link.replace("signature=", "signature=0")).status_code == 403
        time.sleep(0.4)
        expired = httpx.get(link)
        assert expired.status_code == 403 and expired.text == "Request has expired"
        # repeating the order GET gives fresh links (same bytes: signatures are deterministic)
        again = c.get(f"/stream/client_api/v2/orders/{order['id']}").json()["order"]
        assert again["commercial_invoice_link"] == link
        assert httpx.get(link).status_code == 200
        missing = [k for k, v in again.items() if k.endswith("_link") and v is None]
        if missing:
            doc = missing[0][: -len("_link")]
            assert httpx.get(f"{sb.url}/stream/documents/{order['id']}/{doc}?signature=x").status_code == 404


def test_stream_token_expiry(sb, stream):
    sb.set_faults(token_max_uses=1)
    assert stream.get("/orders").status_code == 200
    r = stream.get("/orders")
    assert r.status_code == 401 and r.text == "Access token is missing or invalid."
    sb.set_faults(token_expire_after=0.0)
    assert stream.get("/orders").status_code == 401
