"""Date-string parsing as each vendor accepts it.

DropStream filters take "whole or partial ISO 8601 dateTimes" and natural language ("December 1st
2022", "dec 1", "last monday", "two hours ago", "now"), interpreted "in context": here relative to the
server's current time (real time unless the sandbox is given a clock), in UTC. Choices the docs leave
open, made once here so that tests can compute expected results exactly:

- ISO values without an offset are UTC; a date alone is midnight UTC; partial values ("2022-12",
  "2022-12-01T05") start at the beginning of the period they name.
- A month and day without a year ("dec 1") is the most recent such day on or before today.
- "last <weekday>" is that weekday strictly before today; "next <weekday>" strictly after; a bare or
  "this" weekday is the most recent one on or before today. Days named this way start at 00:00 UTC.
- "today", "yesterday", "tomorrow" are midnights; "now" is now; "<n> <unit>s ago", "in <n> <unit>s",
  "<n> <unit>s from now" shift now by calendar units (months and years by calendar, clamped).

DCL dates are ISO 8601; values without an offset are US Pacific local time (DCL's own clock).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

from ._util import PACIFIC

_ISO = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{1,2})(?:-(?P<d>\d{1,2})"
    r"(?:[Tt ](?P<H>\d{1,2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d+))?)?)?)?)?)?"
    r"\s*(?P<tz>[Zz]|UTC|[+-]\d{2}(?::?\d{2})?)?$"
)

_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for name in names
}
_WEEKDAYS = {
    name: i
    for i, names in enumerate(
        [
            ("monday", "mon"),
            ("tuesday", "tue", "tues"),
            ("wednesday", "wed"),
            ("thursday", "thu", "thur", "thurs"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        ]
    )
    for name in names
}
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "couple": 2,
    "few": 3,
}
_UNITS = {
    "second": "seconds",
    "sec": "seconds",
    "minute": "minutes",
    "min": "minutes",
    "hour": "hours",
    "hr": "hours",
    "day": "days",
    "week": "weeks",
    "fortnight": "fortnights",
    "month": "months",
    "year": "years",
}

_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_TIME_RE = r"(?:\s*,?\s*(?:at\s+)?(?P<H>\d{1,2})(?::(?P<M>\d{2})(?::(?P<S>\d{2}))?)?\s*(?P<ampm>am|pm|a\.m\.|p\.m\.)?)?"
_MONTH_DAY = re.compile(
    rf"^(?P<mon>{_MONTH_RE})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?(?:\s*,?\s*(?P<year>\d{{4}}))?{_TIME_RE}$"
)
_DAY_MONTH = re.compile(
    rf"^(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>{_MONTH_RE})\.?(?:\s*,?\s*(?P<year>\d{{4}}))?{_TIME_RE}$"
)
_MONTH_YEAR = re.compile(rf"^(?P<mon>{_MONTH_RE})\.?\s*,?\s*(?P<year>\d{{4}})$")
_US_DATE = re.compile(r"^(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})$")
_AGO = re.compile(r"^(?P<n>[\w\s-]+?)\s+(?P<unit>[a-z]+?)s?\s+(?P<dir>ago|from now|later|before now)$")
_IN = re.compile(r"^in\s+(?P<n>[\w\s-]+?)\s+(?P<unit>[a-z]+?)s?$")
_WEEKDAY = re.compile(r"^(?:(?P<rel>last|next|this|past|previous|coming)\s+)?(?P<wd>[a-z]+)$")
_LAST_UNIT = re.compile(r"^(?P<rel>last|next|past|previous)\s+(?P<unit>hour|day|week|month|year)$")


def _tz(text: str | None, default: tzinfo) -> tzinfo:
    if not text:
        return default
    if text in ("Z", "z", "UTC"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) > 2 else 0
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_iso(text: str, default_tz: tzinfo = UTC) -> datetime | None:
    """Whole or partial ISO 8601; values without an offset are in ``default_tz``. None if not ISO."""
    m = _ISO.match(text.strip())
    if not m:
        return None
    g = m.groupdict()
    frac = g["f"] or "0"
    micro = int((frac + "000000")[:6])
    try:
        local = datetime(
            int(g["y"]),
            int(g["m"] or 1),
            int(g["d"] or 1),
            int(g["H"] or 0),
            int(g["M"] or 0),
            int(g["S"] or 0),
            micro,
        )
    except ValueError:
        return None
    tz = _tz(g["tz"], default_tz)
    if tz is default_tz and hasattr(default_tz, "key"):  # a zoneinfo zone: pick the right DST side
        return local.replace(tzinfo=default_tz)
    return local.replace(tzinfo=tz)


def _number(text: str) -> int | None:
    text = text.strip().lower().replace("-", " ")
    if text.isdigit():
        return int(text)
    words = [w for w in text.split() if w not in ("and", "of")]
    if not words:
        return None
    total = 0
    for w in words:
        if w not in _NUMBERS:
            return None
        value = _NUMBERS[w]
        if value == 100:
            total = max(total, 1) * 100
        else:
            total += value
    return total


def _shift(now: datetime, n: int, unit: str) -> datetime:
    if unit in ("seconds", "minutes", "hours", "days", "weeks"):
        return now + timedelta(**{unit: n})
    if unit == "fortnights":
        return now + timedelta(weeks=2 * n)
    months = n * (12 if unit == "years" else 1)
    y, m = divmod(now.month - 1 + months, 12)
    year, month = now.year + y, m + 1
    day = now.day
    while True:
        try:
            return now.replace(year=year, month=month, day=day)
        except ValueError:
            day -= 1


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _with_time(d: date, m: re.Match[str]) -> datetime:
    hour = int(m.group("H") or 0)
    minute = int(m.group("M") or 0)
    second = int(m.group("S") or 0)
    ampm = (m.group("ampm") or "").replace(".", "")
    if ampm == "pm" and hour < 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    return datetime(d.year, d.month, d.day, hour, minute, second, tzinfo=UTC)


def _month_day(m: re.Match[str], now: datetime) -> datetime:
    month = _MONTHS[m.group("mon")]
    day = int(m.group("day"))
    if m.group("year"):
        d = date(int(m.group("year")), month, day)
    else:
        d = date(now.year, month, day)
        if d > now.date():
            d = date(now.year - 1, month, day)
    return _with_time(d, m)


def parse_dropstream_date(text: str, now: datetime) -> datetime:
    """A DropStream filter dateString to an aware UTC datetime; ValueError if it cannot be read."""
    raw = text
    text = text.strip()
    if not text:
        raise ValueError("empty date")
    iso = parse_iso(text)
    if iso is not None:
        return iso.astimezone(UTC)
    s = re.sub(r"\s+", " ", text.lower())
    now = now.astimezone(UTC)
    today = now.date()
    if s == "now" or s == "right now":
        return now
    if s == "today":
        return _midnight(today)
    if s == "yesterday":
        return _midnight(today - timedelta(days=1))
    if s == "tomorrow":
        return _midnight(today + timedelta(days=1))
    for pattern in (_MONTH_DAY, _DAY_MONTH):
        m = pattern.match(s)
        if m:
            try:
                return _month_day(m, now)
            except ValueError as exc:
                raise ValueError(f"invalid date {raw!r}") from exc
    m = _MONTH_YEAR.match(s)
    if m:
        return _midnight(date(int(m.group("year")), _MONTHS[m.group("mon")], 1))
    m = _US_DATE.match(s)
    if m:
        try:
            return _midnight(date(int(m.group("y")), int(m.group("m")), int(m.group("d"))))
        except ValueError as exc:
            raise ValueError(f"invalid date {raw!r}") from exc
    m = _AGO.match(s)
    if m:
        n = _number(m.group("n"))
        unit = _UNITS.get(m.group("unit"))
        if n is not None and unit:
            sign = -1 if m.group("dir") in ("ago", "before now") else 1
            return _shift(now, sign * n, unit)
    m = _IN.match(s)
    if m:
        n = _number(m.group("n"))
        unit = _UNITS.get(m.group("unit"))
        if n is not None and unit:
            return _shift(now, n, unit)
    m = _LAST_UNIT.match(s)
    if m:
        sign = 1 if m.group("rel") == "next" else -1
        return _shift(now, sign, _UNITS[m.group("unit")])
    m = _WEEKDAY.match(s)
    if m and m.group("wd") in _WEEKDAYS:
        wd = _WEEKDAYS[m.group("wd")]
        rel = m.group("rel")
        back = (today.weekday() - wd) % 7
        if rel in ("last", "past", "previous"):
            d = today - timedelta(days=back or 7)
        elif rel in ("next", "coming"):
            d = today + timedelta(days=((wd - today.weekday()) % 7) or 7)
        else:
            d = today - timedelta(days=back)
        return _midnight(d)
    raise ValueError(f"unrecognized date {raw!r}")


def parse_dcl_datetime(text: str) -> datetime:
    """A DCL date/time: ISO 8601, values without an offset in US Pacific local time."""
    dt = parse_iso(text, PACIFIC)
    if dt is None:
        raise ValueError(f"invalid ISO-8601 date {text!r}")
    return dt


def parse_dcl_date(text: str) -> date:
    """Only the date part of a DCL ``*_to`` value is evaluated (the time, if any, is ignored)."""
    m = re.match(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if not m:
        raise ValueError(f"invalid ISO-8601 date {text!r}")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        raise ValueError(f"invalid ISO-8601 date {text!r}") from exc


def pacific_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=PACIFIC)
