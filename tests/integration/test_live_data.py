"""Exactly once on live data: every vendor against the sandbox's live-data knobs, exact id sets.

Each test starts its own small sandbox, because mutations change its world for good. The expected
set is what the server held when the read began; records that changed mid-read were read before
they changed (the knobs mutate records of a page already served), so they belong to it.

Every vendor x case the vendor's API has is here; the sandbox README's "Live-data knobs, per
vendor" table says which cases a vendor has no concept for (DropStream and Stream: no modification
time; DCL: no sort, no totals, no token; Stream: no page size).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from airflow_provider_fulfillment.hooks.base import RecordNotFound
from airflow_provider_fulfillment.hooks.dcl import DclHook
from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from airflow_provider_fulfillment.hooks.stream import StreamHook
from airflow_provider_fulfillment.http import FulfillmentAPIError
from airflow_provider_fulfillment.sandbox.testing import run_sandbox

pytestmark = pytest.mark.integration


@pytest.fixture
def live(monkeypatch):
    """A fresh sandbox per test; `live(**knobs)` starts it with the connections pointed at it."""
    servers = []

    def start(concurrency: int = 4, max_wait: float = 0.01, max_attempts: int = 4, **options):
        server = run_sandbox(
            **{"seed": 11, "orders": 3000, "dcl_orders": 600, "stream_orders": 200, **options}
        )
        sb = server.__enter__()
        servers.append(server)
        for name, value in sb.conn_env().items():
            body = json.loads(value)
            body["extra"] = {
                "max_wait": max_wait,
                "max_attempts": max_attempts,
                "max_concurrency": concurrency,
            }
            monkeypatch.setenv(name, json.dumps(body))
        return sb

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def exactly(ids, expected):
    duplicates = sorted(k for k, n in Counter(ids).items() if n > 1)
    assert not duplicates, f"duplicates: {duplicates[:5]}"
    assert set(ids) == set(expected), (
        f"missing {sorted(set(expected) - set(ids))[:5]}, extra {sorted(set(ids) - set(expected))[:5]}"
    )


def stayed_and_nothing_else(ids, expected, moved):
    """Under churn: no duplicates, every record that stayed in the set for the whole read, and
    nothing that was never in it (a record that moved may or may not have been read first)."""
    duplicates = sorted(k for k, n in Counter(ids).items() if n > 1)
    assert not duplicates, f"duplicates: {duplicates[:5]}"
    stayed = set(expected) - set(moved)
    assert stayed <= set(ids), f"missing {sorted(stayed - set(ids))[:5]}"
    assert set(ids) <= set(expected), f"extra {sorted(set(ids) - set(expected))[:5]}"


def _moved(sb, vendor):
    return {ident for who, ident in sb.app.live.mutated if who == vendor}


def _days(sb, back_start, back_end):
    return (sb.world.end - timedelta(days=back_start), sb.world.end - timedelta(days=back_end))


# --------------------------------------------------------------------------- DropStream


def _ds_expected(sb, window, **params):
    return sb.world.dropstream.order_ids(window=window, **params)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_dropstream_page_mode_record_leaving_the_state_filter_mid_read(live, concurrency):
    # Answer 1 sizes the window (a session of limit 1); after answer 2 (page 1) two of its orders
    # change state and leave the filter: every later page shifts by two.
    sb = live(concurrency, mutate="status", mutate_after=2, mutate_count=2, mutate_prefix="/dropstream")
    window = _days(sb, 60, 0)
    state = "shipped"
    expected = _ds_expected(sb, window, state=state)
    assert len(expected) > 300
    ids = [o.id for o in DropStreamHook().iter_orders(window=window, state=state, paging="page", limit=100)]
    assert len(sb.app.live.mutated) == 2
    exactly(ids, expected)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_dropstream_part_changing_between_its_probe_and_its_page_2(live, concurrency):
    """A cap of 200 cuts the window into parts of about 150; each part's probe (page 1 at the page
    size) is its page 1. Answer 2 is a probe: two of its orders then leave the state filter, so
    that part's page 2 sees a smaller total and the part is read again (in halves), skipping what
    its probe gave. Each order once, the two moved ones included (they were read before they
    moved); the plan with one-record probes never read them."""
    sb = live(concurrency, mutate="status", mutate_after=2, mutate_count=2, mutate_prefix="/dropstream")
    window = _days(sb, 60, 0)
    state = "shipped"
    expected = _ds_expected(sb, window, state=state)
    assert len(expected) > 400
    hook = DropStreamHook()
    hook.result_cap = 200
    ids = [o.id for o in hook.iter_orders(window=window, state=state, paging="page", limit=100)]
    moved = _moved(sb, "dropstream")
    assert len(moved) == 2 and moved <= set(expected)
    exactly(ids, expected)
    sent = [r.params for r in sb.counters().requests if r.path == "/dropstream/orders"]
    assert [params["limit"] for params in sent] == ["100"] * len(sent)
    assert "page" not in sent[0] and all("page" in params for params in sent[1:])
    asked = [((params["created_at_min"], params["created_at_max"]), params["page"]) for params in sent[1:]]
    assert len(asked) == len(set(asked))  # no page asked twice
    # exactly one part was read again, as halves, once its page 2 showed it had moved
    halved = [
        span
        for span, page in asked
        if page == "1" and any(span[0] <= inner[0] and inner[1] <= span[1] != inner[1] for inner, _ in asked)
    ]
    assert len(halved) == 1 and (halved[0], "2") in asked


def test_dropstream_non_unique_sort_with_unstable_ties(live):
    sb = live(4, unstable_ties=True)
    window = _days(sb, 60, 0)
    expected = _ds_expected(sb, window)
    ids = [o.id for o in DropStreamHook().iter_orders(window=window, sort="store_id", limit=100)]
    exactly(ids, expected)
    with pytest.raises(
        ValueError, match="paging='page' with sort='store_id' cannot read each record exactly"
    ):
        DropStreamHook().iter_orders(window=window, sort="store_id", paging="page")


@pytest.mark.parametrize("paging", ["session", "page"])
def test_dropstream_served_fewer_than_asked(live, paging):
    sb = live(4, page_cap=500)
    window = _days(sb, 90, 0)
    expected = _ds_expected(sb, window)
    assert len(expected) > 2000
    ids = [o.id for o in DropStreamHook().iter_orders(window=window, paging=paging, limit=1000)]
    exactly(ids, expected)


@pytest.mark.parametrize("paging", ["session", "page"])
def test_dropstream_200_error_body_is_retried_never_an_empty_last_page(live, paging):
    sb = live(1, error_body_every=3)
    window = _days(sb, 90, 0)
    ids = [o.id for o in DropStreamHook().iter_orders(window=window, paging=paging, limit=200)]
    exactly(ids, _ds_expected(sb, window))
    assert sum(r.fault == "error_body" for r in sb.counters().requests) >= 2


def test_dropstream_200_error_body_past_the_budget_is_loud(live):
    live(1, error_body_every=1)
    with pytest.raises(
        FulfillmentAPIError, match="after 4 attempts.*the answer has no 'orders': Internal error"
    ):
        list(DropStreamHook().iter_orders(paging="session"))


@pytest.mark.parametrize("paging", ["session", "page"])
def test_dropstream_answers_without_totals_never_truncate(live, paging):
    sb = live(4, omit_totals=True)
    window = _days(sb, 90, 0)
    ids = [o.id for o in DropStreamHook().iter_orders(window=window, paging=paging, limit=300)]
    exactly(ids, _ds_expected(sb, window))


def test_dropstream_read_ahead_answered_429_past_a_short_page_is_not_waited_out(live):
    """No totals, 150 orders in pages of 100: after the full page 1, pages 2 and 3 go out together
    and both meet a 429 (requests 2 and 3 of every 3). Page 2 is needed: waited out and asked
    again. Page 3 was read ahead of an unknown end and page 2 came back short: dropped, never
    asked again (it was waited out, then asked until answered: 3 more requests). Page 2's retry
    waits 0.9 s: under load (the suite beside a benchmark) page 3 can go out over 0.5 s late; page 2's
    retry took page 3's turn among the 429s and page 3 met the next 200."""
    sb = live(4, max_wait=0.9, orders=150)
    sb.set_live(omit_totals=True)
    sb.update_faults(rate_limit_every=3, rate_limit_burst=2, retry_after=2, prefix="/dropstream/orders")
    exactly([o.id for o in DropStreamHook().iter_orders(paging="page", limit=100)], _ds_expected(sb, None))
    sent = [(r.params["page"], r.status) for r in sb.counters().requests if r.path == "/dropstream/orders"]
    assert sorted(sent) == [("1", 200), ("2", 200), ("2", 429), ("3", 429)], sent


def test_dropstream_one_active_token_per_user_with_requests_in_flight(live):
    # Every token dies after 5 uses, and signing in revokes the user's other tokens: threads that
    # renewed on their own would revoke each other's. One renewal at a time keeps the read going.
    sb = live(4, one_token_per_user=True, token_max_uses=5)
    window = _days(sb, 90, 0)
    hook = DropStreamHook()
    ids = [o.id for o in hook.iter_orders(window=window, paging="page", limit=100)]
    exactly(ids, _ds_expected(sb, window))
    renewals = sb.counters().count(path="/dropstream/auth/token")
    pages = sb.counters().count(path="/dropstream/orders", status=200)
    assert renewals <= pages // 5 + 2


@pytest.mark.parametrize("paging", ["session", "page"])
def test_dropstream_records_inserted_mid_read(live, paging):
    """The 3 newest orders appear after answer 2: every order there before is read once, and the
    new ones at most once. (`modify` has no DropStream case: its documented objects carry no
    modification time, and no filter reads one, so nothing a read selects on can be modified.)"""
    sb = live(4, mutate="insert", mutate_after=2, mutate_count=3, mutate_prefix="/dropstream")
    window = _days(sb, 90, -1)
    after = _ds_expected(sb, window)
    hidden = {
        sb.world.dropstream.order_id(i) for i in range(sb.world.dropstream.n - 3, sb.world.dropstream.n)
    }
    assert hidden <= set(after)
    ids = [o.id for o in DropStreamHook().iter_orders(window=window, paging=paging, limit=300)]
    assert sb.app.live.mutated == [("dropstream", "insert")]
    stayed_and_nothing_else(ids, after, hidden)


@pytest.mark.parametrize(
    ("hook_class", "token_path"),
    [(DropStreamHook, "/dropstream/auth/token"), (StreamHook, "/stream/client_api/v2/auth/sign_in")],
)
def test_async_renewal_is_single_flight_per_connection(live, hook_class, token_path):
    """Triggers' path: 3 threads, each with its own event loop and 2 hooks of one connection, 8
    `aget_state`s in flight per loop. Signing in revokes the user's other tokens, so a second
    renewal would fail the first one's requests: one sign-in, then one renewal after a revoke."""
    sb = live(4, one_token_per_user=True)
    ids = (
        sb.world.dropstream.order_ids()[:24]
        if hook_class is DropStreamHook
        else sb.world.stream.order_ids()[:24]
    )
    start = threading.Barrier(3)

    def states_in_own_loop(part):
        async def run():
            hooks = [hook_class(), hook_class()]
            try:
                return await asyncio.gather(
                    *(hooks[i % 2].aget_state("order", x) for i, x in enumerate(part))
                )
            finally:
                for hook in hooks:
                    await hook.http.aclose()

        start.wait(timeout=30)
        return asyncio.run(run())

    def read_all():
        with ThreadPoolExecutor(3) as pool:
            parts = list(pool.map(states_in_own_loop, [ids[0::3], ids[1::3], ids[2::3]]))
        return sorted(str(state.ident) for part in parts for state in part if state.found)

    assert read_all() == sorted(str(x) for x in ids)
    assert sb.counters().count(path=token_path) == 1
    sb.revoke_tokens()
    sb.reset_counters()
    # Answers take 0.1 s, so the first requests are all out, on the revoked token, before the
    # first 401 is back: on a loaded machine they could otherwise go one by one, and only the
    # first would meet a 401 (single flight then untested).
    sb.update_faults(latency=0.1)
    assert read_all() == sorted(str(x) for x in ids)  # every first request meets a 401
    assert sb.counters().count(path=token_path) == 1
    assert sb.counters().count(status=401) > 1, sb.counters().requests


# --------------------------------------------------------------------------- DCL


def _dcl_window(sb):
    # 250 or so orders modified in the window (the world ends at its `end`).
    numbers = sb.world.dcl.order_numbers(window=_days(sb, 60, 0), field="modified_at")
    return _days(sb, 60, 0), numbers


@pytest.mark.parametrize("concurrency", [1, 4])
def test_dcl_orders_modified_mid_read_leave_the_window_and_lose_nothing(live, concurrency):
    sb = live(concurrency, mutate="modify", mutate_after=1, mutate_count=2, mutate_prefix="/dcl")
    window, expected = _dcl_window(sb)
    assert len(expected) > 200
    orders = list(DclHook().iter_orders(window=window))
    assert len(sb.app.live.mutated) == 2
    exactly([o.order_number for o in orders], expected)
    assert len({(o.account_number, o.order_number) for o in orders}) == len(orders)


@pytest.mark.parametrize("windowed", [True, False])
def test_dcl_served_fewer_than_asked(live, windowed):
    sb = live(4, page_cap=50)
    window, expected = _dcl_window(sb)
    if not windowed:
        expected = sb.world.dcl.order_numbers()
    orders = DclHook().iter_orders(**({"window": window} if windowed else {}))
    exactly([o.order_number for o in orders], expected)


def test_dcl_windowed_read_costs_a_request_per_slice_and_nothing_past_the_end(live):
    sb = live(1)
    window, expected = _dcl_window(sb)
    exactly([o.order_number for o in DclHook().iter_orders(window=window)], expected)
    sent = sb.counters().count(path="/dcl/api/v1/orders")
    assert sent <= 1 + 4 * (-(-len(expected) // 100))  # the window, then slices that each fit a page


@pytest.mark.parametrize("concurrency", [1, 4])
def test_dcl_unwindowed_read_of_250_is_page_1_then_slices_cut_where_the_rest_lies(live, concurrency):
    """250 orders, pages of 100 (before: pages 1 to 3 and, reading ahead, 4, drift-unsafe; then
    slices halving 27 years from DCL_EPOCH, 13). Page 1 goes without bounds; its times rise with
    the orders' age, so it is cut at their 80th percentile, the upper slice again: 5 requests,
    serial or 4 in flight, each a page 1."""
    sb = live(concurrency, dcl_orders=250)
    exactly([o.order_number for o in DclHook().iter_orders()], sb.world.dcl.order_numbers())
    sent = [r.params for r in sb.counters().requests if r.path == "/dcl/api/v1/orders"]
    assert len(sent) == 5 and {p["page"] for p in sent} == {"1"}
    assert "modified_from" not in sent[0] and "modified_to" not in sent[0]


def test_dcl_slices_answered_429_are_each_waited_out(live):
    """150 orders in pages of 100: after the full page 1, its two slices go out together and both
    meet a 429 (every 3rd request on, the last 2 of 3 answer 429; waits capped at 0.5 s). Both are
    needed: each is waited out and asked again until answered, 3 answers and 4 429s. Which slice
    meets which 429 is a race (both wait out the same pause), so one may meet all 4: 5 attempts.
    (This was `..._read_ahead_answered_429_is_dropped_...`: DCL reads are slices now, each a page 1,
    with no page read ahead past an end, so the dropping of a 429'd read-ahead page is pinned on
    `PagedRead` in tests/test_paging.py.)"""
    sb = live(4, max_wait=0.5, max_attempts=5, dcl_orders=150)
    sb.update_faults(rate_limit_every=3, rate_limit_burst=2, retry_after=2, prefix="/dcl")
    exactly([o.order_number for o in DclHook().iter_orders()], sb.world.dcl.order_numbers())
    assert sb.counters().count(path="/dcl/api/v1/orders", status=200) == 3
    assert sb.counters().count(path="/dcl/api/v1/orders", status=429) == 4
    sent = [r.params for r in sb.counters().requests if r.path == "/dcl/api/v1/orders"]
    assert {p["page"] for p in sent} == {"1"}


@pytest.mark.parametrize("concurrency", [1, 4])
def test_dcl_stage_change_mid_read_leaves_the_filter_and_loses_nothing(live, concurrency):
    """Two orders of the first page served move to another `order_stage` (and so leave
    `filter=order_stage eq 60`; their `modified_at` moves past the window too, as DCL's does)."""
    sb = live(concurrency, mutate="status", mutate_after=1, mutate_count=2, mutate_prefix="/dcl")
    window = _days(sb, 60, 0)
    stage = "order_stage eq 60"
    expected = sb.world.dcl.order_numbers(window=window, field="modified_at", filter=stage)
    assert len(expected) > 100
    orders = list(DclHook().iter_orders(window=window, filter=stage))
    assert len(sb.app.live.mutated) == 2
    assert all(sb.world.dcl.stage(sb.world.dcl.order_index(n)) != 60 for _, n in sb.app.live.mutated)
    exactly([o.order_number for o in orders], expected)


@pytest.mark.parametrize(("mutate", "concurrency"), [("status", 1), ("status", 4), ("modify", 4)])
def test_dcl_received_window_is_sliced_and_loses_nothing_mid_read(live, mutate, concurrency):
    """A `received_date` window (DCL filters it by whole days only): read as `modified_at` slices
    that each fit one page. Orders of the first page served change stage (leaving the stage
    filter) or modification time (moving to the last slice): nothing else is lost, none twice."""
    sb = live(concurrency, mutate=mutate, mutate_after=1, mutate_count=2, mutate_prefix="/dcl")
    window = _days(sb, 90, 0)
    stage = {"filter": "order_stage eq 60"} if mutate == "status" else {}
    expected = sb.world.dcl.order_numbers(window=window, field="received_at", **stage)
    assert len(expected) > 150
    orders = list(DclHook().iter_orders(window=window, window_field="received_date", **stage))
    assert len(sb.app.live.mutated) == 2
    exactly([o.order_number for o in orders], expected)
    sent = [r.params for r in sb.counters().requests if r.path == "/dcl/api/v1/orders"]
    assert {p["page"] for p in sent} == {"1"}  # no page past page 1 was read over the moving set
    assert all("received_from" in p and "received_to" in p for p in sent)


def test_dcl_ship_date_window_is_sliced_and_trimmed_on_the_nested_shipments(live):
    """`ship_date` is each nested shipment's: slices select orders, the hook trims shipments."""
    sb = live(4)
    start, end = _days(sb, 60, 0)
    every = list(DclHook().iter_shipments(extended_date=True))  # times, as the windowed read asks
    expected = [s.ship_id for s in every if s.ship_date is not None and start <= s.ship_date < end]
    assert 100 < len(expected) < len(every)
    sb.reset_counters()
    got = [s.ship_id for s in DclHook().iter_shipments(window=(start, end), window_field="ship_date")]
    exactly(got, expected)
    sent = [r.params for r in sb.counters().requests if r.path == "/dcl/api/v1/orders"]
    assert {p["page"] for p in sent} == {"1"} and all("shipped_from" in p for p in sent)


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("mutate", ["status", "modify"])
def test_dcl_unwindowed_read_loses_nothing_mid_read(live, mutate, concurrency):
    """No window: still `modified_at` slices that each fit one page (open below and above), so an
    order of the first page served that changes stage (leaving `filter=`) or is modified (moving
    to the last slice) shifts no page: nothing else is lost, none twice."""
    sb = live(concurrency, mutate=mutate, mutate_after=1, mutate_count=2, mutate_prefix="/dcl")
    stage = {"filter": "order_stage eq 60"} if mutate == "status" else {}
    expected = sb.world.dcl.order_numbers(**stage)
    assert len(expected) > 150
    orders = list(DclHook().iter_orders(**stage))
    assert len(sb.app.live.mutated) == 2
    exactly([o.order_number for o in orders], expected)
    sent = [r.params for r in sb.counters().requests if r.path == "/dcl/api/v1/orders"]
    assert {p["page"] for p in sent} == {"1"}  # no page past page 1 was read over the moving set


@pytest.mark.parametrize("windowed", [True, False])
def test_dcl_records_inserted_mid_read(live, windowed):
    """The 3 newest orders appear after the first answer: every order there before is read once,
    and the new ones at most once (without a window they are listed last, so they are read)."""
    sb = live(4, mutate="insert", mutate_after=1, mutate_count=3, mutate_prefix="/dcl")
    window, after = _dcl_window(sb)
    if not windowed:
        after = sb.world.dcl.order_numbers()
    hidden = {sb.world.dcl.order_number(j) for j in range(sb.world.dcl.n - 3, sb.world.dcl.n)}
    assert hidden <= set(after)
    orders = DclHook().iter_orders(**({"window": window} if windowed else {}))
    numbers = [o.order_number for o in orders]
    assert sb.app.live.mutated == [("dcl", "insert")]
    if windowed:
        stayed_and_nothing_else(numbers, after, hidden)
    else:
        exactly(numbers, after)


def test_dcl_200_without_orders_is_retried(live):
    sb = live(1, error_body_every=2)
    window, expected = _dcl_window(sb)
    exactly([o.order_number for o in DclHook().iter_orders(window=window)], expected)


# --------------------------------------------------------------------------- Stream


def _busiest_status(sb):
    by_status = sb.world.stream.ids_by_status()
    return max(by_status, key=lambda name: len(by_status[name]))


@pytest.mark.parametrize("concurrency", [1, 4])
def test_stream_status_change_mid_read_is_detected_and_reread(live, concurrency):
    sb = live(concurrency, mutate="status", mutate_after=1, mutate_count=1, mutate_prefix="/stream")
    status = _busiest_status(sb)
    expected = sb.world.stream.order_ids(status=status)
    assert len(expected) > 20
    ids = [o.id for o in StreamHook().iter_orders(status=status)]
    assert len(sb.app.live.mutated) == 1
    exactly(ids, expected)


def test_stream_newest_first_insert_between_pages_loses_nothing(live):
    sb = live(1, newest_first=True, mutate="insert", mutate_after=1, mutate_count=3, mutate_prefix="/stream")
    before = set(sb.world.stream.order_ids()[:-3])  # the 3 newest are hidden until after page 1
    ids = [o.id for o in StreamHook().iter_orders()]
    exactly(ids, sb.world.stream.order_ids())
    assert before < set(ids)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_stream_records_inserted_mid_read_oldest_first(live, concurrency):
    """Stream's own order (oldest first): the 3 newest appear after page 1 and are read too. (No
    `modify` case: Stream documents no modification time and no filter on one.)"""
    sb = live(concurrency, mutate="insert", mutate_after=1, mutate_count=3, mutate_prefix="/stream")
    ids = [o.id for o in StreamHook().iter_orders()]
    assert sb.app.live.mutated == [("stream", "insert")]
    exactly(ids, sb.world.stream.order_ids())


def test_stream_200_error_body_and_missing_meta(live):
    sb = live(1, error_body_every=2)
    exactly([o.id for o in StreamHook().iter_orders()], sb.world.stream.order_ids())
    sb.set_live(omit_totals=True)
    exactly([o.id for o in StreamHook().iter_orders()], sb.world.stream.order_ids())


def test_stream_unknown_id_is_not_found_for_sensors_and_get_order(live):
    live(1)
    hook = StreamHook()
    state = hook.get_state("order", "99999999")
    assert state.found is False
    with pytest.raises(
        RecordNotFound, match="connection 'stream_default': Stream order 'SHIP-1999-000001' not found"
    ):
        hook.get_order("SHIP-1999-000001")


# --------------------------------------------------------------------------- soak


@pytest.mark.soak
@pytest.mark.timeout(600)
def test_soak_every_vendor_while_its_data_keeps_moving(monkeypatch):
    """A minute or so of reads while records keep changing under them, with pages served smaller
    than asked and 200 error bodies mixed in: every vendor yields exactly the set it started with
    (the knobs change records of pages already served, so those were read before they moved)."""
    with run_sandbox(seed=29, orders=40_000, dcl_orders=3000, stream_orders=1500) as sb:
        for name, value in sb.conn_env().items():
            body = json.loads(value)
            body["extra"] = {"max_wait": 0.01, "max_attempts": 6, "max_concurrency": 4}
            monkeypatch.setenv(name, json.dumps(body))
        window = _days(sb, 90, 0)
        churn = {"mutate_after": 2, "mutate_count": 3, "page_cap": 250, "error_body_every": 9}
        sb.set_live(mutate="status", mutate_every=6, mutate_prefix="/dropstream", **churn)
        for state in ("shipped", "pending_shipment"):
            expected = _ds_expected(sb, window, state=state)
            ids = [o["id"] for o in DropStreamHook().iter_orders(window=window, state=state, raw=True)]
            stayed_and_nothing_else(ids, expected, _moved(sb, "dropstream"))
        status = _busiest_status(sb)
        expected = sb.world.stream.order_ids(status=status)
        # A Stream pass is every page of the status: the churn must leave it time to finish one.
        sb.set_live(
            mutate="status", mutate_every=-(-len(expected) // 20) + 2, mutate_prefix="/stream", **churn
        )
        ids = [o["id"] for o in StreamHook().iter_orders(status=status, raw=True)]
        stayed_and_nothing_else(ids, expected, _moved(sb, "stream"))
        sb.set_live(mutate="modify", mutate_every=3, mutate_prefix="/dcl", **{**churn, "page_cap": 40})
        numbers = sb.world.dcl.order_numbers(window=window, field="modified_at")
        numbers_read = [o["order_number"] for o in DclHook().iter_orders(window=window, raw=True)]
        stayed_and_nothing_else(numbers_read, numbers, _moved(sb, "dcl"))
        assert len(sb.app.live.mutated) > 20
