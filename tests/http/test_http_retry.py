"""Retry-After 0 or a date already past is no hint: back off as usual, never below the floor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from airflow_provider_fulfillment.http import (
    MIN_RETRY_WAIT,
    ClientSettings,
    FulfillmentAPIError,
    HttpCore,
    retry_after_seconds,
    retry_wait,
)

PAST = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)


@pytest.mark.parametrize("value", ["0", "0.0", "-5", PAST, "soon", "nan", "inf"])
def test_retry_after_that_asks_for_no_wait_is_no_hint(value):
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": value})) is None


def test_retry_after_in_the_future_is_kept():
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
    assert 35 < retry_after_seconds(httpx.Response(503, headers={"Retry-After": later})) <= 40


@pytest.mark.parametrize("value", ["0", PAST])
def test_a_zero_retry_after_backs_off_like_no_hint_with_a_floor(value):
    sent: list[str] = []
    waits: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(429, headers={"Retry-After": value}, text="slow down")

    settings = ClientSettings(conn_id="c", base_url="http://h/api", max_attempts=5)
    core = HttpCore(settings, transport=httpx.MockTransport(handler), sleep=waits.append)
    with pytest.raises(FulfillmentAPIError, match="failed after 5 attempts: HTTP 429: slow down"):
        core.request("GET", "/orders")
    assert sent == ["/api/orders"] * 5
    assert len(waits) == 4
    # Exponential backoff with jitter in the upper half: attempt n waits within [0.25, 0.5] * 2**(n-1) s.
    for attempt, wait in enumerate(waits, start=1):
        ceiling = 0.5 * 2 ** (attempt - 1)
        assert ceiling / 2 <= wait <= ceiling
    assert sum(waits) >= 0.25 + 0.5 + 1 + 2


def test_every_wait_has_a_floor_even_when_the_vendor_asks_for_less():
    assert retry_wait(1, 0.01, cap=60) == MIN_RETRY_WAIT
    assert retry_wait(1, None, cap=60) >= MIN_RETRY_WAIT
    assert retry_wait(3, 2.5, cap=60) == 2.5


def test_the_connections_max_wait_still_caps_every_wait():
    assert retry_wait(1, 30.0, cap=0.1) == 0.1
    assert retry_wait(6, None, cap=1.0) == 1.0
    assert retry_wait(1, None, cap=0) == 0  # max_wait=0 is the user's explicit choice
