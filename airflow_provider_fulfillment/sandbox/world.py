"""The sandbox's world: one seed and size give the same stores, orders, shipments for all vendors.

Time is anchored at a fixed end instant (default 2026-01-01T00:00:00Z) and spans ``days`` before it,
so responses never depend on when the sandbox runs (natural-language date filters excepted: they
are read relative to the current time, as the real API does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ._util import to_epoch
from .world_dcl import DclWorld
from .world_dropstream import DropStreamTruth, DropStreamWorld
from .world_stream import StreamWorld

DEFAULT_END = datetime(2026, 1, 1, tzinfo=UTC)


class World:
    """Everything the three APIs serve, generated lazily from ``(seed, size)``.

    - ``world.dropstream``: :class:`DropStreamWorld` (``order(id)``, ``shipment(id)``, ``order_ids(...)``,
      ``shipment_ids(...)``, ``truth``...)
    - ``world.dcl``: :class:`DclWorld` (``order(number)``, ``order_numbers(...)``...)
    - ``world.stream``: :class:`StreamWorld` (``order(id or reference)``, ``order_ids(...)``...)
    - ``world.truth``: the DropStream ground truth (planted discrepancies and state sets).
    """

    def __init__(
        self,
        seed: int = 42,
        orders: int = 5000,
        end: datetime = DEFAULT_END,
        days: float = 90.0,
        dcl_orders: int | None = None,
        stream_orders: int | None = None,
        planted: int = 5,
        record_cache: int = 20_000,
    ) -> None:
        if end.tzinfo is None:
            raise ValueError("end must be timezone-aware")
        self.seed = seed
        self.end = end.astimezone(UTC)
        self.days = days
        end_s = int(to_epoch(end))
        start_s = end_s - int(days * 86400)
        self.start = datetime.fromtimestamp(start_s, UTC)
        self.dcl_orders = dcl_orders if dcl_orders is not None else max(100, min(orders // 5, 200_000))
        self.stream_orders = (
            stream_orders if stream_orders is not None else max(60, min(orders // 10, 100_000))
        )
        self.dropstream = DropStreamWorld(
            seed, orders, start_s, end_s, planted=planted, record_cache=record_cache
        )
        self.dcl = DclWorld(seed, self.dcl_orders, start_s, end_s)
        self.stream = StreamWorld(seed, self.stream_orders, start_s, end_s)

    @property
    def orders(self) -> int:
        return self.dropstream.n

    @property
    def truth(self) -> DropStreamTruth:
        return self.dropstream.truth

    def summary(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": self.days,
            "dropstream_orders": self.dropstream.n,
            "dcl_orders": self.dcl.n,
            "stream_orders": self.stream.n,
        }
