"""Pages split into the vendor's record bytes, decoding only the few fields paging needs.

An extraction to JSON lines does not need Python objects: it needs each record's boundaries, its
identity, its window field (to trim) and its state, and then the bytes exactly as the vendor sent
them. msgspec reads a page's records as `Raw` slices (no objects built) and each record again into
a struct of the wanted fields only (the rest is skipped unparsed), which measures ~5x `json.loads`
on the same pages (see benchmarks/README.md). Pure module: no Airflow, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

import msgspec

from airflow_provider_fulfillment.errors import InvalidBody, MissingRecords

_UNSET = msgspec.UNSET


class RawRecord(msgspec.Struct, gc=False, eq=False, repr_omit_defaults=True):
    """One record as the vendor's exact JSON bytes, plus the decoded fields paging and windows read.

    It reads as a read-only mapping of the decoded fields (`record["id"]`, `record.get(...)`,
    `"created_at" in record`), so identity and window code serve it like a dict; a field the
    vendor did not send is absent, an explicit null is `None`.

    A struct the garbage collector does not track (it holds bytes and a struct of plain values,
    so it can be in no cycle): an extraction makes one a record, and tracked, each page of them
    held by the read-ahead pushed the collector into full passes over the whole Airflow heap.
    """

    raw: bytes
    decoded: Any
    # (field, moment) of the last `moment` asked: the plan admits a record to its window part and
    # the hook then trims it to the whole window, both on the same field.
    last_moment: Any = None

    def __getitem__(self, name: str) -> Any:
        value = getattr(self.decoded, name, _UNSET)
        if value is _UNSET:
            raise KeyError(name)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        value = getattr(self.decoded, name, _UNSET)
        return default if value is _UNSET else value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and getattr(self.decoded, name, _UNSET) is not _UNSET

    def moment(self, name: str, parse: Callable[[Any], Any]) -> Any:
        """`parse(self.get(name))`, parsed once for two asks in a row on the same field."""
        last = self.last_moment
        if last is not None and last[0] == name:
            return last[1]
        value = getattr(self.decoded, name, _UNSET)
        value = parse(None if value is _UNSET else value)
        self.last_moment = (name, value)
        return value

    @property
    def fields(self) -> dict[str, Any]:
        """The decoded fields the vendor sent."""
        return {
            name: value
            for name in self.decoded.__struct_fields__
            if (value := getattr(self.decoded, name)) is not _UNSET
        }

    def __repr__(self) -> str:
        return f"RawRecord({self.fields!r}, {len(self.raw)} bytes)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawRecord) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def decode(self) -> dict[str, Any]:
        """The whole record as a dict (when a caller needs a model after all)."""
        return msgspec.json.decode(self.raw)


@lru_cache(maxsize=64)
def _decoders(key: str, meta: tuple[str, ...], fields: tuple[str, ...]) -> tuple[Any, Any]:
    """Two decoders of one page: its records as raw slices, and the envelope with each record's
    wanted fields (the identity required, the others optional, every other key skipped)."""
    optional = msgspec.UnsetType | None
    ident, *rest = fields
    # Untracked by the garbage collector (gc=False): plain decoded values, never in a cycle.
    record = msgspec.defstruct(
        "RecordFields",
        [(ident, Any)] + [(name, Any, _UNSET) for name in rest],
        forbid_unknown_fields=False,
        gc=False,
    )
    envelope = msgspec.defstruct(
        "PageFields",
        [(key, list[record] | optional, _UNSET)] + [(name, Any, None) for name in meta],  # type: ignore[valid-type]
        forbid_unknown_fields=False,
        gc=False,
    )
    slices = msgspec.defstruct("PageSlices", [(key, list[msgspec.Raw] | optional, _UNSET)], gc=False)
    return msgspec.json.Decoder(slices), msgspec.json.Decoder(envelope)


class PageSplitter:
    """Splits a page body into `RawRecord`s and its metadata.

    :param key: the envelope's records key (`orders`, `shipments`).
    :param meta: envelope keys to decode (session id, totals, error codes...).
    :param fields: record fields to decode (identity, window field, state); the first is required.

    The page is read twice by msgspec, once as raw record slices and once for the wanted fields:
    measured faster than decoding each slice again (fewer Python calls per record).
    """

    def __init__(self, key: str, meta: Iterable[str], fields: Iterable[str]) -> None:
        self.key = key
        self.meta = tuple(meta)
        self.fields = tuple(dict.fromkeys(fields))
        if not self.fields:
            raise ValueError("a splitter needs at least the identity field")
        self._slices, self._envelope = _decoders(key, self.meta, self.fields)

    def split(self, body: bytes) -> tuple[list[RawRecord], dict[str, Any]]:
        """(records, meta). A body that is not a JSON object or whose records are not objects carrying
        the identity field raises `InvalidBody`; bytes that are not JSON raise `ValueError`."""
        try:
            page = self._envelope.decode(body)
            slices = getattr(self._slices.decode(body), self.key)
        except msgspec.ValidationError as error:
            raise InvalidBody(_where(error)) from None
        except msgspec.DecodeError:  # cut or garbled in transit: the caller may retry
            raise ValueError(_json_error(body)) from None
        meta = {name: getattr(page, name) for name in self.meta}
        decoded = getattr(page, self.key)
        if decoded is _UNSET or decoded is None:  # a 200 without its records: never an empty last page
            raise MissingRecords(f"the answer has no '{self.key}'")  # (the caller reads any error_code)
        return [RawRecord(bytes(raw), fields) for raw, fields in zip(slices, decoded, strict=True)], meta


def _where(error: msgspec.ValidationError) -> str:
    """msgspec's message in the `orders.3.id: ...` form the other parsers use."""
    text = str(error)
    message, _, where = text.partition(" - at `$")
    path = where.rstrip("`").replace("[", ".").replace("]", "").lstrip(".")
    if "missing required field" in message:
        field = message.split("`")[1]
        return f"{path}.{field}: Field required" if path else f"{field}: Field required"
    if not path and "Expected `object`" in message:
        got = message.split("got ")[-1].strip("`")
        return f"expected a JSON object, got {_PYTHON_NAMES.get(got, got)}"
    return f"{path}: {message}" if path else message


# The other page parsers name what they got by its Python type; so does this one.
_PYTHON_NAMES = {"array": "list", "object": "dict", "null": "NoneType"}


def _json_error(body: bytes) -> str:
    """The same words for a body that is not JSON as the dict parser (pydantic-core) gives."""
    from pydantic_core import from_json

    try:
        from_json(body)
    except ValueError as error:
        return str(error)
    return "invalid JSON"


def jsonl_bytes(records: Iterable[RawRecord]) -> bytes:
    """Records as JSON lines, the vendor's bytes unchanged."""
    return b"".join(record.raw + b"\n" for record in records)


def is_raw_record(record: Any) -> bool:
    return type(record) is RawRecord


def as_mapping(record: Any) -> Mapping[str, Any] | None:
    """A dict or a RawRecord (both read by field name), or None for a model."""
    if type(record) is dict or type(record) is RawRecord:
        return record
    return None
