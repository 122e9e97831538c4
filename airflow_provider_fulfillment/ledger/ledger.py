"""`Ledger`: the durable record of orders, shipments, their state changes, findings and alerts.

Reached through an Airflow connection and common.sql (SQLite or PostgreSQL), created and migrated
on first use. Every write call is one transaction (or part of the caller's `Ledger.transaction()`):
a crash mid-call leaves the ledger as it was.
Merging is set-wise SQL over a staging table, never row by row; PostgreSQL merges in chunks while
the client encodes the next one, copying chunks of new records straight in.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain, islice
from typing import Any, Literal, NamedTuple

from pydantic_core import to_json

from airflow_provider_fulfillment.ledger import schema
from airflow_provider_fulfillment.ledger._dialects import (
    Dialect,
    PostgresDialect,
    SqliteDialect,
    chunked,
    overlapped,
    utc,
)
from airflow_provider_fulfillment.models.common import LineItem, Order, Shipment
from airflow_provider_fulfillment.models.states import TERMINAL_RAW_STATES
from airflow_provider_fulfillment.rules.types import (
    AlertRow,
    Finding,
    FindingRow,
    Notification,
    RunRef,
    record_key,
)

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "fulfillment_ledger"
DEFAULT_SQLITE_FILE = "fulfillment_ledger.db"

LedgerResource = Literal["order", "shipment"]
# A record stays open (change capture re-reads it) until it reaches one of these statuses, or one
# of its vendor's terminal raw states (a DropStream shipment: notified_shipped, archived).
TERMINAL_STATUSES: dict[str, frozenset[str]] = {
    "order": frozenset({"shipped", "delivered", "canceled"}),
    "shipment": frozenset({"delivered", "canceled"}),
}
TERMINAL_RAW: dict[str, dict[str, frozenset[str]]] = {
    kind: {vendor: raws for (vendor, resource), raws in TERMINAL_RAW_STATES.items() if resource == f"{kind}s"}
    for kind in TERMINAL_STATUSES
}


def ledger_resource(resource: str) -> LedgerResource:
    """'order' / 'shipment' from either spelling ('orders' is what hooks and manifests say)."""
    value = {"order": "order", "orders": "order", "shipment": "shipment", "shipments": "shipment"}.get(
        resource
    )
    if value is None:
        raise ValueError(f"resource must be 'orders' or 'shipments', got {resource!r}")
    return value  # type: ignore[return-value]


class LedgerOrder(Order):
    """An order as the ledger holds it: the common shape and its account (DCL's account_number)."""

    account: str = ""


class LedgerShipment(Shipment):
    """A shipment as the ledger holds it: the common shape and its account."""

    account: str = ""


class LedgerRow(NamedTuple):
    """A normalized record to merge, with what the normalized shape does not carry."""

    record: Order | Shipment
    raw: str | bytes | dict[str, Any] | None = None
    account: str = ""
    # The vendor's own version time when the record does not carry it (a DCL shipment: its order's
    # modified_at). Else modified_at / status_since, else the observation time.
    version_at: datetime | None = None
    # When this row was read, if not the merge's `observed_at` (rows from several manifests).
    observed_at: datetime | None = None
    # The vendor connection it was read through, if not the merge's `conn_id`.
    conn_id: str | None = None


@dataclass(frozen=True)
class MergeResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    state_changes: int = 0

    def __add__(self, other: MergeResult) -> MergeResult:
        return MergeResult(
            *(a + b for a, b in zip(asdict(self).values(), asdict(other).values(), strict=True))
        )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class FindingsDelta:
    opened: list[FindingRow]
    still_open: list[FindingRow]
    resolved: list[FindingRow]


@dataclass(frozen=True)
class StateChangeRow:
    vendor: str
    resource: str
    record_id: str
    account: str
    status: str
    raw_status: str
    previous_status: str | None
    observed_at: datetime
    changed_at: datetime
    dag_id: str | None
    run_id: str | None


@dataclass(frozen=True)
class _Table:
    name: str
    key: str  # the record id column
    columns: tuple[str, ...]  # staged columns, in order (first_seen_at is derived)
    timestamps: frozenset[str]
    json_columns: frozenset[str]
    # Where a first sighting's `changed_at` comes from: the first of these the record has, else the
    # observation time. Both merge paths (SQL and the chunked copy-in) read it from here.
    changed_at: tuple[str, ...]


_RECORD_TABLES: dict[str, _Table] = {
    "order": _Table(
        schema.ORDERS,
        "order_id",
        (
            "vendor",
            "account",
            "order_id",
            "number",
            "status",
            "raw_status",
            "status_since",
            "created_at",
            "ordered_at",
            "modified_at",
            "ship_by",
            "items",
            "version_at",
            "observed_at",
            "raw",
            "conn_id",
        ),
        frozenset(
            {
                "status_since",
                "created_at",
                "ordered_at",
                "modified_at",
                "ship_by",
                "version_at",
                "observed_at",
            }
        ),
        frozenset({"items", "raw"}),
        ("status_since", "modified_at"),
    ),
    "shipment": _Table(
        schema.SHIPMENTS,
        "shipment_id",
        (
            "vendor",
            "account",
            "shipment_id",
            "order_id",
            "tracking_numbers",
            "status",
            "raw_status",
            "status_since",
            "created_at",
            "shipped_at",
            "expected_delivery_at",
            "delivered_at",
            "items",
            "version_at",
            "observed_at",
            "raw",
            "conn_id",
        ),
        frozenset(
            {
                "status_since",
                "created_at",
                "shipped_at",
                "expected_delivery_at",
                "delivered_at",
                "version_at",
                "observed_at",
            }
        ),
        frozenset({"tracking_numbers", "items", "raw"}),
        ("status_since",),
    ),
}

_FINDING_COLUMNS = (
    "vendor",
    "kind",
    "record_id",
    "account",
    "resource",
    "severity",
    "since",
    "opened_at",
    "last_seen_at",
    "resolved_at",
    "details",
    "opened_dag_id",
    "opened_run_id",
    "opened_task_id",
    "resolved_dag_id",
    "resolved_run_id",
    "resolved_task_id",
)
_ALERT_COLUMNS = (
    "vendor",
    "kind",
    "record_id",
    "event",
    "episode",
    "sent_at",
    "severity",
    "message",
    "dag_id",
    "run_id",
    "task_id",
)
_STATE_CHANGE_COLUMNS = (
    "vendor",
    "resource",
    "record_id",
    "account",
    "status",
    "raw_status",
    "previous_status",
    "observed_at",
    "changed_at",
    "dag_id",
    "run_id",
)


class _StagedShape:
    """What the staged rows hold, collected while they stream (for the write paths' choices)."""

    MAX_OBSERVED = 100  # beyond that many observation times, assume a state change may conflict

    def __init__(self) -> None:
        self.accounts: set[str] = set()
        self.observed_times: set[Any] = set()

    @property
    def observed(self) -> set[Any] | None:
        """The distinct observation times staged, or None when there were too many to look up."""
        return self.observed_times if len(self.observed_times) <= self.MAX_OBSERVED else None


def _check_accounts(accounts: Iterable[str]) -> None:
    """Refuse an account `record_key` could not reverse, before anything is written."""
    for account in accounts:
        record_key(account, "")


@dataclass
class _ChunkedMerge:
    """A merge in chunks in progress (`Ledger._merge_in_chunks`)."""

    rows: int = 0
    result: MergeResult = MergeResult()
    # The subtransactions that copied chunks of new records straight in (their rows' xmin).
    copied_in: list[str] = field(default_factory=list)
    staged: int = 0  # rows in the staging table, from the first chunk that could not be copied in


_STAGE = "fulfillment_stage"
_RANKED = "fulfillment_stage_ranked"
_BACK = "fulfillment_stage_back"  # records copied in whose record the staged rows have too
_COPIED = "fulfillment_stage_copied"  # a chunk encoded to be copied in, staged after all


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def _items_text(items: Sequence[LineItem]) -> str:
    return to_json(items).decode() if items else "[]"


class _Where:
    """A WHERE clause built from the filters a caller gave (None means "any")."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []

    def add(self, clause: str, *params: Any) -> _Where:
        self.clauses.append(clause)
        self.params.extend(params)
        return self

    def equal(self, column: str, value: Any) -> _Where:
        return self if value is None else self.add(f"{column} = ?", value)

    def among(self, column: str, values: Iterable[str] | None, negate: bool = False) -> _Where:
        if values is None:
            return self
        wanted = sorted(set(values))
        if not wanted:
            return self if negate else self.add("1 = 0")
        return self.add(f"{column} {'NOT IN' if negate else 'IN'} ({', '.join('?' * len(wanted))})", *wanted)

    @property
    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.clauses) if self.clauses else ""


def default_message(notification: Notification) -> str:
    return f"{notification.event}: {notification.kind} {notification.vendor}/{notification.record_id}"


class Ledger:
    """The fulfillment ledger behind an Airflow connection (SQLite or PostgreSQL, via common.sql).

    :param ledger_conn_id: the connection; when it is not defined, an SQLite file at
        `$AIRFLOW_HOME/fulfillment_ledger.db` is used (and the log says so).
    """

    def __init__(self, ledger_conn_id: str = DEFAULT_CONN_ID, *, hook: Any = None) -> None:
        self.ledger_conn_id = ledger_conn_id
        self._hook = hook
        self._dialect: Dialect | None = None

    # ---------------------------------------------------------------- connection and schema
    @property
    def hook(self) -> Any:
        if self._hook is None:
            self._hook = _ledger_hook(self.ledger_conn_id)
        return self._hook

    @property
    def dialect(self) -> Dialect:
        if self._dialect is None:
            hook = self.hook
            conn_type = getattr(hook, "conn_type", "") or ""
            if conn_type == "sqlite":
                dialect: Dialect = SqliteDialect(hook.get_conn(), hook.get_conn)
            elif conn_type in ("postgres", "postgresql"):
                dialect = PostgresDialect(hook.get_conn(), hook.get_conn)
            else:
                raise ValueError(
                    f"ledger connection '{self.ledger_conn_id}' has type {conn_type!r}; "
                    "the ledger supports 'sqlite' and 'postgres'"
                )
            self._dialect = dialect
            self._migrate(dialect)
        return self._dialect

    @property
    def backend(self) -> str:
        return self.dialect.name

    def close(self) -> None:
        if self._dialect is not None:
            self._dialect.connection.close()
            self._dialect = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write inside is one transaction: all of them land, or none (a load's orders,
        shipments, state changes and watermarks). A failure inside rolls all of them back."""
        with self.dialect.transaction():
            yield

    def schema_version(self) -> int:
        return self._one("SELECT MAX(version) FROM " + schema.SCHEMA_VERSION_TABLE)[0] or 0

    def _migrate(self, dialect: Dialect) -> None:
        with dialect.transaction() as cursor:
            dialect.lock_migrations(cursor)
            cursor.execute(dialect.ddl(schema.CREATE_VERSION_TABLE))
            cursor.execute(f"SELECT MAX(version) FROM {schema.SCHEMA_VERSION_TABLE}")
            current = cursor.fetchone()[0] or 0
            pending = [m for m in schema.MIGRATIONS if m.version > current]
            for migration in pending:
                for statement in migration.statements_for(dialect.name):
                    cursor.execute(dialect.ddl(statement))
                cursor.execute(
                    dialect.sql(
                        f"INSERT INTO {schema.SCHEMA_VERSION_TABLE} (version, description, applied_at) "
                        "VALUES (?, ?, ?)"
                    ),
                    (migration.version, migration.description, dialect.ts_param(datetime.now(UTC))),
                )
        if pending:
            log.info(
                "Fulfillment ledger (%s, connection '%s'): schema upgraded from version %d to %d",
                dialect.name,
                self.ledger_conn_id,
                current,
                pending[-1].version,
            )

    # ---------------------------------------------------------------- small helpers
    def _one(self, query: str, params: Sequence[Any] = ()) -> Any:
        dialect = self.dialect
        with dialect.transaction(write=False) as cursor:
            cursor.execute(dialect.sql(query), tuple(params))
            return cursor.fetchone()

    def _all(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        dialect = self.dialect
        with dialect.transaction(write=False) as cursor:
            cursor.execute(dialect.sql(query), tuple(params))
            return list(cursor.fetchall())

    def _step(self, name: str) -> None:
        """A point between the statements of a write (tests inject failures here)."""

    # ---------------------------------------------------------------- merge
    def merge(
        self,
        resource: str,
        rows: Iterable[LedgerRow | Order | Shipment],
        *,
        conn_id: str | None = None,
        run: RunRef | None = None,
        observed_at: datetime,
        account: str = "",
    ) -> MergeResult:
        """Merge records in one transaction; a version only replaces an older one.

        `rows` is streamed (bounded memory). Duplicates within the call keep the newest version.
        Each first observation and each status change of a newer version is written once to
        `fulfillment_state_changes`.
        """
        kind = ledger_resource(resource)
        table = _RECORD_TABLES[kind]
        run = run or RunRef()
        dialect = self.dialect
        observed = utc(observed_at)
        shape = _StagedShape()
        staged = self._stage_rows(kind, rows, observed, conn_id, account, shape)
        with dialect.transaction() as cursor:
            merge = self._merge_in_chunks if dialect.merge_chunk else self._merge_at_once
            count, result = merge(cursor, kind, table, run, shape, staged)
            if count == 0:
                return MergeResult()
            self._step("merged")
        log.info("Ledger merge of %d %ss: %s", count, kind, result.as_dict())
        return result

    def _merge_at_once(
        self,
        cursor: Any,
        kind: str,
        table: _Table,
        run: RunRef,
        shape: _StagedShape,
        staged: Iterator[tuple[Any, ...]],
    ) -> tuple[int, MergeResult]:
        """Stage every row, then merge them in one go (SQLite; PostgreSQL through psycopg2)."""
        dialect = self.dialect
        self._create_stage(cursor, table)
        kinds = [self._column_kind(table, name) for name in table.columns]
        count = dialect.stage(cursor, _STAGE, (*table.columns, "seq"), (*kinds, "int"), staged)
        self._step("staged")
        _check_accounts(shape.accounts)
        result = MergeResult()
        if count:
            dialect.lock_for_merge(cursor, table.name)
            result = self._merge_staged(cursor, kind, table, run, shape, _STAGE, count)
        cursor.execute(f"DROP TABLE {_STAGE}")
        return count, result

    def _merge_in_chunks(
        self,
        cursor: Any,
        kind: str,
        table: _Table,
        run: RunRef,
        shape: _StagedShape,
        staged: Iterator[tuple[Any, ...]],
    ) -> tuple[int, MergeResult]:
        """Merge chunk by chunk, the server writing one while the client encodes the next.

        While every chunk holds only new records, each once, it is copied straight into the table
        with its first state changes (no staging, no rank), in a subtransaction: a record already
        stored, a second copy or a state change already recorded fails it, and it is undone. From
        that chunk on, the rows are staged and merged at once, with the copied-in versions of
        their records taken back first (`_take_back`): exactly what one merge of every row gives.
        """
        dialect = self.dialect
        record_columns = (*table.columns, "first_seen_at")
        # As stored: the raw JSON as sent ("raw"), the normalized JSON parsed ("json"). Staged:
        # the normalized JSON as text, parsed only for the rows written.
        record_kinds = (
            *("raw" if name == "raw" else self._column_kind(table, name) for name in table.columns),
            "ts",
        )
        change_kinds = tuple("ts" if name.endswith("_at") else "text" for name in _STATE_CHANGE_COLUMNS)
        stage_kinds = (
            *(
                "raw" if name == "raw" else "ts" if name in table.timestamps else "text"
                for name in table.columns
            ),
            "int",
        )
        merging = _ChunkedMerge()
        dialect.lock_for_merge(cursor, table.name)

        def chunks() -> Iterator[tuple[list[Any], int, tuple[Any, ...] | None]]:
            while True:
                batch = islice(staged, dialect.merge_chunk)
                if merging.staged:  # staging began (the worker's chunk before the last one)
                    payloads, rows = dialect.encode_payloads((stage_kinds,), ((row,) for row in batch))
                    first = None
                else:
                    if (first := next(batch, None)) is None:
                        return
                    pairs = self._records_and_first_sightings(kind, table, run, chain((first,), batch))
                    payloads, rows = dialect.encode_payloads((record_kinds, change_kinds), pairs)
                if not rows:
                    return
                _check_accounts(shape.accounts)  # before the worker writes the chunk
                yield payloads, rows, first

        def merge_chunk(chunk: tuple[list[Any], int, tuple[Any, ...] | None]) -> None:
            payloads, rows, first = chunk
            position, merging.rows = merging.rows, merging.rows + rows
            if first is not None and not merging.staged:
                copied_in = dialect.unless_duplicate(
                    cursor, lambda: self._copy_in(cursor, table, record_columns, *payloads, first)
                )
                if copied_in is not None:
                    merging.copied_in.append(copied_in)
                    merging.result += MergeResult(inserted=rows, state_changes=rows)
                    return
            if not merging.staged:
                self._create_stage(cursor, table)
            if first is None:
                dialect.load_payload(cursor, _STAGE, (*table.columns, "seq"), payloads[0])
            else:  # encoded to be copied in: staged through a table of the stored types
                column_types = ", ".join(
                    f"{name} {self._stored_type(table, name)}" for name in record_columns
                )
                dialect.create_temp_table(
                    cursor, _COPIED, f"{column_types}, seq BIGINT GENERATED ALWAYS AS IDENTITY"
                )
                dialect.load_payload(cursor, _COPIED, record_columns, payloads[0])
                self._restage(cursor, table, _COPIED, f"seq - 1 + {int(position)}")
                cursor.execute(f"DROP TABLE {_COPIED}")
            merging.staged += rows
            self._step("staged")

        overlapped(chunks(), merge_chunk)
        result = merging.result
        if merging.staged:
            taken_back, moved = self._take_back(cursor, kind, table, merging.copied_in)
            result += self._merge_staged(cursor, kind, table, run, shape, _STAGE, merging.staged + moved)
            result += taken_back
            cursor.execute(f"DROP TABLE {_STAGE}")
        return merging.rows, result

    def _create_stage(self, cursor: Any, table: _Table) -> None:
        """The staging table: the record's columns as staged, and the row's sequence number."""
        column_types = ", ".join(f"{name} {self._column_type(table, name)}" for name in table.columns)
        self.dialect.create_temp_table(cursor, _STAGE, f"{column_types}, {self.dialect.seq_column}")

    def _restage(self, cursor: Any, table: _Table, source: str, seq: str) -> int:
        """Stage rows of the stored types (`source`) as the staging table has them; how many."""
        values = ", ".join(
            f"CAST({name} AS TEXT)" if name in table.json_columns and name != "raw" else name
            for name in table.columns
        )
        cursor.execute(
            f"INSERT INTO {_STAGE} ({', '.join(table.columns)}, seq) SELECT {values}, {seq} FROM {source}"
        )
        return max(cursor.rowcount, 0)

    @staticmethod
    def _records_and_first_sightings(
        kind: str, table: _Table, run: RunRef, staged: Iterable[tuple[Any, ...]]
    ) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        """Each staged row as its stored record (first seen now) and its first state change."""
        at = {name: i for i, name in enumerate(table.columns)}
        vendor, record_id, account, status, raw_status, observed = (
            at[name] for name in ("vendor", table.key, "account", "status", "raw_status", "observed_at")
        )
        sources = [at[name] for name in table.changed_at]
        for row in staged:
            seen = row[observed]
            changed = next((row[i] for i in sources if row[i] is not None), seen)
            yield (
                (*row[:-1], seen),  # the staged row is followed by its sequence number
                (
                    row[vendor],
                    kind,
                    record_key(row[account], row[record_id]),
                    row[account],
                    row[status],
                    row[raw_status],
                    None,
                    seen,
                    changed,
                    run.dag_id,
                    run.run_id,
                ),
            )

    def _copy_in(
        self,
        cursor: Any,
        table: _Table,
        columns: Sequence[str],
        records: Any,
        changes: Any,
        first: Sequence[Any],
    ) -> str:
        """Copy a chunk of new records and their first state changes straight in; the
        subtransaction's id, read off the chunk's first record."""
        dialect = self.dialect
        dialect.load_payload(cursor, table.name, columns, records)
        self._step("staged")
        dialect.load_payload(cursor, schema.STATE_CHANGES, _STATE_CHANGE_COLUMNS, changes)
        self._step("state_changes")
        cursor.execute(
            dialect.sql(
                f"SELECT CAST(xmin AS TEXT) FROM {table.name} WHERE vendor = ? AND account = ? AND {table.key} = ?"
            ),
            (first[0], first[1], first[2]),
        )
        return str(cursor.fetchone()[0])

    def _take_back(
        self, cursor: Any, kind: str, table: _Table, copied_in: Sequence[str]
    ) -> tuple[MergeResult, int]:
        """Move the copied-in records that the staged rows have too (or whose first state change
        has the key a staged row's may have: "A/5" of no account, "5" of account "A") into the
        staging table, as their earliest copies, and take back what copying them in wrote and
        counted: those records were new, so the ledger is as it was for them, and the merge of
        the staged rows ranks each record once, over all of its copies."""
        if not copied_in:
            return MergeResult(), 0
        dialect, key = self.dialect, table.key

        def record_id(alias: str) -> str:
            return schema.record_key_sql(f"{alias}.account", f"{alias}.{key}")

        dialect.analyze(cursor, _STAGE, ("vendor", "account", key))
        dialect.create_temp_table_as(
            cursor,
            _BACK,
            dialect.sql(
                f"""SELECT {", ".join(f"t.{name}" for name in (*table.columns, "first_seen_at"))}
                FROM {table.name} t
                WHERE CAST(t.xmin AS TEXT) = ANY(?) AND (
                    EXISTS (SELECT 1 FROM {_STAGE} s
                        WHERE s.vendor = t.vendor AND s.account = t.account AND s.{key} = t.{key})
                    OR EXISTS (SELECT 1 FROM {_STAGE} s
                        WHERE s.vendor = t.vendor AND s.status = t.status AND s.raw_status = t.raw_status
                            AND s.observed_at = t.observed_at
                            AND {record_id("s")} = {record_id("t")}))"""
            ),
            (list(copied_in),),
        )
        cursor.execute(
            dialect.sql(
                f"""DELETE FROM {schema.STATE_CHANGES} c USING {_BACK} b
                WHERE c.vendor = b.vendor AND c.resource = ?
                    AND c.record_id = {record_id("b")}
                    AND c.account = b.account AND c.status = b.status AND c.raw_status = b.raw_status
                    AND c.observed_at = b.observed_at AND CAST(c.xmin AS TEXT) = ANY(?)"""
            ),
            (kind, list(copied_in)),
        )
        taken = max(cursor.rowcount, 0)
        cursor.execute(
            f"""DELETE FROM {table.name} t USING {_BACK} b
            WHERE t.vendor = b.vendor AND t.account = b.account AND t.{key} = b.{key}"""
        )
        moved = self._restage(cursor, table, _BACK, "-1")  # before every staged row
        cursor.execute(f"DROP TABLE {_BACK}")
        return MergeResult(inserted=-moved, state_changes=-taken), moved

    @staticmethod
    def _column_kind(table: _Table, name: str) -> str:
        return "ts" if name in table.timestamps else "json" if name in table.json_columns else "text"

    def _column_type(self, table: _Table, name: str) -> str:
        """The staging column's type.

        The normalized JSON columns are staged as text and parsed once, for the rows written. The
        raw JSON is staged as its stored type (PostgreSQL `json`: the text, checked while the COPY
        streams, when the server would otherwise wait for the client).
        """
        if name == "raw":
            return self.dialect.raw_json
        return self.dialect.ts if self._column_kind(table, name) == "ts" else "TEXT"

    def _stored_type(self, table: _Table, name: str) -> str:
        """A column's type as the table stores it (the staging table of a merge in chunks)."""
        if name == "raw":
            return self.dialect.raw_json
        kind = "ts" if name == "first_seen_at" else self._column_kind(table, name)
        return {"ts": self.dialect.ts, "json": self.dialect.json}.get(kind, "TEXT")

    def _stage_rows(
        self,
        kind: str,
        rows: Iterable[LedgerRow | Order | Shipment],
        observed: datetime,
        conn_id: str | None,
        default_account: str,
        shape: _StagedShape,
    ) -> Iterator[tuple[Any, ...]]:
        ts = self.dialect.ts_param
        observed_param = ts(observed)
        accounts, observed_times, most_observed = shape.accounts, shape.observed_times, shape.MAX_OBSERVED
        for seq, item in enumerate(rows):
            row_observed, row_conn = observed_param, conn_id
            if isinstance(item, LedgerRow):
                record, raw, account, version_at, seen_at, read_through = item
                if seen_at is not None:
                    row_observed = ts(utc(seen_at))
                row_conn = read_through or conn_id
            else:
                record, raw, account, version_at = item, None, "", None
            account = account or default_account
            accounts.add(account)
            if len(observed_times) <= most_observed:  # bounded: past the cap, the set is not used
                observed_times.add(row_observed)
            if kind == "order":
                if not isinstance(record, Order):
                    raise TypeError(f"merge('orders') got a {type(record).__name__}, not a common.Order")
                version = version_at or record.modified_at or record.status_since
                yield (
                    record.vendor,
                    account,
                    record.id,
                    record.number,
                    record.status,
                    record.raw_status,
                    ts(record.status_since),
                    ts(record.created_at),
                    ts(record.ordered_at),
                    ts(record.modified_at),
                    ts(record.ship_by),
                    _items_text(record.items),
                    ts(version) if version else row_observed,
                    row_observed,
                    _json_text(raw),
                    row_conn,
                    seq,
                )
            else:
                if not isinstance(record, Shipment):
                    raise TypeError(
                        f"merge('shipments') got a {type(record).__name__}, not a common.Shipment"
                    )
                version = version_at or record.status_since
                yield (
                    record.vendor,
                    account,
                    record.id,
                    record.order_id,
                    json.dumps(record.tracking_numbers),
                    record.status,
                    record.raw_status,
                    ts(record.status_since),
                    ts(record.created_at),
                    ts(record.shipped_at),
                    ts(record.expected_delivery_at),
                    ts(record.delivered_at),
                    _items_text(record.items),
                    ts(version) if version else row_observed,
                    row_observed,
                    _json_text(raw),
                    row_conn,
                    seq,
                )

    def _merge_staged(
        self, cursor: Any, kind: str, table: _Table, run: RunRef, shape: _StagedShape, stage: str, staged: int
    ) -> MergeResult:
        """Rank the staged rows, count, then write: state changes, new records, newer versions.

        Writers of the table are kept out until commit (the caller's `lock_for_merge`; SQLite: the
        write lock taken at BEGIN), so the records found missing are still missing when inserted:
        new records are plain inserts, in key order, with no conflict check per row.
        """
        dialect = self.dialect
        key = table.key
        dialect.analyze(cursor, stage, ("vendor", "account", key, "seq"))
        # Narrow: each staged row's rank among its record's copies in this call, beside the stored
        # version; the wide columns (raw JSON) stay in the staging table until they are written.
        dialect.create_temp_table_as(
            cursor,
            _RANKED,
            f"""SELECT s.seq,
                ROW_NUMBER() OVER w AS rn,
                s.version_at,
                FIRST_VALUE(s.version_at) OVER w AS best_version,
                t.version_at AS old_version,
                t.status AS old_status,
                CASE WHEN t.{key} IS NULL THEN 0 ELSE 1 END AS existed,
                CASE WHEN s.observed_at > t.observed_at THEN 1 ELSE 0 END AS observed_later,
                CASE WHEN s.status <> t.status OR s.raw_status <> t.raw_status THEN 1 ELSE 0 END
                    AS status_moved
            FROM {stage} s
            LEFT JOIN {table.name} t
                ON t.vendor = s.vendor AND t.account = s.account AND t.{key} = s.{key}
            WINDOW w AS (
                PARTITION BY s.vendor, s.account, s.{key}
                ORDER BY s.version_at DESC, s.observed_at DESC, s.seq DESC
            )""",
        )
        self._step("ranked")
        cursor.execute(
            f"""SELECT
                COALESCE(SUM(CASE WHEN rn = 1 AND existed = 0 THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN rn = 1 AND existed = 1 AND version_at > old_version
                    THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN (rn = 1 AND existed = 1 AND version_at = old_version)
                    OR (rn > 1 AND version_at = best_version) THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN (rn = 1 AND existed = 1 AND version_at < old_version)
                    OR (rn > 1 AND version_at < best_version) THEN 1 ELSE 0 END), 0)
            FROM {_RANKED}"""
        )
        inserted, newer, unchanged, stale = (int(value) for value in cursor.fetchone())
        # A newer version saying nothing new (a record without a vendor version, read again) is
        # unchanged, though it is still written: its version moves on. Compared here, on the newer
        # rows only: in the rank, the wide columns would travel through its sort.
        same = self._newer_but_same(cursor, table, stage) if newer else 0
        updated, unchanged = newer - same, unchanged + same
        state_changes = self._write_state_changes(
            cursor, kind, table, run, shape, stage, all_new=inserted == staged
        )
        self._step("state_changes")
        columns = table.columns
        values = ", ".join(self._staged_value(table, name) for name in columns)
        if inserted == staged:
            # Every staged row is a record the ledger has not seen (a first load): no join back.
            source, where = f"{stage} s", ""
        else:
            source, where = (
                f"{_RANKED} r JOIN {stage} s ON s.seq = r.seq",
                " WHERE r.rn = 1 AND r.existed = 0",
            )
        if inserted:
            cursor.execute(
                f"""INSERT INTO {table.name} ({", ".join(columns)}, first_seen_at)
                SELECT {values}, s.observed_at FROM {source}{where}"""
            )
        # A newer version, or the same version read later (its observation time moves on).
        assignments = ", ".join(
            f"{name} = {self._staged_value(table, name)}"
            for name in columns
            if name not in ("vendor", "account", key)
        )
        cursor.execute(
            f"""UPDATE {table.name} SET {assignments}
            FROM {_RANKED} r JOIN {stage} s ON s.seq = r.seq
            WHERE r.rn = 1 AND r.existed = 1
                AND (r.version_at > r.old_version OR (r.version_at = r.old_version AND r.observed_later = 1))
                AND {table.name}.vendor = s.vendor AND {table.name}.account = s.account
                AND {table.name}.{key} = s.{key}"""
        )
        cursor.execute(f"DROP TABLE {_RANKED}")
        return MergeResult(inserted, updated, unchanged, stale, state_changes)

    def _newer_but_same(self, cursor: Any, table: _Table, stage: str) -> int:
        """How many newer versions say nothing the stored record does not (every column but the
        version, the observation time and the connection)."""
        differs = self.dialect.differs
        content = " OR ".join(
            differs(f"s.{name}", f"t.{name}", self._column_kind(table, name) if name != "raw" else "raw")
            for name in table.columns
            if name not in ("vendor", "account", table.key, "version_at", "observed_at", "conn_id")
        )
        key = table.key
        cursor.execute(
            f"""SELECT COUNT(*) FROM {_RANKED} r
            JOIN {stage} s ON s.seq = r.seq
            JOIN {table.name} t ON t.vendor = s.vendor AND t.account = s.account AND t.{key} = s.{key}
            WHERE r.rn = 1 AND r.existed = 1 AND r.version_at > r.old_version AND NOT ({content})"""
        )
        return int(cursor.fetchone()[0])

    def _staged_value(self, table: _Table, name: str) -> str:
        if name not in table.json_columns or name == "raw":  # raw is staged as its stored type
            return f"s.{name}"
        return self.dialect.json_from_text(f"s.{name}")

    def _write_state_changes(
        self,
        cursor: Any,
        kind: str,
        table: _Table,
        run: RunRef,
        shape: _StagedShape,
        stage: str,
        *,
        all_new: bool,
    ) -> int:
        """A first sighting, or a newer version in another state: one row, written once.

        Its record_id is `rules.types.record_key(account, id)` ("10501/D1"): the key has no
        account column. Rows go in key order. The per-row conflict check is skipped when no row
        can conflict: one account staged (an id "A/1" of account '' and id "1" of account "A"
        would share one), and no state change of this resource yet at any of the staged
        observation times (an index lookup).
        """
        dialect = self.dialect
        key = table.key
        may_conflict = len(shape.accounts) != 1 or shape.observed is None
        if not may_conflict:
            observed = sorted(shape.observed)
            cursor.execute(
                dialect.sql(
                    f"SELECT 1 FROM {schema.STATE_CHANGES} WHERE resource = ? "
                    f"AND observed_at IN ({', '.join('?' * len(observed))}) LIMIT 1"
                ),
                (kind, *observed),
            )
            may_conflict = cursor.fetchone() is not None
        changed_at = ", ".join(f"s.{name}" for name in (*table.changed_at, "observed_at"))
        record_id = schema.record_key_sql("s.account", f"s.{key}")
        source = (
            f"{stage} s"  # every staged row is a first sighting
            if all_new
            else f"""{_RANKED} r JOIN {stage} s ON s.seq = r.seq
                WHERE r.rn = 1 AND (r.existed = 0 OR (r.version_at > r.old_version AND r.status_moved = 1))"""
        )
        cursor.execute(
            dialect.sql(
                f"""INSERT INTO {schema.STATE_CHANGES}
                (vendor, resource, record_id, status, raw_status, observed_at, account,
                 previous_status, changed_at, dag_id, run_id)
                SELECT s.vendor, ?, {record_id}, s.status, s.raw_status, s.observed_at, s.account,
                    {"NULL" if all_new else "r.old_status"}, COALESCE({changed_at}), ?, ?
                FROM {source}
                ORDER BY s.vendor, s.{key}, s.status, s.raw_status, s.observed_at"""
                + (" ON CONFLICT DO NOTHING" if may_conflict else "")
            ),
            (kind, run.dag_id, run.run_id),
        )
        return max(cursor.rowcount, 0)

    # ---------------------------------------------------------------- records out
    def iter_records(
        self,
        resource: str,
        *,
        vendor: str | None = None,
        statuses: Iterable[str] | None = None,
        open_only: bool = False,
        account: str | None = None,
    ) -> Iterator[LedgerOrder | LedgerShipment]:
        """Records as common models with their account, streamed (one batch in memory at a time)."""
        kind = ledger_resource(resource)
        table = _RECORD_TABLES[kind]
        where, params = self._record_filter(kind, vendor, statuses, open_only, account)
        columns = [
            name for name in table.columns if name not in ("version_at", "observed_at", "raw", "conn_id")
        ]
        query = f"SELECT {', '.join(columns)} FROM {table.name}{where} ORDER BY vendor, account, {table.key}"
        dialect = self.dialect
        model = LedgerOrder if kind == "order" else LedgerShipment
        for row in dialect.stream(query, params):
            values = dict(zip(columns, row, strict=True))
            values["id"] = values.pop(table.key)
            for name in table.timestamps & values.keys():
                values[name] = dialect.ts_value(values[name])
            for name in table.json_columns & values.keys():
                values[name] = dialect.json_value(values[name]) or []
            yield model(**values)

    def _record_filter(
        self,
        kind: str,
        vendor: str | None,
        statuses: Iterable[str] | None,
        open_only: bool,
        account: str | None = None,
        conn_id: str | None = None,
    ) -> tuple[str, list[Any]]:
        where = _Where().equal("vendor", vendor).equal("account", account).equal("conn_id", conn_id)
        where.among("status", statuses)
        if open_only:
            where.among("status", TERMINAL_STATUSES[kind], negate=True)
            for closed_vendor, raws in sorted(TERMINAL_RAW[kind].items()):
                if vendor in (None, closed_vendor):
                    listed = ", ".join("?" * len(raws))
                    where.add(f"NOT (vendor = ? AND raw_status IN ({listed}))", closed_vendor, *sorted(raws))
        return where.sql, where.params

    def open_record_ids(
        self, vendor: str, resource: str, conn_id: str | None = None, *, account: str | None = None
    ) -> dict[str, str]:
        """{record id: raw status} of the records not yet in a terminal state (what change capture re-reads)."""
        kind = ledger_resource(resource)
        table = _RECORD_TABLES[kind]
        where, params = self._record_filter(kind, vendor, None, True, account, conn_id)
        query = f"SELECT {table.key}, raw_status FROM {table.name}{where}"
        return {record_id: raw for record_id, raw in self.dialect.stream(query, params)}

    def open_record_created(
        self, vendor: str, resource: str, conn_id: str | None = None, *, account: str | None = None
    ) -> dict[str, datetime | None]:
        """{record id: created_at} of the records not yet in a terminal state (finding them again
        where the vendor has no lookup by id: DropStream shipments)."""
        kind = ledger_resource(resource)
        table = _RECORD_TABLES[kind]
        where, params = self._record_filter(kind, vendor, None, True, account, conn_id)
        query = f"SELECT {table.key}, created_at FROM {table.name}{where}"
        ts = self.dialect.ts_value
        return {record_id: ts(created) for record_id, created in self.dialect.stream(query, params)}

    def counts(self) -> dict[str, int]:
        """Rows per ledger table (for logs, the UI and tests)."""
        return {name: int(self._one(f"SELECT COUNT(*) FROM {name}")[0]) for name in schema.TABLES}

    # ---------------------------------------------------------------- state changes
    def state_changes(
        self, *, vendor: str | None = None, resource: str | None = None, since: datetime | None = None
    ) -> Iterator[StateChangeRow]:
        dialect = self.dialect
        where = _Where().equal("vendor", vendor).equal("resource", resource and ledger_resource(resource))
        if since is not None:
            where.add("observed_at >= ?", dialect.ts_param(since))
        query = (
            f"SELECT {', '.join(_STATE_CHANGE_COLUMNS)} FROM {schema.STATE_CHANGES}{where.sql} "
            "ORDER BY observed_at, vendor, resource, record_id, changed_at"
        )
        for row in dialect.stream(query, where.params):
            values = dict(zip(_STATE_CHANGE_COLUMNS, row, strict=True))
            values["observed_at"] = dialect.ts_value(values["observed_at"])
            values["changed_at"] = dialect.ts_value(values["changed_at"])
            yield StateChangeRow(**values)

    # ---------------------------------------------------------------- watermarks
    def get_watermark(self, vendor: str, resource: str, conn_id: str) -> datetime | None:
        row = self._one(
            f"SELECT watermark FROM {schema.WATERMARKS} WHERE vendor = ? AND resource = ? AND conn_id = ?",
            (vendor, ledger_resource(resource), conn_id),
        )
        return None if row is None else self.dialect.ts_value(row[0])

    def set_watermark(
        self,
        vendor: str,
        resource: str,
        conn_id: str,
        value: datetime,
        *,
        lookback: timedelta = timedelta(0),
        run: RunRef | None = None,
        now: datetime | None = None,
    ) -> None:
        """Store where the next incremental read resumes; it never moves backwards."""
        dialect = self.dialect
        run = run or RunRef()
        with dialect.transaction() as cursor:
            cursor.execute(
                dialect.sql(
                    f"""INSERT INTO {schema.WATERMARKS}
                    (vendor, resource, conn_id, watermark, lookback_seconds, updated_at, run_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (vendor, resource, conn_id) DO UPDATE SET
                        watermark = excluded.watermark, lookback_seconds = excluded.lookback_seconds,
                        updated_at = excluded.updated_at, run_id = excluded.run_id
                    WHERE {schema.WATERMARKS}.watermark IS NULL
                        OR excluded.watermark >= {schema.WATERMARKS}.watermark"""
                ),
                (
                    vendor,
                    ledger_resource(resource),
                    conn_id,
                    dialect.ts_param(value),
                    int(lookback.total_seconds()),
                    dialect.ts_param(now or datetime.now(UTC)),
                    run.run_id,
                ),
            )

    # ---------------------------------------------------------------- findings
    def findings(
        self,
        *,
        vendor: str | None = None,
        open_only: bool = True,
        kinds: Iterable[str] | None = None,
    ) -> list[FindingRow]:
        where = _Where().equal("vendor", vendor).among("kind", kinds)
        if open_only:
            where.add("resolved_at IS NULL")
        rows = self._all(
            f"SELECT {', '.join(_FINDING_COLUMNS)} FROM {schema.FINDINGS}{where.sql} "
            "ORDER BY opened_at, vendor, kind, record_id",
            where.params,
        )
        return [self._finding_row(row) for row in rows]

    def _finding_row(self, row: Sequence[Any]) -> FindingRow:
        values = dict(zip(_FINDING_COLUMNS, row, strict=True))
        ts = self.dialect.ts_value
        return FindingRow(
            vendor=values["vendor"],
            kind=values["kind"],
            record_id=values["record_id"],
            account=values["account"],
            resource=values["resource"],
            severity=values["severity"],
            opened_at=ts(values["opened_at"]),  # type: ignore[arg-type]
            last_seen_at=ts(values["last_seen_at"]),  # type: ignore[arg-type]
            resolved_at=ts(values["resolved_at"]),
            since=ts(values["since"]),
            details=self.dialect.json_value(values["details"]) or {},
            opened_by=RunRef(values["opened_dag_id"], values["opened_run_id"], values["opened_task_id"]),
            resolved_by=RunRef(
                values["resolved_dag_id"], values["resolved_run_id"], values["resolved_task_id"]
            ),
        )

    def sync_findings(
        self,
        findings: Iterable[Finding],
        *,
        vendors: Iterable[str],
        kinds: Iterable[str],
        now: datetime,
        run: RunRef | None = None,
    ) -> FindingsDelta:
        """Open what is new, keep open what persists, resolve what is gone — within vendors x kinds.

        A resolved finding whose cause returns is reopened as a new episode (new opened_at).
        """
        run = run or RunRef()
        dialect = self.dialect
        ts = dialect.ts_param
        now_param = ts(now)
        current: dict[tuple[str, str, str], Finding] = {}
        for finding in findings:
            current[finding.key] = finding
        scope_vendors = sorted(set(vendors) | {key[0] for key in current})
        scope_kinds = sorted(set(kinds) | {key[1] for key in current})
        evaluated_vendors, evaluated_kinds = set(vendors), set(kinds)
        opened: list[tuple[str, str, str]] = []
        still_open: list[tuple[str, str, str]] = []
        resolved: list[tuple[str, str, str]] = []
        with dialect.transaction() as cursor:
            existing: dict[tuple[str, str, str], bool] = {}
            if scope_vendors and scope_kinds:
                cursor.execute(
                    dialect.sql(
                        f"SELECT vendor, kind, record_id, resolved_at FROM {schema.FINDINGS} "
                        f"WHERE vendor IN ({', '.join('?' * len(scope_vendors))}) "
                        f"AND kind IN ({', '.join('?' * len(scope_kinds))})"
                    ),
                    (*scope_vendors, *scope_kinds),
                )
                existing = {(v, k, r): resolved_at is None for v, k, r, resolved_at in cursor.fetchall()}
            inserts, reopens, refreshes, resolves = [], [], [], []
            for key, finding in current.items():
                details = json.dumps(finding.details, separators=(",", ":"), default=str)
                common = (finding.account, finding.resource, finding.severity, ts(finding.since), details)
                if key not in existing:
                    inserts.append((*key, *common, now_param, now_param, run.dag_id, run.run_id, run.task_id))
                    opened.append(key)
                elif not existing[key]:
                    reopens.append((*common, now_param, now_param, run.dag_id, run.run_id, run.task_id, *key))
                    opened.append(key)
                else:
                    refreshes.append((*common, now_param, *key))
                    still_open.append(key)
            for key, is_open in existing.items():
                if (
                    is_open
                    and key not in current
                    and key[0] in evaluated_vendors
                    and key[1] in evaluated_kinds
                ):
                    resolves.append((now_param, run.dag_id, run.run_id, run.task_id, *key))
                    resolved.append(key)
            where_key = "WHERE vendor = ? AND kind = ? AND record_id = ?"
            statements = (
                (
                    f"""INSERT INTO {schema.FINDINGS} (vendor, kind, record_id, account, resource, severity,
                    since, details, opened_at, last_seen_at, opened_dag_id, opened_run_id, opened_task_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    inserts,
                ),
                (
                    f"""UPDATE {schema.FINDINGS} SET account = ?, resource = ?, severity = ?, since = ?,
                    details = ?, opened_at = ?, last_seen_at = ?, opened_dag_id = ?, opened_run_id = ?,
                    opened_task_id = ?, resolved_at = NULL, resolved_dag_id = NULL, resolved_run_id = NULL,
                    resolved_task_id = NULL {where_key}""",
                    reopens,
                ),
                (
                    f"""UPDATE {schema.FINDINGS} SET account = ?, resource = ?, severity = ?, since = ?,
                    details = ?, last_seen_at = ? {where_key}""",
                    refreshes,
                ),
                (
                    f"""UPDATE {schema.FINDINGS} SET resolved_at = ?, resolved_dag_id = ?,
                    resolved_run_id = ?, resolved_task_id = ? {where_key}""",
                    resolves,
                ),
            )
            for statement, batch in statements:
                for chunk in chunked(batch, 1000):
                    cursor.executemany(dialect.sql(statement), chunk)
        rows = {row.key: row for row in self._findings_by_key(opened + still_open + resolved)}
        return FindingsDelta(
            opened=[rows[key] for key in opened],
            still_open=[rows[key] for key in still_open],
            resolved=[rows[key] for key in resolved],
        )

    def _findings_by_key(self, keys: Sequence[tuple[str, str, str]]) -> list[FindingRow]:
        wanted = set(keys)
        if not wanted:
            return []
        vendors = sorted({key[0] for key in wanted})
        rows = self._all(
            f"SELECT {', '.join(_FINDING_COLUMNS)} FROM {schema.FINDINGS} "
            f"WHERE vendor IN ({', '.join('?' * len(vendors))})",
            vendors,
        )
        return [finding for finding in map(self._finding_row, rows) if finding.key in wanted]

    # ---------------------------------------------------------------- alerts
    def record_alerts(
        self,
        notifications: Iterable[Notification],
        *,
        sent_at: datetime,
        run: RunRef | None = None,
        message_of: Callable[[Notification], str] = default_message,
    ) -> list[AlertRow]:
        """Record what was notified; returns the rows actually recorded.

        'opened' and 'resolved' are recorded at most once per episode: a second attempt is
        ignored (and not returned), so a rerun never notifies twice.
        """
        run = run or RunRef()
        dialect = self.dialect
        sent = utc(sent_at)
        recorded: list[AlertRow] = []
        statement = dialect.sql(
            f"INSERT INTO {schema.ALERTS} ({', '.join(_ALERT_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_ALERT_COLUMNS))}) ON CONFLICT DO NOTHING"
        )
        with dialect.transaction() as cursor:
            for notification in notifications:
                message = message_of(notification)
                episode = utc(notification.episode)
                cursor.execute(
                    statement,
                    (
                        notification.vendor,
                        notification.kind,
                        notification.record_id,
                        notification.event,
                        dialect.ts_param(episode),
                        dialect.ts_param(sent),
                        notification.severity,
                        message,
                        run.dag_id,
                        run.run_id,
                        run.task_id,
                    ),
                )
                if cursor.rowcount == 1:
                    recorded.append(
                        AlertRow(
                            vendor=notification.vendor,
                            kind=notification.kind,
                            record_id=notification.record_id,
                            event=notification.event,
                            episode=episode,
                            sent_at=sent,
                            severity=notification.severity,
                            message=message,
                            sent_by=run,
                        )
                    )
        return recorded

    def _alert_row(self, row: Sequence[Any]) -> AlertRow:
        values = dict(zip(_ALERT_COLUMNS, row, strict=True))
        ts = self.dialect.ts_value
        return AlertRow(
            vendor=values["vendor"],
            kind=values["kind"],
            record_id=values["record_id"],
            event=values["event"],
            episode=ts(values["episode"]),  # type: ignore[arg-type]
            sent_at=ts(values["sent_at"]),  # type: ignore[arg-type]
            severity=values["severity"],
            message=values["message"] or "",
            sent_by=RunRef(values["dag_id"], values["run_id"], values["task_id"]),
        )

    def alerts(
        self, *, vendor: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AlertRow]:
        """The most recent alerts first."""
        where = _Where().equal("vendor", vendor)
        if since is not None:
            where.add("sent_at >= ?", self.dialect.ts_param(since))
        rows = self._all(
            f"SELECT {', '.join(_ALERT_COLUMNS)} FROM {schema.ALERTS}{where.sql} "
            f"ORDER BY sent_at DESC, vendor, kind, record_id, event LIMIT {int(limit)}",
            where.params,
        )
        return [self._alert_row(row) for row in rows]

    def alerts_for(self, keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], list[AlertRow]]:
        """Every alert of each finding key (vendor, kind, record_id), oldest first; keys without any map to []."""
        wanted = list(dict.fromkeys(tuple(key) for key in keys))
        result: dict[tuple[str, str, str], list[AlertRow]] = {key: [] for key in wanted}
        for chunk in chunked(wanted, 300):
            condition = " OR ".join("(vendor = ? AND kind = ? AND record_id = ?)" for _ in chunk)
            rows = self._all(
                f"SELECT {', '.join(_ALERT_COLUMNS)} FROM {schema.ALERTS} WHERE {condition} ORDER BY sent_at, event",
                [value for key in chunk for value in key],
            )
            for row in rows:
                alert = self._alert_row(row)
                result[(alert.vendor, alert.kind, alert.record_id)].append(alert)
        return result


# -------------------------------------------------------------------- the connection


def default_sqlite_path() -> str:
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return os.path.join(os.path.abspath(os.path.expanduser(home)), DEFAULT_SQLITE_FILE)


LEDGER_CONN_TYPES = frozenset({"sqlite", "postgres", "postgresql"})


def _ledger_hook(conn_id: str) -> Any:
    """The common.sql hook of the ledger connection, or an SQLite hook on the default file."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        path = default_sqlite_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        log.info("Ledger connection '%s' is not defined: using SQLite at %s", conn_id, path)
        return sqlite_file_hook(path)
    # Checked before get_hook(): a type whose provider is not installed would otherwise fail there,
    # with Airflow's words instead of ours.
    if connection.conn_type not in LEDGER_CONN_TYPES:
        raise ValueError(
            f"ledger connection '{conn_id}' has type {connection.conn_type!r}; "
            "the ledger supports 'sqlite' and 'postgres'"
        )
    hook = connection.get_hook()
    log.info("Ledger: connection '%s' (%s)", conn_id, connection.conn_type)
    return hook


def sqlite_file_hook(path: str) -> Any:
    """A SqliteHook on a file, with no Airflow connection behind it."""
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    class _FileSqliteHook(SqliteHook):
        def get_uri(self) -> str:
            return f"sqlite:///{path}"

    return _FileSqliteHook()
