"""Shared building blocks of the vendor models: tolerant parsers, annotated field types, the base model.

The parsers run once per date or amount of every record of a (possibly million-record) extraction,
so they stick to ``datetime.fromisoformat`` (C) and plain ``Decimal`` construction: no dateutil,
no regexes, time zones built once at import.
"""

from __future__ import annotations

import math
from datetime import UTC as _UTC_ZONE
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WrapValidator

__all__ = [
    "PACIFIC",
    "Blankable",
    "UTC",
    "DclDateTime",
    "DecimalNumber",
    "DecimalStr",
    "DropStreamDateTime",
    "FromString",
    "StringOrList",
    "OptionalBool",
    "OptionalInt",
    "StreamDateTime",
    "VendorModel",
    "blank_to_none",
    "parse_dcl_datetime",
    "parse_decimal",
    "parse_dropstream_datetime",
    "parse_stream_datetime",
]

UTC: tzinfo = _UTC_ZONE
# DCL is in Fremont, CA: its offset-less times and bare dates are US Pacific local time (DST-aware).
PACIFIC: tzinfo = ZoneInfo("America/Los_Angeles")

_UTC_NAMES = frozenset({"UTC", "GMT", "Z"})


# --------------------------------------------------------------------------------------------
# Parsers (public through the vendor modules: the hooks use them for client-side window filters)
# --------------------------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return type(value) is str and not value.strip()


def blank_to_none(value: Any) -> Any:
    """Vendors send "" for "no value" in non-string fields; treat it as null rather than failing."""
    return None if _blank(value) else value


def _iso(text: str, default_tz: tzinfo, vendor: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"unparsable {vendor} date/time {text!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=default_tz)
    return parsed


def _non_string_datetime(value: Any, default_tz: tzinfo, vendor: str) -> datetime | None:
    """The non-string inputs every vendor parser accepts: None, datetimes (naive ones get the vendor zone), dates."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=default_tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=default_tz)
    raise ValueError(f"expected a {vendor} date/time string, got {type(value).__name__}")


# Text parsers are memoized: a page repeats the same dates (DCL lines' ship_by, bare days), and
# datetimes are immutable, so sharing one is safe. Errors are not cached (they re-raise).
_CACHE_SIZE = 4096


@lru_cache(maxsize=_CACHE_SIZE)
def _dropstream_text(text: str) -> datetime | None:
    text = text.strip()
    return _iso(text, UTC, "DropStream") if text else None


@lru_cache(maxsize=_CACHE_SIZE)
def _dcl_text(text: str) -> datetime | None:
    text = text.strip()
    return _iso(text, PACIFIC, "DCL") if text else None


@lru_cache(maxsize=_CACHE_SIZE)
def _stream_text(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    head, sep, tail = text.rpartition(" ")
    if sep and head:
        if tail in _UTC_NAMES:
            text = head  # naive now: UTC is applied below
        elif tail[:1] in "+-" and len(tail) > 1:
            text = head + tail  # "... 11:48:40 +0200" -> "... 11:48:40+0200"
    if "/" in text:
        text = text.replace("/", "-", 2)
    return _iso(text, UTC, "Stream")


def parse_dropstream_datetime(value: Any) -> datetime | None:
    """DropStream: ISO 8601 with ``Z`` or an offset ("2022-10-03T04:28:20Z"); a bare time is taken as UTC."""
    if type(value) is str:
        return _dropstream_text(value)
    return _non_string_datetime(value, UTC, "DropStream")


def parse_dcl_datetime(value: Any) -> datetime | None:
    """DCL: "2014-11-25" (midnight), "2014-11-28T11:05:22" (both US Pacific local time) or with an offset."""
    if type(value) is str:
        return _dcl_text(value)
    return _non_string_datetime(value, PACIFIC, "DCL")


def parse_stream_datetime(value: Any) -> datetime | None:
    """Stream: "2025/08/04 11:48:40 UTC", "2024-03-20 09:00:00" (UTC assumed) or "2024-03-20" (midnight UTC)."""
    if type(value) is str:
        return _stream_text(value)
    return _non_string_datetime(value, UTC, "Stream")


def parse_decimal(value: Any) -> Decimal | None:
    """Exact Decimal from "1.23", 2.99 (via its shortest repr, so no binary-float artefact) or 5; "" -> None."""
    kind = type(value)
    if kind is str:
        text = value.strip()
        if not text:
            return None
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
        if not result.is_finite():
            raise ValueError(f"not a finite decimal number: {value!r}")
        return result
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"not a finite decimal number: {value!r}")
        return Decimal(repr(value))
    if kind is int:
        return Decimal(value)
    if value is None or isinstance(value, Decimal):
        return value
    raise ValueError(f"expected a decimal number, got {kind.__name__}")


def _decimal_to_json_number(value: Decimal) -> int | float:
    """Write a number back as the kind of JSON number it came as: 5 stays 5, 2.99 and 5000.0 stay floats.

    ``parse_decimal`` built the Decimal from the number's repr, so its text tells which it was
    (cheaper than ``as_tuple()`` on the hot path).
    """
    text = str(value)
    if "." in text or "E" in text:
        return float(text)
    return int(text)


# --------------------------------------------------------------------------------------------
# Annotated field types
# --------------------------------------------------------------------------------------------

DropStreamDateTime = Annotated[datetime | None, BeforeValidator(parse_dropstream_datetime)]
DclDateTime = Annotated[datetime | None, BeforeValidator(parse_dcl_datetime)]
StreamDateTime = Annotated[datetime | None, BeforeValidator(parse_stream_datetime)]

# A decimal amount the vendor sends as a string ("1.23", DropStream): dumped back as that string.
DecimalStr = Annotated[Decimal | None, BeforeValidator(parse_decimal)]
# A decimal amount the vendor sends as a JSON number (DCL, Stream): exact Decimal in Python,
# dumped back as a JSON number so extracted files keep the vendor's shape.
DecimalNumber = Annotated[
    Decimal | None,
    BeforeValidator(parse_decimal),
    PlainSerializer(_decimal_to_json_number, return_type=int | float, when_used="json-unless-none"),
]

_T = TypeVar("_T")
# A nested object the vendor documents as blank when empty ("invoice_data" before invoicing): "" -> None.
# Used only there: a before-validator on a container makes pydantic build the Python object before
# validating it, which costs on the hot path (and on a page's record list it would triple parse time).
Blankable = Annotated[_T | None, BeforeValidator(blank_to_none)]
OptionalInt = Annotated[int | None, BeforeValidator(blank_to_none)]


class FromString(list):
    """A list the vendor sent as one string: the value is usable, and drift counting can tell."""


def _string_or_list(value: Any, handler: Any) -> Any:
    if type(value) is str:
        items = [part.strip() for part in value.split(",") if part.strip()]
        return FromString(handler(items))
    return handler(value)


# A list of strings that some clients of the vendor receive as one string ("ABC123" or "A1, A2"):
# read as the list the docs promise (comma-separated parts), marked as a tolerant parse.
StringOrList = Annotated[list[str] | None, WrapValidator(_string_or_list)]
OptionalBool = Annotated[bool | None, BeforeValidator(blank_to_none)]


# --------------------------------------------------------------------------------------------
# Base model
# --------------------------------------------------------------------------------------------


class VendorModel(BaseModel):
    """Base of every vendor record: keeps unknown keys, and dumps exactly the keys it was given.

    ``model_dump`` / ``model_dump_json`` default to ``exclude_unset=True`` (recursively), so a
    field the vendor did not send never shows up as a made-up ``null``, while explicit nulls and
    unknown keys (``extra="allow"``) survive. Pass ``exclude_unset=False`` for a full, fixed-schema
    dump (e.g. columnar output).
    """

    model_config = ConfigDict(
        extra="allow",
        coerce_numbers_to_str=True,  # an id-like string sent as a number ("po_number": 100002) is kept
    )

    def model_dump(self, *, exclude_unset: bool = True, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().model_dump(exclude_unset=exclude_unset, **kwargs)

    def model_dump_json(self, *, exclude_unset: bool = True, **kwargs: Any) -> str:  # type: ignore[override]
        return super().model_dump_json(exclude_unset=exclude_unset, **kwargs)
