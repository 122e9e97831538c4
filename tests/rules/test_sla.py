"""rules.sla: time to ship, time in error, open findings by age, per vendor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow_provider_fulfillment.rules.sla import Change, SlaRow, sla, table
from airflow_provider_fulfillment.rules.types import FindingRow, RunRef

T0 = datetime(2026, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


def change(record_id, status, hours, vendor="dropstream", resource="order"):
    return Change(vendor, resource, record_id, status, T0 + hours * H)


def finding(record_id, kind, since_hours, *, resolved=False):
    since = T0 + since_hours * H
    return FindingRow(
        "dropstream",
        kind,
        record_id,
        "",
        "order",
        "warning",
        since,
        since,
        since if resolved else None,
        since,
        {},
        RunRef(),
        RunRef(),
    )


def test_every_figure_from_state_changes_and_findings():
    changes = [
        change("1", "pending", 0),
        change("1", "shipped", 10),
        change("1", "delivered", 40),  # only the first shipped state counts
        change("2", "processing", 0),
        change("2", "error", 2),
        change("2", "error", 3),  # a second raw error state: the same stay
        change("2", "shipped", 30),
        change("3", "shipped", 5),  # first seen shipped, no creation time: not counted
        change("4", "error", 90),  # still in error at now
        change("S", "error", 1, resource="shipment"),
        change("S", "shipped", 4, resource="shipment"),
        change("9", "shipped", 20, vendor="dcl"),
    ]
    findings = [
        finding("1", "late_order", 99),
        finding("2", "late_order", 50),
        finding("3", "late_order", 0),
        finding("4", "late_order", 0, resolved=True),
    ]
    rows = sla(changes, findings, now=T0 + 100 * H, created_at={("dcl", "9"): T0 + 12 * H})
    assert rows == [
        SlaRow("dcl", "time_to_ship", "order", "all", 1, 0, 8 * 3600, 8 * 3600, 8 * 3600),
        SlaRow("dropstream", "open_findings", "late_order", "<1d", 1, 1, 3600, 3600, 3600),
        SlaRow("dropstream", "open_findings", "late_order", "1-3d", 1, 1, 50 * 3600, 50 * 3600, 50 * 3600),
        SlaRow("dropstream", "open_findings", "late_order", "3-7d", 1, 1, 100 * 3600, 100 * 3600, 100 * 3600),
        SlaRow("dropstream", "time_in_error", "order", "all", 2, 1, 10 * 3600, 28 * 3600, 28 * 3600),
        SlaRow("dropstream", "time_in_error", "shipment", "all", 1, 0, 3 * 3600, 3 * 3600, 3 * 3600),
        SlaRow("dropstream", "time_to_ship", "order", "all", 2, 0, 10 * 3600, 30 * 3600, 30 * 3600),
    ]
    assert table(rows[:1]) == (
        "vendor  metric        kind   bucket  count  open  p50   p90   max\n"
        "dcl     time_to_ship  order  all     1      0     8.0h  8.0h  8.0h"
    )


def test_nothing_in_nothing_out():
    assert sla([], [], now=T0) == []
    assert table([]) == "vendor  metric  kind  bucket  count  open  p50  p90  max"


def test_a_stay_observed_after_now_is_not_measured():
    rows = sla([change("1", "error", 50)], [], now=T0 + 10 * H)
    assert rows == []


def test_first_seen_shipped_without_a_vendor_time_is_not_a_time_to_ship():
    observed = T0 + 500 * H
    changes = [
        Change("stream", "order", "1", "shipped", observed, observed_at=observed),  # no vendor time
        Change("stream", "order", "2", "pending", T0, observed_at=T0),
        Change("stream", "order", "2", "shipped", T0 + 30 * H, observed_at=T0 + 30 * H),  # seen moving
    ]
    created = {("stream", "1"): T0, ("stream", "2"): T0}
    assert sla(changes, now=observed, created_at=created) == [
        SlaRow("stream", "time_to_ship", "order", "all", 1, 0, 30 * 3600, 30 * 3600, 30 * 3600)
    ]
