"""What the Fulfillment page and the run report show, computed from ledger rows (pure: no Airflow, no I/O).

The page and the HTML report read the same `Overview`, so a number on one is the number on the other.
Ages are measured against `as_of`: the ledger's latest observation (capped at now), so a ledger
that was last refreshed yesterday shows ages as of its last run, not ages that grow while nobody looks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from airflow_provider_fulfillment.rules.sla import AGE_BUCKETS, Change, _quantile, durations
from airflow_provider_fulfillment.rules.types import FINDING_KINDS, AlertRow, FindingRow, RunRef

# Buckets of the duration histograms (time to ship, time in error); the last one is open-ended.
DURATION_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("< 1 h", timedelta(hours=1)),
    ("1–6 h", timedelta(hours=6)),
    ("6–24 h", timedelta(days=1)),
    ("1–2 d", timedelta(days=2)),
    ("2–4 d", timedelta(days=4)),
    ("4–7 d", timedelta(days=7)),
    ("≥ 7 d", timedelta.max),
)


@dataclass(frozen=True)
class ErroredRecord:
    vendor: str
    resource: str
    record_id: str
    raw_status: str
    since: datetime | None

    def errored_for(self, as_of: datetime) -> timedelta | None:
        return as_of - self.since if self.since is not None else None


@dataclass(frozen=True)
class Distribution:
    """Durations in seconds, summarized and bucketed for a histogram."""

    seconds: tuple[float, ...]

    @property
    def count(self) -> int:
        return len(self.seconds)

    @property
    def median(self) -> int | None:
        return _quantile(sorted(self.seconds), 0.5)  # the same quantiles as the SLA rows

    @property
    def p90(self) -> int | None:
        return _quantile(sorted(self.seconds), 0.9)

    def histogram(self) -> list[tuple[str, int]]:
        counts = dict.fromkeys((label for label, _ in DURATION_BUCKETS), 0)
        for seconds in self.seconds:
            counts[bucket_of(seconds, DURATION_BUCKETS)] += 1
        return list(counts.items())


@dataclass(frozen=True)
class VendorOverview:
    vendor: str
    as_of: datetime
    open_findings: list[FindingRow]  # oldest first
    resolved_findings: list[FindingRow]  # most recently resolved first
    errored: list[ErroredRecord]  # errored the longest first
    alerts: list[AlertRow]  # most recent first
    time_to_ship: Distribution
    time_in_error: Distribution
    open_over_time: list[tuple[datetime, int]]

    def open_by_kind_and_age(self) -> dict[str, dict[str, int]]:
        """{kind: {age bucket: count}} for every kind with an open finding, in FINDING_KINDS order."""
        table: dict[str, dict[str, int]] = {}
        for kind in (*FINDING_KINDS, *sorted({f.kind for f in self.open_findings} - set(FINDING_KINDS))):
            ages = [finding_age(f, self.as_of) for f in self.open_findings if f.kind == kind]
            if ages:
                table[kind] = {label: 0 for label, _ in AGE_BUCKETS}
                for age in ages:
                    table[kind][bucket_of(age.total_seconds(), AGE_BUCKETS)] += 1
        return table

    def alert_counts(self) -> dict[str, int]:
        counts = {"opened": 0, "reminder": 0, "resolved": 0}
        for alert in self.alerts:
            counts[alert.event] = counts.get(alert.event, 0) + 1
        return counts


@dataclass(frozen=True)
class Overview:
    as_of: datetime
    vendors: list[VendorOverview]
    run: RunRef | None = None  # the run the page is filtered to, if any
    days: int = 14
    notes: list[str] = field(default_factory=list)

    def total_open(self) -> int:
        return sum(len(v.open_findings) for v in self.vendors)


def finding_age(finding: FindingRow, as_of: datetime) -> timedelta:
    """How long the finding's cause has held: since `since` where the rule knows it, else since opened."""
    return max(timedelta(0), as_of - (finding.since or finding.opened_at))


def bucket_of(seconds: float, buckets: Sequence[tuple[str, timedelta]]) -> str:
    span = timedelta(seconds=seconds)
    return next(label for label, bound in buckets if span < bound)


def latest_observation(
    findings: Iterable[FindingRow], alerts: Iterable[AlertRow], changes: Iterable[Change], now: datetime
) -> datetime:
    """When the ledger last looked, capped at `now`: the latest reconciliation (its findings' last
    sighting or resolution) where there is one, else the latest alert, else the latest state change.

    Reconciliation measures lateness at its own `as_of`, so ages on the page agree with it.
    """
    for moments in (
        [f.resolved_at or f.last_seen_at for f in findings],
        [a.sent_at for a in alerts],
        [c.changed_at for c in changes],
    ):
        if moments:
            return min(max(moments), now)
    return now


def open_over_time(findings: Iterable[FindingRow], as_of: datetime, days: int) -> list[tuple[datetime, int]]:
    """Findings open at each of `days + 1` daily points ending at `as_of` (each episode as the ledger keeps it)."""
    rows = list(findings)
    points = [as_of - timedelta(days=days - i) for i in range(days + 1)]
    return [
        (
            point,
            sum(1 for f in rows if f.opened_at <= point and (f.resolved_at is None or f.resolved_at > point)),
        )
        for point in points
    ]


def touched_by(row: FindingRow | AlertRow, run: RunRef) -> bool:
    """Whether the finding or alert was opened, resolved or sent by `run` (None fields match anything)."""
    refs = [row.opened_by, row.resolved_by] if isinstance(row, FindingRow) else [row.sent_by]
    return any(
        ref.dag_id is not None
        and (run.dag_id is None or ref.dag_id == run.dag_id)
        and (run.run_id is None or ref.run_id == run.run_id)
        and (run.task_id is None or ref.task_id == run.task_id)
        for ref in refs
    )


def build_overview(
    *,
    findings: Iterable[FindingRow],
    alerts: Iterable[AlertRow],
    changes: Iterable[Change],
    errored: Iterable[ErroredRecord],
    now: datetime,
    vendors: Sequence[str] | None = None,
    run: RunRef | None = None,
    days: int = 14,
    alert_limit: int = 50,
    as_of: datetime | None = None,
) -> Overview:
    """One `VendorOverview` per vendor seen in the rows (or per vendor asked for), in name order.

    `findings` are all findings, open and resolved (history makes the open-over-time chart);
    `run` narrows findings and alerts to those one run opened, resolved or sent.
    """
    findings, alerts, changes, errored = list(findings), list(alerts), list(changes), list(errored)
    as_of = as_of or latest_observation(findings, alerts, changes, now)
    names = sorted(set(vendors) if vendors else {r.vendor for r in (*findings, *alerts, *changes, *errored)})
    by_vendor: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for kind, rows in (
        ("findings", findings),
        ("alerts", alerts),
        ("changes", changes),
        ("errored", errored),
    ):
        for row in rows:
            by_vendor[row.vendor][kind].append(row)
    figures = durations(changes, now=as_of)
    result = []
    for name in names:
        rows = by_vendor[name]
        shown_findings = [f for f in rows["findings"] if run is None or touched_by(f, run)]
        shown_alerts = [a for a in rows["alerts"] if run is None or touched_by(a, run)]
        shown_alerts.sort(key=lambda a: (a.sent_at, a.event), reverse=True)
        open_findings = sorted(
            (f for f in shown_findings if f.is_open),
            key=lambda f: (f.since or f.opened_at, f.kind, f.record_id),
        )
        resolved = sorted(
            (f for f in shown_findings if not f.is_open), key=lambda f: f.resolved_at, reverse=True
        )
        result.append(
            VendorOverview(
                vendor=name,
                as_of=as_of,
                open_findings=open_findings,
                resolved_findings=resolved,
                errored=sorted(rows["errored"], key=lambda r: (r.since is None, r.since, r.record_id)),
                alerts=shown_alerts[:alert_limit],
                time_to_ship=Distribution(tuple(figures.get((name, "time_to_ship", "order"), ([], 0))[0])),
                time_in_error=Distribution(
                    tuple(
                        seconds
                        for resource in ("order", "shipment")
                        for seconds in figures.get((name, "time_in_error", resource), ([], 0))[0]
                    )
                ),
                open_over_time=open_over_time(rows["findings"], as_of, days),
            )
        )
    return Overview(as_of=as_of, vendors=result, run=run, days=days)
