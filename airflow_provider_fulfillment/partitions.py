"""Cut a large interval into partitions for dynamically mapped extract tasks (pure: no Airflow, no I/O).

Past one worker the engine is Airflow itself: a backfill is planned into partitions that each fit
what one task should read (a record budget, and at most a duration), extracted by mapped tasks
(`.expand_kwargs`), with an Airflow pool per vendor connection bounding how many run at once.

The plan is deterministic for the same counts: adjacent runs and reruns cut the same boundaries,
so each partition's file path (a function of its window) stays the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from airflow_provider_fulfillment.windows import MIN_SPLIT, Window, daily_windows

DEFAULT_MAX_RECORDS = 50_000
DEFAULT_MAX_PARTITIONS = 1024


def plan_partitions(
    window: Window,
    count: Callable[[Window], int | None] | None = None,
    *,
    max_records: int = DEFAULT_MAX_RECORDS,
    max_duration: timedelta | None = timedelta(days=1),
    max_partitions: int = DEFAULT_MAX_PARTITIONS,
) -> list[tuple[Window, int | None]]:
    """Adjacent (partition, records or None) covering `window` exactly, in time order.

    The window is cut at UTC midnights (`max_duration` of a day; other durations cut evenly), then
    any part whose `count` exceeds `max_records` is halved until it fits (or is narrower than the
    paging engine's smallest split), then neighbours are merged back while the merge still fits
    both limits, so a sparse month is not a thousand tiny tasks. Without `count` (vendors that
    report no totals) the parts are time slices only.
    """
    if max_records < 1:
        raise ValueError(f"max_records must be at least 1, got {max_records}")
    if max_duration is not None and max_duration <= timedelta(0):
        raise ValueError(f"max_duration must be positive, got {max_duration}")
    if max_duration is None:
        slices = [window]
    elif max_duration == timedelta(days=1):
        slices = list(daily_windows(window))
    else:
        slices = window.split(max(1, -(-window.duration // max_duration)))
    fitted: list[tuple[Window, int | None]] = []
    for piece in slices:
        pending = [piece]
        while pending:
            part = pending.pop()
            records = count(part) if count is not None else None
            if records is not None and records > max_records and part.duration > MIN_SPLIT:
                first, second = part.halves()
                pending.extend((second, first))
                continue
            fitted.append((part, records))
            if len(fitted) > max_partitions:
                raise ValueError(
                    f"the interval {window.as_dict()} needs more than {max_partitions} partitions of at "
                    f"most {max_records:,} records; raise max_records or max_partitions"
                )
    return _merged(fitted, max_records, max_duration)


def _merged(
    parts: list[tuple[Window, int | None]], max_records: int, max_duration: timedelta | None
) -> list[tuple[Window, int | None]]:
    merged: list[tuple[Window, int | None]] = []
    for part, records in parts:
        if merged:
            last, last_records = merged[-1]
            if last_records is not None and records is not None:
                joined = Window(last.start, part.end)
                total = last_records + records
                if total <= max_records and (max_duration is None or joined.duration <= max_duration):
                    merged[-1] = (joined, total)
                    continue
        merged.append((part, records))
    return merged


def as_expand_kwargs(parts: list[tuple[Window, int | None]]) -> list[dict[str, dict[str, str]]]:
    """The plan as `.expand_kwargs()` input for `FulfillmentExtractOperator`: one `window=` each."""
    return [{"window": part.as_dict()} for part, _ in parts]


def pool_name(conn_id: str) -> str:
    """The Airflow pool that bounds one vendor connection's concurrent tasks: `fulfillment_<conn_id>`."""
    return "fulfillment_" + re.sub(r"[^A-Za-z0-9_.-]", "_", conn_id)
