"""The control API under ``/_control``, for a separate process (the demo, the benchmarks) to do what
tests do through :class:`~airflow_provider_fulfillment.sandbox.testing.SandboxServer`.

- ``GET /_control/health``: ``{"status": "ok", ...world summary}``
- ``GET /_control/faults``: the current knobs; ``PUT`` replaces them all (knobs not given reset to
  their defaults), ``PATCH`` changes only the knobs given, ``DELETE`` resets every knob. A bad knob
  answers 400 ``{"error": ...}``. Setting knobs restarts the "every Nth" counts.
- ``GET /_control/counters``: requests served (see :class:`~.counters.Counters`); ``DELETE`` resets.
- ``DELETE /_control/sessions``: expire every DropStream session now.
- ``DELETE /_control/tokens``: revoke every bearer token now.
- ``GET /_control/clock``: the world's clock (now, advanced_seconds, changes so far); ``POST``
  ``{"advance": 86400}`` (or ``"36h"``, ``"2d"``) moves it forward and applies every change due
  (see :mod:`.clock`); a bad value answers 400.
- ``GET /_control/world``: world summary and ground-truth counts; ``GET /_control/truth``: the
  ground-truth id sets (DropStream) as sorted lists.

Faults never apply to ``/_control`` and its requests are not counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ._util import dumps
from .common import ApiError
from .faults import Faults

if TYPE_CHECKING:
    from .app import SandboxApp

JSON = "application/json"


def router(app: SandboxApp) -> APIRouter:
    r = APIRouter(prefix="/_control")

    def ok(body: Any) -> Response:
        return Response(dumps(body), media_type=JSON)

    async def knobs(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(400, dumps({"error": "expected a JSON object of fault knobs"}))
        return body

    def apply(body: dict[str, Any], base: Faults | None) -> Response:
        try:
            faults = Faults.from_dict(body, base)
        except ValueError as exc:
            raise ApiError(400, dumps({"error": str(exc)})) from exc
        app.set_faults(faults)
        return ok(faults.to_dict())

    @r.get("/health")
    async def health() -> Response:
        return ok({"status": "ok", **app.world.summary()})

    @r.get("/faults")
    async def get_faults() -> Response:
        return ok(app.faults.to_dict())

    @r.put("/faults")
    async def put_faults(request: Request) -> Response:
        return apply(await knobs(request), None)

    @r.patch("/faults")
    async def patch_faults(request: Request) -> Response:
        return apply(await knobs(request), app.faults)

    @r.delete("/faults")
    async def delete_faults() -> Response:
        app.set_faults(Faults())
        return ok(app.faults.to_dict())

    @r.get("/counters")
    async def get_counters() -> Response:
        return ok(app.log.snapshot().to_json())

    @r.delete("/counters")
    async def delete_counters() -> Response:
        app.log.reset()
        return ok({"total": 0})

    @r.delete("/sessions")
    async def delete_sessions() -> Response:
        app.expire_sessions()
        return ok({"sessions": 0})

    @r.delete("/tokens")
    async def delete_tokens() -> Response:
        app.revoke_tokens()
        return ok({"tokens": 0})

    @r.get("/clock")
    async def get_clock() -> Response:
        return ok(app.world_clock.state())

    @r.post("/clock")
    async def advance_clock(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or set(body) != {"advance"}:
            raise ApiError(400, dumps({"error": 'expected {"advance": <seconds, or "36h", "2d">}'}))
        try:
            return ok(app.world_clock.advance(body["advance"]))
        except (TypeError, ValueError) as exc:
            raise ApiError(400, dumps({"error": str(exc)})) from exc

    @r.get("/world")
    async def world() -> Response:
        return ok({**app.world.summary(), "truth": app.world.truth.summary()})

    @r.get("/truth")
    async def truth() -> Response:
        return ok(app.world.truth.as_json())

    return r
