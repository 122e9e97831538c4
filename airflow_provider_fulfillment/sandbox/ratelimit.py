"""A leaky-bucket rate limit, as a vendor's gateway would enforce one: `bucket_rate` requests a
second, bursts of up to `bucket_size`; above it a 429 with the `Retry-After` (seconds, fractions
kept) after which one more request would fit.

Set it with the fault knobs (`--bucket-rate 100`, or `PATCH /_control/faults {"bucket_rate": 100}`),
scoped like every fault by `bucket_prefix` / `prefix`. Requests it refuses are logged with the fault
`bucket`, so a test counts its 429s exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LeakyBucket:
    """`rate` requests a second drain the bucket; a request that would overflow `size` is refused."""

    def __init__(self, rate: float, size: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("a bucket needs a positive rate")
        self.rate = float(rate)
        self.size = float(size) if size > 0 else max(1.0, self.rate)
        self._clock = clock
        self._level = 0.0
        self._at = clock()
        self._lock = threading.Lock()
        self.admitted = 0
        self.refused = 0

    def admit(self) -> float | None:
        """None if the request fits; else the seconds until it would (its `Retry-After`)."""
        with self._lock:
            now = self._clock()
            self._level = max(0.0, self._level - (now - self._at) * self.rate)
            self._at = now
            if self._level + 1.0 <= self.size + 1e-9:  # float drift must not refuse an exact fit
                self._level += 1.0
                self.admitted += 1
                return None
            self.refused += 1
            return (self._level + 1.0 - self.size) / self.rate
