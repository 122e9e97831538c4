"""rules.alerts: opened once, reminders at the interval, resolved once, thresholds, the digest."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_fulfillment.rules.alerts import AlertPolicy, digest, due_notifications, message
from airflow_provider_fulfillment.rules.types import AlertRow, FindingRow, Notification, RunRef

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def row(record_id="1", kind="late_order", *, opened=T0, since=None, resolved=None, severity="warning"):
    return FindingRow(
        vendor="dropstream",
        kind=kind,
        record_id=record_id,
        account="",
        resource="order",
        severity=severity,
        opened_at=opened,
        last_seen_at=resolved or opened,
        resolved_at=resolved,
        since=since,
        details={"summary": f"order {record_id} is late"},
        opened_by=RunRef(),
        resolved_by=RunRef(),
    )


def sent(notifications: list[Notification], at: datetime) -> list[AlertRow]:
    """What the ledger would hold after sending them at `at`."""
    return [
        AlertRow(n.vendor, n.kind, n.record_id, n.event, n.episode, at, n.severity, message(n), RunRef())
        for n in notifications
    ]


def events(notifications):
    return [(n.record_id, n.event) for n in notifications]


def test_a_lifecycle_over_days_never_sends_the_same_twice():
    policy = AlertPolicy(reminder_every=DAY)
    history: list[AlertRow] = []
    open_row = row(since=T0 - DAY)

    def step(findings, now):
        due = due_notifications(findings, history, now=now, policy=policy)
        history.extend(sent(due, now))
        return events(due)

    assert step([open_row], T0) == [("1", "opened")]
    assert step([open_row], T0) == []  # the same run again: nothing
    assert step([open_row], T0 + timedelta(hours=23)) == []  # before the interval
    assert step([open_row], T0 + DAY) == [("1", "reminder")]
    assert step([open_row], T0 + DAY + timedelta(hours=1)) == []
    assert step([open_row], T0 + 2 * DAY) == [("1", "reminder")]
    closed = replace(open_row, resolved_at=T0 + 2 * DAY + timedelta(hours=3))
    assert step([closed], T0 + 3 * DAY) == [("1", "resolved")]
    assert step([closed], T0 + 4 * DAY) == []
    # the cause returns: a new episode, notified afresh
    reopened = row(opened=T0 + 5 * DAY)
    assert step([reopened], T0 + 5 * DAY) == [("1", "opened")]
    assert [(a.event, a.episode) for a in history] == [
        ("opened", T0),
        ("reminder", T0),
        ("reminder", T0),
        ("resolved", T0),
        ("opened", T0 + 5 * DAY),
    ]


def test_no_reminders_when_disabled_and_no_resolved_without_opened():
    policy = AlertPolicy(reminder_every=None, min_age={"late_order": timedelta(hours=6)})
    young = row(since=T0)
    assert due_notifications([young], [], now=T0 + timedelta(hours=5), policy=policy) == []
    # resolved before it was ever notified: the reader hears nothing about it
    gone = replace(young, resolved_at=T0 + timedelta(hours=5))
    assert due_notifications([gone], [], now=T0 + timedelta(hours=7), policy=policy) == []
    (opened,) = due_notifications([young], [], now=T0 + timedelta(hours=6), policy=policy)
    history = sent([opened], T0 + timedelta(hours=6))
    assert due_notifications([young], history, now=T0 + 30 * DAY, policy=policy) == []


def test_severity_floor_escalation_and_wildcards():
    policy = AlertPolicy(min_severity="warning", escalate_after={"*": 3 * DAY})
    info = row("i", severity="info", since=T0)
    warn = row("w", since=T0)
    old = row("o", since=T0 - 4 * DAY)
    due = due_notifications([info, warn, old], [], now=T0 + timedelta(hours=1), policy=policy)
    assert [(n.record_id, n.severity) for n in due] == [("o", "critical"), ("w", "warning")]


def test_notification_details_and_messages():
    (opened,) = due_notifications([row(since=T0 - 2 * DAY)], [], now=T0 + timedelta(hours=4))
    assert opened.episode == T0
    assert opened.details == {
        "summary": "order 1 is late",
        "account": "",
        "resource": "order",
        "since": "2025-12-30T00:00:00+00:00",
        "opened_at": "2026-01-01T00:00:00+00:00",
        "resolved_at": None,
        "age_seconds": 2 * 86400 + 4 * 3600,
    }
    assert message(opened) == "[opened] [warning] dropstream: order 1 is late (for 2d 4h)"
    closed = replace(row(since=T0 - 2 * DAY), resolved_at=T0 + DAY)
    (resolved,) = due_notifications([closed], sent([opened], T0), now=T0 + 2 * DAY)
    assert message(resolved) == "[resolved] dropstream late_order 1 after 3d"


def test_digest_counts_and_the_oldest_few():
    findings = [row(str(n), since=T0 - timedelta(hours=n)) for n in range(1, 8)]
    findings.append(row("E", kind="errored_order", since=T0, severity="critical"))
    due = due_notifications(findings, [], now=T0)
    assert digest(due, oldest=3) == (
        "Fulfillment alerts: 8 opened (1 critical)\n"
        "- opened dropstream errored_order: 1; oldest: E (0s)\n"
        "- opened dropstream late_order: 7; oldest: 7 (7h), 6 (6h), 5 (5h) and 4 more"
    )
    assert digest([]) == "Fulfillment alerts: nothing new."


def test_bad_arguments():
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        due_notifications([], [], now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="reminder_every must be positive or None"):
        AlertPolicy(reminder_every=timedelta(0))
    with pytest.raises(ValueError, match="min_severity must be one of info, warning, critical"):
        AlertPolicy(min_severity="loud")  # type: ignore[arg-type]
