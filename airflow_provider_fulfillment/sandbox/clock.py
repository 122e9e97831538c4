"""Sandbox time that moves: advancing the clock moves records through their lifecycles.

The world is generated as it stands at its end instant. :meth:`SandboxClock.advance` moves "now"
past it, and every record that was still in progress at the end follows a fate drawn from the
seed and its index alone, so the same seed and the same advances give the same bytes, whatever
the order and size of the steps (a 2-day advance equals two 1-day advances):

- DropStream: open orders ship (a new shipment appears, ``new`` then ``notified_shipped``), are
  canceled, error (``error_sending_to_warehouse``) and half of those recover, or stay stuck (they
  stay late); pre-ship errors recover and ship or stay; unfinished shipments are notified
  (``notified_shipped``, within two days), errored ones recover and are notified or stay; most
  orders open for more than two weeks stay stuck. ``notified_shipped`` and ``archived`` are where
  a shipment's lifecycle ends: nothing moves a shipment out of them (change capture stops there).
  ``fulfillment_transitioned_at`` is the time of each change.
- DCL: orders received in the last week and not yet shipped ship (stage 60, one shipment),
  are delivered (stage 70) two to three days later, go on hold (stage 2, read as error) and are
  released, or are cancelled; already shipped packages are delivered when their delivery time
  passes. ``modified_at`` moves with each change.
- Stream: orders waiting for pickup go in transit then are delivered; some miss their pickup
  (an error) and most are picked up later; some are cancelled; in-transit orders are delivered.

It is reached at start-up (``fulfillment-sandbox --advance 1d``), through the control API
(``POST /_control/clock`` ``{"advance": "1d"}`` or seconds; ``GET`` reads it), and in tests
through ``SandboxServer.advance(...)``. The ground truth (``world.truth``) describes the world at
its end instant, before any advance.
"""

from __future__ import annotations

import re
import threading
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._util import DAY, HOUR, record_rng
from .world_dropstream import CLOCK_SHIPMENT

if TYPE_CHECKING:
    from .world import World
    from .world_dcl import DclWorld
    from .world_dropstream import DropStreamWorld
    from .world_stream import StreamWorld

HORIZON = 60 * DAY
"""Fates play out within this long after the world's end; afterwards nothing moves."""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": HOUR, "d": DAY}


def parse_duration(value: str | float | int) -> int:
    """Seconds from ``90``, ``"90s"``, ``"36h"``, ``"1.5d"`` (never negative: time only moves forward)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected a duration like 3600, '90m', '36h' or '1d', got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError(f"the sandbox clock only moves forward, got {value!r}")
    return int(seconds)


@dataclass(frozen=True, order=True)
class Step:
    """One change: at epoch second ``at``, record ``index`` of ``vendor`` does ``action``."""

    at: int
    vendor: str
    index: int
    action: str
    value: str = ""


def _between(rnd: Callable[[], float], low: float, high: float) -> int:
    return int(low + rnd() * (high - low))


# ------------------------------------------------------------------------------------ DropStream


def _plan_dropstream(w: DropStreamWorld) -> list[Step]:
    from .world_dropstream import OPEN_STATES, ORDER_STATES, PRESHIP_ERROR_STATES, SHIPMENT_STATES

    end = w.end
    steps: list[Step] = []
    add = steps.append

    def ship(i: int, at: int, rnd: Callable[[], float]) -> None:
        add(Step(at, "dropstream", i, "ship"))
        if rnd() < 0.08:  # its notification errors, and is retried later
            errored = at + _between(rnd, HOUR, 6 * HOUR)
            add(Step(errored, "dropstream", i, "shipment", "errored_notifying_of_shipment"))
            add(
                Step(
                    errored + _between(rnd, 6 * HOUR, 30 * HOUR),
                    "dropstream",
                    i,
                    "shipment",
                    "notified_shipped",
                )
            )
        else:
            add(
                Step(at + _between(rnd, 2 * HOUR, 12 * HOUR), "dropstream", i, "shipment", "notified_shipped")
            )

    for i in range(w.n):
        state = ORDER_STATES[w._state[i]]
        if (state not in OPEN_STATES and state not in PRESHIP_ERROR_STATES) or w.shipment_count(i):
            continue
        rnd = record_rng(w.seed, 130, i).random
        if w.created(i) < end - 14 * DAY and rnd() < 0.7:
            continue  # most of an old backlog stays stuck (and late)
        t = max(end, w.created(i)) + _between(rnd, HOUR, 12 * HOUR)
        u = rnd()
        if state in PRESHIP_ERROR_STATES:
            if u < 0.6:
                add(Step(t, "dropstream", i, "order", "pending_shipment"))
                ship(i, t + _between(rnd, 6 * HOUR, 48 * HOUR), rnd)
        elif u < 0.62:
            ship(i, t + _between(rnd, 0, 60 * HOUR), rnd)
        elif u < 0.70:
            add(Step(t + _between(rnd, 0, 60 * HOUR), "dropstream", i, "order", "canceled"))
        elif u < 0.82:
            add(Step(t, "dropstream", i, "order", "error_sending_to_warehouse"))
            if rnd() < 0.5:
                back = t + _between(rnd, 6 * HOUR, 36 * HOUR)
                add(Step(back, "dropstream", i, "order", "sent_to_warehouse"))
                ship(i, back + _between(rnd, 6 * HOUR, 48 * HOUR), rnd)
        # else: stuck, and late once its ship-by date passes
    done = {"notified_shipped", "archived"}  # terminal (models.states.DROPSTREAM_SHIPMENT_TERMINAL)
    for p in range(w.n_shipments):
        state = SHIPMENT_STATES[w._ship_state[p]]
        if state in done:
            continue
        rnd = record_rng(w.seed, 131, p).random
        if state.startswith("errored") and rnd() < 0.4:
            continue  # stays errored
        add(
            Step(
                end + _between(rnd, 2 * HOUR, 48 * HOUR),
                "dropstream",
                p,
                "existing_shipment",
                "notified_shipped",
            )
        )
    return steps


class _DropStreamMover:
    def __init__(self, w: DropStreamWorld) -> None:
        from .world_dropstream import OS, SS

        self.w, self.os, self.ss = w, OS, SS
        _ = w._ship_keys  # the shipment index is built from the states at the end, before any moves
        w.__dict__["_ship_state"] = bytearray(w._ship_state)
        w.__dict__["_sidr"] = bytearray(w._sidr)
        self.clock_shipment: dict[int, int] = {}  # order index -> position of its clock shipment

    def apply(self, step: Step) -> str:
        w = self.w
        if step.action == "order":
            w._state[step.index] = self.os[step.value]
            w.moved[step.index] = step.at
            w._record_bytes.clear()
            return "orders"
        if step.action == "ship":
            i = step.index
            w._state[i] = self.os["shipped"]
            w.moved[i] = step.at
            w.clock_shipped[i] = step.at
            keys: array = w._ship_keys
            keys.append(step.at * 4 * w.n + 4 * i + CLOCK_SHIPMENT)
            w._ship_state.append(self.ss["new"])
            w._sidr.append(step.at & 1)
            self.clock_shipment[i] = len(keys) - 1
            w._record_bytes.clear()
            return "orders"
        p = self.clock_shipment[step.index] if step.action == "shipment" else step.index
        w._ship_state[p] = self.ss[step.value]
        w._ship_bytes.clear()
        return "shipments"


# ------------------------------------------------------------------------------------ DCL


def _plan_dcl(w: DclWorld) -> list[Step]:
    steps: list[Step] = []
    add = steps.append
    for j in range(w.index_at(w.end - 7 * DAY), w.n):
        stage, cancelled, _ = w.kind(j)
        if cancelled or stage >= 50:
            continue
        rnd = record_rng(w.seed, 132, j).random
        t = max(w.end, w.received(j)) + _between(rnd, 2 * HOUR, 20 * HOUR)
        u = rnd()
        if stage == 2 or u < 0.12:  # on hold (DCL's error): released, then shipped, or left on hold
            if stage != 2:
                add(Step(t, "dcl", j, "stage", "2"))
            if rnd() < 0.6:
                t += _between(rnd, 12 * HOUR, 36 * HOUR)
                add(Step(t, "dcl", j, "stage", "20"))
            else:
                continue
        if u < 0.8:
            shipped = t + _between(rnd, 0, 48 * HOUR)
            add(Step(shipped, "dcl", j, "ship"))
            add(Step(w.delivery_after(j, shipped), "dcl", j, "stage", "70"))
        elif u < 0.88:
            add(Step(t, "dcl", j, "cancel"))
    return steps


class _DclMover:
    def __init__(self, w: DclWorld) -> None:
        self.w = w
        w._kind = bytearray(w._kind)

    def apply(self, step: Step) -> str:
        from .world_dcl import KINDS, _kind

        w = self.w
        stage, cancelled, back = KINDS[w._kind[step.index]]
        shipped_at = w.moved.get(step.index, (None, 0))[0]
        if step.action == "ship":
            stage, shipped_at = 60, step.at
        elif step.action == "cancel":
            cancelled = True
        else:
            stage = int(step.value)
        w._kind[step.index] = _kind(stage, cancelled, back)
        w.moved[step.index] = (shipped_at, step.at)
        w._bytes.clear()
        return "orders"


# ------------------------------------------------------------------------------------ Stream

_STREAM_WAITING = (
    "order_received",
    "awaiting_waybill_generation",
    "awaiting_prepayment",
    "prepayment_received",
    "client_to_schedule_pickup",
    "admin_to_schedule_pickup",
    "system_to_schedule_pickup",
    "awaiting_pickup",
    "awaiting_swap_out",
)


def _plan_stream(w: StreamWorld) -> list[Step]:
    steps: list[Step] = []
    add = steps.append

    def deliver(s: int, at: int, rnd: Callable[[], float]) -> None:
        add(Step(at, "stream", s, "status", "in_transit"))
        add(Step(at + _between(rnd, 2 * DAY, 4 * DAY), "stream", s, "status", "delivered"))

    for s in range(w.index_at(w.end - 14 * DAY), w.n):
        status = w.status(s)
        rnd = record_rng(w.seed, 133, s).random
        t = max(w.end, w.created(s)) + _between(rnd, 2 * HOUR, 30 * HOUR)
        u = rnd()
        if status in _STREAM_WAITING:
            if u < 0.65:
                deliver(s, t, rnd)
            elif u < 0.8:
                add(Step(t, "stream", s, "status", "pickup_missed"))
                if rnd() < 0.7:
                    deliver(s, t + _between(rnd, 12 * HOUR, 36 * HOUR), rnd)
            elif u < 0.86:
                add(Step(t, "stream", s, "status", "cancelled"))
        elif status == "in_transit":
            add(Step(t + _between(rnd, 0, 3 * DAY), "stream", s, "status", "delivered"))
        elif status in ("pickup_missed", "additional_document_required") and u < 0.6:
            deliver(s, t + _between(rnd, 6 * HOUR, 24 * HOUR), rnd)
    return steps


class _StreamMover:
    def __init__(self, w: StreamWorld) -> None:
        self.w = w
        w._status = bytearray(w._status)

    def apply(self, step: Step) -> str:
        from .world_stream import ST

        self.w._status[step.index] = ST[step.value]
        if step.value == "delivered":
            self.w.moved[step.index] = step.at
        return "orders"


# ------------------------------------------------------------------------------------ the clock


class SandboxClock:
    """The world's "now": its end instant plus how far it has been advanced."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.offset = 0
        self.changes: Counter[str] = Counter()
        self._steps: list[Step] | None = None
        self._next = 0
        self._movers: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self._end + self.offset, UTC)

    @property
    def _end(self) -> int:
        return self.world.dropstream.end

    def _plan(self) -> list[Step]:
        if self._steps is None:
            w = self.world
            steps = _plan_dropstream(w.dropstream) + _plan_dcl(w.dcl) + _plan_stream(w.stream)
            self._steps = sorted(step for step in steps if step.at < self._end + HORIZON)
            self._movers = {
                "dropstream": _DropStreamMover(w.dropstream),
                "dcl": _DclMover(w.dcl),
                "stream": _StreamMover(w.stream),
            }
        return self._steps

    def advance(self, seconds: str | float | int) -> dict[str, Any]:
        """Move "now" forward; apply every change due by then. Returns :meth:`state`."""
        delta = parse_duration(seconds)
        with self._lock:
            steps = self._plan()
            target = self._end + self.offset + delta
            applied: Counter[str] = Counter()
            while self._next < len(steps) and steps[self._next].at <= target:
                step = steps[self._next]
                applied[f"{step.vendor}_{self._movers[step.vendor].apply(step)}"] += 1
                self._next += 1
            self.offset += delta
            for part in (self.world.dropstream, self.world.dcl, self.world.stream):
                part.now = target
            self.world.dropstream._results.clear()
            self.changes.update(applied)
            return {**self.state(), "applied": dict(sorted(applied.items()))}

    def state(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "end": datetime.fromtimestamp(self._end, UTC).isoformat(),
            "advanced_seconds": self.offset,
            "changes": dict(sorted(self.changes.items())),
        }


__all__ = ["CLOCK_SHIPMENT", "HORIZON", "SandboxClock", "Step", "parse_duration"]
