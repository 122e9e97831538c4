"""The partition planner: exact cover, every part within the budget, neighbours merged, deterministic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_fulfillment.partitions import as_expand_kwargs, plan_partitions, pool_name
from airflow_provider_fulfillment.windows import Window


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2025, 10, day, hour, tzinfo=UTC)


def density(records_per_hour: dict[int, int]):
    """A count function over hour buckets since 2025-10-01 (each hour's records at its start)."""
    calls: list[Window] = []

    def count(part: Window) -> int:
        calls.append(part)
        total = 0
        for hour, n in records_per_hour.items():
            moment = at(1) + timedelta(hours=hour)
            total += n if part.start <= moment < part.end else 0
        return total

    return count, calls


def covers(parts, window: Window) -> bool:
    return (
        parts[0][0].start == window.start
        and parts[-1][0].end == window.end
        and all(a[0].end == b[0].start for a, b in zip(parts, parts[1:], strict=False))
    )


def test_time_slices_at_midnight_without_counts():
    window = Window(at(1, 12), at(4))
    parts = plan_partitions(window)
    assert [p.as_dict() for p, _ in parts] == [
        Window(at(1, 12), at(2)).as_dict(),
        Window(at(2), at(3)).as_dict(),
        Window(at(3), at(4)).as_dict(),
    ]
    assert all(records is None for _, records in parts)


def test_dense_days_are_halved_until_each_part_fits_and_sparse_ones_merged():
    # Day 1: 30,000 records in hour 5 and 30,000 in hour 17; days 2 and 3: 100 each.
    count, _ = density({5: 30_000, 17: 30_000, 24 + 3: 100, 48 + 3: 100})
    window = Window(at(1), at(4))
    parts = plan_partitions(window, count, max_records=50_000, max_duration=timedelta(days=2))
    assert covers(parts, window)
    assert all(records <= 50_000 for _, records in parts)
    assert sum(records for _, records in parts) == 60_200
    # Day 2 joins the second half of day 1; day 3 would make that part longer than two days.
    assert [records for _, records in parts] == [30_000, 30_100, 100]


def test_a_part_that_cannot_be_split_further_is_kept_whole():
    count, _ = density({3: 90_000})  # all in one instant
    parts = plan_partitions(Window(at(1), at(2)), count, max_records=10_000)
    assert [records for _, records in parts if records] == [90_000]
    assert min(p.duration for p, _ in parts) <= timedelta(seconds=1)


def test_too_many_partitions_are_refused_with_a_way_out():
    count, _ = density({h: 1000 for h in range(24 * 30)})
    with pytest.raises(ValueError, match="needs more than 10 partitions of at most 500 records; raise"):
        plan_partitions(Window(at(1), at(31)), count, max_records=500, max_partitions=10)


def test_the_same_counts_give_the_same_plan():
    count, _ = density({5: 7000, 30: 12_000})
    window = Window(at(1), at(3))
    assert plan_partitions(window, count, max_records=5000) == plan_partitions(
        window, count, max_records=5000
    )


def test_expand_kwargs_and_pool_names():
    parts = plan_partitions(Window(at(1), at(2)))
    assert as_expand_kwargs(parts) == [{"window": {"start": at(1).isoformat(), "end": at(2).isoformat()}}]
    assert pool_name("dropstream_default") == "fulfillment_dropstream_default"
    assert pool_name("wh east/1") == "fulfillment_wh_east_1"


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="max_records must be at least 1"):
        plan_partitions(Window(at(1), at(2)), max_records=0)
    with pytest.raises(ValueError, match="max_duration must be positive"):
        plan_partitions(Window(at(1), at(2)), max_duration=timedelta(0))
