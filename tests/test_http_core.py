from __future__ import annotations

import asyncio
import pickle
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from airflow_provider_fulfillment.hooks import aget_hook, get_hook
from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from airflow_provider_fulfillment.http import (
    ClientSettings,
    FulfillmentAPIError,
    HttpCore,
    retry_after_seconds,
    vendor_message,
)
from tests.fakes import FakeDropStream, dropstream_order, json_response


def test_retry_after_accepts_seconds_and_http_dates():
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "2.5"})) == 2.5
    later = datetime.now(UTC) + timedelta(seconds=30)
    seconds = retry_after_seconds(
        httpx.Response(429, headers={"Retry-After": format_datetime(later, usegmt=True)})
    )
    assert 25 < seconds <= 30
    assert retry_after_seconds(httpx.Response(429)) is None


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (json_response(400, {"error_code": 3, "error_message": "Invalid page"}), "Invalid page"),
        (json_response(400, {"success": False, "error": "Invalid input"}), "Invalid input"),
        (
            httpx.Response(401, text="Access token is missing or invalid."),
            "Access token is missing or invalid.",
        ),
        (httpx.Response(502, text="<html>" + "x" * 1000), "<html>" + "x" * 293 + "…"),
    ],
)
def test_vendor_message_reads_each_vendor_error_shape(response, message):
    assert vendor_message(response) == message


def test_connection_settings_from_extra_and_bad_extra(set_connection):
    set_connection(
        "x", "dropstream", "http://h:1/p/", "u", "p", timeout="5", max_attempts=2, max_concurrency=8
    )
    settings = DropStreamHook("x").settings
    assert (settings.base_url, settings.timeout, settings.max_attempts, settings.max_concurrency) == (
        "http://h:1/p",
        5.0,
        2,
        8,
    )
    set_connection("y", "dropstream", "", "u", "p", max_attempts="many")
    with pytest.raises(ValueError, match="extra 'max_attempts' must be a number"):
        _ = DropStreamHook("y").settings
    assert DropStreamHook("y", max_concurrency=1)._settings is None


def test_default_base_url_and_wrong_connection_type(set_connection):
    set_connection("z", "dropstream", "", "u", "p")
    assert DropStreamHook("z").settings.base_url == "https://api.getdropstream.com"
    set_connection("w", "http", "http://h", "u", "p")
    with pytest.raises(
        ValueError, match="has type 'http', but DropStreamHook needs a 'dropstream' connection"
    ):
        _ = DropStreamHook("w").settings
    with pytest.raises(ValueError, match="not a fulfillment connection"):
        get_hook("w")


def test_missing_credentials_is_clear(set_connection):
    set_connection("nocreds", "dropstream", "http://h")
    with pytest.raises(ValueError, match="DropStream needs login and password"):
        _ = DropStreamHook("nocreds").http


def test_unreachable_host_fails_after_retries_with_hint(set_connection):
    set_connection(
        "down",
        "dropstream",
        "http://127.0.0.1:9",
        "u",
        "p",
        max_attempts=2,
        max_wait=0,
        token="ready-token-1",
    )
    with pytest.raises(FulfillmentAPIError) as caught:
        list(DropStreamHook("down").iter_orders())
    text = str(caught.value)
    assert (
        "after 2 attempts: no response: ConnectError" in text and "is http://127.0.0.1:9 reachable?" in text
    )


def test_errors_pickle_round_trip():
    error = FulfillmentAPIError(
        conn_id="c",
        method="GET",
        path="/orders",
        params={"page": 2},
        status=503,
        vendor_message="busy",
        attempts=3,
    )
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


def test_async_state_lookup_through_the_same_core(set_connection):
    fake = FakeDropStream([dropstream_order(3, fulfillment_state="shipped")])
    set_connection("ads", "dropstream", "http://ds.test/dropstream", "u", "pw-async-1", max_wait=0)

    async def scenario():
        hook = await aget_hook("ads", async_transport=httpx.MockTransport(fake))
        calls = iter([json_response(503, {}), None])

        original = fake.__call__

        def flaky(request):
            answer = next(calls, None) if request.url.path.endswith("/orders/3") else None
            return answer or original(request)

        hook._async_transport = httpx.MockTransport(flaky)
        state = await hook.aget_state("order", 3)
        await hook.http.aclose()
        return state

    state = asyncio.run(scenario())
    assert (state.found, state.status, state.raw_status) == (True, "shipped", "shipped")


def test_core_without_parse_returns_response_and_maps_403():
    settings = ClientSettings(conn_id="c", base_url="http://h/api", max_wait=0)
    core = HttpCore(
        settings, transport=httpx.MockTransport(lambda r: json_response(403, {"error": "forbidden"}))
    )
    with pytest.raises(FulfillmentAPIError, match="connection 'c': GET /x failed: HTTP 403: forbidden"):
        core.request("GET", "/x")
    ok = HttpCore(settings, transport=httpx.MockTransport(lambda r: json_response(200, {"path": r.url.path})))
    assert ok.request("GET", "/orders").json() == {"path": "/api/orders"}
