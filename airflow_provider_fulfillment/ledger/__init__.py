"""The fulfillment ledger: orders, shipments, state changes, findings, alerts and watermarks in SQL."""

from __future__ import annotations

from airflow_provider_fulfillment.ledger.ledger import (
    DEFAULT_CONN_ID,
    TERMINAL_STATUSES,
    FindingsDelta,
    Ledger,
    LedgerOrder,
    LedgerRow,
    LedgerShipment,
    MergeResult,
    StateChangeRow,
    default_sqlite_path,
    ledger_resource,
)
from airflow_provider_fulfillment.ledger.schema import LATEST_VERSION, TABLES

__all__ = [
    "DEFAULT_CONN_ID",
    "LATEST_VERSION",
    "TABLES",
    "TERMINAL_STATUSES",
    "FindingsDelta",
    "Ledger",
    "LedgerOrder",
    "LedgerRow",
    "LedgerShipment",
    "MergeResult",
    "StateChangeRow",
    "default_sqlite_path",
    "ledger_resource",
]
