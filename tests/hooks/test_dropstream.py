from __future__ import annotations

import logging
from datetime import timedelta

import httpx
import pytest

from airflow_provider_fulfillment.hooks.base import RecordNotFound
from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from airflow_provider_fulfillment.http import (
    MAX_RENEWALS,
    FulfillmentAPIError,
    FulfillmentAuthError,
    FulfillmentError,
)
from tests.fakes import BASE, FakeDropStream, Recorder, dropstream_order, json_response

HOST = "http://ds.test/dropstream"
SECRET = "s3cret-Password-xyz"


@pytest.fixture
def make_hook(set_connection):
    def make(orders=None, cap=10_000, **extra):
        fake = FakeDropStream(
            orders if orders is not None else [dropstream_order(i) for i in range(1, 251)], cap=cap
        )
        recorder = Recorder(fake)
        set_connection("ds", "dropstream", HOST, "api-user", SECRET, max_wait=0, **extra)
        hook = DropStreamHook("ds", transport=httpx.MockTransport(recorder))
        hook.result_cap = cap
        return hook, fake, recorder

    return make


def test_session_paging_sends_only_session_id_on_continuation(make_hook):
    hook, fake, rec = make_hook()
    ids = [o.id for o in hook.iter_orders(limit=100, paging="session", store_id=7)]
    assert ids == list(range(1, 251))
    assert rec.paths() == ["/dropstream/auth/token"] + ["/dropstream/orders"] * 3
    first, *rest = rec.data_requests("/dropstream/orders")
    assert first == {"store_id": "7", "limit": "100", "sort": "created_at"}
    assert rest == [{"session_id": "s1"}, {"session_id": "s1"}]


def test_token_request_is_basic_client_credentials(make_hook):
    hook, fake, rec = make_hook()
    list(hook.iter_orders(limit=1000))
    token_request = rec.raw[0]
    assert token_request.method == "POST"
    assert token_request.headers["Authorization"].startswith("Basic ")
    assert token_request.read() == b'{"grant_type":"client_credentials"}'
    assert rec.raw[1].headers["Authorization"] == "Bearer jwt-2"


def test_session_expiry_mid_stream_reopens_and_yields_each_record_once(make_hook):
    hook, fake, rec = make_hook()
    seen = []
    for order in hook.iter_orders(limit=100, paging="session"):
        seen.append(order.id)
        if order.id == 150:  # a slow consumer: the session expires while page 2 is being written
            fake.expired.add("s1")
    assert seen == list(range(1, 251))
    orders = rec.data_requests("/dropstream/orders")
    # s1 page 1, s1 page 2, s1 expired (404), reopened from the last created_at handed out (order
    # 200, 03:20) less a second, so the new session starts near where the old one stopped.
    assert orders[2] == {"session_id": "s1"}
    assert orders[3] == {"limit": "100", "sort": "created_at", "created_at_min": "2025-10-01T03:19:59+00:00"}
    assert orders[4:] == []  # orders 200..250 fit in that one page


def test_session_expiry_with_id_sort_reopens_and_skips_up_to_the_last_id(make_hook):
    hook, fake, rec = make_hook()
    seen = []
    for order in hook.iter_orders(limit=100, paging="session", sort="id"):
        seen.append(order.id)
        if order.id == 150:
            fake.expired.add("s1")
    assert seen == list(range(1, 251))
    assert rec.data_requests("/dropstream/orders")[3] == {"limit": "100", "sort": "id"}  # from the start


def test_session_out_of_time_order_fails_loudly_rather_than_drop_records(make_hook):
    orders = [dropstream_order(i) for i in range(1, 31)]
    orders[20]["created_at"] = "2025-09-01T00:00:00Z"  # the server says it sorted, but did not
    hook, fake, rec = make_hook(orders)
    with pytest.raises(FulfillmentError, match="did not come in created_at order"):
        list(hook.iter_orders(limit=10, paging="session"))


def test_session_expiry_with_other_sort_dedupes_by_seen_ids(make_hook):
    orders = [dropstream_order(i) for i in range(1, 51)]
    hook, fake, rec = make_hook(orders)
    seen = []
    for order in hook.iter_orders(limit=20, paging="session", sort="ordered_at"):
        seen.append(order.id)
        if len(seen) == 25:
            fake.expired.add("s1")
    assert sorted(seen) == list(range(1, 51)) and len(seen) == 50


def test_expiry_without_session_id_is_not_mistaken_for_expiry(make_hook):
    hook, fake, rec = make_hook()
    rec.script = [None, json_response(404, {"error": "no such resource"})]
    with pytest.raises(FulfillmentAPIError, match="HTTP 404: no such resource"):
        list(hook.iter_orders(paging="session"))


def test_page_cap_never_truncates_without_window_falls_back_to_session(make_hook):
    hook, fake, rec = make_hook([dropstream_order(i) for i in range(1, 31)], cap=10)
    ids = [o.id for o in hook.iter_orders(paging="page", limit=5)]
    assert ids == list(range(1, 31))
    orders = rec.data_requests("/dropstream/orders")
    assert orders[0] == {"limit": "5", "page": "1"}
    assert orders[1] == {"limit": "5", "sort": "created_at"}  # the session replacing the capped pages


def _minutes(start: float, end: float) -> dict[str, str]:
    """DropStream bounds of [BASE + start min, BASE + end min), sent a second wider each side."""
    low, high = BASE + timedelta(minutes=start, seconds=-1), BASE + timedelta(minutes=end, seconds=1)
    return {"created_at_min": low.isoformat(), "created_at_max": high.isoformat()}


def test_window_split_sequentially_until_each_part_fits_the_cap(make_hook):
    """30 orders a minute apart; cap 10 cuts the window into 5 parts of 6 minutes (7 orders each
    as sent). One request in flight runs the same plan as N: the opening session at the page size
    (its total says: cut), then each part's probe is its page 1, sent up to 3 parts ahead, and its
    page 2. 11 requests; the plan with one-record probes sent 16 (1 + 5 probes + 10 pages)."""
    hook, fake, rec = make_hook([dropstream_order(i) for i in range(0, 30)], cap=10, max_concurrency=1)
    window = (BASE, BASE + timedelta(minutes=30))
    ids = [o.id for o in hook.iter_orders(window=window, limit=4, paging="page")]
    assert ids == list(range(0, 30))
    part = [_minutes(6 * i, 6 * i + 6) for i in range(5)]
    order = [(0, 1), (1, 1), (2, 1), (3, 1), (0, 2), (4, 1), (1, 2), (2, 2), (3, 2), (4, 2)]
    assert rec.data_requests("/dropstream/orders") == [{**_minutes(0, 30), "limit": "4"}] + [
        {**part[i], "limit": "4", "page": str(page)} for i, page in order
    ]


def test_window_under_the_cap_is_read_from_its_opening_answer(make_hook):
    """The opening session's answer is the window's page 1: 10 orders in pages of 4 cost 3
    requests (the plan with a one-record opening sent 4)."""
    hook, fake, rec = make_hook([dropstream_order(i) for i in range(0, 30)], max_concurrency=4)
    window = (BASE, BASE + timedelta(minutes=10))
    assert [o.id for o in hook.iter_orders(window=window, limit=4)] == list(range(0, 10))
    sent = _minutes(0, 10)  # as sent, orders 0..10: 11 of them, 3 pages
    assert rec.data_requests("/dropstream/orders") == [
        {**sent, "limit": "4"},
        {**sent, "limit": "4", "page": "2"},
        {**sent, "limit": "4", "page": "3"},
    ]


def test_a_part_over_the_cap_pays_its_probe_page_and_its_halves_keep_time_order(make_hook):
    """A burst puts 12 orders in the first 2 minutes, in the first of 4 parts (cap 10): its probe,
    a page of 4, is spent, and so is its first half's; the halves' halves fit, and their probes
    are their pages 1 (empty parts end at their probe). Every record once, in time order."""
    orders = [dropstream_order(i) for i in range(0, 24)]
    for i in range(12):
        orders[i]["created_at"] = (BASE + timedelta(seconds=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    hook, fake, rec = make_hook(orders, cap=10, max_concurrency=2)
    window = (BASE, BASE + timedelta(minutes=24))
    assert [o.id for o in hook.iter_orders(window=window, limit=4)] == list(range(0, 24))
    asked = [
        ((0, 6), 1),  # 12 orders: over the cap, halved
        ((6, 12), 1),  # one order as sent (12:00, the next part's): its only page
        ((0, 3), 1),  # still 12: halved
        ((3, 6), 1),  # empty
        ((0, 1.5), 1),  # 10: fits, 3 pages
        ((1.5, 3), 1),  # 3: fits, 1 page
        ((12, 18), 1),
        ((0, 1.5), 2),
        ((0, 1.5), 3),
        ((12, 18), 2),
        ((18, 24), 1),
        ((18, 24), 2),
    ]
    assert rec.data_requests("/dropstream/orders") == [{**_minutes(0, 24), "limit": "4"}] + [
        {**_minutes(*part), "limit": "4", "page": str(page)} for part, page in asked
    ]


@pytest.mark.parametrize("concurrency", [2, 4, 8])
def test_window_read_concurrently_in_time_order_exactly_once(make_hook, concurrency):
    # Uneven density: a burst in the first minutes forces a second round of splitting.
    orders = [dropstream_order(i) for i in range(0, 120)]
    for i in range(0, 60):
        orders[i]["created_at"] = (BASE + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    hook, fake, rec = make_hook(orders, cap=10, max_concurrency=concurrency)
    window = (BASE, BASE + timedelta(minutes=120))
    ids = [o.id for o in hook.iter_orders(window=window, limit=4)]
    assert ids == list(range(0, 120))
    data = rec.data_requests("/dropstream/orders")
    assert data[0]["limit"] == "4" and "page" not in data[0]  # the session that tells the total
    pages = [p for p in data[1:] if p["limit"] == "4"]
    assert all(int(p["page"]) >= 1 for p in pages)
    assert len(pages) <= len(ids) // 4 + 40  # no page read twice beyond the parts' last pages


def test_auto_mode_with_one_request_in_flight_uses_a_session(make_hook):
    hook, fake, rec = make_hook([dropstream_order(i) for i in range(0, 30)], max_concurrency=1)
    ids = [o.id for o in hook.iter_orders(window=(BASE, BASE + timedelta(minutes=30)), limit=10)]
    assert ids == list(range(0, 30))
    assert all("page" not in p for p in rec.data_requests("/dropstream/orders"))


def test_window_is_half_open_and_trimmed_on_the_client(make_hook):
    hook, fake, rec = make_hook([dropstream_order(i) for i in range(0, 20)])
    window = (BASE + timedelta(minutes=5), BASE + timedelta(minutes=10))
    ids = [o.id for o in hook.iter_orders(window=window)]
    assert ids == [5, 6, 7, 8, 9]
    sent = rec.data_requests("/dropstream/orders")[0]
    # Sent a second wider on both sides (the vendor's bounds are undocumented), trimmed exactly here.
    assert sent["created_at_min"] == "2025-10-01T00:04:59+00:00"
    assert sent["created_at_max"] == "2025-10-01T00:10:01+00:00"


def test_401_renews_the_token_once_then_succeeds(make_hook):
    hook, fake, rec = make_hook()
    list(hook.iter_orders(limit=1000))
    fake.valid_tokens.clear()  # the JWT expires
    fake.valid_tokens.add("jwt-3")
    assert len(list(hook.iter_orders(limit=1000))) == 250
    assert fake.token_requests == 2


def test_a_token_refused_after_every_renewal_fails_clearly_naming_the_connection(make_hook):
    hook, fake, rec = make_hook()
    fake.issue_token = lambda: "never-valid"
    with pytest.raises(FulfillmentAuthError) as caught:
        list(hook.iter_orders())
    message = str(caught.value)
    assert "connection 'ds'" in message and "HTTP 401" in message and "renewed and still refused" in message
    assert fake.token_requests == 1 + MAX_RENEWALS  # the first sign-in, then each renewal


def test_a_renewed_token_revoked_before_its_first_use_is_renewed_again(make_hook):
    """Another worker of the same login signs in (one token per user) between this request's
    renewal and its retry: the retry meets a 401 too, and one more renewal reads on."""
    hook, fake, rec = make_hook()
    list(hook.iter_orders(limit=1000))
    fake.valid_tokens.clear()  # the JWT expires
    issued = iter(["jwt-revoked", "jwt-3"])
    fake.issue_token = lambda: next(issued)  # jwt-revoked is never valid: revoked at once
    fake.valid_tokens.add("jwt-3")
    assert len(list(hook.iter_orders(limit=1000))) == 250
    assert fake.token_requests == 3


def test_retry_after_is_honoured_on_429_and_5xx_retried(make_hook):
    hook, fake, rec = make_hook()
    waits = []
    hook.http._sleep = waits.append
    rec.script = [
        None,
        json_response(429, {"error": "slow down"}, {"Retry-After": "7"}),
        json_response(503, {}),
    ]
    assert len(list(hook.iter_orders(limit=1000))) == 250
    assert waits[0] == 0  # capped by the connection's max_wait=0
    assert len(waits) == 2


def test_retry_after_value_used_when_under_max_wait(set_connection):
    fake = FakeDropStream([dropstream_order(1)])
    rec = Recorder(fake)
    set_connection("ds", "dropstream", HOST, "u", SECRET, max_wait=30)
    hook = DropStreamHook("ds", transport=httpx.MockTransport(rec))
    waits = []
    hook.http._sleep = waits.append
    rec.script = [None, json_response(429, {}, {"Retry-After": "7"})]
    assert [o.id for o in hook.iter_orders()] == [1]
    assert waits == [7.0]


def test_400_is_not_retried(make_hook):
    hook, fake, rec = make_hook()
    rec.script = [None, json_response(400, {"error": "bad parameter limit"})]
    with pytest.raises(FulfillmentAPIError, match="HTTP 400: bad parameter limit"):
        list(hook.iter_orders())
    assert len(rec.requests) == 2


def test_retries_exhausted_names_request_status_and_attempts(make_hook):
    hook, fake, rec = make_hook(max_attempts=3)
    rec.script = [None] + [json_response(502, {"error": "bad gateway"})] * 3
    with pytest.raises(FulfillmentAPIError) as caught:
        list(hook.iter_orders(limit=10))
    assert str(caught.value) == (
        "DropStream connection 'ds': GET /orders?sort=created_at&limit=10 failed after 3 attempts: HTTP 502: bad gateway"
    )


def test_connection_errors_are_retried(make_hook):
    hook, fake, rec = make_hook()
    rec.script = [None, httpx.ConnectError("refused"), httpx.RemoteProtocolError("dropped")]
    assert len(list(hook.iter_orders(limit=1000))) == 250


def test_truncated_body_is_retried(make_hook):
    hook, fake, rec = make_hook()
    rec.script = [None, httpx.Response(200, content=b'{"orders": [{"id": 1, "crea')]
    assert len(list(hook.iter_orders(limit=1000))) == 250


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"colour": "red"}, "unknown filter(s) 'colour'"),
        ({"limit": 1001}, "'limit' must be from 1 to 1000, got 1001"),
        ({"limit": 0}, "'limit' must be from 1 to 1000, got 0"),
        ({"state": "lost"}, "unknown DropStream order state 'lost'"),
        ({"paging": "cursor"}, "unknown paging mode 'cursor'"),
        ({"created_at_min": "last monday"}, "cannot parse 'last monday'"),
        ({"created_at_min": "2025-10-01T00:00:00"}, "has no time zone"),
        ({"sort": "colour"}, "unknown sort property 'colour'"),
        ({"window": (BASE, BASE - timedelta(hours=1))}, "must be after its start"),
        ({"window": (BASE, BASE + timedelta(days=36500))}, "window ends in the future"),
        (
            {"window": (BASE, BASE + timedelta(hours=1)), "window_field": "shipped_at"},
            "window_field must be one of",
        ),
        (
            {"window": (BASE, BASE + timedelta(hours=1)), "created_at_min": BASE},
            "either window= or created_at_min",
        ),
    ],
)
def test_bad_input_raises_before_any_request(make_hook, kwargs, message):
    hook, fake, rec = make_hook()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        hook.iter_orders(**kwargs)
    assert rec.requests == []


def test_get_order_and_not_found(make_hook):
    hook, fake, rec = make_hook()
    assert hook.get_order(42).id == 42
    with pytest.raises(RecordNotFound, match="order '9999' not found"):
        hook.get_order(9999)


def test_order_state_for_sensors(make_hook):
    hook, fake, rec = make_hook([dropstream_order(5, fulfillment_state="error_sending_to_warehouse")])
    state = hook.get_state("order", 5)
    assert (state.found, state.raw_status, state.status) == (True, "error_sending_to_warehouse", "error")
    assert hook.get_state("order", 6).found is False


def test_test_connection_reports_success_and_failure(make_hook):
    hook, fake, rec = make_hook()
    ok, message = hook.test_connection()
    assert ok and "250 orders visible" in message
    hook, fake, rec = make_hook()
    fake.issue_token = lambda: "never-valid"
    ok, message = hook.test_connection()
    assert not ok and "HTTP 401" in message


def test_secrets_never_reach_logs_or_errors(make_hook, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    hook, fake, rec = make_hook()
    fake.issue_token = lambda: "never-valid-token-abcdef"
    with pytest.raises(FulfillmentAuthError) as caught:
        list(hook.iter_orders())
    text = caplog.text + str(caught.value) + repr(caught.value) + repr(hook.settings)
    assert SECRET not in text
    assert "never-valid-token-abcdef" not in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"paging": "session", "limit": 7},
        {"window": (BASE, BASE + timedelta(minutes=250)), "limit": 9},
        {"window": (BASE, BASE + timedelta(minutes=250)), "limit": 9, "paging": "page"},
    ],
)
def test_raw_mode_yields_the_vendor_json_with_the_same_guarantees(make_hook, kwargs):
    orders = [dropstream_order(i) for i in range(0, 250)]
    hook, fake, rec = make_hook(orders, cap=40)
    expected = [o.id for o in hook.iter_orders(**kwargs)]
    raw = list(hook.iter_orders(raw=True, **kwargs))
    assert [r["id"] for r in raw] == expected == list(range(0, 250))
    assert raw == orders  # byte-for-byte the objects the vendor sent
    assert hook.normalize("orders", raw[3]) == hook.normalize("orders", hook.get_order(3))


def test_raw_mode_session_expiry_exactly_once(make_hook):
    hook, fake, rec = make_hook()
    seen = []
    for order in hook.iter_orders(raw=True, limit=100, paging="session"):
        seen.append(order["id"])
        if order["id"] == 120:
            fake.expired.add("s1")
    assert seen == list(range(1, 251))


def test_lost_session_answer_is_detected_by_page_number_and_recovered(make_hook):
    """The retried continuation gets the next page (the cursor moved): reopen, lose nothing."""
    hook, fake, rec = make_hook()
    real = fake.__call__
    state = {"dropped": False}

    def lossy(request):
        response = real(request)
        if "session_id=s1" in str(request.url) and not state["dropped"]:
            state["dropped"] = True  # the server advanced the cursor, the answer never arrived
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
        return response

    rec.handler = lossy
    ids = [o.id for o in hook.iter_orders(limit=100, paging="session")]
    assert ids == list(range(1, 251))
    orders = rec.data_requests("/dropstream/orders")
    # open, lost continuation, retry answered page 3 (gap), reopen after order 100 (01:40), s2 to the end
    assert orders[:4] == [
        {"limit": "100", "sort": "created_at"},
        {"session_id": "s1"},
        {"session_id": "s1"},
        {"limit": "100", "sort": "created_at", "created_at_min": "2025-10-01T01:39:59+00:00"},
    ]
