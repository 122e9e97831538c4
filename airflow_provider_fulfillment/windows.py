"""Time windows: half-open [start, end) in UTC, how each vendor wants them sent, and client-side trimming.

Vendors' own date filters are inclusive, exclusive, whole-day or absent depending on the field, and
their documentation does not always say which. So a window is sent a little wider than asked
(`SEND_MARGIN`) and every record is trimmed again on the client against the exact half-open window:
the server filter only saves bandwidth, the client filter is what makes the result exact.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

UTC = UTC
PACIFIC = ZoneInfo("America/Los_Angeles")
# Widening of every server-side bound; the client trims back to the exact window.
SEND_MARGIN = timedelta(seconds=1)
# A window narrower than this is not split further (see paging.split_until_fits).
MIN_SPLIT = timedelta(seconds=1)

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Every moment a window or a filter may hold: a margin inside datetime's range, so widening a bound
# (`SEND_MARGIN`), a day cut or a time-zone conversion never overflows.
EARLIEST = datetime(1, 1, 8, tzinfo=UTC)
LATEST = datetime(9999, 12, 24, tzinfo=UTC)


def plain_utc(moment: datetime) -> datetime:
    """`moment` as a plain `datetime` in UTC: pendulum's subclass drops a stdlib tzinfo in arithmetic."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is out of the supported range") from None
    return datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=UTC
    )


def in_range(moment: datetime, name: str, given: Any = None) -> datetime:
    """`moment` in UTC if it lies where arithmetic on it is safe; a ValueError naming it otherwise."""
    try:
        utc = plain_utc(moment)
    except ValueError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        shown = repr(given) if isinstance(given, str) else moment.isoformat()
        raise ValueError(
            f"{name}: {shown} is out of range; give a moment from "
            f"{EARLIEST.date().isoformat()} to {LATEST.date().isoformat()}"
        )
    return utc


def to_aware_datetime(value: Any, name: str) -> datetime:
    """A datetime from a datetime, date or ISO 8601 string; naive or unparsable input is an error."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, str):
        text = value.strip()
        if _ISO_DATE.match(text):
            try:
                moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
            except ValueError:
                raise ValueError(f"{name}: {value!r} is not a real date") from None
        else:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"{name}: cannot parse {value!r} as a date; give an ISO 8601 date-time with an "
                    "offset (e.g. '2025-10-01T00:00:00+00:00') or an aware datetime"
                ) from None
    else:
        raise ValueError(f"{name}: expected a datetime or ISO 8601 string, got {type(value).__name__}")
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        raise ValueError(f"{name}: {value!r} has no time zone; give an offset or an aware datetime")
    return in_range(moment, name, value)


_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


def partial_iso_date(value: Any, name: str) -> datetime:
    """ISO 8601's partial dates as DropStream documents them: `2022-12` (month) or `2022` (year),
    as the first instant of that period in UTC; anything else as `to_aware_datetime` reads it."""
    match = _PARTIAL_DATE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        return to_aware_datetime(value, name)
    year, month = int(match.group(1)), int(match.group(2) or 1)
    if not 1 <= month <= 12:
        raise ValueError(f"{name}: {value!r} is not a real month")
    return in_range(datetime(max(year, 1), month, 1, tzinfo=UTC), name)


@dataclass(frozen=True, order=True)
class Window:
    """A half-open interval [start, end) of aware UTC datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            moment = getattr(self, name)
            if not isinstance(moment, datetime) or moment.tzinfo is None:
                raise ValueError(f"window {name} must be an aware datetime, got {moment!r}")
            object.__setattr__(self, name, in_range(moment, f"window {name}"))
        if self.end <= self.start:
            raise ValueError(
                f"window end {self.end.isoformat()} must be after its start {self.start.isoformat()}"
            )

    @classmethod
    def coerce(cls, value: Any, *, now: datetime | None = None, allow_future: bool = False) -> Window:
        """A Window from a Window or a (start, end) pair; refuses windows that end in the future.

        Data is extracted only once it has settled: a window reaching past now would give a different
        answer on a rerun, so it is refused rather than silently clamped.
        """
        if isinstance(value, Window):
            window = value
        else:
            try:
                start, end = value
            except (TypeError, ValueError):
                raise ValueError(f"window must be a (start, end) pair, got {value!r}") from None
            window = cls(to_aware_datetime(start, "window start"), to_aware_datetime(end, "window end"))
        current = now or datetime.now(UTC)
        if not allow_future and window.end > current:
            raise ValueError(
                f"window ends in the future ({window.end.isoformat()} > now {current.isoformat()}): "
                "data is extracted only once it has settled"
            )
        return window

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def halves(self) -> tuple[Window, Window]:
        middle = self.start + (self.end - self.start) / 2
        middle = middle.replace(microsecond=0) if middle.replace(microsecond=0) > self.start else middle
        return Window(self.start, middle), Window(middle, self.end)

    def split(self, parts: int) -> list[Window]:
        """`parts` adjacent windows covering this one exactly."""
        if parts < 1:
            raise ValueError("parts must be at least 1")
        step = self.duration / parts
        bounds = [self.start + step * i for i in range(parts)] + [self.end]
        return [Window(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


# --------------------------------------------------------------------------- vendor formats


def iso_with_offset(moment: datetime) -> str:
    """`2025-10-01T05:00:00+00:00`: an explicit offset, never a bare local time."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def dropstream_bounds(window: Window, field: str) -> dict[str, str]:
    """`<field>_min`/`<field>_max` with explicit offsets, widened by the margin (trimmed on the client)."""
    return {
        f"{field}_min": iso_with_offset(window.start - SEND_MARGIN),
        f"{field}_max": iso_with_offset(window.end + SEND_MARGIN),
    }


def dcl_bounds(window: Window, prefix: str) -> dict[str, str]:
    """DCL bounds for `modified`, `received` or `shipped`.

    `modified_*` take any ISO 8601 value, so the offset is explicit. `received_*`/`shipped_*` read
    `_from` as a local (US Pacific) date-time and `_to` as a whole local day, inclusive: the day of
    the window's last instant in Pacific time covers it, and the client trims the rest.
    """
    if prefix == "modified":
        return {
            "modified_from": iso_with_offset(window.start - SEND_MARGIN),
            "modified_to": iso_with_offset(window.end + SEND_MARGIN),
        }
    local_start = (window.start - SEND_MARGIN).astimezone(PACIFIC)
    local_last = (window.end - timedelta(microseconds=1)).astimezone(PACIFIC)
    return {
        f"{prefix}_from": local_start.strftime("%Y-%m-%dT%H:%M:%S"),
        f"{prefix}_to": local_last.strftime("%Y-%m-%d"),
    }


def daily_windows(window: Window) -> Iterator[Window]:
    """The window cut at UTC midnights (one file per day in Hive-style layouts)."""
    start = window.start
    while start < window.end:
        next_midnight = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=1)
        end = min(next_midnight, window.end)
        yield Window(start, end)
        start = end
