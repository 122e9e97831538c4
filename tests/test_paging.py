from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_fulfillment.http import FulfillmentAPIError, FulfillmentError
from airflow_provider_fulfillment.paging import (
    CapReached,
    DropStreamSessionPlan,
    Page,
    PagedRead,
    PageRequest,
    Sequential,
    dcl_plan,
    dropstream_plan,
    stream_plan,
)
from airflow_provider_fulfillment.windows import Window, dcl_bounds

UTC = UTC
T0 = datetime(2025, 3, 9, tzinfo=UTC)


def api_error(params, status, message):
    return FulfillmentAPIError(
        conn_id="c", method="GET", path="/orders", params=params, status=status, vendor_message=message
    )


def _page(ids, **meta):
    return Page([type("R", (), {"id": i})() for i in ids], meta)


def _ids(records):
    return [r.id for r in records]


def _answer(plan, page):
    """Issue the plan's next request (one in flight) and feed it `page`: (records, request sent)."""
    (request,) = plan.issue(1)
    return plan.feed(request, page), request


def test_session_plan_continues_with_session_id_only_and_ends_on_the_echoed_limit():
    plan = DropStreamSessionPlan(
        "/orders", {"state": "shipped", "page": 3}, lambda r: r.id, limit=2, ordered_by_id=True
    )
    records, sent = _answer(plan, _page([1, 2], session_id="abc", limit=2))
    assert sent == PageRequest("/orders", {"state": "shipped", "limit": 2}) and _ids(records) == [1, 2]
    records, sent = _answer(plan, _page([3], session_id="abc", limit=2))
    assert sent == PageRequest("/orders", {"session_id": "abc"}) and _ids(records) == [3]
    assert plan.done and plan.issue(1) == []


def test_session_plan_served_fewer_than_asked_reads_on_until_evidence():
    # The server serves 2 where 5 were asked and echoes no limit: only the total or an empty page ends it.
    plan = DropStreamSessionPlan("/orders", {}, lambda r: r.id, limit=5, ordered_by_id=True)
    _answer(plan, _page([1, 2], session_id="s", total_count=5))
    assert not plan.done
    _answer(plan, _page([3, 4], session_id="s"))
    records, _ = _answer(plan, _page([5], session_id="s"))
    assert _ids(records) == [5] and plan.done
    untold = DropStreamSessionPlan("/orders", {}, lambda r: r.id, limit=5, ordered_by_id=True)
    _answer(untold, _page([1, 2], session_id="s"))
    assert not untold.done
    _answer(untold, _page([], session_id="s"))
    assert untold.done


def test_session_plan_reopens_on_expiry_only_for_continuations_and_skips_yielded_ids():
    plan = DropStreamSessionPlan("/orders", {}, lambda r: r.id, limit=2, ordered_by_id=True, max_reopens=1)
    _answer(plan, _page([1, 2], session_id="abc", limit=2))
    (continuation,) = plan.issue(1)
    expired = api_error({"session_id": "abc"}, 410, "gone")
    assert plan.fail(continuation, expired) is True
    records, reopened = _answer(plan, _page([1, 2], session_id="def", limit=2))
    assert reopened == plan.first() and records == []  # already yielded before the expiry
    (continuation,) = plan.issue(1)
    with pytest.raises(FulfillmentError, match="1 reopened sessions in a row brought nothing new"):
        plan.fail(continuation, expired)
    not_expiry = api_error({}, 404, "no")
    assert plan.fail(plan.first(), not_expiry) is False
    worded = api_error({"session_id": "x"}, 422, "Session has expired")
    fresh = DropStreamSessionPlan("/orders", {}, lambda r: r.id, limit=2, ordered_by_id=True)
    fresh.issue(1)
    assert fresh.fail(PageRequest("/orders", {"session_id": "x"}), worded) is True


def _timed(ids, minute=lambda i: i):
    return Page(
        [type("R", (), {"id": i, "t": T0 + timedelta(minutes=minute(i))})() for i in ids],
        {"session_id": "s", "limit": 3},
    )


def test_time_ordered_session_resumes_from_the_last_time_and_skips_the_boundary():
    plan = DropStreamSessionPlan(
        "/orders",
        {"created_at_min": "2025-03-01T00:00:00+00:00"},
        lambda r: r.id,
        limit=3,
        ordered_by_id=False,
        resume_field="created_at",
        time_of=lambda r: r.t,
    )
    assert plan.first().params["created_at_min"] == "2025-03-01T00:00:00+00:00"
    records, _ = _answer(plan, _timed([1, 2, 3], minute=lambda i: 5))  # all at 00:05
    assert _ids(records) == [1, 2, 3]
    (continuation,) = plan.issue(1)
    plan.fail(continuation, api_error({"session_id": "s"}, 404, "gone"))
    # The new session serves the same-second records again, then one more: only that one is new.
    records, reopened = _answer(plan, _timed([1, 2, 4], minute=lambda i: 5))
    assert reopened.params == {"created_at_min": "2025-03-09T00:04:59+00:00", "limit": 3}
    assert _ids(records) == [4]


def test_paged_read_uses_the_servers_page_count_and_detects_the_cap():
    plan = PagedRead("/orders", {"limit": 1000}, asked=1000, id_of=lambda r: r.id)
    with pytest.raises(CapReached):
        _answer(plan, _page([1], total_count=10_000, max_total_reached=True, total_pages=10))
    # Asked 1000, served 500 (echoed): total_pages, not total/asked, says how many pages there are.
    plan = PagedRead("/orders", {"limit": 1000}, asked=1000, id_of=lambda r: r.id)
    _answer(plan, _page(range(500), total_count=1500, total_pages=3, limit=500))
    assert [r.params["page"] for r in plan.issue(8)] == [2, 3]


def test_paged_read_without_totals_never_stops_on_a_short_page_only_on_an_empty_one():
    plan = PagedRead("/orders", {}, asked=100, id_of=lambda r: r.id)
    _answer(plan, _page(range(50)))
    assert not plan.done and len(plan.issue(8)) == 1  # nothing came back full: one in flight
    plan.feed(PageRequest("/orders", {"page": 2}, (1, 2)), _page(range(50, 100)))
    _answer(plan, _page([]))
    assert plan.done


def test_paged_read_rereads_a_pass_whose_total_changed_and_yields_each_id_once():
    plan = PagedRead("/orders", {}, asked=2, id_of=lambda r: r.id)
    records, _ = _answer(plan, _page([1, 2], total_count=5, total_pages=3))
    assert [r.params["page"] for r in plan.issue(8)] == [2, 3]
    # Record 2 left the set after page 1: page 2 now starts at 4, and 3 would be lost.
    got = plan.feed(PageRequest("/orders", {"page": 2}, (1, 2)), _page([4, 5], total_count=4, total_pages=2))
    assert _ids(got) == [4, 5] and plan.passes == 2 and not plan.done
    plan.feed(PageRequest("/orders", {"page": 3}, (1, 3)), _page([], total_count=4, total_pages=2))
    again = plan.issue(8)
    assert [r.params["page"] for r in again] == [1]
    got = plan.feed(again[0], _page([1, 3], total_count=4, total_pages=2))
    (last,) = plan.issue(8)
    got += plan.feed(last, _page([4, 5], total_count=4, total_pages=2))
    assert _ids(got) == [3] and plan.done


def test_stream_plan_stops_at_page_count_and_repeats_a_pass_that_moved():
    plan = stream_plan("/orders", {"status": "delivered"}, id_of=lambda r: r.id)
    _answer(plan, _page(range(20), meta={"page_count": 2, "record_count": 40}))
    (second,) = plan.issue(8)
    assert second == PageRequest("/orders", {"status": "delivered", "page": 2})
    plan.feed(second, _page(range(21, 40), meta={"page_count": 2, "record_count": 39}))
    assert plan.passes == 2
    _answer(plan, _page(list(range(19)) + [20], meta={"page_count": 2, "record_count": 39}))
    (second,) = plan.issue(8)
    plan.feed(second, _page(range(21, 40), meta={"page_count": 2, "record_count": 39}))
    assert plan.done


# --------------------------------------------------------------------------- DCL slices

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _order(n):
    # order numbers and modification times in different orders, as a server may send them
    return type("O", (), {"id": n, "modified": T0 + timedelta(minutes=(n * 37) % 250)})()


def _unwindowed(page_size=100):
    return dcl_plan(
        "/orders",
        {},
        page_size=page_size,
        window=None,
        sliceable=False,
        bounds_of=lambda part: dcl_bounds(part, "modified"),
        id_of=lambda r: r.id,
        admit=lambda r, part: True,
        modified=Window(EPOCH, T0 + timedelta(days=2)),
        modified_of=lambda r: r.modified,
    )


def _serve(plan, orders, *, page_size=100, filtered=True):
    """Answer the plan one request at a time like DCL (or like a server ignoring `modified_*`)."""
    sent, got = [], []
    while not plan.done:
        (request,) = plan.issue(1)
        rows = orders
        low, high = (request.params.get(name) for name in ("modified_from", "modified_to"))
        if filtered and low:
            rows = [r for r in rows if r.modified >= datetime.fromisoformat(low)]
        if filtered and high:
            rows = [r for r in rows if r.modified <= datetime.fromisoformat(high)]
        page = request.params["page"]
        sent.append(request.params)
        got += plan.feed(request, Page(rows[(page - 1) * page_size : page * page_size], {"error_code": 0}))
    return sent, got


def test_dcl_unwindowed_plan_asks_without_bounds_then_cuts_at_the_times_seen():
    orders = [_order(n) for n in range(250)]
    sent, got = _serve(_unwindowed(), orders)
    assert sorted(_ids(got)) == list(range(250))  # each once
    assert sent[0] == {"page_size": 100, "page": 1}  # no bounds: a small read is one request
    # page 1 was full: 4 slices cut at the quartiles of the 100 modification times it showed
    assert len(sent) == 5 and {p["page"] for p in sent} == {1}
    assert "modified_from" not in sent[1] and "modified_to" not in sent[-1]  # open below and above


def test_dcl_unwindowed_plan_reads_a_short_read_whole():
    orders = [_order(n) for n in range(40)]
    sent, got = _serve(_unwindowed(), orders)
    assert sorted(_ids(got)) == list(range(40))
    # page 1 was short of the 100 asked: page 2 tells a whole read from a server serving fewer
    assert sent == [{"page_size": 100, "page": 1}, {"page_size": 100, "page": 2}]


def test_dcl_plan_refuses_a_server_that_ignores_the_modified_filter():
    """Every slice would come back full, cut down to a second and paged: it stops at the first one."""
    orders = [_order(n) for n in range(250)]
    with pytest.raises(FulfillmentError) as caught:
        _serve(_unwindowed(), orders, filtered=False)
    assert str(caught.value) == (
        "DCL ignored the modified_from/modified_to filter: /orders with "
        "modified_to=2025-03-09T01:03:01+00:00 answered a record modified at 2025-03-09T01:14:00+00:00; "
        "a read cannot be cut into slices that fit a page on such a server, so it stops rather than "
        "cut forever"
    )


def test_read_ahead_page_answered_429_is_dropped_once_past_the_end():
    """Pages 2 and 3 go out together after a full page 1; page 3 (read ahead, no end known yet)
    meets a 429: given up, not waited out; page 2 comes back short, so page 3 is never asked again."""
    plan = PagedRead("/orders", {}, asked=2, id_of=lambda r: r.id)
    _answer(plan, _page([1, 2]))
    needed, ahead = plan.issue(2)
    assert (needed.params["page"], needed.speculative, ahead.params["page"], ahead.speculative) == (
        2,
        False,
        3,
        True,
    )
    assert plan.fail(ahead, api_error(ahead.params, 429, "slow down")) is True
    assert _ids(plan.feed(needed, _page([3]))) == [3]
    assert plan.issue(4) == [] and plan.done
    # the page needed is never given up on a 429: the transport waits it out
    other = PagedRead("/orders", {}, asked=2, id_of=lambda r: r.id)
    (first,) = other.issue(1)
    assert other.fail(first, api_error(first.params, 429, "slow down")) is False


def test_a_wrapping_plan_keeps_read_ahead_speculative():
    """`Sequential` (DropStream page reads) re-tags its children's requests: page 3, read ahead of
    an unknown end, must still go out speculative, and its 429 still be dropped, through it."""
    child = PagedRead("/orders", {}, asked=2, id_of=lambda r: r.id)
    plan = Sequential([child])
    (first,) = plan.issue(1)
    assert _ids(plan.feed(first, _page([1, 2]))) == [1, 2]
    needed, ahead = plan.issue(2)
    assert [(r.params["page"], r.speculative) for r in (needed, ahead)] == [(2, False), (3, True)]
    assert plan.fail(ahead, api_error(ahead.params, 429, "slow down")) is True
    assert _ids(plan.feed(needed, _page([3]))) == [3]
    assert plan.issue(4) == [] and plan.done


def _dropstream_windowed(cap):
    window = Window(T0, T0 + timedelta(hours=9))
    return dropstream_plan(
        "/orders",
        {"from": window.start, "to": window.end},  # the hook sends the whole window's bounds first
        mode="page",
        limit=2,
        window=window,
        width=4,
        bounds_of=lambda part: {"from": part.start, "to": part.end},
        id_of=lambda r: r.id,
        time_of=lambda r: r.created,
        admit=lambda r, part: part.start <= r.created < part.end,
        cap=cap,
    )


def _serve_dropstream(plan, orders):
    """Answer like DropStream: the window's records in order, `limit` a page, with the total."""
    got = []
    while not plan.done:
        for request in plan.issue(4):
            params = request.params
            rows = [r for r in orders if params["from"] <= r.created < params["to"]]
            page, limit = params.get("page", 1), params["limit"]
            got += plan.feed(
                request, Page(rows[(page - 1) * limit : page * limit], {"total_count": len(rows)})
            )
    return got


def test_dropstream_parts_are_freed_as_they_finish_without_the_cyclic_collector():
    """A finished part's reader (and its two id sets: 75% of the cap each, ~1.3 MB at DropStream's
    10,000) goes when the plan drops it. A reader referenced from its own callback's closure was a
    cycle that only a full collection freed, and a raw-bytes read makes few collections (#13)."""
    orders = [type("O", (), {"id": n, "created": T0 + timedelta(minutes=30 * n)})() for n in range(18)]
    plan = _dropstream_windowed(cap=4)
    gc.collect()
    gc.disable()
    try:
        got = _serve_dropstream(plan, orders)
        alive = [o for o in gc.get_objects() if type(o) is PagedRead]  # no __class__ lookups: lazy proxies
    finally:
        gc.enable()
    assert sorted(_ids(got)) == list(range(18))
    assert plan.parts > 1 and alive == []
