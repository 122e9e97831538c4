"""operators.sla: SLA figures from a real SQLite ledger (the rules themselves: tests/rules/test_sla.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_fulfillment.ledger import Ledger, LedgerRow
from airflow_provider_fulfillment.models.common import Order
from airflow_provider_fulfillment.operators.sla import compute_sla

T0 = datetime(2026, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def ledger_conn(monkeypatch, tmp_path) -> str:
    body = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")})
    monkeypatch.setenv("AIRFLOW_CONN_TEST_LEDGER", body)
    return "test_ledger"


def test_time_to_ship_joins_each_dcl_account_order_to_its_own_creation(ledger_conn):
    """Two accounts' order D1: each counts from its own created_at (the join is on record_id,
    "10501/D1"), not from one account's, nor from the first observed change."""

    def d1(account: str, created: datetime, status: str, raw: str, since: datetime) -> LedgerRow:
        record = Order(
            vendor="dcl", id="D1", status=status, raw_status=raw, created_at=created, status_since=since
        )
        return LedgerRow(record, account=account)

    with Ledger(ledger_conn) as ledger:
        ledger.merge(
            "orders",
            [
                d1("10501", T0, "processing", "10", T0 + H),
                d1("10502", T0 + 6 * H, "processing", "10", T0 + 7 * H),
            ],
            observed_at=T0 + 8 * H,
        )
        ledger.merge(
            "orders",
            [
                d1("10501", T0, "shipped", "60", T0 + 10 * H),
                d1("10502", T0 + 6 * H, "shipped", "60", T0 + 10 * H),
            ],
            observed_at=T0 + 12 * H,
        )
        rows = [row for row in compute_sla(ledger, ["dcl"], T0 + 24 * H) if row.metric == "time_to_ship"]
    assert [(r.vendor, r.kind, r.count, r.p50_seconds, r.max_seconds) for r in rows] == [
        ("dcl", "order", 2, int(4 * H.total_seconds()), int(10 * H.total_seconds()))
    ]
