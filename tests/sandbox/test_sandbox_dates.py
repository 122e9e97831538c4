"""Date strings as the vendors accept them: DropStream ISO (whole/partial) and natural language, DCL ISO."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from airflow_provider_fulfillment.sandbox.dates import (
    parse_dcl_date,
    parse_dcl_datetime,
    parse_dropstream_date,
)

NOW = datetime(2025, 12, 17, 15, 30, 0, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-12-01T05:25:00.000Z", datetime(2022, 12, 1, 5, 25, tzinfo=UTC)),
        ("2022-12-01T00:25:00-05:00", datetime(2022, 12, 1, 5, 25, tzinfo=UTC)),
        ("2022-12-01", datetime(2022, 12, 1, tzinfo=UTC)),
        ("2022-12", datetime(2022, 12, 1, tzinfo=UTC)),
        ("2022", datetime(2022, 1, 1, tzinfo=UTC)),
        ("2022-12-01T05", datetime(2022, 12, 1, 5, tzinfo=UTC)),
        ("2022-12-01 05:25", datetime(2022, 12, 1, 5, 25, tzinfo=UTC)),
        ("2022-12-01T05:25:00+0130", datetime(2022, 12, 1, 3, 55, tzinfo=UTC)),
        ("December 1st 2022", datetime(2022, 12, 1, tzinfo=UTC)),
        ("Dec 1, 2022", datetime(2022, 12, 1, tzinfo=UTC)),
        ("1 December 2022", datetime(2022, 12, 1, tzinfo=UTC)),
        ("dec 1", datetime(2025, 12, 1, tzinfo=UTC)),
        ("dec 25", datetime(2024, 12, 25, tzinfo=UTC)),  # no year: the most recent one, not the future
        ("dec 1 at 5pm", datetime(2025, 12, 1, 17, tzinfo=UTC)),
        ("last monday", datetime(2025, 12, 15, tzinfo=UTC)),
        ("last wednesday", datetime(2025, 12, 10, tzinfo=UTC)),
        ("next monday", datetime(2025, 12, 22, tzinfo=UTC)),
        ("monday", datetime(2025, 12, 15, tzinfo=UTC)),
        ("two hours ago", NOW - timedelta(hours=2)),
        ("2 hours ago", NOW - timedelta(hours=2)),
        ("an hour ago", NOW - timedelta(hours=1)),
        ("twenty-five minutes ago", NOW - timedelta(minutes=25)),
        ("3 days ago", NOW - timedelta(days=3)),
        ("a week ago", NOW - timedelta(weeks=1)),
        ("1 month ago", datetime(2025, 11, 17, 15, 30, tzinfo=UTC)),
        ("in 2 days", NOW + timedelta(days=2)),
        ("now", NOW),
        ("  NOW ", NOW),
        ("today", datetime(2025, 12, 17, tzinfo=UTC)),
        ("yesterday", datetime(2025, 12, 16, tzinfo=UTC)),
    ],
)
def test_dropstream_dates(text, expected):
    assert parse_dropstream_date(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "soon", "2022-13-01", "december 45th", "two fortnights hence", "12:00"])
def test_dropstream_dates_rejected(text):
    with pytest.raises(ValueError):
        parse_dropstream_date(text, NOW)


def test_dcl_offsetless_is_pacific_and_offsets_are_honoured():
    assert parse_dcl_datetime("2025-01-15T09:00:00") == datetime(2025, 1, 15, 17, tzinfo=UTC)  # PST, -08:00
    assert parse_dcl_datetime("2025-07-15T09:00:00") == datetime(2025, 7, 15, 16, tzinfo=UTC)  # PDT, -07:00
    assert parse_dcl_datetime("2025-07-15T09:00:00Z") == datetime(2025, 7, 15, 9, tzinfo=UTC)
    assert parse_dcl_datetime("2025-07-15T09:00:00+02:00") == datetime(2025, 7, 15, 7, tzinfo=UTC)
    assert parse_dcl_datetime("2025-07-15").astimezone(timezone(timedelta(hours=-7))).hour == 0
    assert parse_dcl_date("2025-07-15T23:59:59").isoformat() == "2025-07-15"
    with pytest.raises(ValueError):
        parse_dcl_datetime("last monday")
