"""SLA figures from observed state changes and open findings (pure: no Airflow, no I/O).

- time to ship: per vendor, from an order's creation (else its first observed state) to the
  first change into `shipped`/`delivered`;
- time in error: per vendor and resource, each stay in `error` from entering it to the next change
  (a stay still going counts up to `now`, and is marked open);
- open findings by age: per vendor and kind, in age buckets (from `since`, else `opened_at`).

Each figure is a row of the same shape (`SlaRow`), so the task log, XCom and the BI table agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_fulfillment.rules.types import FindingRow

AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("<1d", timedelta(days=1)),
    ("1-3d", timedelta(days=3)),
    ("3-7d", timedelta(days=7)),
    (">7d", timedelta.max),
)
_SHIPPED = frozenset({"shipped", "delivered"})


@dataclass(frozen=True)
class Change:
    """What SLA reads of a `fulfillment_state_changes` row (the ledger's rows have these attributes)."""

    vendor: str
    resource: str
    record_id: str
    status: str
    changed_at: datetime
    # When it was observed; a record first seen already shipped whose change carries no vendor
    # time (changed_at == observed_at) says nothing about when it shipped.
    observed_at: datetime | None = None


@dataclass(frozen=True)
class SlaRow:
    """One figure: `metric` over `count` records of `vendor` (`kind`: resource or finding kind)."""

    vendor: str
    metric: str  # time_to_ship | time_in_error | open_findings
    kind: str  # order | shipment | a finding kind
    bucket: str  # "all", or an age bucket for open_findings
    count: int
    open_count: int  # time_in_error: stays still going; open_findings: = count
    p50_seconds: int | None
    p90_seconds: int | None
    max_seconds: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _quantile(sorted_values: Sequence[float], q: float) -> int | None:
    if not sorted_values:
        return None
    position = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return int(sorted_values[position])


def _row(vendor: str, metric: str, kind: str, bucket: str, values: list[float], open_count: int) -> SlaRow:
    values.sort()
    return SlaRow(
        vendor=vendor,
        metric=metric,
        kind=kind,
        bucket=bucket,
        count=len(values),
        open_count=open_count,
        p50_seconds=_quantile(values, 0.5),
        p90_seconds=_quantile(values, 0.9),
        max_seconds=None if not values else int(values[-1]),
    )


def durations(
    changes: Iterable[Change],
    *,
    now: datetime,
    created_at: Mapping[tuple[str, str], datetime] | None = None,
) -> dict[tuple[str, str, str], tuple[list[float], int]]:
    """(vendor, metric, resource) -> (every duration in seconds, how many are still going).

    The per-record figures behind `sla()`'s summaries, for charts that show the distribution.
    """
    created_at = created_at or {}
    history: dict[tuple[str, str, str], list[tuple[datetime, str]]] = {}
    untimed_first: set[tuple[str, str, str]] = set()  # first seen shipped, at an observation time
    for change in changes:
        key = (change.vendor, change.resource, change.record_id)
        history.setdefault(key, []).append((change.changed_at, change.status))
        if change.status in _SHIPPED and getattr(change, "observed_at", None) == change.changed_at:
            untimed_first.add(key)
    result: dict[tuple[str, str, str], tuple[list[float], int]] = {}
    for (vendor, resource, record_id), steps in history.items():
        steps.sort()
        if resource == "order" and not (
            steps[0][1] in _SHIPPED and (vendor, resource, record_id) in untimed_first
        ):
            first_shipped = next((when for when, status in steps if status in _SHIPPED), None)
            start = created_at.get((vendor, record_id))
            if start is None and steps[0][1] not in _SHIPPED:
                start = steps[0][0]
            if first_shipped is not None and start is not None and first_shipped >= start:
                result.setdefault((vendor, "time_to_ship", "order"), ([], 0))[0].append(
                    (first_shipped - start).total_seconds()
                )
        for position, (when, status) in enumerate(steps):
            if status != "error" or (position and steps[position - 1][1] == "error"):
                continue
            following = next((later for later, s in steps[position + 1 :] if s != "error"), None)
            stay = ((following or now) - when).total_seconds()
            if stay < 0:  # observed after `now` (clocks that disagree): not measurable
                continue
            values, still = result.get((vendor, "time_in_error", resource), ([], 0))
            values.append(stay)
            result[(vendor, "time_in_error", resource)] = (values, still + (following is None))
    return result


def sla(
    changes: Iterable[Change],
    findings: Iterable[FindingRow] = (),
    *,
    now: datetime,
    created_at: Mapping[tuple[str, str], datetime] | None = None,
) -> list[SlaRow]:
    """Every SLA row, sorted by (vendor, metric, kind, bucket).

    :param created_at: (vendor, record_id) -> creation time, where known; else time to ship
        counts from the order's first observed state change.
    """
    rows = [
        _row(vendor, metric, kind, "all", values, still)
        for (vendor, metric, kind), (values, still) in durations(
            changes, now=now, created_at=created_at
        ).items()
    ]
    ages: dict[tuple[str, str, str], list[float]] = {}
    for finding in findings:
        if not finding.is_open:
            continue
        seconds = (now - (finding.since or finding.opened_at)).total_seconds()
        bucket = next(name for name, limit in AGE_BUCKETS if timedelta(seconds=seconds) < limit)
        ages.setdefault((finding.vendor, finding.kind, bucket), []).append(seconds)
    rows += [
        _row(vendor, "open_findings", kind, bucket, values, len(values))
        for (vendor, kind, bucket), values in ages.items()
    ]
    order = {name: n for n, (name, _) in enumerate(AGE_BUCKETS)}
    rows.sort(key=lambda row: (row.vendor, row.metric, row.kind, order.get(row.bucket, -1)))
    return rows


def _hours(seconds: int | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f}h"


def table(rows: Sequence[SlaRow]) -> str:
    """A fixed-width text table of the rows (for the task log and the demo)."""
    header = ("vendor", "metric", "kind", "bucket", "count", "open", "p50", "p90", "max")
    body = [
        (
            r.vendor,
            r.metric,
            r.kind,
            r.bucket,
            str(r.count),
            str(r.open_count),
            _hours(r.p50_seconds),
            _hours(r.p90_seconds),
            _hours(r.max_seconds),
        )
        for r in rows
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (header, *body)
    )


__all__ = ["AGE_BUCKETS", "Change", "SlaRow", "durations", "sla", "table"]
