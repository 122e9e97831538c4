"""The ledger on SQLite and on a real PostgreSQL server: the same tests, exact rows."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_fulfillment.ledger import LATEST_VERSION, Ledger, LedgerOrder, LedgerRow, MergeResult
from airflow_provider_fulfillment.models.common import Order, Shipment
from airflow_provider_fulfillment.rules.types import Notification, RunRef

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
RUN = RunRef("ledger_dag", "run_1", "load")


def order(
    order_id: str, raw: str = "new", status: str = "pending", since: datetime | None = T0, **fields
) -> Order:
    return Order(
        vendor="dropstream", id=order_id, status=status, raw_status=raw, status_since=since, **fields
    )


def rows_of(ledger: Ledger, query: str) -> list[tuple]:
    return ledger._all(query)


def order_states(ledger: Ledger) -> dict[str, tuple[str, str]]:
    return {o.id: (o.status, o.raw_status) for o in ledger.iter_records("orders")}


def changes(ledger: Ledger) -> list[tuple]:
    return [
        (c.record_id, c.previous_status, c.status, c.raw_status, c.observed_at, c.changed_at)
        for c in ledger.state_changes()
    ]


def test_a_fresh_ledger_has_every_table_at_the_latest_version(ledger):
    assert ledger.schema_version() == LATEST_VERSION
    assert ledger.counts() == {
        "fulfillment_orders": 0,
        "fulfillment_shipments": 0,
        "fulfillment_state_changes": 0,
        "fulfillment_findings": 0,
        "fulfillment_alerts": 0,
        "fulfillment_watermarks": 0,
    }


def test_merging_the_same_records_twice_changes_nothing_the_second_time(ledger):
    batch = [LedgerRow(order("1"), '{"id": 1}'), LedgerRow(order("2", "queued"), '{"id": 2}')]
    first = ledger.merge("orders", batch, conn_id="ds", run=RUN, observed_at=T0)
    again = ledger.merge("orders", batch, conn_id="ds", run=RUN, observed_at=T0)
    assert first == MergeResult(inserted=2, state_changes=2)
    assert again == MergeResult(unchanged=2)
    assert ledger.counts()["fulfillment_orders"] == 2
    assert changes(ledger) == [
        ("1", None, "pending", "new", T0, T0),
        ("2", None, "pending", "queued", T0, T0),
    ]


def test_an_older_version_never_replaces_a_newer_one(ledger):
    newer = order("1", "shipped", "shipped", since=T0 + timedelta(hours=5))
    older = order("1", "queued", "pending", since=T0 + timedelta(hours=1))
    assert ledger.merge("orders", [newer], observed_at=T0 + timedelta(hours=6)) == MergeResult(
        inserted=1, state_changes=1
    )
    # Read later, but an older version (a lagging replica, an old manifest reloaded).
    assert ledger.merge("orders", [older], observed_at=T0 + timedelta(hours=7)) == MergeResult(stale=1)
    assert order_states(ledger) == {"1": ("shipped", "shipped")}
    assert changes(ledger) == [
        ("1", None, "shipped", "shipped", T0 + timedelta(hours=6), T0 + timedelta(hours=5))
    ]


def test_each_status_change_is_written_once_with_its_transition_time(ledger):
    t1, t2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    ledger.merge("orders", [order("1")], observed_at=T0, run=RUN)
    ledger.merge("orders", [order("1", "processing", "processing", since=t1)], observed_at=t2, run=RUN)
    ledger.merge("orders", [order("1", "processing", "processing", since=t1)], observed_at=t2, run=RUN)
    assert changes(ledger) == [
        ("1", None, "pending", "new", T0, T0),
        ("1", "pending", "processing", "processing", t2, t1),
    ]
    assert {(c.dag_id, c.run_id) for c in ledger.state_changes()} == {("ledger_dag", "run_1")}


def test_overlapping_manifests_in_one_call_keep_the_newest_version_of_each_record(ledger):
    t1 = T0 + timedelta(hours=1)
    window_a = [order("1"), order("2")]
    window_b = [order("2", "processing", "processing", since=t1), order("3")]
    result = ledger.merge("orders", [*window_a, *window_b, order("1")], observed_at=t1)
    # 3 records inserted; the older "2" and the repeated "1" are not.
    assert result == MergeResult(inserted=3, unchanged=1, stale=1, state_changes=3)
    assert order_states(ledger) == {
        "1": ("pending", "new"),
        "2": ("processing", "processing"),
        "3": ("pending", "new"),
    }


def test_without_a_vendor_version_the_later_observation_wins(ledger):
    def shipment(raw: str, status: str) -> Shipment:
        return Shipment(vendor="dropstream", id="s1", order_id="1", status=status, raw_status=raw)

    t1 = T0 + timedelta(days=1)
    ledger.merge("shipments", [shipment("in_transit", "shipped")], observed_at=T0)
    assert ledger.merge("shipments", [shipment("delivered", "delivered")], observed_at=t1) == MergeResult(
        updated=1, state_changes=1
    )
    # The earlier observation loaded again afterwards is stale.
    assert ledger.merge("shipments", [shipment("in_transit", "shipped")], observed_at=T0) == MergeResult(
        stale=1
    )
    assert [(s.id, s.status) for s in ledger.iter_records("shipments")] == [("s1", "delivered")]


def test_exact_rows_are_stored_with_raw_json_and_account(ledger):
    record = Order(
        vendor="dcl",
        id="A-1",
        number="A-1",
        status="processing",
        raw_status="40",
        created_at=T0,
        modified_at=T0 + timedelta(minutes=5),
        ship_by=T0 + timedelta(days=2),
        items=[{"line_id": "1", "sku": "SKU-1", "quantity": 3}],
    )
    ledger.merge(
        "orders",
        [LedgerRow(record, '{"order_number":"A-1"}', account="ACME")],
        conn_id="dcl_eu",
        observed_at=T0,
    )
    (stored,) = ledger.iter_records("orders", vendor="dcl")
    assert stored == LedgerOrder(**record.model_dump(), account="ACME")
    row = rows_of(
        ledger,
        "SELECT vendor, account, order_id, conn_id, raw, version_at, first_seen_at FROM fulfillment_orders",
    )[0]
    assert row[:4] == ("dcl", "ACME", "A-1", "dcl_eu")
    assert ledger.dialect.json_value(row[4]) == {"order_number": "A-1"}
    assert ledger.dialect.ts_value(row[5]) == T0 + timedelta(minutes=5)
    assert ledger.dialect.ts_value(row[6]) == T0


def test_open_records_and_status_filters(ledger):
    ledger.merge(
        "orders",
        [
            order("1"),
            order("2", "shipped", "shipped"),
            order("3", "error", "error"),
            order("4", "canceled", "canceled"),
        ],
        conn_id="ds",
        observed_at=T0,
    )
    assert ledger.open_record_ids("dropstream", "orders", "ds") == {"1": "new", "3": "error"}
    assert ledger.open_record_ids("dropstream", "orders", "other") == {}
    assert [o.id for o in ledger.iter_records("orders", open_only=True)] == ["1", "3"]
    assert [o.id for o in ledger.iter_records("orders", statuses=["error", "shipped"])] == ["2", "3"]


class Crash(RuntimeError):
    pass


@pytest.mark.parametrize("step", ["staged", "ranked", "state_changes", "merged"])
def test_a_crash_mid_merge_leaves_the_ledger_as_it_was(ledger, monkeypatch, step):
    ledger.merge("orders", [order("1")], observed_at=T0)
    before = (ledger.counts(), order_states(ledger), changes(ledger))

    def crash(name: str) -> None:
        if name == step:
            raise Crash(name)

    later = T0 + timedelta(hours=1)
    with monkeypatch.context() as patch, pytest.raises(Crash):
        patch.setattr(ledger, "_step", crash)
        ledger.merge("orders", [order("1", "shipped", "shipped", since=later), order("2")], observed_at=later)
    assert (ledger.counts(), order_states(ledger), changes(ledger)) == before
    # And the ledger is usable afterwards: the retry lands everything once.
    assert ledger.merge(
        "orders", [order("1", "shipped", "shipped", since=later), order("2")], observed_at=later
    ) == MergeResult(inserted=1, updated=1, state_changes=2)


def test_a_failure_while_reading_the_rows_writes_nothing(ledger):
    def rows():
        yield order("1")
        yield order("2")
        raise Crash("bad manifest line")

    with pytest.raises(Crash):
        ledger.merge("orders", rows(), observed_at=T0)
    assert ledger.counts()["fulfillment_orders"] == 0
    assert ledger.counts()["fulfillment_state_changes"] == 0


def test_naive_timestamps_are_refused(ledger):
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.merge("orders", [order("1")], observed_at=datetime(2026, 3, 2))


# ------------------------------------------------------------------ migration

V1 = """
CREATE TABLE fulfillment_schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,
    applied_at {ts} NOT NULL);
INSERT INTO fulfillment_schema_version VALUES (1, 'records, state changes and watermarks', '2026-01-01T00:00:00.000000+00:00');
CREATE TABLE fulfillment_orders (vendor TEXT NOT NULL, account TEXT NOT NULL DEFAULT '', order_id TEXT NOT NULL,
    number TEXT, status TEXT NOT NULL, raw_status TEXT NOT NULL, status_since {ts}, created_at {ts},
    ordered_at {ts}, modified_at {ts}, ship_by {ts}, items {json}, version_at {ts} NOT NULL,
    first_seen_at {ts} NOT NULL, observed_at {ts} NOT NULL, raw {json}, conn_id TEXT,
    PRIMARY KEY (vendor, account, order_id));
CREATE TABLE fulfillment_shipments (vendor TEXT NOT NULL, account TEXT NOT NULL DEFAULT '',
    shipment_id TEXT NOT NULL, order_id TEXT, tracking_numbers {json}, status TEXT NOT NULL,
    raw_status TEXT NOT NULL, status_since {ts}, created_at {ts}, shipped_at {ts},
    expected_delivery_at {ts}, delivered_at {ts}, items {json}, version_at {ts} NOT NULL,
    first_seen_at {ts} NOT NULL, observed_at {ts} NOT NULL, raw {json}, conn_id TEXT,
    PRIMARY KEY (vendor, account, shipment_id));
CREATE TABLE fulfillment_state_changes (vendor TEXT NOT NULL, resource TEXT NOT NULL, record_id TEXT NOT NULL,
    status TEXT NOT NULL, raw_status TEXT NOT NULL, observed_at {ts} NOT NULL, account TEXT NOT NULL DEFAULT '',
    previous_status TEXT, changed_at {ts} NOT NULL, dag_id TEXT, run_id TEXT,
    PRIMARY KEY (vendor, resource, record_id, status, raw_status, observed_at));
CREATE TABLE fulfillment_watermarks (vendor TEXT NOT NULL, resource TEXT NOT NULL, conn_id TEXT NOT NULL,
    watermark {ts}, lookback_seconds BIGINT NOT NULL DEFAULT 0, updated_at {ts} NOT NULL, run_id TEXT,
    PRIMARY KEY (vendor, resource, conn_id));
INSERT INTO fulfillment_orders (vendor, account, order_id, status, raw_status, items, version_at, first_seen_at,
    observed_at) VALUES ('stream', '', '9', 'pending', 'pending', '[]', '2026-01-01T00:00:00.000000+00:00',
    '2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00');
"""


def _create_v1(ledger_conn: str, monkeypatch) -> None:
    """A version-1 ledger as an early release left it, written by hand (not by the code under test)."""
    import json
    import os

    body = json.loads(os.environ["AIRFLOW_CONN_FULFILLMENT_LEDGER"])
    if ledger_conn == "sqlite":
        with sqlite3.connect(body["host"]) as connection:
            connection.executescript(V1.format(ts="TEXT", json="TEXT"))
        return
    import psycopg

    uri = f"postgresql://postgres@{body['host']}:{body['port']}/{body['schema']}"
    with psycopg.connect(uri, autocommit=True) as connection:
        for statement in V1.format(ts="TIMESTAMPTZ", json="JSONB").split(";"):
            if statement.strip():
                connection.execute(statement)


def test_an_older_ledger_is_upgraded_in_place_and_keeps_its_data(ledger_conn, monkeypatch):
    _create_v1(ledger_conn, monkeypatch)
    with Ledger() as ledger:
        assert ledger.schema_version() == LATEST_VERSION
        versions = rows_of(ledger, "SELECT version FROM fulfillment_schema_version ORDER BY version")
        assert [v for (v,) in versions] == list(range(1, LATEST_VERSION + 1))
        assert [(o.vendor, o.id, o.status) for o in ledger.iter_records("orders")] == [
            ("stream", "9", "pending")
        ]
        # The tables version 2 added work, and merging on the upgraded tables too.
        assert ledger.findings(open_only=False) == []
        assert ledger.merge("orders", [order("1")], observed_at=T0) == MergeResult(
            inserted=1, state_changes=1
        )
    with Ledger() as reopened:  # opening again applies nothing twice
        assert reopened.schema_version() == LATEST_VERSION
        assert reopened.counts()["fulfillment_orders"] == 2


def test_reads_do_not_wait_for_a_load_in_progress(ledger):
    """On SQLite a reader reads its snapshot while a writer holds the lock (the UI during a load)."""
    if ledger.backend != "sqlite":
        pytest.skip("PostgreSQL readers never wait for writers (MVCC)")
    ledger.merge("orders", [order("1")], observed_at=T0)
    (path,) = [row[2] for row in ledger._all("PRAGMA database_list") if row[1] == "main"]
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM fulfillment_orders")
    try:
        ledger.dialect.connection.execute("PRAGMA busy_timeout = 50")  # waiting would raise, not hang
        assert ledger.counts()["fulfillment_orders"] == 1
        assert [f.key for f in ledger.findings()] == []
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_without_a_connection_the_ledger_is_an_sqlite_file_under_airflow_home(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_FULFILLMENT_LEDGER", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    with Ledger() as ledger:
        assert ledger.backend == "sqlite"
        ledger.merge("orders", [order("1")], observed_at=T0)
    assert (tmp_path / "home" / "fulfillment_ledger.db").is_file()
    with Ledger() as reopened:
        assert [o.id for o in reopened.iter_records("orders")] == ["1"]


@pytest.mark.parametrize("conn_type", ["http", "no_such_provider"])
def test_a_connection_of_another_type_is_refused(monkeypatch, conn_type):
    # Refused in our words whether or not that type's provider is installed (CI has no http provider).
    monkeypatch.setenv(
        "AIRFLOW_CONN_FULFILLMENT_LEDGER", f'{{"conn_type": "{conn_type}", "host": "example.com"}}'
    )
    with pytest.raises(
        ValueError, match=f"has type '{conn_type}'; the ledger supports 'sqlite' and 'postgres'"
    ):
        Ledger().counts()


def test_raw_vendor_json_is_kept_byte_for_byte(ledger):
    raw = '{"id": 7,  "b":[1, 2], "a":"\\u00e9"}'  # spacing, key order and escapes as the vendor sent them
    ledger.merge("orders", [LedgerRow(order("7"), raw)], observed_at=T0)
    ((stored,),) = rows_of(ledger, "SELECT CAST(raw AS TEXT) FROM fulfillment_orders")
    assert stored == raw


def test_a_state_change_already_recorded_at_the_same_time_is_not_written_twice(ledger):
    """A record missing from the orders table but not from the state changes (deleted by hand)."""
    ledger.merge("orders", [order("1"), order("2")], conn_id="ds", run=RUN, observed_at=T0)
    with ledger.dialect.transaction() as cursor:
        cursor.execute("DELETE FROM fulfillment_orders WHERE order_id = '1'")
    again = ledger.merge("orders", [order("1"), order("3")], conn_id="ds", run=RUN, observed_at=T0)
    assert again == MergeResult(inserted=2, state_changes=1)
    assert sorted(c[0] for c in changes(ledger)) == ["1", "2", "3"]


def test_two_accounts_sharing_an_order_id_in_one_merge_get_a_state_change_each(ledger):
    """The state-change key has no account: the account is in the record_id ("A/5")."""
    rows = [LedgerRow(order("5"), account="A"), LedgerRow(order("5", "queued"), account="B")]
    assert ledger.merge("orders", rows, run=RUN, observed_at=T0) == MergeResult(inserted=2, state_changes=2)
    assert rows_of(ledger, "SELECT account, order_id FROM fulfillment_orders ORDER BY 1") == [
        ("A", "5"),
        ("B", "5"),
    ]
    assert [(c.account, c.record_id, c.raw_status) for c in ledger.state_changes()] == [
        ("A", "A/5", "new"),
        ("B", "B/5", "queued"),
    ]
    # The next day B's order moves: one change, B's.
    moved = LedgerRow(order("5", "processing", "processing", since=T0 + timedelta(days=1)), account="B")
    assert ledger.merge(
        "orders", [LedgerRow(order("5"), account="A"), moved], run=RUN, observed_at=T0 + timedelta(days=1)
    ) == MergeResult(updated=1, unchanged=1, state_changes=1)
    assert [(c.record_id, c.previous_status, c.raw_status) for c in ledger.state_changes()][-1] == (
        "B/5",
        "pending",
        "processing",
    )


def test_an_account_the_record_id_could_not_reverse_is_refused_and_nothing_is_written(ledger):
    with pytest.raises(ValueError, match="an account must not contain '/', got 'A/B'"):
        ledger.merge("orders", [LedgerRow(order("5"), account="A/B")], observed_at=T0)
    assert ledger.counts()["fulfillment_orders"] == 0


def test_a_record_without_a_vendor_version_read_again_unchanged_is_not_updated(ledger):
    def shipment(tracking: str) -> LedgerRow:
        record = Shipment(
            vendor="dropstream",
            id="s1",
            order_id="1",
            status="shipped",
            raw_status="notified_shipped",
            tracking_numbers=[tracking],
            items=[{"line_id": "7"}],
        )
        return LedgerRow(record, f'{{"id": 1, "tracking_number": "{tracking}"}}')

    days = [T0 + timedelta(days=n) for n in range(4)]
    assert ledger.merge("shipments", [shipment("1Z")], observed_at=days[0]) == MergeResult(
        inserted=1, state_changes=1
    )
    assert ledger.merge("shipments", [shipment("1Z")], observed_at=days[1]) == MergeResult(unchanged=1)
    assert ledger.merge("shipments", [shipment("1Z-B")], observed_at=days[2]) == MergeResult(updated=1)
    # Its version still moves with each reading: an older reading stays stale.
    assert ledger.merge("shipments", [shipment("1Z")], observed_at=days[1]) == MergeResult(stale=1)
    assert ledger.merge("shipments", [shipment("1Z-B")], observed_at=days[3]) == MergeResult(unchanged=1)
    ((version, observed, tracking),) = rows_of(
        ledger, "SELECT version_at, observed_at, tracking_numbers FROM fulfillment_shipments"
    )
    ts = ledger.dialect.ts_value
    assert (ts(version), ts(observed), ledger.dialect.json_value(tracking)) == (days[3], days[3], ["1Z-B"])


def test_a_version_5_ledger_gets_the_account_into_its_record_ids(ledger_conn, monkeypatch):
    """Version 5 wrote DCL's bare order number beside the account; version 6 rewrites those rows."""
    from airflow_provider_fulfillment.ledger import schema

    v5 = [m for m in schema.MIGRATIONS if m.version <= 5]
    assert [m.version for m in v5] == [1, 2, 3, 4, 5]
    day = T0 - timedelta(days=1)
    with monkeypatch.context() as patched:
        patched.setattr(schema, "MIGRATIONS", tuple(v5))
        with Ledger() as old:
            assert old.schema_version() == 5
            ts = old.dialect.ts_param
            with old.dialect.transaction() as cursor:
                cursor.executemany(
                    old.dialect.sql(
                        "INSERT INTO fulfillment_state_changes (vendor, resource, record_id, status, "
                        "raw_status, observed_at, account, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    [
                        ("dcl", "order", "D1", "pending", "5", ts(day), "10501", ts(day)),
                        ("dcl", "shipment", "77", "shipped", "", ts(day), "10501", ts(day)),
                        ("dropstream", "order", "9", "pending", "new", ts(day), "", ts(day)),
                    ],
                )
                cursor.executemany(
                    old.dialect.sql(
                        "INSERT INTO fulfillment_findings (vendor, kind, record_id, account, resource, "
                        "severity, opened_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    [
                        ("dcl", "late_order", "D1", "10501", "order", "warning", ts(day), ts(day)),
                        ("dropstream", "late_order", "9", "", "order", "warning", ts(day), ts(day)),
                    ],
                )
                cursor.executemany(
                    old.dialect.sql(
                        "INSERT INTO fulfillment_alerts (vendor, kind, record_id, event, sent_at, episode, "
                        "severity) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    ),
                    [
                        ("dcl", "late_order", "D1", "opened", ts(day), ts(day), "warning"),
                        ("dropstream", "late_order", "9", "opened", ts(day), ts(day), "warning"),
                    ],
                )
    with Ledger() as ledger:
        assert ledger.schema_version() == LATEST_VERSION
        assert sorted((c.vendor, c.resource, c.record_id, c.account) for c in ledger.state_changes()) == [
            ("dcl", "order", "10501/D1", "10501"),
            ("dcl", "shipment", "10501/77", "10501"),
            ("dropstream", "order", "9", ""),
        ]
        assert [(f.key, f.account) for f in ledger.findings()] == [
            (("dcl", "late_order", "10501/D1"), "10501"),
            (("dropstream", "late_order", "9"), ""),
        ]
        assert sorted((a.vendor, a.record_id, a.event) for a in ledger.alerts()) == [
            ("dcl", "10501/D1", "opened"),
            ("dropstream", "9", "opened"),
        ]
        # The rewritten episode is the one the lifecycle continues: its opened alert counts.
        assert (
            ledger.record_alerts([Notification("dcl", "late_order", "10501/D1", "opened", day)], sent_at=T0)
            == []
        )


def test_a_dropstream_shipment_notified_or_archived_is_no_longer_open(ledger):
    """All DropStream shipment states normalize to shipped or error: its raw state says it is done."""

    def shipment(vendor: str, ident: str, raw: str, status: str = "shipped") -> Shipment:
        return Shipment(vendor=vendor, id=ident, order_id="1", status=status, raw_status=raw)

    rows = [
        shipment("dropstream", "s1", "new"),
        shipment("dropstream", "s2", "scheduled_notify_of_shipment"),
        shipment("dropstream", "s3", "errored_notifying_of_shipment", "error"),
        shipment("dropstream", "s4", "notified_shipped"),
        shipment("dropstream", "s5", "archived"),
        shipment("stream", "t1", "in_transit"),  # Stream's shipped is in flight: open
        shipment("stream", "t2", "delivered", "delivered"),
    ]
    ledger.merge("shipments", rows, conn_id="c", observed_at=T0)
    assert ledger.open_record_ids("dropstream", "shipments", "c") == {
        "s1": "new",
        "s2": "scheduled_notify_of_shipment",
        "s3": "errored_notifying_of_shipment",
    }
    assert sorted(ledger.open_record_created("dropstream", "shipments", "c")) == ["s1", "s2", "s3"]
    assert ledger.open_record_ids("stream", "shipments", "c") == {"t1": "in_transit"}
    assert [(s.vendor, s.id) for s in ledger.iter_records("shipments", open_only=True)] == [
        ("dropstream", "s1"),
        ("dropstream", "s2"),
        ("dropstream", "s3"),
        ("stream", "t1"),
    ]
    # Notified the next day: it leaves the open set.
    ledger.merge(
        "shipments",
        [shipment("dropstream", "s1", "notified_shipped")],
        conn_id="c",
        observed_at=T0 + timedelta(days=1),
    )
    assert sorted(ledger.open_record_ids("dropstream", "shipments", "c")) == ["s2", "s3"]


# ------------------------------------------------------------------ merges in chunks (PostgreSQL)


@pytest.fixture(params=[None, 1, 2, 3])
def chunk(request, ledger):
    """Rows per chunk of a pipelined merge (PostgreSQL through psycopg 3); None: as configured."""
    if request.param is not None:
        if not ledger.dialect.merge_chunk:
            pytest.skip("this dialect stages every row, then merges once")
        ledger.dialect.merge_chunk = request.param
    return request.param


def stored_orders(ledger: Ledger) -> list[tuple]:
    ts = ledger.dialect.ts_value
    rows = rows_of(
        ledger,
        "SELECT order_id, account, status, raw_status, CAST(raw AS TEXT), version_at, observed_at, "
        "first_seen_at FROM fulfillment_orders ORDER BY order_id, account",
    )
    return [(*row[:5], ts(row[5]), ts(row[6]), ts(row[7])) for row in rows]


def test_copies_of_a_record_across_chunks_rank_as_in_one_merge(ledger, chunk):
    t1, t2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    rows = [
        LedgerRow(order("1"), '{"v":"1"}', observed_at=T0),
        LedgerRow(order("2"), '{"v":"2a"}', observed_at=T0),
        LedgerRow(order("2", "processing", "processing", since=t1), '{"v":"2b"}', observed_at=t2),
        LedgerRow(order("3"), '{"v":"3"}', observed_at=T0),
        LedgerRow(order("1"), '{"v":"1"}', observed_at=T0),  # the same copy again
        LedgerRow(order("4"), '{"v":"4"}', observed_at=T0),
        LedgerRow(order("3", since=T0 - timedelta(hours=1)), '{"v":"3-old"}', observed_at=t2),
    ]
    result = ledger.merge("orders", rows, run=RUN, observed_at=t2)
    assert result == MergeResult(inserted=4, unchanged=1, stale=2, state_changes=4)
    assert stored_orders(ledger) == [
        ("1", "", "pending", "new", '{"v":"1"}', T0, T0, T0),
        # The newest copy, first seen when it was read (the older copy is not what was stored).
        ("2", "", "processing", "processing", '{"v":"2b"}', t1, t2, t2),
        ("3", "", "pending", "new", '{"v":"3"}', T0, T0, T0),
        ("4", "", "pending", "new", '{"v":"4"}', T0, T0, T0),
    ]
    assert changes(ledger) == [
        ("1", None, "pending", "new", T0, T0),
        ("3", None, "pending", "new", T0, T0),
        ("4", None, "pending", "new", T0, T0),
        ("2", None, "processing", "processing", t2, t1),
    ]
    # Merged again, in chunks or not, nothing moves: each copy is a copy of the stored version or older.
    assert ledger.merge("orders", rows, run=RUN, observed_at=t2) == MergeResult(unchanged=5, stale=2)


def test_within_a_chunk_ties_become_stale_when_a_later_chunk_has_a_newer_copy(ledger, chunk):
    t1 = T0 + timedelta(hours=1)
    rows = [
        order("x"),
        order("x"),
        order("y"),
        order("x", "processing", "processing", since=t1),
        order("z"),
    ]
    assert ledger.merge("orders", rows, observed_at=t1) == MergeResult(inserted=3, stale=2, state_changes=3)
    assert order_states(ledger) == {
        "x": ("processing", "processing"),
        "y": ("pending", "new"),
        "z": ("pending", "new"),
    }
    assert changes(ledger) == [
        ("x", None, "processing", "processing", t1, t1),
        ("y", None, "pending", "new", t1, T0),
        ("z", None, "pending", "new", t1, T0),
    ]


def test_the_later_of_two_copies_of_one_version_wins_across_chunks(ledger, chunk):
    rows = [LedgerRow(order("7"), '{"copy":1}'), LedgerRow(order("7", "error", "error"), '{"copy":2}')]
    assert ledger.merge("orders", rows, observed_at=T0) == MergeResult(
        inserted=1, unchanged=1, state_changes=1
    )
    assert stored_orders(ledger) == [("7", "", "error", "error", '{"copy":2}', T0, T0, T0)]
    assert changes(ledger) == [("7", None, "error", "error", T0, T0)]


def test_stored_records_among_new_ones_are_counted_against_their_stored_version(ledger, chunk):
    t1, t3, t4 = (T0 + timedelta(hours=n) for n in (1, 3, 4))
    ledger.merge("orders", [order("1", "shipped", "shipped", since=t3), order("5")], observed_at=t3)
    rows = [
        order("2"),
        order("1", "queued", "pending", since=t1),  # older than stored: stale
        order("3"),
        order("1", "processing", "processing", since=t1),  # the same older version: unchanged
        order("5", "processing", "processing", since=t1),  # newer: updated, a state change
        order("2"),
    ]
    assert ledger.merge("orders", rows, observed_at=t4) == MergeResult(
        inserted=2, updated=1, unchanged=2, stale=1, state_changes=3
    )
    assert order_states(ledger) == {
        "1": ("shipped", "shipped"),
        "2": ("pending", "new"),
        "3": ("pending", "new"),
        "5": ("processing", "processing"),
    }
    assert changes(ledger) == [
        ("1", None, "shipped", "shipped", t3, t3),
        ("5", None, "pending", "new", t3, T0),
        ("2", None, "pending", "new", t4, T0),
        ("3", None, "pending", "new", t4, T0),
        ("5", "pending", "processing", "processing", t4, t1),
    ]


def test_record_ids_shared_by_two_accounts_in_two_chunks_share_the_state_change_key(ledger, chunk):
    """Order "A/5" without an account and order "5" of account "A": one record_id, "A/5"."""
    rows = [LedgerRow(order("A/5")), LedgerRow(order("6")), LedgerRow(order("5"), account="A")]
    assert ledger.merge("orders", rows, observed_at=T0) == MergeResult(inserted=3, state_changes=2)
    # As one merge writes it: the first in key order ("5" before "A/5").
    assert sorted((c.record_id, c.account) for c in ledger.state_changes()) == [("6", ""), ("A/5", "A")]


@pytest.mark.parametrize("step", ["staged", "ranked", "state_changes", "merged"])
def test_a_crash_mid_merge_in_chunks_leaves_the_ledger_as_it_was(ledger, monkeypatch, step):
    if not ledger.dialect.merge_chunk:
        pytest.skip("this dialect stages every row, then merges once")
    ledger.dialect.merge_chunk = 1
    ledger.merge("orders", [order("1")], observed_at=T0)
    before = (ledger.counts(), order_states(ledger), changes(ledger))
    later = T0 + timedelta(hours=1)
    rows = [order("2"), order("3"), order("2", "shipped", "shipped", since=later), order("1")]
    seen: list[str] = []

    def crash(name: str) -> None:
        if name == step and "state_changes" in seen:  # once the first chunk is written
            raise Crash(name)
        seen.append(name)

    with monkeypatch.context() as patch, pytest.raises(Crash):
        patch.setattr(ledger, "_step", crash)
        ledger.merge("orders", rows, observed_at=later)
    assert (ledger.counts(), order_states(ledger), changes(ledger)) == before
    assert ledger.merge("orders", rows, observed_at=later) == MergeResult(
        inserted=2, unchanged=1, stale=1, state_changes=2
    )


def test_a_first_sighting_changed_at_is_its_status_since_else_modified_at_else_when_read(ledger, chunk):
    """One rule on every merge path (a set-wise insert, or new records copied straight in)."""
    t1, t2, t3 = (T0 + timedelta(hours=h) for h in (1, 2, 3))
    orders = [
        order("a", since=t1, modified_at=t2),
        order("b", since=None, modified_at=t2),
        order("c", since=None),
    ]
    assert ledger.merge("orders", orders, run=RUN, observed_at=t3) == MergeResult(inserted=3, state_changes=3)
    # A shipment has no modified_at: a shipped_at is not when its state began.
    shipments = [
        Shipment(
            vendor="dropstream", id="s1", order_id="a", status="shipped", raw_status="x", status_since=t1
        ),
        Shipment(vendor="dropstream", id="s2", order_id="b", status="shipped", raw_status="x", shipped_at=t2),
    ]
    assert ledger.merge("shipments", shipments, run=RUN, observed_at=t3) == MergeResult(
        inserted=2, state_changes=2
    )
    assert {(c.record_id, c.changed_at) for c in ledger.state_changes()} == {
        ("a", t1),
        ("b", t2),
        ("c", t3),
        ("s1", t1),
        ("s2", t3),
    }
