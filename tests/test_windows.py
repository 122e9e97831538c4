"""Windows and dates at the edges of datetime's range fail as ValueError, never as OverflowError."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from airflow_provider_fulfillment.windows import (
    EARLIEST,
    LATEST,
    Window,
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
