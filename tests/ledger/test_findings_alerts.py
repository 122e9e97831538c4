"""Findings that open, stay open, resolve and reopen; alerts recorded once; watermarks. Both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow_provider_fulfillment.rules.types import Finding, Notification, RunRef

DAY1 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
DAY2, DAY3, DAY4 = (DAY1 + timedelta(days=n) for n in (1, 2, 3))
RUN1, RUN2, RUN3 = (RunRef("ledger_dag", f"run_{n}", "reconcile") for n in (1, 2, 3))
SCOPE = {"vendors": ["dropstream", "dcl"], "kinds": ["late_order", "errored_order"]}


def late(record_id: str, vendor: str = "dropstream", **details) -> Finding:
    return Finding(vendor, "late_order", record_id, since=DAY1 - timedelta(hours=1), details=details)


def keys(rows) -> list[tuple[str, str, str]]:
    return [row.key for row in rows]


def test_findings_open_stay_open_resolve_and_reopen_as_a_new_episode(ledger):
    day1 = ledger.sync_findings([late("1", hours=2), late("2")], now=DAY1, run=RUN1, **SCOPE)
    assert keys(day1.opened) == [("dropstream", "late_order", "1"), ("dropstream", "late_order", "2")]
    assert day1.still_open == [] and day1.resolved == []
    first = day1.opened[0]
    assert (first.opened_at, first.last_seen_at, first.resolved_at) == (DAY1, DAY1, None)
    assert first.details == {"hours": 2} and first.since == DAY1 - timedelta(hours=1)
    assert first.opened_by == RUN1

    day2 = ledger.sync_findings([late("1", hours=26)], now=DAY2, run=RUN2, **SCOPE)
    assert keys(day2.opened) == []
    assert keys(day2.still_open) == [("dropstream", "late_order", "1")]
    assert keys(day2.resolved) == [("dropstream", "late_order", "2")]
    (kept,) = day2.still_open
    assert (kept.opened_at, kept.last_seen_at, kept.details) == (DAY1, DAY2, {"hours": 26})
    (gone,) = day2.resolved
    assert (gone.resolved_at, gone.resolved_by) == (DAY2, RUN2)

    day3 = ledger.sync_findings([late("1"), late("2")], now=DAY3, run=RUN3, **SCOPE)
    assert keys(day3.opened) == [("dropstream", "late_order", "2")]
    (again,) = day3.opened
    assert (again.opened_at, again.resolved_at, again.resolved_by, again.opened_by) == (
        DAY3,
        None,
        RunRef(),
        RUN3,
    )

    assert keys(ledger.findings()) == [("dropstream", "late_order", "1"), ("dropstream", "late_order", "2")]
    assert ledger.counts()["fulfillment_findings"] == 2


def test_only_the_evaluated_scope_is_resolved(ledger):
    stream_errored = Finding("stream", "errored_order", "s9")
    ledger.sync_findings(
        [late("1"), stream_errored],
        now=DAY1,
        vendors=["dropstream", "stream"],
        kinds=["late_order", "errored_order"],
    )
    # A run over DropStream late orders only says nothing about Stream or about errored orders.
    delta = ledger.sync_findings([], now=DAY2, vendors=["dropstream"], kinds=["late_order"])
    assert keys(delta.resolved) == [("dropstream", "late_order", "1")]
    assert keys(ledger.findings()) == [("stream", "errored_order", "s9")]
    assert keys(ledger.findings(vendor="stream", kinds=["late_order"])) == []
    assert len(ledger.findings(open_only=False)) == 2


def test_opened_and_resolved_alerts_are_recorded_once_per_episode_reminders_many(ledger):
    episode = DAY1
    opened = Notification("dropstream", "late_order", "1", "opened", episode, severity="critical")
    first = ledger.record_alerts([opened], sent_at=DAY1, run=RUN1)
    assert [(a.event, a.sent_at, a.severity, a.sent_by) for a in first] == [
        ("opened", DAY1, "critical", RUN1)
    ]
    assert first[0].message == "opened: late_order dropstream/1"
    # A rerun of the same day, or a later run deciding the same again: not recorded twice.
    assert ledger.record_alerts([opened], sent_at=DAY1, run=RUN1) == []
    assert ledger.record_alerts([opened], sent_at=DAY2, run=RUN2) == []
    reminder = Notification("dropstream", "late_order", "1", "reminder", episode)
    assert len(ledger.record_alerts([reminder], sent_at=DAY2, run=RUN2)) == 1
    assert len(ledger.record_alerts([reminder], sent_at=DAY3, run=RUN3)) == 1
    resolved = Notification("dropstream", "late_order", "1", "resolved", episode)
    assert len(ledger.record_alerts([resolved, resolved], sent_at=DAY4, message_of=lambda n: "fixed")) == 1
    # A new episode opens again.
    assert (
        len(
            ledger.record_alerts(
                [Notification("dropstream", "late_order", "1", "opened", DAY4)], sent_at=DAY4
            )
        )
        == 1
    )

    history = ledger.alerts_for([("dropstream", "late_order", "1"), ("dcl", "late_order", "x")])
    assert [(a.event, a.episode, a.sent_at) for a in history[("dropstream", "late_order", "1")]] == [
        ("opened", DAY1, DAY1),
        ("reminder", DAY1, DAY2),
        ("reminder", DAY1, DAY3),
        ("opened", DAY4, DAY4),
        ("resolved", DAY1, DAY4),
    ]
    assert history[("dcl", "late_order", "x")] == []
    recent = ledger.alerts(since=DAY3, limit=2)
    assert [(a.event, a.sent_at) for a in recent] == [("opened", DAY4), ("resolved", DAY4)]
    assert [a.message for a in ledger.alerts(limit=100) if a.event == "resolved"] == ["fixed"]


def test_watermarks_are_stored_per_connection_and_never_move_back(ledger):
    assert ledger.get_watermark("dcl", "orders", "dcl_eu") is None
    ledger.set_watermark("dcl", "orders", "dcl_eu", DAY2, lookback=timedelta(hours=1), run=RUN1)
    ledger.set_watermark("dcl", "orders", "dcl_eu", DAY1, run=RUN2)
    assert ledger.get_watermark("dcl", "orders", "dcl_eu") == DAY2
    assert ledger.get_watermark("dcl", "orders", "dcl_us") is None
    ledger.set_watermark("dcl", "orders", "dcl_eu", DAY3, lookback=timedelta(hours=2), run=RUN3)
    assert ledger.get_watermark("dcl", "orders", "dcl_eu") == DAY3
    assert ledger._all("SELECT lookback_seconds, run_id FROM fulfillment_watermarks") == [(7200, "run_3")]


def test_two_dcl_accounts_sharing_an_order_number_are_two_findings_and_two_alerts(ledger):
    """Late "D1" in account 10501 and late "D1" in 10502: the finding and alert keys have no
    account, so their record_id carries it; each resolves on its own."""
    from airflow_provider_fulfillment.ledger import LedgerRow
    from airflow_provider_fulfillment.models.common import Order
    from airflow_provider_fulfillment.rules.alerts import due_notifications
    from airflow_provider_fulfillment.rules.reconcile import reconcile

    created = DAY1 - timedelta(days=5)

    def d1(account: str, stage: str = "10", status: str = "processing") -> LedgerRow:
        record = Order(vendor="dcl", id="D1", status=status, raw_status=stage, created_at=created)
        return LedgerRow(record, account=account)

    def run_day(now: datetime, run: RunRef):
        findings = reconcile(ledger.iter_records("orders"), ledger.iter_records("shipments"), as_of=now)
        delta = ledger.sync_findings(
            findings, vendors=["dcl"], kinds=["late_order", "errored_order"], now=now
        )
        rows = [*delta.opened, *delta.still_open, *delta.resolved]
        due = due_notifications(rows, ledger.alerts_for(row.key for row in rows), now=now)
        return delta, ledger.record_alerts(due, sent_at=now, run=run)

    ledger.merge("orders", [d1("10501"), d1("10502")], observed_at=DAY1, run=RUN1)
    delta, sent = run_day(DAY1, RUN1)
    assert [(c.record_id, c.account, c.raw_status) for c in ledger.state_changes()] == [
        ("10501/D1", "10501", "10"),
        ("10502/D1", "10502", "10"),
    ]
    assert [(row.key, row.account, row.since) for row in delta.opened] == [
        (("dcl", "late_order", "10501/D1"), "10501", created + timedelta(days=2)),
        (("dcl", "late_order", "10502/D1"), "10502", created + timedelta(days=2)),
    ]
    assert [row.details["summary"] for row in delta.opened] == [
        f"order {account}/D1 (10) should have shipped by {(created + timedelta(days=2)).isoformat()} "
        "(creation + 2d) and has no shipment"
        for account in ("10501", "10502")
    ]
    assert [(a.record_id, a.event, a.message) for a in sent] == [
        ("10501/D1", "opened", "opened: late_order dcl/10501/D1"),
        ("10502/D1", "opened", "opened: late_order dcl/10502/D1"),
    ]

    # Day 2: 10502's D1 is cancelled; 10501's is still late.
    ledger.merge("orders", [d1("10501"), d1("10502", "cancelled", "canceled")], observed_at=DAY2, run=RUN2)
    delta, sent = run_day(DAY2, RUN2)
    assert (keys(delta.still_open), keys(delta.resolved)) == (
        [("dcl", "late_order", "10501/D1")],
        [("dcl", "late_order", "10502/D1")],
    )
    assert [(a.record_id, a.event) for a in sent] == [("10501/D1", "reminder"), ("10502/D1", "resolved")]
    assert [(c.record_id, c.previous_status, c.status) for c in ledger.state_changes(since=DAY2)] == [
        ("10502/D1", "processing", "canceled")
    ]
    assert ledger.counts()["fulfillment_findings"] == 2 and ledger.counts()["fulfillment_alerts"] == 4
