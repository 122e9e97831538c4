"""The hooks against the sandbox on loopback: every vendor, every paging mode, every fault, exact ids."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from airflow_provider_fulfillment.hooks.dcl import DclHook
from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from airflow_provider_fulfillment.hooks.stream import StreamHook
from airflow_provider_fulfillment.http import FulfillmentAPIError, FulfillmentVendorError
from airflow_provider_fulfillment.sandbox.testing import run_sandbox

pytestmark = pytest.mark.integration

ORDERS = 12_000  # over the 10,000 cap, so page-based reads must split or fall back


@pytest.fixture(scope="module")
def sandbox():
    with run_sandbox(seed=7, orders=ORDERS, dcl_orders=900, stream_orders=130) as server:
        yield server


@pytest.fixture
def sb(sandbox, monkeypatch):
    sandbox.reset()
    for name, value in sandbox.conn_env().items():
        body = json.loads(value)
        body["extra"] = {"max_wait": 0.05, "max_attempts": 6}
        monkeypatch.setenv(name, json.dumps(body))
    yield sandbox
    sandbox.reset_faults()


def assert_exactly(records, expected):
    ids = [r for r in records]
    duplicates = [k for k, n in Counter(ids).items() if n > 1]
    assert not duplicates, f"duplicates: {duplicates[:5]}"
    assert set(ids) == set(expected)
    assert len(ids) == len(expected)


def _window(sb, days_back_start, days_back_end):
    end = sb.world.end - timedelta(days=days_back_end)
    return (sb.world.end - timedelta(days=days_back_start), end)


DROPSTREAM_MODES = {
    "session": dict(paging="session"),
    "window-concurrent": dict(window=True),
    "window-sequential-pages": dict(window=True, paging="page", concurrency=1),
    "pages-capped-fallback": dict(paging="page"),
}
FAULTS = {
    "none": {},
    "5xx": {"error_every": 4},
    "429": {"rate_limit_every": 5, "retry_after": 0},
    "dropped": {"drop_every": 5},
    "truncated-length": {"truncate_every": 5},
    "truncated-json": {"truncate_every": 5, "truncate_mode": "json"},
    "token-expiry": {"token_max_uses": 4},
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("mode", list(DROPSTREAM_MODES))
def test_dropstream_orders_exact_under_faults(sb, mode, fault):
    spec = dict(DROPSTREAM_MODES[mode])
    hook = DropStreamHook(max_concurrency=spec.pop("concurrency", 4))
    kwargs = {"limit": 1000, "raw": True, **spec}
    if kwargs.pop("window", False):
        kwargs["window"] = (sb.world.start - timedelta(days=1), sb.world.end)
    expected = sb.world.dropstream.order_ids()
    sb.set_faults(prefix="/dropstream", **FAULTS[fault])
    assert_exactly([o["id"] for o in hook.iter_orders(**kwargs)], expected)


def test_dropstream_session_expiring_mid_stream_exactly_once(sb):
    hook = DropStreamHook(max_concurrency=1)
    expected = sb.world.dropstream.order_ids()
    sb.set_faults(session_max_pages=4)  # every session dies after 4 pages
    ids = [o.id for o in hook.iter_orders(paging="session", limit=1000)]
    assert ids == sorted(expected)
    opened = [q for q in sb.counters().params("/dropstream/orders") if "session_id" not in q]
    assert len(opened) >= 3


def test_dropstream_slow_consumer_outlives_the_session(sb):
    hook = DropStreamHook(max_concurrency=1)
    expected = sb.world.dropstream.order_ids()
    seen = []
    for order in hook.iter_orders(paging="session", limit=1000, raw=True):
        seen.append(order["id"])
        if len(seen) in (1500, 7300):
            sb.expire_sessions()  # as if the consumer took 60 s to write this page
    assert seen == sorted(expected)


def test_dropstream_window_is_exact_and_page_requests_are_bounded(sb):
    window = _window(sb, 30, 10)
    expected = sb.world.dropstream.order_ids(window=window, field="created_at")
    hook = DropStreamHook(max_concurrency=4)
    assert_exactly([o.id for o in hook.iter_orders(window=window, limit=500)], expected)
    requests = sb.counters().params("/dropstream/orders")
    pages = [q for q in requests if q.get("limit") == "500"]
    assert len(pages) <= -(-len(expected) // 500) + 4  # parts' last pages may be short


def test_dropstream_shipments_and_states(sb):
    hook = DropStreamHook()
    window = _window(sb, 40, 5)
    expected = sb.world.dropstream.shipment_ids(window=window, field="created_at")
    assert_exactly([s.id for s in hook.iter_shipments(window=window)], expected)
    errored = sorted(sb.world.truth.errored_shipments)[:3]
    assert errored
    for shipment_id in errored:
        shipment = sb.world.dropstream.shipment(shipment_id)
        state = hook.get_state("shipment", shipment["tracking_number"])
        assert state.status == "error" and state.raw_status == shipment["state"]


def test_dropstream_retries_exhausted_fail_loudly(sb):
    hook = DropStreamHook()
    sb.set_faults(prefix="/dropstream/orders", error_every=1)
    with pytest.raises(FulfillmentAPIError) as caught:
        list(hook.iter_orders(paging="session"))
    assert "after 6 attempts: HTTP 503" in str(caught.value)
    assert "connection 'dropstream_default'" in str(caught.value)


# --------------------------------------------------------------------------- DCL

DCL_FAULTS = {k: v for k, v in FAULTS.items() if k != "token-expiry"} | {
    "rate-limit": {"dcl_rate_limit": 4, "dcl_rate_window": 0.3}
}


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("fault", list(DCL_FAULTS))
def test_dcl_orders_exact_under_faults(sb, fault, concurrency, monkeypatch):
    if fault == "rate-limit":  # DCL's own limit asks to wait for its window: let the hook wait that long
        body = json.loads(sb.conn_env()["AIRFLOW_CONN_DCL_DEFAULT"])
        body["extra"] = {"max_wait": 0.5, "max_attempts": 10}
        monkeypatch.setenv("AIRFLOW_CONN_DCL_DEFAULT", json.dumps(body))
    expected = sb.world.dcl.order_numbers()
    sb.set_faults(prefix="/dcl", **DCL_FAULTS[fault])
    hook = DclHook(max_concurrency=concurrency)
    assert_exactly([o["order_number"] for o in hook.iter_orders(page_size=100, raw=True)], expected)


def test_dcl_modified_window_exact(sb):
    window = _window(sb, 20, 3)
    expected = sb.world.dcl.order_numbers(window=window, field="modified_at")
    assert_exactly([o.order_number for o in DclHook().iter_orders(window=window)], expected)


def test_dcl_error_code_inside_200_is_an_error(sb):
    sb.set_faults(dcl_error_every=2)
    with pytest.raises(FulfillmentVendorError, match="HTTP 200: error_code"):
        list(DclHook(max_concurrency=1).iter_orders(page_size=50))


# --------------------------------------------------------------------------- Stream

STREAM_FAULTS = FAULTS


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("fault", list(STREAM_FAULTS))
def test_stream_orders_exact_under_faults(sb, fault, concurrency):
    expected = sb.world.stream.order_ids()
    sb.set_faults(prefix="/stream", **STREAM_FAULTS[fault])
    hook = StreamHook(max_concurrency=concurrency)
    assert_exactly([o.id for o in hook.iter_orders()], expected)


def test_stream_status_and_window(sb):
    by_status = sb.world.stream.ids_by_status()
    status = max(by_status, key=lambda s: len(by_status[s]))
    window = _window(sb, 60, 1)
    expected = sb.world.stream.order_ids(status=status, window=window)
    got = [o.id for o in StreamHook().iter_orders(status=status, window=window)]
    assert_exactly(got, expected)
