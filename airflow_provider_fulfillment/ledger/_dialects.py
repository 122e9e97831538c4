"""What differs between SQLite and PostgreSQL under the ledger; everything else is shared SQL.

The differences are few and kept here: column types, how timestamps and JSON travel, how a
write transaction starts (SQLite takes its write lock up front, so two writers queue instead of
failing half-way), how migrations are serialized, and how rows reach the staging table (SQLite:
`executemany`; PostgreSQL: `COPY ... FROM STDIN`, the bulk path).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

STAGE_CHUNK = 5_000
READ_BATCH = 2_000
# Rows a PostgreSQL merge takes at a time: the server merges one chunk while the client encodes
# the next (a few chunks' COPY payloads in memory, ~15 MB each).
MERGE_CHUNK = 25_000

T = TypeVar("T")


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is refused (ambiguous times never enter the ledger)."""
    if value.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def chunked(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def overlapped(chunks: Iterable[T], handle: Callable[[T], None]) -> None:
    """`handle` each chunk in a worker thread while this thread prepares the next one.

    The worker waits on the database with the GIL released, so the two overlap on two cores. The
    chunks are made here, in the caller's thread (its iterator never changes thread). An error on
    either side stops both once the worker's current chunk is done: the connection is never used
    by two threads at once, and the caller's rollback comes after the worker's last statement.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-merge") as worker:
        running: Future[None] | None = None
        try:
            for chunk in chunks:
                if running is not None:
                    running.result()
                running = worker.submit(handle, chunk)
            if running is not None:
                running.result()
        except BaseException:
            if running is not None:
                wait([running])
            raise


class Dialect:
    name: str
    ts: str
    json: str
    placeholder: str
    raw_json: str  # the raw vendor JSON's column type
    seq_column: str  # the staging table's row number column
    temp_table_options = ""  # what follows a temp table's name (PostgreSQL: ON COMMIT DROP)
    # Rows per chunk of a merge in chunks (`Ledger._merge_in_chunks`); 0: stage every row, then merge once.
    merge_chunk = 0

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._open_cursor: Any = None  # the transaction in progress, which calls inside it join

    # ---------------------------------------------------------------- values in and out
    def ts_param(self, value: datetime | None) -> Any:
        raise NotImplementedError

    def ts_value(self, value: Any) -> datetime | None:
        raise NotImplementedError

    def json_value(self, value: Any) -> Any:
        """A JSON column as Python data (PostgreSQL's driver has already parsed JSONB)."""
        if value is None or not isinstance(value, (str, bytes)):
            return value
        return json.loads(value)

    def sql(self, text: str) -> str:
        """Shared SQL uses `?` for parameters; PostgreSQL's driver wants `%s`."""
        return text

    def ddl(self, text: str) -> str:
        return text.format(ts=self.ts, json=self.json)

    def json_from_text(self, expression: str) -> str:
        """A staged JSON text as a JSON column's type (parsed once, on write, for the rows written)."""
        return expression

    def lock_for_merge(self, cursor: Any, table: str) -> None:
        """Keep other writers of `table` out until commit, so "which records exist" stays true."""

    def differs(self, staged: str, stored: str, kind: str = "value") -> str:
        """SQL: a staged column's value is not the stored one (NULLs compare as values).

        `kind`: "json" for a normalized JSON column, "raw" for the vendor's JSON, else "value".
        """
        return f"{staged} IS NOT {stored}"

    # ---------------------------------------------------------------- transactions
    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Any]:
        """One transaction; `write=False` for reads, which never wait for a writer.

        Inside another transaction, this one is part of it: it commits or rolls back with it.
        """
        if self._open_cursor is not None:
            yield self._open_cursor
            return
        with self._begin(write) as cursor:
            self._open_cursor = cursor
            try:
                yield cursor
            finally:
                self._open_cursor = None

    def _begin(self, write: bool) -> Any:
        raise NotImplementedError

    def lock_migrations(self, cursor: Any) -> None:
        """Serialize schema upgrades between processes opening the ledger at once."""

    def stage(
        self,
        cursor: Any,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Iterable[Sequence[Any]],
    ) -> int:
        """Load rows into a staging table; `types` are the columns' SQL types ('ts', 'json', 'text', 'int')."""
        raise NotImplementedError

    def encode_payloads(
        self, kinds: Sequence[Sequence[str]], items: Iterable[Sequence[Sequence[Any]]]
    ) -> tuple[list[Any], int]:
        """Bulk-load payloads, one per element of `kinds`: each item is one row for each payload,
        whose columns are of those kinds (as stored: 'ts', 'text', 'int', 'json', 'raw'); and the
        item count."""
        raise NotImplementedError

    def load_payload(self, cursor: Any, table: str, columns: Sequence[str], payload: Any) -> None:
        raise NotImplementedError

    def unless_duplicate(self, cursor: Any, write: Callable[[], T]) -> T | None:
        """`write()`, or None and nothing written when it met a key already stored."""
        raise NotImplementedError

    def create_temp_table(self, cursor: Any, table: str, columns_sql: str) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(f"CREATE TEMP TABLE {table} ({columns_sql}){self.temp_table_options}")

    def create_temp_table_as(self, cursor: Any, table: str, select: str, params: Sequence[Any] = ()) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(f"CREATE TEMP TABLE {table}{self.temp_table_options} AS {select}", tuple(params))

    def analyze(self, cursor: Any, table: str, columns: Sequence[str]) -> None:
        """Give the planner the staged row count (a fresh temp table has no statistics)."""

    def stream(self, query: str, params: Sequence[Any]) -> Iterator[Sequence[Any]]:
        raise NotImplementedError


class SqliteDialect(Dialect):
    name = "sqlite"
    ts = "TEXT"
    json = "TEXT"
    raw_json = "TEXT"
    placeholder = "?"
    # The rowid: joining the rank table back to the staged rows is a lookup, not a temporary index.
    seq_column = "seq INTEGER PRIMARY KEY"

    def __init__(self, connection: Any, open_connection: Any) -> None:
        super().__init__(connection)
        self._open = open_connection
        prepare_sqlite(connection)

    def ts_param(self, value: datetime | None) -> str | None:
        # Fixed width, always UTC ("2026-01-01T00:00:00.000000+00:00"): the text sorts and compares
        # exactly like the instant.
        if value is None:
            return None
        if value.utcoffset():  # also refuses a naive value (None)
            value = value.astimezone(UTC)
        elif value.tzinfo is None:
            utc(value)
        return value.isoformat(timespec="microseconds")

    def ts_value(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return utc(value)
        return utc(datetime.fromisoformat(value))

    @contextmanager
    def _begin(self, write: bool) -> Iterator[Any]:
        cursor = self.connection.cursor()
        # A writer takes the lock up front (two writers queue, never deadlock mid-way); a reader
        # reads its WAL snapshot while a load runs.
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield cursor
        except BaseException:
            self.connection.rollback()
            raise
        else:
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    def stage(
        self,
        cursor: Any,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Iterable[Sequence[Any]],
    ) -> int:
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        count = 0
        for chunk in chunked(rows, STAGE_CHUNK):
            cursor.executemany(statement, chunk)
            count += len(chunk)
        return count

    def stream(self, query: str, params: Sequence[Any]) -> Iterator[Sequence[Any]]:
        connection = self._open()
        prepare_sqlite(connection)
        try:
            cursor = connection.execute(query, tuple(params))
            while batch := cursor.fetchmany(READ_BATCH):
                yield from batch
        finally:
            connection.close()


# Staged JSON travels as text: the server parses it once, into the stored column, and only for
# the rows that are written (a rerun parses nothing).
_PG_TYPES = {"ts": "timestamptz", "json": "text", "text": "text", "int": "int8"}
# Columns as the tables store them (rows copied straight in): the raw JSON as sent, the rest parsed.
_PG_STORED_TYPES = {"ts": "timestamptz", "text": "text", "int": "int8", "json": "jsonb", "raw": "json"}


def _as_is(text: str) -> str:
    return text


def prepare_sqlite(connection: Any) -> None:
    """Explicit transactions, WAL (readers never block the writer), and waiting for the write lock."""
    connection.isolation_level = None
    connection.execute("PRAGMA busy_timeout = 30000")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")


class PostgresDialect(Dialect):
    # Staging tables vanish with the merge's transaction, whichever way it ends.
    temp_table_options = " ON COMMIT DROP"
    name = "postgresql"
    ts = "TIMESTAMPTZ"
    json = "JSONB"
    # Kept as the vendor sent it, byte for byte, and checked rather than parsed into a tree
    # (schema migration 5); its binary COPY format is the text itself.
    raw_json = "JSON"
    placeholder = "%s"
    seq_column = "seq BIGINT NOT NULL"  # joined by hash; an index would only slow the COPY

    def __init__(self, connection: Any, open_connection: Any) -> None:
        super().__init__(connection)
        self._open = open_connection
        # PostgresHook hands out psycopg 3 where it is installed (with SQLAlchemy 2), else psycopg2.
        self.psycopg3 = type(connection).__module__.split(".")[0] == "psycopg"
        self.merge_chunk = MERGE_CHUNK if self.psycopg3 else 0
        self._encoder: Any = None
        self._prepare(connection)

    @staticmethod
    def _prepare(connection: Any) -> None:
        connection.autocommit = False
        with connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
        connection.commit()

    def ts_param(self, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            utc(value)  # refuses it
        return value  # the server stores the instant, whatever the offset

    def ts_value(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return utc(value)

    def sql(self, text: str) -> str:
        return text.replace("%", "%%").replace("?", "%s")

    @contextmanager
    def _begin(self, write: bool) -> Iterator[Any]:
        cursor = self.connection.cursor()
        try:
            yield cursor
        except BaseException:
            self.connection.rollback()
            raise
        else:
            self.connection.commit()
        finally:
            cursor.close()

    def lock_migrations(self, cursor: Any) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('fulfillment_schema_version'))")

    def analyze(self, cursor: Any, table: str, columns: Sequence[str]) -> None:
        # The join columns only: sampling the wide JSON columns would cost more than it tells.
        cursor.execute(f"ANALYZE {table} ({', '.join(columns)})")

    def json_from_text(self, expression: str) -> str:
        return f"CAST({expression} AS JSONB)"

    def differs(self, staged: str, stored: str, kind: str = "value") -> str:
        if kind == "raw":  # `json` has no equality: its texts, as sent
            return f"CAST({staged} AS TEXT) IS DISTINCT FROM CAST({stored} AS TEXT)"
        if kind == "json":
            return f"{self.json_from_text(staged)} IS DISTINCT FROM {stored}"
        return f"{staged} IS DISTINCT FROM {stored}"

    def lock_for_merge(self, cursor: Any, table: str) -> None:
        # Self-conflicting, so merges of one table queue; readers (plain SELECT) are never blocked.
        cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")

    def stage(
        self,
        cursor: Any,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Iterable[Sequence[Any]],
    ) -> int:
        if not self.psycopg3:
            return self._stage_csv(cursor, table, columns, rows)
        # Binary COPY: the server parses no timestamp text, about twice the rows a second of text COPY.
        count = 0
        pg_types = [_PG_TYPES[kind] for kind in types]
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(pg_types)
            write_row = copy.write_row
            for row in rows:
                write_row(row)
                count += 1
        return count

    def encode_payloads(
        self, kinds: Sequence[Sequence[str]], items: Iterable[Sequence[Sequence[Any]]]
    ) -> tuple[list[Any], int]:
        # Binary COPY data made without the server (psycopg's documented FileWriter), through a
        # cursor of its own that never executes: its adapters are not the ones the merge uses.
        # JSON arrives as text and goes as it is (the server parses it once, on COPY).
        from psycopg.copy import Copy, FileWriter
        from psycopg.types.json import set_json_dumps

        if self._encoder is None:
            self._encoder = self.connection.cursor()
            set_json_dumps(_as_is, context=self._encoder)
        buffers = [io.BytesIO() for _ in kinds]
        count = 0
        with ExitStack() as stack:
            copies = [
                stack.enter_context(Copy(self._encoder, binary=True, writer=FileWriter(buffer)))
                for buffer in buffers
            ]
            for copy, payload_kinds in zip(copies, kinds, strict=True):
                copy.set_types([_PG_STORED_TYPES[kind] for kind in payload_kinds])
            writers = [copy.write_row for copy in copies]
            for item in items:
                for write_row, row in zip(writers, item, strict=True):
                    write_row(row)
                count += 1
        return [buffer.getbuffer() for buffer in buffers], count

    def load_payload(self, cursor: Any, table: str, columns: Sequence[str], payload: Any) -> None:
        from psycopg.copy import LibpqWriter

        # Handed to libpq whole, then one wait for the server: each wait for a flush would be a
        # wait for the GIL too, which the thread encoding the next chunk holds.
        writer = LibpqWriter(cursor, flush_threshold=len(payload) + 1)
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(statement, writer=writer) as copy:
            copy.write(payload)

    def unless_duplicate(self, cursor: Any, write: Callable[[], T]) -> T | None:
        from psycopg.errors import UniqueViolation

        cursor.execute("SAVEPOINT fulfillment_unless_duplicate")
        try:
            written: T | None = write()
        except UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT fulfillment_unless_duplicate")
            written = None
        cursor.execute("RELEASE SAVEPOINT fulfillment_unless_duplicate")
        return written

    @staticmethod
    def _stage_csv(cursor: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """psycopg2: CSV COPY, a chunk at a time (`\\N` is NULL, so an empty string stays one)."""
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
        count = 0
        for chunk in chunked(rows, STAGE_CHUNK):
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            for row in chunk:
                writer.writerow(
                    ["\\N" if v is None else v.isoformat() if isinstance(v, datetime) else v for v in row]
                )
            buffer.seek(0)
            cursor.copy_expert(statement, buffer)
            count += len(chunk)
        return count

    def stream(self, query: str, params: Sequence[Any]) -> Iterator[Sequence[Any]]:
        connection = self._open()
        self._prepare(connection)
        try:
            # A server-side cursor: the server holds the result, we hold one batch at a time.
            with connection.cursor(name="fulfillment_ledger_stream") as cursor:
                cursor.itersize = READ_BATCH
                cursor.execute(self.sql(query), tuple(params))
                while batch := cursor.fetchmany(READ_BATCH):
                    yield from batch
            connection.rollback()
        finally:
            connection.close()
