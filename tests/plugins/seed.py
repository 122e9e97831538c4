"""A ledger with exactly known findings, alerts and state changes, written through the Ledger API.

Three daily runs (T0, T1, T2) of the example reconciliation DAG (a real DAG, so the browser test
can follow a link to its run), over DropStream and DCL:

| finding | opened | resolved | since | age at T2 (bucket) |
|---|---|---|---|---|
| dropstream late_order DS-1 | T0 run 1 | — | T0 - 2 d | 4 d (3-7d) |
| dropstream orphan_shipment DS-S9 | T0 run 1 | T1 run 2 | — | — |
| dropstream errored_order DS-2 | T1 run 2 | — | T1 - 6 h | 30 h (1-3d) |
| dcl item_mismatch DCL-7 | T2 run 3 | — | — | 0 (<1d) |
| dcl errored_shipment DCL-S3 | T2 run 3 | — | T2 - 2 h | 2 h (<1d) |

Alerts: dropstream opened 3, reminder 1, resolved 1; dcl opened 2. Records: DS-10 pending at
T0 - 12 h, shipped at T1 - 12 h (time to ship 1 d); DS-2 processing, then error from T1 - 6 h
(errored 30 h at T2); DCL-S3 (a DCL shipment) in error from T2 - 2 h.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_fulfillment.models.common import Order, Shipment
from airflow_provider_fulfillment.rules.types import FINDING_KINDS, Finding, Notification, RunRef

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
T2 = T0 + timedelta(days=2)
DAG_ID = "example_fulfillment_orders_to_shipments"
RUNS = [RunRef(DAG_ID, f"manual__{t.isoformat()}", "reconcile") for t in (T0, T1, T2)]
ALERT_RUNS = [RunRef(DAG_ID, run.run_id, "alert_errored_orders") for run in RUNS]
VENDORS = ["dcl", "dropstream"]

LATE = Finding("dropstream", "late_order", "DS-1", since=T0 - timedelta(days=2), details={"detail": "late"})
ORPHAN = Finding("dropstream", "orphan_shipment", "DS-S9", resource="shipment")
ERRORED = Finding("dropstream", "errored_order", "DS-2", severity="critical", since=T1 - timedelta(hours=6))
# DCL records are named "account/id" in findings, alerts and the errored list (rules.types.record_key).
MISMATCH = Finding("dcl", "item_mismatch", "A1/DCL-7", account="A1")
DCL_ERRORED = Finding(
    "dcl", "errored_shipment", "A1/DCL-S3", account="A1", resource="shipment", since=T2 - timedelta(hours=2)
)

# What the page must show, as {vendor: {kind: [count per age bucket <1d, 1-3d, 3-7d, >7d]}}.
EXPECTED_OPEN = {
    "dropstream": {"late_order": [0, 0, 1, 0], "errored_order": [0, 1, 0, 0]},
    "dcl": {"item_mismatch": [1, 0, 0, 0], "errored_shipment": [1, 0, 0, 0]},
}
EXPECTED_ALERTS = {
    "dropstream": {"opened": 3, "reminder": 1, "resolved": 1},
    "dcl": {"opened": 2, "reminder": 0, "resolved": 0},
}
EXPECTED_ERRORED = {"dropstream": ["DS-2"], "dcl": ["A1/DCL-S3"]}


def _order(order_id: str, status: str, raw: str, since: datetime) -> Order:
    return Order(vendor="dropstream", id=order_id, status=status, raw_status=raw, status_since=since)


def _notify(finding: Finding, event: str, episode: datetime) -> Notification:
    return Notification(finding.vendor, finding.kind, finding.record_id, event, episode, finding.severity)


def seed(ledger: Any) -> None:
    from airflow_provider_fulfillment.ledger import LedgerRow

    def merge(resource: str, records: list[Any], run: RunRef, at: datetime, account: str = "") -> None:
        rows = [LedgerRow(record, record.model_dump_json(), account) for record in records]
        ledger.merge(resource, rows, conn_id=f"{records[0].vendor}_default", run=run, observed_at=at)

    merge(
        "order",
        [
            _order("DS-10", "pending", "pending", T0 - timedelta(hours=12)),
            _order("DS-2", "processing", "processing", T0 - timedelta(days=1)),
        ],
        RUNS[0],
        T0,
    )
    merge(
        "order",
        [
            _order("DS-10", "shipped", "shipped", T1 - timedelta(hours=12)),
            _order("DS-2", "error", "exception", T1 - timedelta(hours=6)),
        ],
        RUNS[1],
        T1,
    )
    shipment = Shipment(
        vendor="dcl",
        id="DCL-S3",
        order_id="DCL-7",
        status="error",
        raw_status="exception",
        status_since=T2 - timedelta(hours=2),
    )
    merge("shipment", [shipment], RUNS[2], T2, account="A1")

    scope = {"vendors": VENDORS, "kinds": FINDING_KINDS}
    ledger.sync_findings([LATE, ORPHAN], now=T0, run=RUNS[0], **scope)
    ledger.sync_findings([LATE, ERRORED], now=T1, run=RUNS[1], **scope)
    ledger.sync_findings([LATE, ERRORED, MISMATCH, DCL_ERRORED], now=T2, run=RUNS[2], **scope)

    ledger.record_alerts(
        [_notify(LATE, "opened", T0), _notify(ORPHAN, "opened", T0)], sent_at=T0, run=ALERT_RUNS[0]
    )
    ledger.record_alerts(
        [_notify(LATE, "reminder", T0), _notify(ORPHAN, "resolved", T0), _notify(ERRORED, "opened", T1)],
        sent_at=T1,
        run=ALERT_RUNS[1],
    )
    ledger.record_alerts(
        [_notify(MISMATCH, "opened", T2), _notify(DCL_ERRORED, "opened", T2)], sent_at=T2, run=ALERT_RUNS[2]
    )
