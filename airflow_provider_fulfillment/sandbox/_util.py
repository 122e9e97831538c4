"""Small shared helpers: deterministic hashing, per-record RNGs, JSON bytes, vendor time formats.

Everything the sandbox serves is derived from ``(seed, index)`` through these helpers, so the same
seed gives byte-identical responses on every run and records can be generated lazily, one at a time.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

M64 = (1 << 64) - 1
PACIFIC = ZoneInfo("America/Los_Angeles")

try:  # msgspec ships with Airflow 3; it is several times faster than json for big pages.
    import msgspec

    _ENCODER = msgspec.json.Encoder()

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes (key order preserved: deterministic)."""
        return _ENCODER.encode(obj)

except ImportError:  # pragma: no cover - exercised only without msgspec

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes (key order preserved: deterministic)."""
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def mix64(x: int) -> int:
    """SplitMix64 finalizer: a cheap, well-spread 64-bit hash of an integer."""
    x &= M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def key64(seed: int, *parts: int) -> int:
    """Hash a seed and integer parts into one 64-bit key (order matters)."""
    h = mix64(seed ^ 0x5DEECE66D)
    for p in parts:
        h = mix64(h ^ (p & M64) ^ 0x9E3779B97F4A7C15)
    return h


def record_rng(seed: int, kind: int, index: int) -> random.Random:
    """A per-record RNG: records are independent of each other and of generation order."""
    return random.Random(key64(seed, kind, index))


def record_bytes(key: bytes, index: int) -> bytes:
    """64 seeded pseudo-random bytes for record ``index``: ~10x cheaper than seeding a Random."""
    return blake2b(index.to_bytes(8, "little", signed=True), key=key, digest_size=64).digest()


def random_bytes(seed: int, tag: int, n: int) -> bytes:
    """n seeded random bytes, made in C: the base of the compact per-record arrays."""
    return random.Random(key64(seed, 0xB17E5, tag)).randbytes(n)


class Timeline:
    """Records 0..n-1 spread over [start, end) (epoch seconds): record i at start + i*span/n plus a
    seeded jitter inside its slot, so times ascend with the index and a time's index is a bisection.
    Every world of the sandbox keeps its records on one."""

    def _init_timeline(self, seed: int, tag: int, n: int, start: int, end: int) -> None:
        self.n = n
        self.start = start
        self.end = end
        self.span = end - start
        self.slot = self.span // n
        self._jit = random_bytes(seed, tag, n)

    def time_of(self, i: int) -> int:
        return self.start + (i * self.span) // self.n + ((self._jit[i] * self.slot) >> 8)

    def index_at(self, t: float) -> int:
        """First record index at or after ``t``."""
        return bisect.bisect_left(range(self.n), t, key=self.time_of)


def mixed_codes(raw: bytes, recent_from: int, old_mix: bytes, recent_mix: bytes, codes: int) -> bytearray:
    """Per-record codes: `raw` through `old_mix` before index `recent_from`, `recent_mix` after, and
    every code once at the start of the recent zone, so each appears whatever the world's size."""
    n = len(raw)
    mixed = bytearray(raw[:recent_from].translate(old_mix) + raw[recent_from:].translate(recent_mix))
    first = max(0, min(recent_from, n - codes))
    mixed[first : first + codes] = bytes(range(codes))[: n - first]
    return mixed


def weighted_table(weights: Iterable[tuple[int, int]]) -> bytes:
    """A 256-entry ``bytes.translate`` table mapping uniform random bytes to weighted codes."""
    table = bytearray()
    for code, weight in weights:
        table.extend([code] * weight)
    if len(table) != 256:
        raise ValueError(f"weights must sum to 256, got {len(table)}")
    return bytes(table)


_DAYS: dict[int, str] = {}
_TOD: list[str] = []


def iso_z(t: int | float) -> str:
    """UTC instant as DropStream writes it: ``2022-10-03T04:28:20Z`` (table-driven: it is hot)."""
    day, sec = divmod(int(t), 86400)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
    if not _TOD:
        _TOD.extend(f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60))
    return prefix + _TOD[sec]


def date_utc(t: int | float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(int(t)))


def stream_time(t: int | float) -> str:
    """Stream's format: ``2025/08/04 11:48:40 UTC``."""
    return time.strftime("%Y/%m/%d %H:%M:%S UTC", time.gmtime(int(t)))


def pacific(t: int | float) -> datetime:
    return datetime.fromtimestamp(int(t), PACIFIC)


def pacific_iso(t: int | float) -> str:
    """US Pacific local time with its offset: ``2014-11-25T09:01:28-08:00`` (DCL ``modified_at``)."""
    return pacific(t).isoformat()


def pacific_local(t: int | float) -> str:
    """US Pacific local time without offset: ``2014-11-25T09:01:28`` (DCL extended dates)."""
    return pacific(t).strftime("%Y-%m-%dT%H:%M:%S")


def pacific_date(t: int | float) -> str:
    return pacific(t).strftime("%Y-%m-%d")


def money(x: float) -> str:
    """Decimal as a Rails-style string: ``"12.5"``, ``"1.0"``, ``"12.34"``."""
    s = f"{x:.2f}"
    if s.endswith("0"):
        s = s[:-1]
    return s


def to_epoch(dt: datetime) -> float:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def from_epoch(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def fmt_seconds(x: float) -> str:
    """A ``Retry-After`` value: whole seconds as an int, fractions kept (tests use 0 or 0.1)."""
    if x <= 0:
        return "0"
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.3f}".rstrip("0").rstrip(".")


def ceil_seconds(x: float) -> float:
    return float(math.ceil(x)) if x >= 1 else round(max(x, 0.0), 3)


DAY = 86400
HOUR = 3600
WEEK = timedelta(days=7)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small thread-safe LRU with an optional byte budget (for cached record and page bodies).
    Thread-safe because tests read the world from their own thread while the server renders."""

    def __init__(self, maxsize: int, max_bytes: int | None = None, sizeof: Callable[[V], int] | None = None):
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.sizeof = sizeof or (lambda v: 0)
        self._data: OrderedDict[K, V] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= self.sizeof(old)
            self._data[key] = value
            self._bytes += self.sizeof(value)
            while self._data and (
                len(self._data) > self.maxsize
                or (self.max_bytes is not None and self._bytes > self.max_bytes)
            ):
                _, evicted = self._data.popitem(last=False)
                self._bytes -= self.sizeof(evicted)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._data)


def one_segment(raw_path: bytes, collection: bytes) -> str | None:
    """The record key after `collection` (b"/orders/") when it is exactly one raw path segment.

    Routing reads the decoded path, where `PO%2017%2F2024` has become two segments; a real server
    splits the raw path first, so an encoded `/` stays inside the key. None: no such route.
    """
    from urllib.parse import unquote

    _, found, tail = raw_path.split(b"?", 1)[0].partition(collection)
    if not found or not tail or b"/" in tail:
        return None
    return unquote(tail.decode("ascii", "replace"))
