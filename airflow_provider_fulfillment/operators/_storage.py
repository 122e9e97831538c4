"""Where extracted files live and how they are written and read back.

- Paths are Hive-style and deterministic (`vendor=…/resource=…/date=…/<start>_<end>.<ext>`), so a
  rerun of an interval overwrites its file instead of adding a second one.
- Writes are atomic: bytes go to a hidden temporary object next to the final path (a dot-prefixed
  name, which Spark, Hive, DuckDB and pandas skip), which is moved into place only when complete —
  `os.replace` on a local disk, `fs.mv` (copy + delete, each object write atomic) on object stores.
  On any failure the temporary object is deleted and the final path is left as it was.
- JSON lines are the records' own JSON, one a line, optionally gzip with a fixed header (no
  name, mtime 0) so the same records give the same bytes and the same sha256.
- Parquet has a schema fixed by the record's model class (not inferred per batch, which would drift):
  scalar fields become typed columns (timestamps in UTC, money as exact decimal strings), nested
  objects and lists become JSON text columns, and fields the vendor sent that the model does not
  declare go to one `_extra` JSON column; it is written in bounded row groups. Vendor records come
  as their bytes and are typed a row group at a time by pyarrow's JSON reader (`RawBatchColumns`),
  not through models; nested columns then hold the vendor's own JSON text of the value (it reads
  back to the same model as the model's re-serialization did).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import types
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from airflow.sdk import ObjectStoragePath

if TYPE_CHECKING:
    from pydantic import BaseModel

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "parquet")
COMPRESSIONS = (None, "gzip")
PARQUET_HINT = "pip install 'airflow-provider-fulfillment[parquet]'"
EXTRA_COLUMN = "_extra"
KIND_KEY = b"fulfillment:kind"
MODEL_KEY = b"fulfillment:model"
_LOCAL_PROTOCOLS = ("", "file", "local")
_FLUSH_BYTES = 1 << 20
_RAW_CHUNK_BYTES = 1 << 20  # vendor bytes typed at once (~300 DropStream orders): bounds the reader's buffers


# --------------------------------------------------------------------------- paths


def default_root() -> ObjectStoragePath:
    """`$AIRFLOW_HOME/fulfillment` (a local folder), used when no destination is given."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return ObjectStoragePath(f"file://{os.path.abspath(os.path.expanduser(home))}/fulfillment")


def to_path(value: Any, conn_id: str | None = None) -> ObjectStoragePath:
    """An ObjectStoragePath from a path, a URL string (`s3://bucket/x`, `/data/x`) or a path object."""
    if isinstance(value, ObjectStoragePath):
        return value
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a path or URL, got {value!r}")
    text = value.strip()
    if "://" not in text:
        text = "file://" + os.path.abspath(os.path.expanduser(text))
    return ObjectStoragePath(text, conn_id=conn_id) if conn_id else ObjectStoragePath(text)


def is_local(path: ObjectStoragePath) -> bool:
    return (path.protocol or "") in _LOCAL_PROTOCOLS


def uri_of(path: ObjectStoragePath) -> str:
    """The path as a URL a reader (and `to_path`) understands: `file:///…` for local files."""
    if is_local(path):
        return "file://" + os.path.abspath(path.path)
    return str(path)


def stamp(moment: datetime) -> str:
    """`20251001T000000Z`: sortable, no colons (safe on every store and OS)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y%m%dT%H%M%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def extension(fmt: str, compression: str | None) -> str:
    if fmt == "parquet":
        return "parquet"  # Parquet compresses inside the file
    return "jsonl.gz" if compression == "gzip" else "jsonl"


def partition_path(
    root: ObjectStoragePath, vendor: str, resource: str, start: datetime, end: datetime, filename_suffix: str
) -> ObjectStoragePath:
    """`<root>/vendor=<v>/resource=<r>/date=<start date>/<start>_<end><suffix>`."""
    day = start.astimezone(UTC).date().isoformat()
    name = f"{stamp(start)}_{stamp(end)}{filename_suffix}"
    return root / f"vendor={vendor}" / f"resource={resource}" / f"date={day}" / name


def hive_root(path: ObjectStoragePath) -> ObjectStoragePath | None:
    """The folder above `vendor=…/resource=…/date=…/file`, or None when the path is not laid out so."""
    parents = list(path.parents)
    if (
        len(parents) >= 4
        and parents[2].name.startswith("vendor=")
        and parents[1].name.startswith("resource=")
    ):
        return parents[3]
    return None


def hive_values(path: ObjectStoragePath) -> dict[str, str]:
    """`{"vendor": ..., "resource": ..., "date": ...}` read from the path's folders."""
    values: dict[str, str] = {}
    for part in path.parts:
        key, sep, value = part.partition("=")
        if sep and key in ("vendor", "resource", "date") and key not in values:
            values[key] = value
    return values


# --------------------------------------------------------------------------- atomic writes


class HashingSink:
    """A write-only file wrapper that counts and hashes every byte on its way to the real file."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        self._sha.update(view)
        self._raw.write(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._raw.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def close(self) -> None:  # the atomic writer closes the real file
        self.closed = True

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def temporary_sibling(final: ObjectStoragePath) -> ObjectStoragePath:
    return final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:12]}"


@contextmanager
def atomic_write(final: ObjectStoragePath) -> Iterator[HashingSink]:
    """Write to a hidden temporary object next to `final`, then move it into place.

    Readers see the old file or the whole new one, never a part. On error (including a task killed
    by a timeout) the temporary object is removed and the error propagates.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(final)
    try:
        with temporary.open("wb") as raw:
            sink = HashingSink(raw)
            yield sink
            raw.flush()
            if is_local(temporary):
                _fsync(raw)
        if is_local(final):
            os.replace(temporary.path, final.path)
        else:
            temporary.fs.mv(temporary.path, final.path)
    except BaseException:
        _remove_quietly(temporary)
        raise


def _fsync(raw: Any) -> None:
    """Make the bytes durable before the rename publishes them (best effort on odd file objects)."""
    for candidate in (raw, getattr(raw, "f", None), getattr(raw, "_f", None)):
        fileno = getattr(candidate, "fileno", None)
        if fileno is None:
            continue
        try:
            os.fsync(fileno())
            return
        except (OSError, ValueError, io.UnsupportedOperation, AttributeError):
            continue


def _remove_quietly(path: ObjectStoragePath) -> None:
    try:
        if path.exists():
            path.unlink()
    except Exception:  # noqa: BLE001 - the original error matters more
        log.warning("could not remove the temporary file %s", uri_of(path), exc_info=True)


# --------------------------------------------------------------------------- JSON lines


class JsonLinesWriter:
    """One JSON document a line into a sink, buffered, optionally gzip with a reproducible header."""

    def __init__(self, sink: Any, compression: str | None = None) -> None:
        self._gzip = (
            gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=6)
            if compression == "gzip"
            else None
        )
        self._out = self._gzip if self._gzip is not None else sink
        self._buffer = bytearray()

    def write_line(self, line: bytes | str) -> None:
        self._buffer += line.encode() if isinstance(line, str) else line
        self._buffer += b"\n"
        if len(self._buffer) >= _FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._out.write(self._buffer)
            self._buffer = bytearray()

    def close(self) -> None:
        self._flush()
        if self._gzip is not None:
            self._gzip.close()  # writes the trailer; leaves the sink open


# --------------------------------------------------------------------------- Parquet

Kind = Literal["int", "float", "bool", "str", "datetime", "date", "decimal", "json"]


def require_pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ImportError(f"format='parquet' needs pyarrow, which is not installed: {PARQUET_HINT}") from None
    return pyarrow


def _kind(annotation: Any) -> Kind:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        present = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _kind(present[0]) if len(present) == 1 else "json"
    if origin is Literal:
        values = get_args(annotation)
        return "str" if all(isinstance(v, str) for v in values) else "json"
    for python_type, kind in (
        (bool, "bool"),
        (int, "int"),
        (float, "float"),
        (str, "str"),
        (datetime, "datetime"),
        (date, "date"),
        (Decimal, "decimal"),
    ):
        if annotation is python_type:
            return kind  # type: ignore[return-value]
    return "json"


def columns_of(model: type[BaseModel]) -> list[tuple[str, Kind]]:
    """The Parquet columns of a model: its declared fields in order, plus `_extra` if it keeps extras."""
    columns: list[tuple[str, Kind]] = [
        (name, _kind(field.annotation)) for name, field in model.model_fields.items()
    ]
    if model.model_config.get("extra") == "allow":
        columns.append((EXTRA_COLUMN, "json"))
    return columns


def parquet_schema(model: type[BaseModel]) -> Any:
    pa = require_pyarrow()
    types_by_kind = {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "str": pa.string(),
        "datetime": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "decimal": pa.string(),
        "json": pa.string(),
    }
    fields = [
        pa.field(name, types_by_kind[kind], nullable=True, metadata={KIND_KEY: kind.encode()})
        for name, kind in columns_of(model)
    ]
    return pa.schema(fields, metadata={MODEL_KEY: f"{model.__module__}.{model.__qualname__}".encode()})


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class ParquetWriter:
    """Records of one model class into Parquet, in row groups of `row_group_size` (bounded memory).

    Records kept as the vendor's bytes (`write_raw`) are converted a row group at a time by
    `RawBatchColumns` (pyarrow's JSON reader, no models, no dicts); models and dicts (`write`) go
    through the model. Both give the same schema, so files and row groups concatenate.
    """

    def __init__(
        self, sink: Any, model: type[BaseModel], compression: str | None = None, row_group_size: int = 10_000
    ) -> None:
        require_pyarrow()
        import pyarrow.parquet as pq

        self._model = model
        self._schema = parquet_schema(model)
        self._columns = columns_of(model)
        self._json_fields = {name for name, kind in self._columns if kind == "json" and name != EXTRA_COLUMN}
        self._row_group_size = max(1, int(row_group_size))
        self._rows: list[dict[str, Any]] = []
        self._raw: list[bytes] = []  # vendor bytes not yet typed
        self._raw_size = 0
        self._typed: list[Any] = []  # Arrow tables of this row group, typed from the bytes
        self._typed_rows = 0
        self._raw_columns: RawBatchColumns | None = None
        self.fallback_batches = 0  # raw chunks that needed the model (unknown fields, odd values)
        self._writer = pq.ParquetWriter(
            sink, self._schema, compression=compression or "snappy", write_statistics=True
        )

    def row(self, record: BaseModel) -> dict[str, Any]:
        extra_keys = set(record.model_extra or ())
        wanted = self._json_fields | extra_keys
        dumped = record.model_dump(mode="json", include=wanted) if wanted else {}
        row: dict[str, Any] = {}
        for name, kind in self._columns:
            if name == EXTRA_COLUMN:
                extras = {key: dumped[key] for key in extra_keys if key in dumped}
                row[name] = _json_text(extras) if extras else None
                continue
            if kind == "json":
                value = dumped.get(name)
                row[name] = None if value is None else _json_text(value)
                continue
            value = getattr(record, name, None)
            row[name] = None if value is None else str(value) if kind == "decimal" else value
        return row

    def write(self, record: BaseModel | dict[str, Any]) -> None:
        if self._raw or self._typed:
            self._flush()
        if type(record) is dict:
            record = self._model.model_validate(record)
        self._rows.append(self.row(record))  # type: ignore[arg-type]
        if len(self._rows) >= self._row_group_size:
            self._flush()

    def write_raw(self, raw: bytes) -> None:
        """One record as the vendor's JSON bytes. They are typed in chunks of a few MB and held as
        Arrow columns (a fraction of the JSON's size) until a row group is full."""
        if self._rows:
            self._flush()
        self._raw.append(raw)
        self._raw_size += len(raw)
        if self._typed_rows + len(self._raw) >= self._row_group_size:
            self._flush()
        elif self._raw_size >= _RAW_CHUNK_BYTES:
            self._type_raw()

    def _type_raw(self) -> None:
        import pyarrow as pa

        if not self._raw:
            return
        if self._raw_columns is None:
            self._raw_columns = RawBatchColumns(self._model, self._schema)
        table = self._raw_columns.table(self._raw)
        if table is None:  # something the reader cannot type as the model does: the model decides
            self.fallback_batches += 1
            model = self._model
            table = pa.Table.from_pylist(
                [self.row(model.model_validate_json(raw)) for raw in self._raw], schema=self._schema
            )
        self._typed.append(table)
        self._typed_rows += table.num_rows
        self._raw, self._raw_size = [], 0

    def _flush(self) -> None:
        import pyarrow as pa

        self._type_raw()
        if self._typed:
            self._writer.write_table(pa.concat_tables(self._typed))  # one row group
            self._typed, self._typed_rows = [], 0
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()


def _native_datetime(info: Any) -> bool:
    """Whether a datetime field reads as Arrow reads ISO 8601: an offset or `Z`, else UTC (DropStream)."""
    from airflow_provider_fulfillment.models._types import parse_dropstream_datetime

    return any(getattr(meta, "func", None) is parse_dropstream_datetime for meta in info.metadata)


class RawBatchColumns:
    """A row group of vendor record bytes to an Arrow table of the model's Parquet schema, without models.

    - Integer, float, boolean and text fields, and DropStream's ISO 8601 times, are typed by
      pyarrow's JSON reader (`pyarrow.json.read_json` with the schema given, never inferred).
    - Other times and money go through the model's own field validator once per distinct value
      (DCL's Pacific-local times, Stream's `2025/08/04 11:48:40 UTC`, exact `Decimal` text).
    - Nested objects and lists are the vendor's own JSON text of the value (msgspec `Raw` slices):
      the same value as the model's re-serialization, spelled as the vendor sent it.

    `table` returns None when the batch holds what only the model can type (a field the model does
    not declare, which belongs in `_extra`; a number where text is declared; "" for a number...):
    the caller then converts that batch through the model, so the output means the same either way.
    """

    def __init__(self, model: type[BaseModel], schema: Any) -> None:
        import msgspec
        import pyarrow as pa
        from pydantic import TypeAdapter

        self._schema = schema
        fields = model.model_fields
        kinds = dict(columns_of(model))
        native = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}
        read: list[Any] = []
        self._validated: dict[str, Any] = {}  # column -> TypeAdapter of the field (per distinct value)
        self._text: list[str] = []  # JSON-text columns, from the raw slices
        for name, kind in kinds.items():
            if name == EXTRA_COLUMN:
                continue
            if kind in native:
                read.append(pa.field(name, native[kind]))
            elif kind == "datetime" and _native_datetime(fields[name]):
                read.append(pa.field(name, pa.timestamp("us", tz="UTC")))
            elif kind == "json":
                self._text.append(name)
            else:
                self._validated[name] = TypeAdapter(_annotated(fields[name]))
        self._read_schema = pa.schema(read)
        slices = msgspec.defstruct(
            "RecordSlices",
            [(name, msgspec.Raw, None) for name in fields],
            forbid_unknown_fields=True,  # a field the model does not declare: the model's `_extra`
        )
        self._decoder = msgspec.json.Decoder(list[slices])  # type: ignore[valid-type]
        self._raw_names = [name for name in kinds if name in self._validated or name in self._text]

    def table(self, raws: list[bytes]) -> Any:
        import msgspec
        import pyarrow as pa
        import pyarrow.json as pj

        try:
            records = self._decoder.decode(b"[" + b",".join(raws) + b"]")
        except msgspec.ValidationError:
            return None
        lines = b"\n".join(raws)
        try:
            read = pj.read_json(
                pa.BufferReader(lines),
                # one block, one thread: the chunk is small, and more threads would only add buffers
                read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, len(lines) + 1)),
                parse_options=pj.ParseOptions(
                    explicit_schema=self._read_schema, unexpected_field_behavior="ignore"
                ),
            )
        except pa.ArrowInvalid:
            return None
        if read.num_rows != len(raws):
            return None
        columns: dict[str, Any] = {name: read.column(name) for name in read.column_names}
        try:
            for name in self._raw_names:
                columns[name] = self._column(name, [getattr(record, name) for record in records])
        except ValueError:  # a value the field's validator refuses: the model path raises it in its words
            return None
        arrays = [
            columns[field.name] if field.name in columns else pa.nulls(len(raws), field.type)
            for field in self._schema
        ]
        return pa.Table.from_arrays(arrays, schema=self._schema)

    def _column(self, name: str, slices: list[Any]) -> Any:
        import msgspec
        import pyarrow as pa

        kind = self._schema.field(name).type
        if name in self._text:
            texts = [None if raw is None or bytes(raw) == b"null" else bytes(raw).decode() for raw in slices]
            return pa.array(texts, kind)
        adapter = self._validated[name]
        seen: dict[bytes, Any] = {}
        values = []
        for raw in slices:
            if raw is None:
                values.append(None)
                continue
            text = bytes(raw)
            if text not in seen:
                value = adapter.validate_python(msgspec.json.decode(text))
                seen[text] = None if value is None else str(value) if pa.types.is_string(kind) else value
            values.append(seen[text])
        return pa.array(values, kind)


def _annotated(info: Any) -> Any:
    """A field's annotation with its validators (`Annotated[type, *metadata]`)."""
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def _parquet_rows(raw: Any, batch_size: int = 10_000) -> Iterator[dict[str, Any]]:
    """Rows of a Parquet file written by `ParquetWriter`, as the dicts the model validates again."""
    require_pyarrow()
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(raw)
    kinds = {field.name: (field.metadata or {}).get(KIND_KEY, b"").decode() for field in parquet.schema_arrow}
    for batch in parquet.iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            record: dict[str, Any] = {}
            extra = None
            for name, value in row.items():
                if value is None:
                    continue
                if name == EXTRA_COLUMN and kinds.get(name) == "json":
                    extra = json.loads(value)
                elif kinds.get(name) == "json":
                    record[name] = json.loads(value)
                else:
                    record[name] = value
            if extra:
                record.update(extra)
            yield record


# --------------------------------------------------------------------------- reading back


def detect_format(path: ObjectStoragePath) -> tuple[str, str | None]:
    """(format, compression) from the file name."""
    name = path.name
    if name.endswith(".parquet"):
        return "parquet", None
    if name.endswith(".jsonl.gz") or name.endswith(".json.gz") or name.endswith(".ndjson.gz"):
        return "jsonl", "gzip"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl", None
    raise ValueError(f"cannot tell the format of {uri_of(path)}: expected .jsonl, .jsonl.gz or .parquet")


def iter_documents(path: ObjectStoragePath, fmt: str | None = None) -> Iterator[bytes | dict[str, Any]]:
    """Each record of an extracted file, lazily: JSON text (bytes) for JSON lines, a dict for Parquet."""
    detected, compression = detect_format(path)
    fmt = fmt or detected
    with path.open("rb") as raw:
        if fmt == "parquet":
            yield from _parquet_rows(raw)
            return
        stream: Any = gzip.GzipFile(fileobj=raw, mode="rb") if compression == "gzip" else raw
        for line in stream:
            if line.strip():
                yield line


def iter_models(
    path: ObjectStoragePath, parse_json: Callable[[bytes], Any], parse_dict: Callable[[dict[str, Any]], Any]
) -> Iterator[Any]:
    for document in iter_documents(path):
        yield parse_dict(document) if isinstance(document, dict) else parse_json(document)


# --------------------------------------------------------------------------- models


def model_class(vendor: str, resource: str, normalized: bool) -> type[BaseModel]:
    """The model class of one extracted record (vendor record, or common.Order/Shipment)."""
    if resource not in ("orders", "shipments"):
        raise ValueError(f"resource must be 'orders' or 'shipments', got {resource!r}")
    if normalized:
        from airflow_provider_fulfillment.models.common import Order, Shipment

        return Order if resource == "orders" else Shipment
    if vendor == "dropstream":
        from airflow_provider_fulfillment.models.dropstream import DropStreamOrder, DropStreamShipment

        return DropStreamOrder if resource == "orders" else DropStreamShipment
    if vendor == "dcl":
        from airflow_provider_fulfillment.models.dcl import DclOrder, DclShipment

        return DclOrder if resource == "orders" else DclShipment
    if vendor == "stream":
        from airflow_provider_fulfillment.models.stream import StreamOrder

        return StreamOrder
    raise ValueError(f"unknown vendor {vendor!r}; expected dropstream, dcl or stream")
