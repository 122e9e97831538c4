"""Contract drift: what a vendor sent that its documents do not describe, counted per extraction.

Vendors change their APIs without notice. The models keep unknown fields (`extra="allow"`), map
unknown states to a fallback and read a string where a list was documented, so nothing breaks, and
nobody would hear about it. A `DriftMeter` watches the records of one extraction and counts:

- unknown fields, by dotted path (`shipments[].packages[].colour`);
- unknown raw states (a `fulfillment_state` or DCL stage no state table lists);
- values that needed a tolerant parse (a string where the docs promise a list).

It reads a decoded JSON object, a record kept as the vendor's bytes or a vendor model alike, and says which drift is new,
so a caller can log one line per new kind of drift rather than one per record. Pure: no Airflow, no IO.

A record kept as bytes is first decoded by msgspec into a strict struct of its schema (unknown
fields forbidden, plain values skipped unbuilt as `Raw`, a string refused where a list is
documented): when that succeeds the record has no field or shape drift, proven in C. Only a
record it refuses is decoded whole and walked, which names its drift exactly.
"""

from __future__ import annotations

import types
import typing
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, Literal

import msgspec
from pydantic import BaseModel
from pydantic_core import from_json

from airflow_provider_fulfillment.models._types import FromString, StringOrList
from airflow_provider_fulfillment.models.states import StateTable, dcl_order_raw_state, state_table
from airflow_provider_fulfillment.rawpages import RawRecord

DriftMode = Literal["ignore", "warn", "fail"]
DRIFT_MODES: tuple[DriftMode, ...] = ("ignore", "warn", "fail")
KINDS = ("unknown_fields", "unknown_states", "tolerant_values")


@dataclass(frozen=True)
class Schema:
    """A model's documented fields: nested schemas for objects, and which fields read loosely."""

    fields: frozenset[str]
    nested: Mapping[str, Schema]
    loose: frozenset[str]
    # Fields documented as one plain value (text, number, boolean, date): the strict decode reads
    # them as Python values, so a null or a boolean costs no object at all.
    scalars: frozenset[str] = frozenset()


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for argument in typing.get_args(annotation):
        yield from _models_in(argument)


def _is_loose(info: Any) -> bool:
    return any(meta in typing.get_args(StringOrList)[1:] for meta in info.metadata)


_SCALARS = (str, int, float, bool, Decimal, datetime, date, type(None))


def _is_scalar(annotation: Any) -> bool:
    """Documented as one plain JSON value (or null): no object, no list, nothing left open."""
    if typing.get_origin(annotation) is Literal:
        return True
    arguments = typing.get_args(annotation)
    if arguments and typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return all(_is_scalar(argument) for argument in arguments)
    return annotation in _SCALARS


@cache
def schema_of(model: type[BaseModel]) -> Schema:
    nested: dict[str, Schema] = {}
    for name, info in model.model_fields.items():
        inner = next(_models_in(info.annotation), None)
        if inner is not None:
            nested[name] = schema_of(inner) if inner is not model else None  # type: ignore[assignment]
    for name, value in list(nested.items()):
        if value is None:  # a model nesting itself (bundle lines of bundle lines)
            nested[name] = _RecursiveSchema(model)  # type: ignore[assignment]
    loose = frozenset(name for name, info in model.model_fields.items() if _is_loose(info))
    scalars = frozenset(
        name
        for name, info in model.model_fields.items()
        if name not in nested and name not in loose and _is_scalar(info.annotation)
    )
    return Schema(frozenset(model.model_fields), nested, loose, scalars)


class _RecursiveSchema:
    """Stands for the schema of a model that contains itself, resolved when first read."""

    def __init__(self, model: type[BaseModel]) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(schema_of(self._model), name)


# How deep the strict struct follows a schema nesting itself (bundle lines of bundle lines); past
# that, only an empty object (or list of them) is accepted and anything else goes to the walk.
_RECURSION_DEPTH = 3
_EMPTY_OBJECT = msgspec.defstruct("NoFields", [], forbid_unknown_fields=True, gc=False)


def _strict_type(schema: Schema, depth: int = 0) -> type[msgspec.Struct]:
    """A struct that accepts only records in which `_walk_dict` finds no field or shape drift.

    It refuses some records the walk finds clean (a number where an object is documented, a list
    of non-objects): those are walked, so the counts never depend on which path read a record."""
    fields: list[tuple[str, Any, None]] = []
    rename: dict[str, str] = {}
    for number, name in enumerate(sorted(schema.fields)):
        sub = schema.nested.get(name)
        if sub is not None:
            if isinstance(sub, _RecursiveSchema):
                inner = _EMPTY_OBJECT if depth >= _RECURSION_DEPTH else _strict_type(sub, depth + 1)  # type: ignore[arg-type]
            else:
                inner = _strict_type(sub, depth)
            kind: Any = inner | list[inner] | None  # type: ignore[valid-type]
        elif name in schema.loose:
            kind = list[msgspec.Raw] | None  # a string here is drift: refused, so walked
        elif name in schema.scalars:
            kind = Any  # measured cheaper than Raw: nulls and booleans are no new object
        else:
            kind = msgspec.Raw  # an open value (a dict, a list) is skipped unbuilt
        attribute = f"f{number}"  # wire names need not be identifiers
        fields.append((attribute, kind, None))
        rename[attribute] = name
    return msgspec.defstruct("Documented", fields, forbid_unknown_fields=True, rename=rename, gc=False)


@cache
def strict_decoder(model: type[BaseModel]) -> msgspec.json.Decoder[Any]:
    """The decoder that proves a record's bytes free of field and shape drift against `model`
    (it raises `msgspec.ValidationError` on a record it cannot prove: that one is walked)."""
    return msgspec.json.Decoder(_strict_type(schema_of(model)))


def field_drift(record: Mapping[str, Any], schema: Schema) -> list[tuple[str, str]]:
    """The exact walk of a decoded record: `(kind, name)` of each unknown field and tolerant value."""
    found: list[tuple[str, str]] = []
    _walk_dict(record, schema, "", found)
    return found


# A DCL order's raw state is derived from two fields (`dcl_order_raw_state`).
_DCL_STAGE, _DCL_CANCELLED = _DCL_STATE_FIELDS = ("order_stage", "is_cancelled")


def _checked_states(vendor: str, resource: str) -> StateTable | None:
    """The state table a meter checks records against; None for DCL shipments, which have none."""
    return None if (vendor, resource) == ("dcl", "shipments") else state_table(vendor, resource)


def state_fields(vendor: str, resource: str) -> tuple[str, ...]:
    """The record fields a meter reads the raw state from (none where it checks no state): a page
    splitter that keeps records as bytes must decode them, or an unknown state would pass unseen."""
    table = _checked_states(vendor, resource)
    if table is None:
        return ()
    return _DCL_STATE_FIELDS if vendor == "dcl" else (table.field,)


@dataclass
class Drift:
    """The counts an extraction's manifest carries (`as_dict`)."""

    unknown_fields: Counter[str] = field(default_factory=Counter)
    unknown_states: Counter[str] = field(default_factory=Counter)
    tolerant_values: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return (
            sum(self.unknown_fields.values())
            + sum(self.unknown_states.values())
            + sum(self.tolerant_values.values())
        )

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {kind: dict(sorted(getattr(self, kind).items())) for kind in KINDS}


@dataclass(frozen=True)
class Sighting:
    """One kind of drift, the first time it is seen in an extraction."""

    kind: str
    name: str

    def describe(self) -> str:
        what = {
            "unknown_fields": "an undocumented field",
            "unknown_states": "an undocumented state",
            "tolerant_values": "a value not in its documented shape (read tolerantly)",
        }[self.kind]
        return f"{what}: {self.name!r}"


class DriftMeter:
    """Counts the drift of one (vendor, resource) extraction; `observe` every record."""

    def __init__(self, vendor: str, resource: str, model: type[BaseModel]) -> None:
        self.vendor = vendor
        self.resource = resource
        self.schema = schema_of(model)
        self._strict = strict_decoder(model)
        self.table = _checked_states(vendor, resource)
        self.drift = Drift()
        self.records = 0

    def observe(self, record: Mapping[str, Any] | BaseModel) -> list[Sighting]:
        """Count `record`'s drift; return the kinds of drift seen for the first time."""
        self.records += 1
        found: list[tuple[str, str]] = []
        if type(record) is RawRecord:  # the vendor's exact bytes (and the splitter's fields)
            # Decoded strictly, it has no unknown field and no tolerant value, and its state is among
            # the fields the page splitter decoded; refused (or not JSON), it is decoded whole.
            try:
                self._strict.decode(record.raw)
            except msgspec.DecodeError:
                record = from_json(record.raw)
                _walk_dict(record, self.schema, "", found)
        elif isinstance(record, BaseModel):
            _walk_model(record, self.schema, "", found)
        else:
            _walk_dict(record, self.schema, "", found)
        state = self._unknown_state(record)
        if state is not None:
            found.append(("unknown_states", state))
        if not found:
            return []
        new: list[Sighting] = []
        for kind, name in found:
            counts: Counter[str] = getattr(self.drift, kind)
            if name not in counts:
                new.append(Sighting(kind, name))
            counts[name] += 1
        return new

    def _unknown_state(self, record: Mapping[str, Any] | BaseModel) -> str | None:
        table = self.table
        if table is None:
            return None
        raw = _raw_state(self.vendor, table, record)
        if not raw or raw in table.states or raw.strip().casefold() in table._folded:
            return None
        return raw


def _raw_state(vendor: str, table: StateTable, record: Mapping[str, Any] | BaseModel) -> str | None:
    if vendor == "dcl":
        if isinstance(record, BaseModel):
            return record.raw_status  # type: ignore[attr-defined]
        return dcl_order_raw_state(record.get(_DCL_STAGE), record.get(_DCL_CANCELLED))
    value = getattr(record, table.field, None) if isinstance(record, BaseModel) else record.get(table.field)
    return None if value is None else str(value)


def _walk_dict(record: Mapping[str, Any], schema: Schema, prefix: str, found: list[tuple[str, str]]) -> None:
    # Set operations on the keys run in C: a record without drift costs a few of them per object.
    keys = record.keys()
    if not keys <= schema.fields:
        found.extend(("unknown_fields", prefix + key) for key in sorted(keys - schema.fields))
    for key in schema.loose:
        if type(record.get(key)) is str:
            found.append(("tolerant_values", prefix + key))
    for key, sub in schema.nested.items():
        value = record.get(key)
        if type(value) is dict:
            _walk_dict(value, sub, f"{prefix}{key}.", found)
        elif type(value) is list:
            inner = f"{prefix}{key}[]."
            for item in value:
                if type(item) is dict:
                    _walk_dict(item, sub, inner, found)


def _walk_model(record: BaseModel, schema: Schema, prefix: str, found: list[tuple[str, str]]) -> None:
    for key in record.model_extra or ():
        found.append(("unknown_fields", prefix + key))
    for key in schema.loose:
        if isinstance(getattr(record, key, None), FromString):
            found.append(("tolerant_values", prefix + key))
    for key, sub in schema.nested.items():
        value = getattr(record, key, None)
        if isinstance(value, BaseModel):
            _walk_model(value, sub, f"{prefix}{key}.", found)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    _walk_model(item, sub, f"{prefix}{key}[].", found)


def check_mode(value: Any) -> DriftMode:
    if value not in DRIFT_MODES:
        raise ValueError(f"on_drift must be one of {', '.join(DRIFT_MODES)}, got {value!r}")
    return value


__all__ = [
    "DRIFT_MODES",
    "Drift",
    "DriftMeter",
    "DriftMode",
    "Sighting",
    "check_mode",
    "field_drift",
    "schema_of",
    "state_fields",
    "strict_decoder",
]
