"""Windows and dates at the edges of datetime's range fail as ValueError, never as OverflowError."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from airflow_provider_fulfillment.windows import (
    EARLIEST,
    LATEST,
    Window,
    daily_windows,
    dcl_bounds,
    dropstream_bounds,
    partial_iso_date,
    to_aware_datetime,
)

RANGE = "is out of range; give a moment from 0001-01-08 to 9999-12-24"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ((datetime.min.replace(tzinfo=UTC), NOW), f"window start: 0001-01-01T00:00:00+00:00 {RANGE}"),
        (("0001-01-01T00:00:00+05:00", NOW), f"window start: '0001-01-01T00:00:00+05:00' {RANGE}"),
        (("0001-01-02", NOW), f"window start: '0001-01-02' {RANGE}"),
        ((NOW, datetime.max.replace(tzinfo=UTC)), f"window end: 9999-12-31T23:59:59.999999+00:00 {RANGE}"),
        ((NOW, "9999-12-31T23:00:00-05:00"), f"window end: '9999-12-31T23:00:00-05:00' {RANGE}"),
        ((NOW, date(9999, 12, 31)), f"window end: 9999-12-31T00:00:00+00:00 {RANGE}"),
    ],
)
def test_windows_near_datetime_min_and_max_are_value_errors(pair, message):
    with pytest.raises(ValueError) as caught:
        Window.coerce(pair, allow_future=True)
    assert str(caught.value) == message


def test_a_window_inside_the_range_still_converts_at_its_edges():
    window = Window.coerce((EARLIEST, LATEST), allow_future=True)
    assert dropstream_bounds(window, "created_at")["created_at_min"] == "0001-01-07T23:59:59+00:00"
    assert dcl_bounds(window, "received")["received_to"] == "9999-12-23"


def test_an_aware_datetime_built_directly_is_checked_too():
    with pytest.raises(ValueError, match=r"^window start: 0001-01-01T00:00:00\+00:00 is out of range"):
        Window(datetime.min.replace(tzinfo=UTC), NOW)
    with pytest.raises(ValueError, match="is out of range"):
        to_aware_datetime(datetime(1, 1, 1, 3, tzinfo=timezone(timedelta(hours=5))), "filter 'x'")


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2022-12-01", datetime(2022, 12, 1, tzinfo=UTC)),
        ("2022-12", datetime(2022, 12, 1, tzinfo=UTC)),
        ("2022", datetime(2022, 1, 1, tzinfo=UTC)),
        ("2022-12-01T05:25:00.000Z", datetime(2022, 12, 1, 5, 25, tzinfo=UTC)),
        ("2022-12-01T00:25:00-05:00", datetime(2022, 12, 1, 5, 25, tzinfo=UTC)),
    ],
)
def test_partial_iso_dates_are_the_start_of_their_period_in_utc(text, moment):
    assert partial_iso_date(text, "filter 'x'") == moment


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2022-13", "filter 'x': '2022-13' is not a real month"),
        ("2022-02-30", "filter 'x': '2022-02-30' is not a real date"),
        ("dec 1", "filter 'x': cannot parse 'dec 1' as a date"),
    ],
)
def test_partial_dates_that_are_not_dates_name_the_problem(text, message):
    with pytest.raises(ValueError) as caught:
        partial_iso_date(text, "filter 'x'")
    assert str(caught.value).startswith(message)


# moved from tests/test_windows_paging.py
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
