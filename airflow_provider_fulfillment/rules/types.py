"""The typed shapes the rules produce and the ledger stores: findings, their lifecycle, alerts.

Shared by the pure rules (`rules/`), the ledger (`ledger/`) and the UI, so each reads the same
names. A finding's identity is (vendor, kind, record_id), the `fulfillment_findings` key.

`record_id` names a record within its vendor: the vendor's id, prefixed with its account where
the record has one (DCL: "10501/D1", account 10501's order D1), because the public keys of state
changes, findings and alerts carry no account column and two DCL accounts may use one order
number. `record_key` builds it, `local_id` reverses it.
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

ACCOUNT_SEPARATOR = "/"


def record_key(account: str, record_id: str) -> str:
    """The ledger's `record_id` of a record: "account/id" where it has an account, else its id.

    An account holding the separator is refused, so the form stays reversible (DCL account
    numbers are digits, "10501"; an order number may hold anything: the first "/" splits).
    """
    if not account:
        return record_id
    if ACCOUNT_SEPARATOR in account:
        raise ValueError(f"an account must not contain {ACCOUNT_SEPARATOR!r}, got {account!r}")
    return f"{account}{ACCOUNT_SEPARATOR}{record_id}"


def local_id(record_id: str, account: str) -> str:
    """The vendor's own id of a ledger `record_id` (the reverse of `record_key`)."""
    prefix = f"{account}{ACCOUNT_SEPARATOR}"
    return record_id[len(prefix) :] if account and record_id.startswith(prefix) else record_id


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
