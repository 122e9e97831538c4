"""The ledger's tables, as versioned migrations applied in order on first use.

Each migration is DDL written once for both databases: `{ts}` is a timezone-aware timestamp
(TIMESTAMPTZ on PostgreSQL, ISO-8601 UTC text on SQLite, which sorts as it compares) and `{json}`
a JSON document (JSONB / TEXT). The applied version lives in `fulfillment_schema_version`, so an
older ledger upgrades in place and a current one is left alone. Never edit a released migration:
add the next one.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_fulfillment.rules.types import ACCOUNT_SEPARATOR

SCHEMA_VERSION_TABLE = "fulfillment_schema_version"

ORDERS = "fulfillment_orders"
SHIPMENTS = "fulfillment_shipments"
STATE_CHANGES = "fulfillment_state_changes"
FINDINGS = "fulfillment_findings"
ALERTS = "fulfillment_alerts"
WATERMARKS = "fulfillment_watermarks"
TABLES = (ORDERS, SHIPMENTS, STATE_CHANGES, FINDINGS, ALERTS, WATERMARKS)
# Derived, rewritten by each SLA run (rules.sla); for BI tools, not part of the record.
SLA = "fulfillment_sla"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    postgresql: tuple[str, ...] = ()  # run after `statements`, on PostgreSQL only

    def statements_for(self, dialect_name: str) -> tuple[str, ...]:
        return self.statements + (self.postgresql if dialect_name == "postgresql" else ())


_V1_RECORDS = (
    f"""CREATE TABLE {ORDERS} (
        vendor TEXT NOT NULL,
        account TEXT NOT NULL DEFAULT '',
        order_id TEXT NOT NULL,
        number TEXT,
        status TEXT NOT NULL,
        raw_status TEXT NOT NULL,
        status_since {{ts}},
        created_at {{ts}},
        ordered_at {{ts}},
        modified_at {{ts}},
        ship_by {{ts}},
        items {{json}},
        version_at {{ts}} NOT NULL,
        first_seen_at {{ts}} NOT NULL,
        observed_at {{ts}} NOT NULL,
        raw {{json}},
        conn_id TEXT,
        PRIMARY KEY (vendor, account, order_id)
    )""",
    f"""CREATE TABLE {SHIPMENTS} (
        vendor TEXT NOT NULL,
        account TEXT NOT NULL DEFAULT '',
        shipment_id TEXT NOT NULL,
        order_id TEXT,
        tracking_numbers {{json}},
        status TEXT NOT NULL,
        raw_status TEXT NOT NULL,
        status_since {{ts}},
        created_at {{ts}},
        shipped_at {{ts}},
        expected_delivery_at {{ts}},
        delivered_at {{ts}},
        items {{json}},
        version_at {{ts}} NOT NULL,
        first_seen_at {{ts}} NOT NULL,
        observed_at {{ts}} NOT NULL,
        raw {{json}},
        conn_id TEXT,
        PRIMARY KEY (vendor, account, shipment_id)
    )""",
    f"""CREATE TABLE {STATE_CHANGES} (
        vendor TEXT NOT NULL,
        resource TEXT NOT NULL,
        record_id TEXT NOT NULL,
        status TEXT NOT NULL,
        raw_status TEXT NOT NULL,
        observed_at {{ts}} NOT NULL,
        account TEXT NOT NULL DEFAULT '',
        previous_status TEXT,
        changed_at {{ts}} NOT NULL,
        dag_id TEXT,
        run_id TEXT,
        PRIMARY KEY (vendor, resource, record_id, status, raw_status, observed_at)
    )""",
    f"""CREATE TABLE {WATERMARKS} (
        vendor TEXT NOT NULL,
        resource TEXT NOT NULL,
        conn_id TEXT NOT NULL,
        watermark {{ts}},
        lookback_seconds BIGINT NOT NULL DEFAULT 0,
        updated_at {{ts}} NOT NULL,
        run_id TEXT,
        PRIMARY KEY (vendor, resource, conn_id)
    )""",
)

_V2_LIFECYCLE = (
    f"""CREATE TABLE {FINDINGS} (
        vendor TEXT NOT NULL,
        kind TEXT NOT NULL,
        record_id TEXT NOT NULL,
        account TEXT NOT NULL DEFAULT '',
        resource TEXT NOT NULL,
        severity TEXT NOT NULL,
        since {{ts}},
        opened_at {{ts}} NOT NULL,
        last_seen_at {{ts}} NOT NULL,
        resolved_at {{ts}},
        details {{json}},
        opened_dag_id TEXT,
        opened_run_id TEXT,
        opened_task_id TEXT,
        resolved_dag_id TEXT,
        resolved_run_id TEXT,
        resolved_task_id TEXT,
        PRIMARY KEY (vendor, kind, record_id)
    )""",
    f"""CREATE TABLE {ALERTS} (
        vendor TEXT NOT NULL,
        kind TEXT NOT NULL,
        record_id TEXT NOT NULL,
        event TEXT NOT NULL,
        sent_at {{ts}} NOT NULL,
        episode {{ts}} NOT NULL,
        severity TEXT NOT NULL,
        message TEXT,
        dag_id TEXT,
        run_id TEXT,
        task_id TEXT,
        PRIMARY KEY (vendor, kind, record_id, event, sent_at)
    )""",
    # 'opened' and 'resolved' at most once per episode; reminders are many.
    f"""CREATE UNIQUE INDEX fulfillment_alerts_once ON {ALERTS} (vendor, kind, record_id, event, episode)
        WHERE event IN ('opened', 'resolved')""",
)

_V3_READ_PATHS = (
    f"CREATE INDEX fulfillment_orders_status ON {ORDERS} (vendor, status)",
    f"CREATE INDEX fulfillment_shipments_status ON {SHIPMENTS} (vendor, status)",
    f"CREATE INDEX fulfillment_shipments_order ON {SHIPMENTS} (vendor, order_id)",
    f"CREATE INDEX fulfillment_state_changes_observed ON {STATE_CHANGES} (observed_at)",
    f"CREATE INDEX fulfillment_findings_open ON {FINDINGS} (resolved_at, vendor)",
    f"CREATE INDEX fulfillment_alerts_sent ON {ALERTS} (sent_at)",
)

_V4_SLA = (
    f"""CREATE TABLE {SLA} (
        vendor TEXT NOT NULL,
        metric TEXT NOT NULL,
        kind TEXT NOT NULL,
        bucket TEXT NOT NULL,
        count INTEGER NOT NULL,
        open_count INTEGER NOT NULL,
        p50_seconds BIGINT,
        p90_seconds BIGINT,
        max_seconds BIGINT,
        computed_at {{ts}} NOT NULL,
        dag_id TEXT,
        run_id TEXT,
        PRIMARY KEY (vendor, metric, kind, bucket)
    )""",
)

# The vendor's raw JSON as `json`: kept byte for byte as the vendor sent it, and checked rather than
# parsed into `jsonb` on each write (the normalized columns stay `jsonb`, the ones worth querying).
# SQLite stores it as text already.
_V5_RAW_AS_SENT = tuple(
    f"ALTER TABLE {table} ALTER COLUMN raw TYPE JSON USING raw::text::json" for table in (ORDERS, SHIPMENTS)
)


def record_key_sql(account: str, record_id: str) -> str:
    """`rules.types.record_key` as an SQL expression over two columns ("10501/D1", or the id)."""
    return f"CASE WHEN {account} = '' THEN {record_id} ELSE {account} || '{ACCOUNT_SEPARATOR}' || {record_id} END"


# The public keys of state changes, findings and alerts have no account: their record_id carries
# it where the record has one ("10501/D1"), so two DCL accounts' order D1 stay two records. Rows
# written before hold the bare id beside a filled account column and are rewritten; an alert
# takes its finding's account (the alerts table has none), so alerts go first, while the
# findings still hold the old record_id. Rows of two accounts that had already collided into one
# stay one, with the account that was written last.
_V6_ACCOUNT_IN_RECORD_ID = (
    f"""UPDATE {ALERTS} SET record_id = (
        SELECT f.account || '/' || {ALERTS}.record_id FROM {FINDINGS} f
        WHERE f.vendor = {ALERTS}.vendor AND f.kind = {ALERTS}.kind AND f.record_id = {ALERTS}.record_id
    )
    WHERE EXISTS (
        SELECT 1 FROM {FINDINGS} f
        WHERE f.vendor = {ALERTS}.vendor AND f.kind = {ALERTS}.kind AND f.record_id = {ALERTS}.record_id
            AND f.account <> ''
    )""",
    f"UPDATE {FINDINGS} SET record_id = account || '/' || record_id WHERE account <> ''",
    f"UPDATE {STATE_CHANGES} SET record_id = account || '/' || record_id WHERE account <> ''",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "records, state changes and watermarks", _V1_RECORDS),
    Migration(2, "findings and alerts with their lifecycle", _V2_LIFECYCLE),
    Migration(3, "indexes for open records, recent changes and open findings", _V3_READ_PATHS),
    Migration(4, "SLA figures for BI tools (rules.sla)", _V4_SLA),
    Migration(5, "raw vendor JSON kept as sent (PostgreSQL: json, not jsonb)", (), _V5_RAW_AS_SENT),
    Migration(
        6, "the account in the record_id of state changes, findings and alerts", _V6_ACCOUNT_IN_RECORD_ID
    ),
)
LATEST_VERSION = MIGRATIONS[-1].version

CREATE_VERSION_TABLE = f"""CREATE TABLE IF NOT EXISTS {SCHEMA_VERSION_TABLE} (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at {{ts}} NOT NULL
)"""
