from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from airflow_provider_fulfillment.http import FulfillmentAPIError, FulfillmentError
from airflow_provider_fulfillment.paging import (
    CapReached,
    DropStreamPagePlan,
    DropStreamSessionPlan,
    Page,
    PageRequest,
    StreamPagePlan,
    split_until_fits,
)
from airflow_provider_fulfillment.windows import Window, daily_windows, dcl_bounds, to_aware_datetime

UTC = UTC
T0 = datetime(2025, 3, 9, tzinfo=UTC)


def test_window_is_half_open():
    window = Window(T0, T0 + timedelta(hours=1))
    assert T0 in window
    assert T0 + timedelta(hours=1) not in window
    assert T0 - timedelta(microseconds=1) not in window


def test_window_converts_offsets_to_utc_and_rejects_naive():
    plus2 = timezone(timedelta(hours=2))
    window = Window.coerce(("2025-03-09T02:00:00+02:00", datetime(2025, 3, 9, 3, tzinfo=plus2)))
    assert window.start == T0 and window.end == T0 + timedelta(hours=1)
    with pytest.raises(ValueError, match="no time zone"):
        Window.coerce(("2025-03-09T00:00:00", "2025-03-09T01:00:00+00:00"))
    with pytest.raises(ValueError, match="must be a \\(start, end\\) pair"):
        Window.coerce("2025-03-09")


def test_window_split_covers_exactly():
    window = Window(T0, T0 + timedelta(hours=3))
    parts = window.split(3)
    assert [p.duration for p in parts] == [timedelta(hours=1)] * 3
    assert parts[0].start == window.start and parts[-1].end == window.end
    first, second = window.halves()
    assert first.end == second.start and first.start == T0 and second.end == window.end


def test_daily_windows_cut_at_midnight():
    window = Window(T0 + timedelta(hours=20), T0 + timedelta(days=2, hours=1))
    assert [(w.start.hour, w.end.day) for w in daily_windows(window)] == [(20, 10), (0, 11), (0, 11)]


def test_dcl_bounds_across_dst_change():
    # US DST began 2025-03-09 at 02:00 Pacific: 10:00 UTC is 03:00 PDT, 09:59 UTC is 01:59 PST.
    window = Window(datetime(2025, 3, 9, 8, 0, tzinfo=UTC), datetime(2025, 3, 10, 7, 0, tzinfo=UTC))
    bounds = dcl_bounds(window, "received")
    assert bounds == {"received_from": "2025-03-08T23:59:59", "received_to": "2025-03-09"}
    assert dcl_bounds(window, "modified")["modified_to"] == "2025-03-10T07:00:01+00:00"


def test_to_aware_datetime_accepts_date_objects_as_utc_midnight():
    assert to_aware_datetime(date(2025, 3, 9), "x") == T0


def api_error(params, status, message):
    return FulfillmentAPIError(
        conn_id="c", method="GET", path="/orders", params=params, status=status, vendor_message=message
    )


def _page(ids, **meta):
    return Page([type("R", (), {"id": i})() for i in ids], meta)


def test_session_plan_continues_with_session_id_only_and_stops_on_short_page():
    plan = DropStreamSessionPlan(
        "/orders", {"state": "shipped", "page": 3}, lambda r: r.id, limit=2, ordered_by_id=True
    )
    assert plan.first() == PageRequest("/orders", {"state": "shipped", "limit": 2})
    records, nxt = plan.advance(plan.first(), _page([1, 2], session_id="abc"))
    assert [r.id for r in records] == [1, 2] and nxt == PageRequest("/orders", {"session_id": "abc"})
    records, nxt = plan.advance(nxt, _page([3], session_id="abc"))
    assert [r.id for r in records] == [3] and nxt is None


def test_session_plan_reopens_on_expiry_only_for_continuations_and_skips_yielded_ids():
    plan = DropStreamSessionPlan("/orders", {}, lambda r: r.id, limit=2, ordered_by_id=True, max_reopens=1)
    _, nxt = plan.advance(plan.first(), _page([1, 2], session_id="abc"))
    expired = api_error({"session_id": "abc"}, 410, "gone")
    assert plan.recover(nxt, expired) == plan.first()
    records, _ = plan.advance(plan.first(), _page([1, 2], session_id="def"))
    assert records == []  # already yielded before the expiry
    with pytest.raises(FulfillmentError, match="1 reopened sessions in a row brought nothing new"):
        plan.recover(nxt, expired)
    records, _ = plan.advance(plan.first(), _page([3], session_id="def"))
    assert [r.id for r in records] == [3]
    not_expiry = api_error({}, 404, "no")
    assert plan.recover(plan.first(), not_expiry) is None
    worded = api_error({"session_id": "x"}, 422, "Session has expired")
    fresh = DropStreamSessionPlan("/orders", {}, lambda r: r.id, limit=2, ordered_by_id=True)
    assert fresh.recover(PageRequest("/orders", {"session_id": "x"}), worded) is not None


def _timed(ids, minute=lambda i: i):
    return Page(
        [type("R", (), {"id": i, "t": T0 + timedelta(minutes=minute(i))})() for i in ids], {"session_id": "s"}
    )


def test_time_ordered_session_resumes_from_the_last_time_and_skips_the_boundary():
    plan = DropStreamSessionPlan(
        "/orders", {"created_at_min": "2025-03-01T00:00:00+00:00"}, lambda r: r.id, limit=3,
        ordered_by_id=False, resume_field="created_at", time_of=lambda r: r.t,
    )  # fmt: skip
    assert plan.first().params["created_at_min"] == "2025-03-01T00:00:00+00:00"
    records, nxt = plan.advance(plan.first(), _timed([1, 2, 3], minute=lambda i: 5))  # all at 00:05
    assert [r.id for r in records] == [1, 2, 3]
    reopened = plan.recover(nxt, api_error({"session_id": "s"}, 404, "gone"))
    assert reopened.params == {"created_at_min": "2025-03-09T00:04:59+00:00", "limit": 3}
    # The new session serves the same-second records again, then one more: only that one is new.
    records, _ = plan.advance(reopened, _timed([1, 2, 4], minute=lambda i: 5))
    assert [r.id for r in records] == [4]


def test_page_plan_detects_the_cap_and_lists_remaining_pages():
    plan = DropStreamPagePlan("/orders", {}, limit=1000)
    with pytest.raises(CapReached):
        plan.advance(plan.first(), _page([1], total_count=10_000, max_total_reached=True, total_pages=10))
    with pytest.raises(CapReached):
        plan.advance(plan.first(), _page([1], total_count=10_001))
    first = _page([1], total_count=2500, total_pages=3)
    assert [r.params["page"] for r in plan.remaining(first)] == [2, 3]


def test_split_until_fits_yields_parts_in_time_order():
    window = Window(T0, T0 + timedelta(hours=8))
    density = {h: 4 for h in range(8)}  # 4 results an hour, cap 8: parts of 2 hours
    calls = []

    def count(part):
        calls.append(part)
        hours = range(
            int((part.start - T0).total_seconds() // 3600), int((part.end - T0).total_seconds() // 3600)
        )
        total = sum(density[h] for h in hours)
        return min(total, 8), total > 8

    parts = list(split_until_fits(window, count, cap=8))
    hours = [((p.start - T0) // timedelta(hours=1), (p.end - T0) // timedelta(hours=1)) for p, _ in parts]
    assert hours == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert all(fits for _, fits in parts)


def test_split_until_fits_gives_up_below_one_second():
    window = Window(T0, T0 + timedelta(seconds=1))
    parts = list(split_until_fits(window, lambda part: (10_000, True)))
    assert parts == [(window, False)]


def test_stream_plan_stops_at_page_count():
    plan = StreamPagePlan("/orders", {"status": "delivered"})
    _, nxt = plan.advance(plan.first(), _page(range(20), meta={"page_count": 2}))
    assert nxt == PageRequest("/orders", {"status": "delivered", "page": 2})
    _, nxt = plan.advance(nxt, _page(range(3), meta={"page_count": 2}))
    assert nxt is None
