"""The overview behind the page and the report: exact numbers from exact rows (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow_provider_fulfillment.reports.overview import (
    ErroredRecord,
    build_overview,
    latest_observation,
    open_over_time,
    touched_by,
)
from airflow_provider_fulfillment.rules.sla import Change
from airflow_provider_fulfillment.rules.types import AlertRow, FindingRow, RunRef

NOW = datetime(2026, 1, 10, tzinfo=UTC)
RUN_A = RunRef("dag", "run_a", "reconcile")
RUN_B = RunRef("dag", "run_b", "reconcile")


def finding(
    record_id, opened, *, kind="late_order", vendor="dcl", resolved=None, since=None, by=RUN_A, res_by=None
):
    return FindingRow(
        vendor,
        kind,
        record_id,
        "",
        "order",
        "warning",
        opened,
        resolved or opened,
        resolved,
        since,
        {},
        by,
        res_by or RunRef(),
    )


def test_ages_count_from_since_else_opened_and_fall_in_buckets():
    rows = [
        finding("a", NOW - timedelta(hours=2)),  # <1d
        finding("b", NOW - timedelta(hours=1), since=NOW - timedelta(days=2)),  # since wins: 1-3d
        finding("c", NOW - timedelta(days=9)),  # >7d
        finding("d", NOW - timedelta(days=4), kind="errored_order"),  # 3-7d
        finding("e", NOW - timedelta(days=4), resolved=NOW - timedelta(days=1)),  # resolved: not open
    ]
    [dcl] = build_overview(findings=rows, alerts=[], changes=[], errored=[], now=NOW, as_of=NOW).vendors
    assert dcl.open_by_kind_and_age() == {
        "late_order": {"<1d": 1, "1-3d": 1, "3-7d": 0, ">7d": 1},
        "errored_order": {"<1d": 0, "1-3d": 0, "3-7d": 1, ">7d": 0},
    }
    assert [f.record_id for f in dcl.open_findings] == ["c", "d", "b", "a"]  # oldest first
    assert [f.record_id for f in dcl.resolved_findings] == ["e"]


def test_open_over_time_counts_each_day_what_was_open_then():
    rows = [
        finding("a", NOW - timedelta(days=3)),
        finding("b", NOW - timedelta(days=2), resolved=NOW - timedelta(days=1)),
    ]
    assert [n for _, n in open_over_time(rows, NOW, days=4)] == [0, 1, 2, 1, 1]


def test_run_filter_matches_opened_or_resolved_by_and_alerts_sent_by():
    opened_by_b = finding("a", NOW, by=RUN_B)
    resolved_by_b = finding("b", NOW, resolved=NOW, res_by=RUN_B)
    other = finding("c", NOW)
    assert [touched_by(f, RunRef("dag", "run_b")) for f in (opened_by_b, resolved_by_b, other)] == [
        True,
        True,
        False,
    ]
    assert not touched_by(opened_by_b, RunRef("dag", "run_b", "alert"))  # a task narrows it further
    alert = AlertRow(
        "dcl", "late_order", "a", "opened", NOW, NOW, "warning", "m", RunRef("dag", "run_b", "alert")
    )
    assert touched_by(alert, RunRef("dag", "run_b")) and not touched_by(alert, RunRef("other", "run_b"))


def test_as_of_is_the_latest_reconciliation_else_alert_else_change_capped_at_now():
    rows = [finding("a", NOW - timedelta(days=3))]
    changes = [Change("dcl", "order", "x", "error", NOW - timedelta(days=1))]
    assert latest_observation(rows, [], changes, NOW) == NOW - timedelta(days=3)  # findings first
    assert latest_observation([], [], changes, NOW) == NOW - timedelta(days=1)
    assert latest_observation([], [], [], NOW) == NOW
    future = [finding("z", NOW + timedelta(days=1))]
    assert latest_observation(future, [], [], NOW) == NOW


def test_sla_distributions_per_vendor_and_errored_records_longest_first():
    t = NOW - timedelta(days=5)
    changes = [
        Change("dcl", "order", "o1", "pending", t),
        Change("dcl", "order", "o1", "shipped", t + timedelta(hours=30)),
        Change("dcl", "shipment", "s1", "error", t),
        Change("dcl", "shipment", "s1", "processing", t + timedelta(hours=3)),
        Change("dcl", "order", "o2", "error", NOW - timedelta(hours=5)),
    ]
    errored = [
        ErroredRecord("dcl", "order", "o2", "hold", NOW - timedelta(hours=5)),
        ErroredRecord("dcl", "order", "o3", "hold", NOW - timedelta(days=2)),
    ]
    [dcl] = build_overview(
        findings=[], alerts=[], changes=changes, errored=errored, now=NOW, as_of=NOW
    ).vendors
    assert dcl.time_to_ship.seconds == (30 * 3600,)
    assert sorted(dcl.time_in_error.seconds) == [3 * 3600, 5 * 3600]
    assert dict(dcl.time_in_error.histogram())["1–6 h"] == 2
    assert [r.record_id for r in dcl.errored] == ["o3", "o2"]
    assert dcl.errored[0].errored_for(NOW) == timedelta(days=2)
