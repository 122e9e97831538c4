"""reports.ledger_view: what the Fulfillment page reads from a real SQLite ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from airflow_provider_fulfillment.ledger import Ledger, LedgerRow
from airflow_provider_fulfillment.models.common import Order
from airflow_provider_fulfillment.reports.ledger_view import errored_records
from airflow_provider_fulfillment.reports.overview import ErroredRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_errored_dcl_records_are_named_by_account_and_since_their_own_change(monkeypatch, tmp_path):
    """DCL gives no status time: 'since' is the observed change into error of the same record_id
    ("10502/D1"), not of another account's D1."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_FULFILLMENT_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.db")})
    )

    def d1(account: str, status: str, raw: str) -> LedgerRow:
        return LedgerRow(Order(vendor="dcl", id="D1", status=status, raw_status=raw), account=account)

    with Ledger() as ledger:
        ledger.merge("orders", [d1("10501", "error", "2"), d1("10502", "processing", "10")], observed_at=T0)
        later = T0 + timedelta(days=1)
        ledger.merge("orders", [d1("10501", "error", "2"), d1("10502", "error", "2")], observed_at=later)
        assert errored_records(ledger, "dcl", ledger.state_changes()) == [
            ErroredRecord("dcl", "order", "10501/D1", "2", T0),
            ErroredRecord("dcl", "order", "10502/D1", "2", later),
        ]
