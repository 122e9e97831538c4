"""The typed shapes the rules produce and the ledger stores: findings, their lifecycle, alerts.

Shared by the pure rules (`rules/`), the ledger (`ledger/`) and the UI, so each reads the same
names. A finding's identity is (vendor, kind, record_id), the `fulfillment_findings` key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]
AlertEvent = Literal["opened", "reminder", "resolved"]
ALERT_EVENTS: tuple[AlertEvent, ...] = ("opened", "reminder", "resolved")

# What reconciliation and the errored-state check can find; a finding's `kind`.
FindingKind = Literal[
    "late_order",  # past its shipping deadline with no shipment
    "orphan_shipment",  # a shipment whose order is unknown
    "item_mismatch",  # items shipped that were not ordered, or in other quantities
    "errored_order",  # an order in an errored state
    "errored_shipment",  # a shipment in an errored state
    "shipped_without_shipment",  # an order that says it shipped, with no shipment
]
FINDING_KINDS: tuple[FindingKind, ...] = (
    "late_order",
    "orphan_shipment",
    "item_mismatch",
    "errored_order",
    "errored_shipment",
    "shipped_without_shipment",
)


@dataclass(frozen=True)
class RunRef:
    """Which Airflow run observed something, so the UI can link back to it."""

    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None


@dataclass(frozen=True)
class Finding:
    """One thing wrong now, as a rule sees it (no lifecycle yet)."""

    vendor: str
    kind: FindingKind
    record_id: str
    account: str = ""
    resource: Literal["order", "shipment"] = "order"
    severity: Severity = "warning"
    # Since when the cause holds, where the rule knows (a deadline passed, an error state entered).
    since: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.vendor, self.kind, self.record_id)


@dataclass(frozen=True)
class FindingRow:
    """A finding as the ledger holds it: with its lifecycle."""

    vendor: str
    kind: FindingKind
    record_id: str
    account: str
    resource: str
    severity: Severity
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    since: datetime | None
    details: dict[str, Any]
    opened_by: RunRef
    resolved_by: RunRef

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.vendor, self.kind, self.record_id)

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True)
class Notification:
    """One alert to send (and to record in `fulfillment_alerts`, so it is never sent twice)."""

    vendor: str
    kind: FindingKind
    record_id: str
    event: AlertEvent
    # The opened_at of the finding episode it belongs to: a finding that resolves and reopens
    # is a new episode with its own "opened".
    episode: datetime
    severity: Severity = "warning"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def finding_key(self) -> tuple[str, str, str]:
        return (self.vendor, self.kind, self.record_id)


@dataclass(frozen=True)
class AlertRow:
    vendor: str
    kind: FindingKind
    record_id: str
    event: AlertEvent
    episode: datetime
    sent_at: datetime
    severity: Severity
    message: str
    sent_by: RunRef
