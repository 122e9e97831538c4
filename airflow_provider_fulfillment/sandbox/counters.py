"""Request counters: what every client sent and what it got, so tests assert exact requests.

Each request served (``/_control`` excepted) is recorded with its method, path, exact query
parameters (in order, repeats kept), final status (0 for a dropped connection) and the injected
fault, if any. Counts by (method, path, status) are kept without limit; the per-request records are
capped (oldest dropped first) so a benchmark's million requests cannot exhaust memory.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class RequestRecord:
    """One request as the sandbox saw it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int
    fault: str | None = None
    delay: float = 0.0
    """Seconds of injected latency (``latency`` + ``jitter``) this request waited."""

    @property
    def params(self) -> dict[str, str]:
        """Query parameters as a dict (the last value of a repeated name wins, as the APIs read them)."""
        return dict(self.query)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": [list(kv) for kv in self.query],
            "status": self.status,
            "fault": self.fault,
            "delay": self.delay,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        return cls(
            method=data["method"],
            path=data["path"],
            query=tuple((k, v) for k, v in data["query"]),
            status=data["status"],
            fault=data.get("fault"),
            delay=data.get("delay", 0.0),
        )


@dataclass
class Counters:
    """A snapshot of the counters (from :meth:`SandboxServer.counters` or ``GET /_control/counters``)."""

    total: int = 0
    by_key: dict[tuple[str, str, int], int] = field(default_factory=dict)
    requests: list[RequestRecord] = field(default_factory=list)
    records_dropped: int = 0

    def count(
        self,
        path: str | None = None,
        method: str | None = None,
        status: int | None = None,
        prefix: str | None = None,
    ) -> int:
        """Requests matching every given criterion (``path`` exact, ``prefix`` a path prefix)."""
        return sum(
            n
            for (m, p, s), n in self.by_key.items()
            if (path is None or p == path)
            and (prefix is None or p.startswith(prefix))
            and (method is None or m == method)
            and (status is None or s == status)
        )

    def select(
        self, path: str | None = None, status: int | None = None, fault: str | None = None
    ) -> list[RequestRecord]:
        """Request records (in arrival order) matching every given criterion."""
        return [
            r
            for r in self.requests
            if (path is None or r.path == path)
            and (status is None or r.status == status)
            and (fault is None or r.fault == fault)
        ]

    def params(self, path: str) -> list[dict[str, str]]:
        """The query parameters of each request to ``path``, in order."""
        return [r.params for r in self.requests if r.path == path]

    def faults(self) -> Counter[str]:
        return Counter(r.fault for r in self.requests if r.fault)

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_key": [
                {"method": m, "path": p, "status": s, "count": n}
                for (m, p, s), n in sorted(self.by_key.items())
            ],
            "requests": [r.to_json() for r in self.requests],
            "records_dropped": self.records_dropped,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Counters:
        return cls(
            total=data["total"],
            by_key={(e["method"], e["path"], e["status"]): e["count"] for e in data["by_key"]},
            requests=[RequestRecord.from_json(r) for r in data["requests"]],
            records_dropped=data.get("records_dropped", 0),
        )


class RequestLog:
    """The live, thread-safe counters behind :class:`Counters` snapshots."""

    def __init__(self, max_records: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._by_key: Counter[tuple[str, str, int]] = Counter()
        self._records: deque[RequestRecord] = deque(maxlen=max_records)
        self._total = 0
        self._dropped = 0

    def record(
        self, method: str, path: str, query_string: bytes, status: int, fault: str | None, delay: float = 0.0
    ) -> None:
        query = (
            tuple(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)) if query_string else ()
        )
        rec = RequestRecord(method, path, query, status, fault, delay)
        with self._lock:
            self._total += 1
            self._by_key[(method, path, status)] += 1
            if len(self._records) == self._records.maxlen:
                self._dropped += 1
            self._records.append(rec)

    def snapshot(self) -> Counters:
        with self._lock:
            return Counters(
                total=self._total,
                by_key=dict(self._by_key),
                requests=list(self._records),
                records_dropped=self._dropped,
            )

    def reset(self) -> None:
        with self._lock:
            self._by_key.clear()
            self._records.clear()
            self._total = 0
            self._dropped = 0
