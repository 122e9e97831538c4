"""Bad input: one table, the exact error a user meets, and no request where the input was wrong.

Every row runs a `FulfillmentExtractOperator` (what a DAG author writes) against the sandbox, a
scripted server (for answers the sandbox never gives: HTML from a proxy, drifted schemas) or a
closed port. Rows about the caller's input assert that the sandbox received no request at all (not
even a sign-in) and that nothing was written. The README's troubleshooting table is this table.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from airflow_provider_fulfillment.http import FulfillmentAPIError, FulfillmentError
from airflow_provider_fulfillment.models import states
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from airflow_provider_fulfillment.sandbox.testing import SandboxServer, run_sandbox
from tests.reliability._support import (
    Canned,
    FakeVendor,
    conn_body,
    env_name,
    files_under,
    local_path,
    read_keys,
    run_extract,
)

pytestmark = pytest.mark.integration

CONN_ID = "shop"
START, END = "2025-12-01T00:00:00+00:00", "2025-12-02T00:00:00+00:00"
WINDOW = (datetime.fromisoformat(START), datetime.fromisoformat(END))
TOKEN = {"access_token": "header.payload.signature", "token_type": "Bearer"}
HTML = Canned(200, b"<html><body>Scheduled maintenance</body></html>", "text/html")


def _page(orders: list[dict[str, Any]]) -> dict[str, Any]:
    """A DropStream page-based answer holding `orders`."""
    return {
        "orders": orders,
        "page": 1,
        "total_pages": 1,
        "total_count": len(orders),
        "max_total_reached": False,
    }


ORDER = {"id": 501, "created_at": "2025-12-01T10:00:00Z", "fulfillment_state": "shipped"}


def _known(vendor: str, resource: str) -> str:
    return ", ".join(sorted(states.known_states(vendor, resource)))


@dataclass(frozen=True)
class Bad:
    """One row: the connection, the operator's arguments, and what must happen."""

    vendor: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    error: type[BaseException] | None = None
    message: str | re.Pattern[str] | None = None
    # "sandbox", "fake" (scripted answers), "closed" (nothing listens), "missing", "http" (wrong type),
    # "no-password", "bad-extra"
    conn: str = "sandbox"
    routes: dict[str, Any] = field(default_factory=dict)
    requests: int | None = 0  # requests the sandbox may receive (None: not checked)
    fake_requests: int | None = None  # requests the scripted server must receive


D = "dropstream orders"
ROWS: dict[str, Any] = {
    "unknown-filter": Bad(
        "dropstream",
        {"filters": {"colour": "red"}},
        AirflowFailException,
        f"extract: {D}: unknown filter(s) 'colour'; accepted: created_at_max, created_at_min, "
        "external_display_id, external_id, limit, ordered_at_max, ordered_at_min, paging, sort, state, store_id",
    ),
    "another-vendors-filter": Bad(
        "dcl",
        {"filters": {"state": "shipped"}},
        AirflowFailException,
        "extract: dcl orders: unknown filter(s) 'state'; accepted: extended_date, fields, filter, "
        "modified_from, modified_to, order_numbers, page_size, received_from, received_to, shipped_from, "
        "shipped_to, status",
    ),
    "filters-not-a-dict": Bad(
        "dropstream",
        {"filters": ["state", "shipped"]},
        AirflowFailException,
        "extract: filters must be a dict, got list",
    ),
    "wrong-type-boolean-id": Bad(
        "dropstream",
        {"filters": {"store_id": True}},
        AirflowFailException,
        "extract: filter 'store_id' must be an id (integer) or a name (string), got a boolean",
    ),
    "wrong-type-flag": Bad(
        "dcl",
        {"filters": {"extended_date": "yes"}},
        AirflowFailException,
        "extract: 'extended_date' must be true or false, got 'yes'",
    ),
    "limit-over-1000": Bad(
        "dropstream",
        {"filters": {"limit": 1001}},
        AirflowFailException,
        "extract: 'limit' must be from 1 to 1000, got 1001",
    ),
    "limit-not-a-number": Bad(
        "dropstream",
        {"filters": {"limit": "all"}},
        AirflowFailException,
        "extract: 'limit' must be an integer from 1 to 1000, got 'all'",
    ),
    "page-size-over-100": Bad(
        "dcl",
        {"filters": {"page_size": 101}},
        AirflowFailException,
        "extract: 'page_size' must be from 1 to 100, got 101",
    ),
    "unknown-state": Bad(
        "dropstream",
        {"filters": {"state": "lost"}},
        AirflowFailException,
        f"extract: 'state': unknown DropStream order state 'lost'; known: {_known('dropstream', 'orders')}",
    ),
    "unknown-stream-status": Bad(
        "stream",
        {"filters": {"status": "Delivered"}},
        AirflowFailException,
        f"extract: 'status': unknown Stream order status 'Delivered'; known: {_known('stream', 'orders')}",
    ),
    "unknown-dcl-filter-tag": Bad(
        "dcl",
        {"filters": {"filter": "colour eq 1"}},
        AirflowFailException,
        "extract: 'filter': unknown tag 'colour'; known: order_stage, order_status, account_number, po_number, "
        "customer_number, shipping_carrier, shipping_service, order_type, system_id, custom_field1, "
        "custom_field2, custom_field3, custom_field4, custom_field5",
    ),
    "unknown-paging-mode": Bad(
        "dropstream",
        {"filters": {"paging": "fast"}},
        AirflowFailException,
        "extract: 'paging': unknown paging mode 'fast'; known: auto, page, session",
    ),
    "unparsable-date": Bad(
        "dropstream",
        {"filters": {"ordered_at_min": "last tuesday"}},
        AirflowFailException,
        "extract: filter 'ordered_at_min': cannot parse 'last tuesday' as a date; give an ISO 8601 date-time "
        "with an offset (e.g. '2025-10-01T00:00:00+00:00') or an aware datetime",
    ),
    "naive-date": Bad(
        "dropstream",
        {"filters": {"ordered_at_min": "2025-11-01T00:00:00"}},
        AirflowFailException,
        "extract: filter 'ordered_at_min': '2025-11-01T00:00:00' has no time zone; give an offset or an "
        "aware datetime",
    ),
    "naive-window": Bad(
        "dcl",
        {"window": ("2025-12-01T00:00:00", "2025-12-02T00:00:00")},
        AirflowFailException,
        "extract: window start: '2025-12-01T00:00:00' has no time zone; give an offset or an aware datetime",
    ),
    "unparsable-window": Bad(
        "stream",
        {"window": {"start": "yesterday", "end": END}},
        AirflowFailException,
        "extract: window start: cannot parse 'yesterday' as a date; give an ISO 8601 date-time with an offset "
        "(e.g. '2025-10-01T00:00:00+00:00') or an aware datetime",
    ),
    "window-in-the-future": Bad(
        "dropstream",
        {"window": ("2025-12-01T00:00:00+00:00", "2999-01-01T00:00:00+00:00")},
        AirflowFailException,
        re.compile(
            r"extract: window ends in the future \(2999-01-01T00:00:00\+00:00 > now \d{4}-\d\d-\d\dT[\d:.]+\+00:00\): "
            r"data is extracted only once it has settled"
        ),
    ),
    "window-end-before-start": Bad(
        "dropstream",
        {"window": (END, START)},
        AirflowFailException,
        f"extract: window end {START} must be after its start {END}",
    ),
    "unknown-window-field": Bad(
        "dropstream",
        {"window_field": "shipped_on"},
        AirflowFailException,
        f"extract: {D}: window_field must be one of created_at, ordered_at, got 'shipped_on'",
    ),
    "window-and-bound-filter": Bad(
        "dropstream",
        {"filters": {"created_at_min": START}},
        AirflowFailException,
        "extract: give either window= or created_at_min, not both",
    ),
    "vendor-mismatch": Bad(
        "dropstream",
        {"vendor": "dcl"},
        AirflowFailException,
        f"extract: vendor='dcl' was given, but connection '{CONN_ID}' is a dropstream connection",
    ),
    "missing-connection": Bad(
        "dropstream",
        {},
        AirflowNotFoundException,
        f"The conn_id `{CONN_ID}` isn't defined",
        conn="missing",
    ),
    "wrong-type-connection": Bad(
        "dropstream",
        {},
        ValueError,
        "connection type 'http' is not a fulfillment connection; expected one of dropstream, dcl, stream",
        conn="http",
    ),
    "connection-without-password": Bad(
        "dropstream",
        {},
        ValueError,
        f"connection '{CONN_ID}': DropStream needs login and password (API user), or a ready JWT in extra 'token'",
        conn="no-password",
    ),
    "connection-extra-not-a-number": Bad(
        "stream",
        {},
        ValueError,
        f"connection '{CONN_ID}': extra 'max_attempts' must be a number, got 'lots'",
        conn="bad-extra",
    ),
    "unreachable-host": Bad(
        "dcl",
        {},
        FulfillmentAPIError,
        re.compile(
            rf"DCL connection '{CONN_ID}': GET /orders\?modified_from=2025-11-30T23%3A59%3A59%2B00%3A00&"
            r"modified_to=2025-12-02T00%3A00%3A01%2B00%3A00&page_size=100&page=1 failed after 2 attempts: "
            r"no response: ConnectError: \[Errno \d+\] Connection refused "
            r"\(is http://127\.0\.0\.1:\d+/dcl/api/v1 reachable\?\)"
        ),
        conn="closed",
    ),
    "html-instead-of-json": Bad(
        "dropstream",
        {},
        FulfillmentAPIError,
        f"DropStream connection '{CONN_ID}': GET /orders?created_at_min=2025-11-30T23%3A59%3A59%2B00%3A00&"
        "created_at_max=2025-12-02T00%3A00%3A01%2B00%3A00&limit=1000 failed after 2 attempts: HTTP 200: "
        "response body is not JSON: expected value at line 1 column 1 (the response body was not what the "
        "API documents)",
        conn="fake",
        routes={"/auth/token": TOKEN, "/orders": HTML},
        requests=None,
        fake_requests=3,
    ),
    "html-instead-of-json-normalized": Bad(
        "dcl",
        {"normalized": True},
        FulfillmentAPIError,
        f"DCL connection '{CONN_ID}': GET /orders?modified_from=2025-11-30T23%3A59%3A59%2B00%3A00&"
        "modified_to=2025-12-02T00%3A00%3A01%2B00%3A00&page_size=100&page=1 failed after 2 attempts: "
        "HTTP 200: response body is not JSON: expected value at line 1 column 1 (the response body was not "
        "what the API documents)",
        conn="fake",
        routes={"/orders": HTML},
        requests=None,
        fake_requests=2,
    ),
    "html-from-the-sign-in": pytest.param(
        Bad(
            "dropstream",
            {},
            FulfillmentError,  # FulfillmentAPIError or FulfillmentAuthError: the fix's choice
            re.compile(
                rf"DropStream connection '{CONN_ID}': POST /\S*auth/token failed.*: HTTP 200: .*not JSON.*"
            ),
            conn="fake",
            routes={"/auth/token": HTML},
            requests=None,
        ),
    ),
    "json-of-the-wrong-shape": pytest.param(
        Bad(
            "dropstream",
            {},
            FulfillmentAPIError,
            re.compile(r".* failed: HTTP 200: invalid response body: expected a JSON object, got list.*"),
            conn="fake",
            routes={"/auth/token": TOKEN, "/orders": [ORDER]},
            requests=None,
            fake_requests=2,
        ),
    ),
    "schema-drift-unknown-fields-kept": Bad(
        "dropstream",
        {},
        None,
        None,
        conn="fake",
        routes={"/auth/token": TOKEN, "/orders": _page([{**ORDER, "gift_wrap": {"paper": "gold"}}])},
        requests=None,
    ),
    "schema-drift-missing-id-normalized": Bad(
        "stream",
        {"normalized": True},
        FulfillmentAPIError,
        f"Stream connection '{CONN_ID}': GET /orders?page=1 failed: HTTP 200: invalid response body: orders.0.id: "
        "Field required (the response body was not what the API documents)",
        conn="fake",
        routes={
            "/auth/sign_in": {"token": "t0ken"},
            "/orders": {"orders": [{"created_at": "2025/12/01 10:00:00 UTC"}], "meta": {"page_count": 1}},
        },
        requests=None,
        fake_requests=2,
    ),
    "schema-drift-missing-id-raw": pytest.param(
        Bad(
            "dropstream",
            {},
            FulfillmentError,
            re.compile(r".*\bid\b.*(required|missing).*"),
            conn="fake",
            routes={"/auth/token": TOKEN, "/orders": _page([{k: v for k, v in ORDER.items() if k != "id"}])},
            requests=None,
        ),
    ),
    "schema-drift-missing-id-raw-stream": pytest.param(
        Bad(
            "stream",
            {},
            FulfillmentError,
            re.compile(r".*\bid\b.*(required|missing).*"),
            conn="fake",
            routes={
                "/auth/sign_in": {"token": "t0ken"},
                "/orders": {"orders": [{"created_at": "2025/12/01 10:00:00 UTC"}], "meta": {"page_count": 1}},
            },
            requests=None,
        ),
    ),
    "schema-drift-renamed-window-field": pytest.param(
        Bad(
            "dropstream",
            {},
            FulfillmentError,
            re.compile(r".*created_at.*"),
            conn="fake",
            routes={
                "/auth/token": TOKEN,
                "/orders": _page([{"id": 501, "createdAt": "2025-12-01T10:00:00Z"}, ORDER]),
            },
            requests=None,
        ),
    ),
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with run_sandbox(seed=2, orders=500, dcl_orders=100, stream_orders=60, days=60) as server:
        yield server


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


HOST_PATH = {"dropstream": "/dropstream", "dcl": "/dcl/api/v1", "stream": "/stream/client_api/v2"}


def _connection(row: Bad, sb: SandboxServer, fake: FakeVendor) -> dict[str, Any] | None:
    body = conn_body(sb, row.vendor, max_attempts=2)
    if row.conn == "fake":
        body["host"] = fake.url + HOST_PATH[row.vendor]
    elif row.conn == "closed":
        body["host"] = f"http://127.0.0.1:{_closed_port()}{HOST_PATH[row.vendor]}"
    elif row.conn == "missing":
        return None
    elif row.conn == "http":
        body["conn_type"] = "http"
    elif row.conn == "no-password":
        body["password"] = None
    elif row.conn == "bad-extra":
        body["extra"] = {"max_attempts": "lots"}
    return body


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
def test_bad_input_gets_the_exact_error_and_sends_nothing(
    row: Bad, sandbox: SandboxServer, fake_vendor: FakeVendor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sandbox.reset_faults()
    sandbox.reset_counters()
    fake_vendor.script(row.routes)
    body = _connection(row, sandbox, fake_vendor)
    if body is None:
        monkeypatch.delenv(env_name(CONN_ID), raising=False)
    else:
        monkeypatch.setenv(env_name(CONN_ID), json.dumps(body))
    kwargs = dict(row.kwargs)
    window = kwargs.pop("window", None)

    def extract() -> dict[str, Any]:
        if window is None:
            return run_extract(CONN_ID, WINDOW, tmp_path, **kwargs)
        operator = FulfillmentExtractOperator(
            task_id="extract", conn_id=CONN_ID, destination=str(tmp_path), window=window, **kwargs
        )
        return operator.execute({})  # type: ignore[arg-type]

    if row.error is None:
        manifest = extract()
        assert manifest["records"] == 1
        (line,) = local_path(manifest["uri"]).read_text().splitlines()
        assert json.loads(line)["gift_wrap"] == {"paper": "gold"}  # the unknown field, kept as sent
        assert read_keys(manifest["uri"], "id") == [ORDER["id"]]
    else:
        with pytest.raises(BaseException) as caught:
            extract()
        assert type(caught.value) is row.error or (
            row.error is FulfillmentError and isinstance(caught.value, FulfillmentError)
        ), f"{type(caught.value).__name__}: {caught.value}"
        if isinstance(row.message, re.Pattern):
            assert row.message.fullmatch(str(caught.value)), str(caught.value)
        else:
            assert str(caught.value) == row.message
        assert files_under(tmp_path) == []
    if row.requests is not None:
        assert sandbox.counters().total == row.requests
    if row.fake_requests is not None:
        assert sum(fake_vendor.hits.values()) == row.fake_requests


def test_the_table_has_at_least_twenty_rows() -> None:
    assert len(ROWS) >= 20
