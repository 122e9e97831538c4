"""The alert lifecycle: which notifications are due, given the findings and the alerts already sent.

Pure (no Airflow, no I/O): the alert operator reads findings and past alerts from the ledger,
calls `due_notifications`, sends one digest and records what it sent. Per finding episode (a
finding that resolves and reopens is a new episode, keyed by its `opened_at`):

- `opened` once, as soon as the finding passes the thresholds (`min_age`, `min_severity`);
- `reminder` every `reminder_every` while it stays open (counted from the last opened/reminder);
- `resolved` once, when it resolves, only if its `opened` was sent (a reader who was never told
  something opened need not hear that it closed).

Run twice with the same inputs and the second run finds nothing due: never the same twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_fulfillment.rules._format import duration
from airflow_provider_fulfillment.rules.types import (
    AlertRow,
    FindingRow,
    Notification,
    Severity,
)

_EVENTS = ("opened", "reminder", "resolved")
SEVERITY_RANK: Mapping[str, int] = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class AlertPolicy:
    """Thresholds and intervals of the lifecycle.

    :param reminder_every: how often an open finding is notified again; None: never.
    :param min_age: per kind (or "*" for every kind), how long a cause must hold (from `since`,
        else `opened_at`) before the finding is notified at all; quiets records that only just
        entered a state.
    :param min_severity: findings below it are never notified.
    :param escalate_after: per kind (or "*"), an open finding older than this is `critical`.
    """

    reminder_every: timedelta | None = timedelta(days=1)
    min_age: Mapping[str, timedelta] = field(default_factory=dict)
    min_severity: Severity = "info"
    escalate_after: Mapping[str, timedelta] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.reminder_every is not None and self.reminder_every <= timedelta(0):
            raise ValueError(f"reminder_every must be positive or None, got {self.reminder_every!r}")
        if self.min_severity not in SEVERITY_RANK:
            raise ValueError(
                f"min_severity must be one of {', '.join(SEVERITY_RANK)}, got {self.min_severity!r}"
            )

    def _for(self, table: Mapping[str, timedelta], kind: str) -> timedelta | None:
        return table.get(kind, table.get("*"))

    def severity(self, row: FindingRow, now: datetime) -> Severity:
        limit = self._for(self.escalate_after, row.kind)
        if row.is_open and limit is not None and age(row, now) >= limit:
            return "critical"
        return row.severity

    def notifiable(self, row: FindingRow, now: datetime) -> bool:
        if SEVERITY_RANK[self.severity(row, now)] < SEVERITY_RANK[self.min_severity]:
            return False
        limit = self._for(self.min_age, row.kind)
        return limit is None or age(row, now) >= limit


def age(row: FindingRow, now: datetime) -> timedelta:
    """How long the finding's cause has held (since `since`, else since it opened)."""
    return now - (row.since or row.opened_at)


def due_notifications(
    findings: Iterable[FindingRow],
    sent: Mapping[tuple[str, str, str], Sequence[AlertRow]] | Iterable[AlertRow],
    *,
    now: datetime,
    policy: AlertPolicy | None = None,
) -> list[Notification]:
    """The notifications due at `now`, oldest cause first.

    `findings`: open findings and the recently resolved ones; `sent`: the alerts already recorded
    for them (as `Ledger.alerts_for` returns them, or a flat list).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    policy = policy or AlertPolicy()
    by_key = _group(sent)
    due: list[tuple[datetime, Notification]] = []
    for row in findings:
        episode = row.opened_at
        history = [alert for alert in by_key.get(row.key, ()) if alert.episode == episode]
        events = {alert.event for alert in history}
        event: str | None = None
        if row.is_open:
            if "opened" not in events:
                event = "opened" if policy.notifiable(row, now) else None
            elif policy.reminder_every is not None:
                last = max(alert.sent_at for alert in history if alert.event in ("opened", "reminder"))
                event = "reminder" if now - last >= policy.reminder_every else None
        elif "opened" in events and "resolved" not in events:
            event = "resolved"
        if event is None:
            continue
        details: dict[str, Any] = {
            **row.details,
            "account": row.account,
            "resource": row.resource,
            "since": None if row.since is None else row.since.isoformat(),
            "opened_at": row.opened_at.isoformat(),
            "resolved_at": None if row.resolved_at is None else row.resolved_at.isoformat(),
            "age_seconds": int(age(row, row.resolved_at or now).total_seconds()),
        }
        notification = Notification(
            vendor=row.vendor,
            kind=row.kind,
            record_id=row.record_id,
            event=event,  # type: ignore[arg-type]
            episode=episode,
            severity=policy.severity(row, now),
            details=details,
        )
        due.append((row.since or row.opened_at, notification))
    due.sort(key=lambda pair: (pair[0], pair[1].finding_key))
    return [notification for _, notification in due]


def _group(
    sent: Mapping[tuple[str, str, str], Sequence[AlertRow]] | Iterable[AlertRow],
) -> Mapping[tuple[str, str, str], Sequence[AlertRow]]:
    if isinstance(sent, Mapping):
        return sent
    grouped: dict[tuple[str, str, str], list[AlertRow]] = {}
    for alert in sent:
        grouped.setdefault((alert.vendor, alert.kind, alert.record_id), []).append(alert)
    return grouped


def message(notification: Notification) -> str:
    """One line about one notification (what `fulfillment_alerts.message` holds)."""
    details = notification.details
    summary = details.get("summary") or f"{notification.kind} {notification.record_id}"
    age_text = duration(timedelta(seconds=details.get("age_seconds") or 0))
    if notification.event == "resolved":
        return (
            f"[resolved] {notification.vendor} {notification.kind} {notification.record_id} after {age_text}"
        )
    return (
        f"[{notification.event}] [{notification.severity}] {notification.vendor}: {summary} (for {age_text})"
    )


def digest(
    notifications: Sequence[Notification], *, oldest: int = 5, title: str = "Fulfillment alerts"
) -> str:
    """Counts per event and (vendor, kind), plus the oldest few of each: not a wall of ids.

    `notifications` as `due_notifications` returns them (oldest cause first).
    """
    if not notifications:
        return f"{title}: nothing new."
    counts = {event: sum(n.event == event for n in notifications) for event in _EVENTS}
    head = ", ".join(f"{n} {event}" for event, n in counts.items() if n)
    critical = sum(n.severity == "critical" and n.event != "resolved" for n in notifications)
    lines = [f"{title}: {head}" + (f" ({critical} critical)" if critical else "")]
    groups: dict[tuple[str, str, str], list[Notification]] = {}
    for notification in notifications:
        groups.setdefault((notification.event, notification.vendor, notification.kind), []).append(
            notification
        )
    ranked = sorted(groups.items(), key=lambda item: (_EVENTS.index(item[0][0]), item[0][1], item[0][2]))
    for (event, vendor, kind), members in ranked:
        shown = ", ".join(
            f"{n.record_id} ({duration(timedelta(seconds=n.details.get('age_seconds') or 0))})"
            for n in members[:oldest]
        )
        more = f" and {len(members) - oldest} more" if len(members) > oldest else ""
        lines.append(f"- {event} {vendor} {kind}: {len(members)}; oldest: {shown}{more}")
    return "\n".join(lines)


__all__ = ["AlertPolicy", "age", "digest", "due_notifications", "message"]
