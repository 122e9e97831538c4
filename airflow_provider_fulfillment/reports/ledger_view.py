"""Read an `Overview` from the ledger: what the Fulfillment page and the run report both show."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_fulfillment.reports.overview import (
    ErroredRecord,
    Overview,
    build_overview,
    latest_observation,
)
from airflow_provider_fulfillment.rules.types import RunRef, record_key

# State changes read for the SLA charts: this far back from the ledger's latest observation.
SLA_LOOKBACK = timedelta(days=30)


def errored_records(ledger: Any, vendor: str | None, changes: Iterable[Any] = ()) -> list[ErroredRecord]:
    """Records in `error` now, by their ledger record_id ("10501/D1" where they have an account);
    since their `status_since`, else the state change into error the ledger observed (DCL gives no
    status time)."""
    entered = {
        (c.vendor, c.resource, c.record_id): c.changed_at
        for c in sorted(changes, key=lambda c: c.changed_at)
        if c.status == "error"
    }
    errored = []
    for resource in ("order", "shipment"):
        for record in ledger.iter_records(resource, vendor=vendor, statuses=["error"]):
            record_id = record_key(record.account, record.id)
            since = record.status_since or entered.get((record.vendor, resource, record_id))
            errored.append(ErroredRecord(record.vendor, resource, record_id, record.raw_status, since))
    return errored


def load_overview(
    ledger: Any, *, now: datetime, vendor: str | None = None, run: RunRef | None = None, days: int = 14
) -> Overview:
    """Every finding (open and resolved: history makes the open-over-time chart), recent alerts,
    the state changes of the last `SLA_LOOKBACK` and the errored records, as of the ledger's
    latest observation (capped at `now`)."""
    findings = ledger.findings(vendor=vendor, open_only=False)
    alerts = ledger.alerts(vendor=vendor, limit=1000)
    since = latest_observation(findings, alerts, [], now) - SLA_LOOKBACK
    changes = list(ledger.state_changes(vendor=vendor, since=since))
    return build_overview(
        findings=findings,
        alerts=alerts,
        changes=changes,
        errored=errored_records(ledger, vendor, changes),
        now=now,
        vendors=[vendor] if vendor else None,
        run=run,
        days=days,
        as_of=latest_observation(findings, alerts, changes, now),
    )
