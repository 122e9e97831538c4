"""Fault knobs and their deterministic triggers.

Every knob is off by default. "Every Nth" knobs count the requests each fault applies to (those under
its path prefix) from the moment the knobs were set, so a test can say exactly which request fails:
with ``error_every=3`` the 3rd, 6th, 9th... matching requests get a 5xx. Rate knobs (``*_rate``) and
``jitter`` draw from an RNG seeded with ``seed``, so a fixed sequence of requests meets the same faults
on every run. Faults never apply to ``/_control``.

Prefixes: ``prefix`` scopes every request-level fault (e.g. ``"/dropstream"``); ``<fault>_prefix``
overrides it for one fault. The vendor prefixes are ``/dropstream``, ``/dcl`` and ``/stream``.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import types
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any, get_type_hints

from .ratelimit import LeakyBucket


@dataclass
class Faults:
    """Every fault knob (see the module docstring for how triggers count)."""

    prefix: str = ""
    """Path prefix every request-level fault is limited to ("" = all vendors)."""
    seed: int = 0
    """Seed of the RNG behind ``*_rate`` knobs and ``jitter``."""

    latency: float = 0.0
    """Seconds added to every matching request."""
    jitter: float = 0.0
    """Extra seconds, uniform in [0, jitter), added to every matching request."""
    latency_prefix: str | None = None

    error_every: int = 0
    """Every Nth matching request answers ``error_status`` (in the vendor's error format)."""
    error_rate: float = 0.0
    """Fraction of matching requests that answer ``error_status``."""
    error_status: int = 503
    error_prefix: str | None = None

    rate_limit_every: int = 0
    """In every cycle of N matching requests, the last ``rate_limit_burst`` answer 429."""
    rate_limit_burst: int = 1
    rate_limit_rate: float = 0.0
    """Fraction of matching requests that answer 429."""
    retry_after: float = 1.0
    """``Retry-After`` seconds sent with injected 429s (fractions allowed, e.g. 0 or 0.1)."""
    rate_limit_prefix: str | None = None

    drop_every: int = 0
    """Every Nth matching request: the connection is closed without any response."""
    drop_rate: float = 0.0
    drop_prefix: str | None = None

    truncate_every: int = 0
    """Every Nth matching request gets a truncated body (see ``truncate_mode``)."""
    truncate_rate: float = 0.0
    truncate_mode: str = "length"
    """``length``: Content-Length promises more than is sent, then the connection closes (the client
    sees a protocol error); ``json``: a complete HTTP 200 whose JSON is cut in half."""
    truncate_prefix: str | None = None

    session_expire_after: float | None = None
    """DropStream sessions expire this many seconds after their last request (overrides ``session_ttl``)."""
    session_max_pages: int = 0
    """DropStream sessions expire once they have served this many pages."""

    token_expire_after: float | None = None
    """Bearer tokens (DropStream and Stream) expire this many seconds after issue (overrides the TTLs)."""
    token_max_uses: int = 0
    """Bearer tokens expire after this many authenticated requests."""
    token_prefix: str | None = None

    dcl_error_every: int = 0
    """Every Nth DCL ``GET /orders`` answers HTTP 200 with ``error_code`` != 0 and no orders."""
    dcl_error_code: int = 503
    dcl_error_message: str = "The service is temporarily unavailable. Please try again later."
    dcl_rate_limit: int = 0
    """DCL's own rate limit: at most this many requests per ``dcl_rate_window`` seconds, then 429."""
    dcl_rate_window: float = 1.0

    bucket_rate: float = 0.0
    """A leaky-bucket rate limit: requests a second served, 429 with Retry-After above (0 = off)."""
    bucket_size: int = 0
    """The bucket's burst: requests accepted at once (0 = one second's worth)."""
    bucket_prefix: str | None = None

    @classmethod
    def knob_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, knobs: dict[str, Any], base: Faults | None = None) -> Faults:
        """Build from knob values (strings from a CLI are converted); ValueError names a bad knob."""
        hints = get_type_hints(cls)
        values = dataclasses.asdict(base) if base is not None else {}
        for name, raw in knobs.items():
            if name not in hints:
                raise ValueError(f"unknown fault knob {name!r}; knobs: {', '.join(cls.knob_names())}")
            values[name] = _convert(name, hints[name], raw)
        faults = cls(**values)
        faults.validate()
        return faults

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        for name in ("error_rate", "rate_limit_rate", "drop_rate", "truncate_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        for name in (
            "error_every",
            "rate_limit_every",
            "rate_limit_burst",
            "drop_every",
            "truncate_every",
            "session_max_pages",
            "token_max_uses",
            "dcl_error_every",
            "dcl_rate_limit",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("latency", "jitter", "retry_after", "dcl_rate_window", "bucket_rate", "bucket_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.truncate_mode not in ("length", "json"):
            raise ValueError("truncate_mode must be 'length' or 'json'")
        # 5xx for server faults; a 4xx too, e.g. a 404 for "this tracking number is not visible yet".
        if not 400 <= self.error_status <= 599:
            raise ValueError("error_status must be a 4xx or 5xx status")
        for f in fields(self):
            if f.name == "prefix" or f.name.endswith("_prefix"):
                value = getattr(self, f.name)
                if value and not value.startswith("/"):
                    raise ValueError(f"{f.name} must start with '/'")


KNOB_HELP: dict[str, str] = {
    "prefix": "path prefix all request faults are limited to, e.g. /dropstream ('' = everything)",
    "seed": "seed of the RNG behind *_rate knobs and jitter",
    "latency": "seconds added to every request",
    "jitter": "extra seconds, uniform in [0, jitter), per request",
    "error_every": "every Nth request answers error_status",
    "error_rate": "fraction of requests answering error_status",
    "error_status": "the 5xx status injected errors use (default 503)",
    "rate_limit_every": "in every cycle of N requests the last rate_limit_burst answer 429",
    "rate_limit_burst": "consecutive 429s per cycle (default 1)",
    "rate_limit_rate": "fraction of requests answering 429",
    "retry_after": "Retry-After seconds of injected 429s (fractions allowed)",
    "drop_every": "every Nth request: connection closed without a response",
    "drop_rate": "fraction of requests whose connection is closed without a response",
    "truncate_every": "every Nth request gets a truncated body",
    "truncate_rate": "fraction of requests with a truncated body",
    "truncate_mode": "length (Content-Length larger than the body, then close) or json (cut JSON in a 200)",
    "session_expire_after": "DropStream sessions expire this many seconds after their last request",
    "session_max_pages": "DropStream sessions expire after serving this many pages",
    "token_expire_after": "bearer tokens expire this many seconds after issue",
    "token_max_uses": "bearer tokens expire after this many requests",
    "dcl_error_every": "every Nth DCL GET /orders answers HTTP 200 with error_code != 0",
    "dcl_error_code": "error_code of those answers (default 503)",
    "dcl_error_message": "error_message of those answers",
    "dcl_rate_limit": "DCL's own limit: requests per dcl_rate_window, then 429",
    "dcl_rate_window": "seconds of DCL's rate-limit window (default 1)",
    "bucket_rate": "leaky-bucket rate limit: requests/s served, 429 with Retry-After above (0 = off)",
    "bucket_size": "the bucket's burst in requests (0 = one second's worth)",
}
"""One line per knob, for the command line's help."""


def _convert(name: str, hint: Any, raw: Any) -> Any:
    allow_none = False
    base = hint
    if isinstance(hint, types.UnionType):
        args = hint.__args__
        allow_none = type(None) in args
        base = next(a for a in args if a is not type(None))
    if raw is None or (allow_none and isinstance(raw, str) and raw.strip().lower() in ("", "none", "null")):
        if allow_none:
            return None
        raise ValueError(f"fault knob {name!r} cannot be null")
    try:
        if base is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise TypeError
            return int(raw)
        if base is float:
            if isinstance(raw, bool):
                raise TypeError
            return float(raw)
        if base is str:
            if not isinstance(raw, str):
                raise TypeError
            return raw
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad value for fault knob {name!r}: {raw!r}") from exc
    raise ValueError(f"bad value for fault knob {name!r}: {raw!r}")


class FaultRuntime:
    """The live state of one set of knobs: per-fault request counts and the seeded RNG. Replaced
    whole (an atomic assignment) whenever knobs change, so counting restarts from the change."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.rng = random.Random(faults.seed)
        self.counts: Counter[str] = Counter()
        self.token_uses: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._dcl_window_start = 0.0
        self._dcl_window_count = 0
        self.bucket = LeakyBucket(faults.bucket_rate, faults.bucket_size) if faults.bucket_rate else None

    def _prefix(self, group: str) -> str:
        if group.startswith("dcl_"):
            return "/dcl"
        own = getattr(self.faults, f"{group}_prefix", None)
        return own if own is not None else self.faults.prefix

    def applies(self, group: str, path: str) -> bool:
        return path.startswith(self._prefix(group))

    def trigger(self, group: str, path: str, every: int, rate: float = 0.0, burst: int = 1) -> bool:
        """Count this request for ``group`` and say whether the fault fires on it."""
        if not every and not rate:
            return False
        if not self.applies(group, path):
            return False
        with self._lock:
            self.counts[group] += 1
            n = self.counts[group]
            if every and (n - 1) % every >= every - min(burst, every):
                return True
            return bool(rate) and self.rng.random() < rate

    def delay(self, path: str) -> float:
        f = self.faults
        if not (f.latency or f.jitter) or not self.applies("latency", path):
            return 0.0
        with self._lock:
            extra = self.rng.random() * f.jitter if f.jitter else 0.0
        return f.latency + extra

    def dcl_rate_limited(self) -> float | None:
        """None if a DCL request may proceed, else the seconds until DCL's window reopens."""
        limit = self.faults.dcl_rate_limit
        if not limit:
            return None
        now = time.monotonic()
        with self._lock:
            window = self.faults.dcl_rate_window
            if now - self._dcl_window_start >= window:
                self._dcl_window_start = now
                self._dcl_window_count = 0
            self._dcl_window_count += 1
            if self._dcl_window_count > limit:
                return max(0.0, self._dcl_window_start + window - now)
        return None

    def bucket_refusal(self, path: str) -> float | None:
        """None if the leaky bucket (when set) admits this request; else its Retry-After seconds."""
        if self.bucket is None or not self.applies("bucket", path):
            return None
        return self.bucket.admit()
