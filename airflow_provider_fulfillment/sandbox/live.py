"""Live-data knobs: the vendor's data moves, and its answers bend, while a client reads.

Production data changes while it is read, and vendors serve pages that are not what the docs
promise. Each knob reproduces one case a client must survive (all off by default):

- ``mutate`` (``modify``, ``status`` or ``insert``) after ``mutate_after`` listing answers under
  ``mutate_prefix`` (and again every ``mutate_every`` answers after that, if set), on
  ``mutate_count`` records of the page just served:

  - ``modify`` moves their ``modified_at`` to a day after the world's end. DCL only: DropStream
    and Stream document no modification time (no field, no filter), so there is nothing to move.
  - ``status`` moves them to another state: DropStream ``fulfillment_state``, Stream ``status``,
    DCL ``order_stage`` (to another stage of the same kind, shipped or not; ``modified_at``
    moves with it, as DCL's does).
  - ``insert`` makes ``mutate_count`` records appear that were hidden until then (the newest
    ones of the world), for every vendor.
- ``page_cap``: serve at most this many records a page, below what was asked (DropStream echoes
  the ``limit`` it served and counts ``total_pages`` by it, as a server lowering its maximum would).
- ``unstable_ties``: DropStream returns records whose sort key ties in a different order on each
  page request (what LIMIT/OFFSET over a non-unique key does).
- ``error_body_every``: every Nth listing request answers HTTP 200 with the vendor's error body
  and no records key (DropStream ``{"error": ...}``, Stream ``{"success": false, ...}``).
- ``omit_totals``: answers without ``total_count``/``total_pages`` (DropStream) or ``meta`` (Stream).
- ``newest_first``: Stream lists newest first (so an insert pushes records onto later pages).
- ``one_token_per_user``: issuing a bearer token revokes the user's earlier ones.

Set them at start-up (``fulfillment-sandbox --live mutate=status --live mutate_after=1``),
through ``run_sandbox(mutate="status", ...)`` or ``/_control/live`` (GET, PUT, PATCH, DELETE).
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, get_type_hints

from fastapi import APIRouter, Request
from starlette.responses import Response

from ._util import dumps
from .common import ApiError

if TYPE_CHECKING:
    from .world import World

MUTATIONS = ("", "modify", "status", "insert")
_DAY = 86_400


@dataclass
class LiveKnobs:
    """Every live-data knob (see the module docstring)."""

    mutate: str = ""
    mutate_after: int = 1
    mutate_every: int = 0
    mutate_count: int = 2
    mutate_prefix: str = ""
    page_cap: int = 0
    page_cap_prefix: str = ""
    unstable_ties: bool = False
    error_body_every: int = 0
    error_body_prefix: str = ""
    omit_totals: bool = False
    omit_totals_prefix: str = ""
    newest_first: bool = False
    one_token_per_user: bool = False

    @classmethod
    def knob_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, knobs: dict[str, Any], base: LiveKnobs | None = None) -> LiveKnobs:
        hints = get_type_hints(cls)
        values = dataclasses.asdict(base) if base is not None else {}
        for name, raw in knobs.items():
            if name not in hints:
                raise ValueError(f"unknown live knob {name!r}; knobs: {', '.join(cls.knob_names())}")
            values[name] = _convert(name, hints[name], raw)
        live = cls(**values)
        if live.mutate not in MUTATIONS:
            raise ValueError(f"mutate must be one of {', '.join(repr(m) for m in MUTATIONS)}")
        for name in ("mutate_after", "mutate_every", "mutate_count", "page_cap", "error_body_every"):
            if getattr(live, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        return live

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _convert(name: str, kind: Any, raw: Any) -> Any:
    if kind is bool:
        if isinstance(raw, str):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"{name}: expected true or false, got {raw!r}")
            return raw.lower() in ("true", "1")
        return bool(raw)
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: cannot read {raw!r} as {kind.__name__}") from None


def _vendor_prefix(vendor: str) -> str:
    return {"dropstream": "/dropstream", "dcl": "/dcl", "stream": "/stream"}[vendor]


class LiveData:
    """The knobs in force and what they have done so far (shared by every request)."""

    def __init__(self, world: World, knobs: LiveKnobs | None = None) -> None:
        self.world = world
        self.lock = threading.Lock()
        self.version = 0
        self.mutated: list[tuple[str, Any]] = []  # (vendor, record id) of every mutation, for tests
        self._hidden: dict[str, int] = {}
        self.set(knobs or LiveKnobs())

    def set(self, knobs: LiveKnobs) -> None:
        with self.lock:
            self.knobs = knobs
            self.listed: dict[str, int] = {}
            self.errors: dict[str, int] = {}
            self.rng = random.Random(0)
            self._hidden = (
                {
                    vendor: knobs.mutate_count
                    for vendor in ("dropstream", "dcl", "stream")
                    if self._mine(vendor)
                }
                if knobs.mutate == "insert"
                else {}
            )
            self.version += 1

    def _mine(self, vendor: str, prefix_knob: str = "mutate_prefix") -> bool:
        prefix = getattr(self.knobs, prefix_knob)
        return (
            not prefix
            or _vendor_prefix(vendor).startswith(prefix)
            or prefix.startswith(_vendor_prefix(vendor))
        )

    # ------------------------------------------------------------------ what routers ask

    def visible(self, vendor: str, rows: Sequence[int], n: int) -> Sequence[int]:
        """The listing's rows with the not-yet-inserted records left out, in the listing order."""
        hidden = self._hidden.get(vendor, 0)
        if hidden:
            limit = n - hidden
            rows = (
                range(min(limit, len(rows)))
                if isinstance(rows, range) and rows.start == 0
                else [r for r in rows if r < limit]
            )
        if vendor == "stream" and self.knobs.newest_first:
            rows = list(reversed(rows))
        return rows

    def shuffled_ties(self, rows: Sequence[int], key_of: Callable[[int], Any] | None) -> Sequence[int]:
        """Records with equal sort keys in a fresh order for this request (DropStream pages)."""
        if not self.knobs.unstable_ties or key_of is None or len(rows) < 2:
            return rows
        out: list[int] = []
        group: list[int] = []
        last: Any = object()
        with self.lock:
            for row in rows:
                key = key_of(row)
                if key != last and group:
                    self.rng.shuffle(group)
                    out.extend(group)
                    group = []
                group.append(row)
                last = key
            self.rng.shuffle(group)
            out.extend(group)
        return out

    def served_limit(self, vendor: str, asked: int) -> int:
        cap = self.knobs.page_cap
        return min(asked, cap) if cap and self._mine(vendor, "page_cap_prefix") else asked

    def omit_totals(self, vendor: str) -> bool:
        return self.knobs.omit_totals and self._mine(vendor, "omit_totals_prefix")

    def error_body(self, vendor: str) -> bytes | None:
        """The 200 error body due on this listing request, if one is."""
        every = self.knobs.error_body_every
        if not every or not self._mine(vendor, "error_body_prefix"):
            return None
        with self.lock:
            self.errors[vendor] = self.errors.get(vendor, 0) + 1
            if self.errors[vendor] % every:
                return None
        if vendor == "stream":
            return dumps({"success": False, "error": "Something went wrong, please try again"})
        if vendor == "dcl":
            return dumps({"error_code": 0, "error_message": "Temporarily unavailable"})
        return dumps({"error": "Internal error: please retry the request"})

    def error_response(self, vendor: str, request: Request) -> Response | None:
        """The HTTP 200 error answer due on this listing request, if one is (marked in the counters)."""
        body = self.error_body(vendor)
        if body is None:
            return None
        request.scope["sandbox.fault"] = "error_body"
        return Response(body, media_type="application/json")

    def served(self, vendor: str, rows: Sequence[int]) -> None:
        """A listing answer with these rows went out: mutate once its turn has come."""
        knobs = self.knobs
        if not knobs.mutate or not self._mine(vendor):
            return
        with self.lock:
            count = self.listed.get(vendor, 0) + 1
            self.listed[vendor] = count
            due = count - knobs.mutate_after
            if due < 0 or (due and not (knobs.mutate_every and due % knobs.mutate_every == 0)):
                return
            if knobs.mutate == "insert":
                self._hidden[vendor] = 0
                self.mutated.append((vendor, "insert"))
            else:
                for row in list(rows)[: knobs.mutate_count]:
                    self.mutated.append((vendor, self._mutate(vendor, row, knobs.mutate)))
            self.version += 1

    def _mutate(self, vendor: str, row: int, kind: str) -> Any:
        world = self.world
        if vendor == "dcl":
            if kind == "modify":
                world.dcl.set_modified(row, world.dcl.end + _DAY)
            elif kind == "status":
                world.dcl.set_stage(row, world.dcl.end + _DAY)
            return world.dcl.order_number(row)
        if vendor == "stream":
            if kind == "status":
                world.stream.set_status(row, _other(world.stream.status(row), world.stream.statuses))
            return world.stream.order_id(row)
        if kind == "status":
            ds = world.dropstream
            ds.set_state(row, _other(ds.state(row), ds.order_states))
        return world.dropstream.order_id(row)

    def token_issued(self, tokens: dict[str, Any], subject: str, token: str) -> None:
        """With ``one_token_per_user``: the user's other tokens stop working (call under the app lock)."""
        if not self.knobs.one_token_per_user:
            return
        for other in [t for t, v in tokens.items() if getattr(v, "subject", None) == subject and t != token]:
            del tokens[other]


def _other(current: str, choices: Sequence[str]) -> str:
    return next(choice for choice in choices if choice != current)


def router(live: LiveData) -> APIRouter:
    r = APIRouter(prefix="/_control")

    def ok() -> Response:
        return Response(
            dumps({**live.knobs.to_dict(), "mutated": live.mutated}), media_type="application/json"
        )

    async def body(request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ApiError(400, dumps({"error": "expected a JSON object of live knobs"}))
        return data

    def apply(data: dict[str, Any], base: LiveKnobs | None) -> Response:
        try:
            live.set(LiveKnobs.from_dict(data, base))
        except ValueError as exc:
            raise ApiError(400, dumps({"error": str(exc)})) from exc
        return ok()

    @r.get("/live")
    async def get_live() -> Response:
        return ok()

    @r.put("/live")
    async def put_live(request: Request) -> Response:
        return apply(await body(request), None)

    @r.patch("/live")
    async def patch_live(request: Request) -> Response:
        return apply(await body(request), live.knobs)

    @r.delete("/live")
    async def delete_live() -> Response:
        live.set(LiveKnobs())
        return ok()

    return r
