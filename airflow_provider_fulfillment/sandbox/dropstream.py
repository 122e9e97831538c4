"""DropStream routes under ``/dropstream``: ``POST /auth/token``, ``GET /orders``, ``GET /orders/{id}``,
``GET /shipments``, ``GET /stores``, ``GET /warehouses``, ``GET /customers``.

Paging is as the docs say. With ``page``: page-based, at most 10,000 results in total; responses carry
``total_count`` (capped at 10,000 when cut) and ``total_pages``, plus ``"max_total_reached": true``
when the full set is larger. Without ``page``: session-based; the first response carries
``session_id``, ``page``, ``limit``, ``total_count`` and ``total_pages``; a continuation request
carries only ``session_id`` (anything else alongside is a 400), original parameters persist, each
request refreshes the session's expiry (60 s by default) and a short or empty page ends it. An
expired or unknown session answers 404 ``{"error": "session <id> not found or expired"}``.

A session is a cursor: a continuation request always gets the next page, even if the client lost
the previous response (a truncated body): the ``page`` number in each response lets a client see it.

Errors are 400/401/404 with ``{"error": "..."}``. ``_min`` filters are inclusive and ``_max``
filters exclusive; natural-language dates are read relative to now (see ``dates.py``).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from starlette.responses import Response

from ._util import LRU, ceil_div, dumps, one_segment
from .common import ApiError, Session
from .world_dropstream import ORDER_FILTERS, SHIPMENT_FILTERS, ParamError

if TYPE_CHECKING:
    from .app import SandboxApp

PAGE_CAP = 10_000
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
JSON = "application/json"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status, dumps({"error": message}), JSON, headers)


def _int_param(name: str, value: str, low: int, high: int | None = None) -> int:
    try:
        n = int(value)
    except ValueError:
        n = None
    if n is None or n < low or (high is not None and n > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise _error(400, f"invalid {name}: {value!r} (must be an integer {bounds})")
    return n


def router(app: SandboxApp) -> APIRouter:
    r = APIRouter(prefix="/dropstream")
    world = app.world.dropstream
    page_cache: LRU[tuple, bytes] = LRU(256, max_bytes=64 * 2**20, sizeof=len)
    cfg = app.config

    def auth(request: Request) -> None:
        why = app.check_token("dropstream", request.headers.get("authorization"), request.url.path)
        if why:
            if why == "token expired":
                request.scope["sandbox.fault"] = "token_expired"
            raise _error(401, why, {"www-authenticate": 'Bearer error="invalid_token"'})

    @r.post("/auth/token")
    async def token(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        user = password = None
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = None
        if user != cfg.dropstream_user or password != cfg.dropstream_password:
            raise _error(
                401,
                "invalid_client: bad API user or password",
                {"www-authenticate": 'Basic realm="DropStream"'},
            )
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("grant_type") != "client_credentials":
            raise _error(400, 'unsupported_grant_type: send {"grant_type": "client_credentials"}')
        tok, ttl = app.issue_token("dropstream", user)
        return Response(
            dumps({"access_token": tok, "token_type": "Bearer", "expires_in": int(ttl)}), media_type=JSON
        )

    def cached_segment(key: tuple, rows: Sequence[int], render: Callable[[int], bytes]) -> bytes:
        key = (*key, world.now)  # pages rendered before the clock moved are stale
        seg = page_cache.get(key)
        if seg is None:
            seg = b",".join(render(i) for i in rows)
            page_cache.put(key, seg)
        return seg

    def prefetch(rows: Sequence[int], render: Callable[[int], bytes]) -> None:
        """Render the next page's records while the client reads this one (cached per record)."""
        if not rows:
            return

        def steps() -> Iterator[None]:
            for k in range(0, len(rows), 50):
                for i in rows[k : k + 50]:
                    render(i)
                yield None

        app.background(steps())

    def listing(
        request: Request,
        resource: str,
        allowed: Sequence[str],
        parse: Callable[[dict[str, str], str | None], tuple[tuple, Sequence[int]]],
        render: Callable[[int], bytes],
    ) -> Response:
        auth(request)
        items = list(request.query_params.multi_items())
        names = [k for k, _ in items]
        if "session_id" in names:
            others = sorted({n for n in names if n != "session_id"})
            if others:
                raise _error(
                    400, f"a session continuation takes only session_id; also got: {', '.join(others)}"
                )
            return continue_session(request, resource, dict(items)["session_id"], render)
        unknown = sorted({n for n in names if n not in allowed and n not in ("sort", "limit", "page")})
        if unknown:
            raise _error(400, f"unknown parameter: {', '.join(unknown)}")
        params = dict(items)  # the last value of a repeated name wins ("the last sort is used")
        sort = params.pop("sort", None)
        limit = _int_param("limit", params.pop("limit"), 1, MAX_LIMIT) if "limit" in params else DEFAULT_LIMIT
        page = _int_param("page", params.pop("page"), 1) if "page" in params else None
        try:
            qkey, rows = parse(params, sort)
        except ParamError as exc:
            raise _error(400, str(exc)) from exc
        live = app.live
        failed = live.error_response("dropstream", request)
        if failed is not None:
            return failed
        limit = live.served_limit("dropstream", limit)
        if resource == "orders":
            rows = live.visible("dropstream", rows, world.n)
        qkey = (*qkey, live.version)
        total = len(rows)
        if page is not None:
            if resource == "orders" and sort is not None:
                shuffled = live.shuffled_ties(rows, world.order_sort_key(sort))
                if shuffled is not rows:
                    rows, qkey = shuffled, (*qkey, object())  # never served from the cache
            capped = min(total, PAGE_CAP)
            start = (page - 1) * limit
            stop = min(start + limit, capped)
            seg = cached_segment((qkey, start, stop), rows[start:stop], render) if start < capped else b""
            meta = {
                "page": page,
                "limit": limit,
                "total_count": capped,
                "total_pages": ceil_div(capped, limit),
            }
            if total > PAGE_CAP:
                meta["max_total_reached"] = True
            if stop < capped:
                prefetch(rows[stop : min(stop + limit, capped)], render)
            live.served("dropstream", rows[start:stop] if resource == "orders" else ())
            return _page(resource, seg, _totals(meta))
        app.purge_sessions()
        session = Session(
            id=app.new_session_id(),
            resource=resource,
            rows=rows,
            query_key=qkey,
            limit=limit,
            last_used=time.monotonic(),
        )
        with app.lock:
            app.sessions[session.id] = session
        meta = {"session_id": session.id}
        seg = advance(session, render, meta)
        meta["total_count"] = total
        meta["total_pages"] = ceil_div(total, limit)
        return _page(resource, seg, _totals(meta))

    def _totals(meta: dict) -> dict:
        if app.live.omit_totals("dropstream"):
            meta.pop("total_count", None)
            meta.pop("total_pages", None)
        return meta

    def advance(session: Session, render: Callable[[int], bytes], meta: dict) -> bytes:
        start = session.pos
        stop = min(start + session.limit, len(session.rows))
        session.pos = max(stop, start)
        session.page += 1
        session.last_used = time.monotonic()
        meta["page"] = session.page
        meta["limit"] = session.limit
        if session.resource == "orders":
            app.live.served("dropstream", session.rows[start:stop])
        if start >= stop:
            return b""
        seg = cached_segment((session.query_key, start, stop), session.rows[start:stop], render)
        if stop < len(session.rows):
            prefetch(session.rows[stop : stop + session.limit], render)
        return seg

    def continue_session(
        request: Request, resource: str, sid: str, render: Callable[[int], bytes]
    ) -> Response:
        f = app.faults
        now = time.monotonic()
        with app.lock:
            session = app.sessions.get(sid)
            expired = (
                session is None
                or session.resource != resource
                or now - session.last_used >= app.session_ttl()
            )
            if (
                session is not None
                and not expired
                and f.session_max_pages
                and session.page >= f.session_max_pages
            ):
                expired = True
                request.scope["sandbox.fault"] = "session_expired"
            if expired:
                if session is not None and session.resource == resource:
                    app.sessions.pop(sid, None)
                    request.scope.setdefault("sandbox.fault", "session_expired")
                raise _error(404, f"session {sid} not found or expired")
        failed = app.live.error_response("dropstream", request)
        if failed is not None:
            return failed
        meta: dict = {"session_id": sid}
        seg = advance(session, render, meta)
        return _page(resource, seg, meta)

    def parse_orders(params: dict[str, str], sort: str | None) -> tuple[tuple, Sequence[int]]:
        q = world.parse_order_query(params, app.now(), sort)
        return q.key(), world.select_orders(q)

    def parse_shipments(params: dict[str, str], sort: str | None) -> tuple[tuple, Sequence[int]]:
        q = world.parse_shipment_query(params, app.now(), sort)
        return q.key(), world.select_shipments(q)

    @r.get("/orders")
    async def orders(request: Request) -> Response:
        return listing(request, "orders", ORDER_FILTERS, parse_orders, world.order_bytes)

    @r.get("/orders/{order_id:path}")
    async def order(request: Request, order_id: str) -> Response:
        # `{order_id:path}` takes what the decoded path splits; the raw path must hold one segment.
        single = one_segment(request.scope.get("raw_path") or b"", b"/orders/")
        if single is None:
            return Response(b'{"detail":"Not Found"}', status_code=404, media_type=JSON)
        order_id = single
        auth(request)
        if request.query_params:
            raise _error(400, f"unknown parameter: {', '.join(sorted(request.query_params))}")
        i = world.order_index(int(order_id)) if order_id.isdigit() else -1
        if i < 0:
            raise _error(404, f"order {order_id} not found")
        return Response(b'{"order":' + world.order_bytes(i) + b"}", media_type=JSON)

    @r.get("/shipments")
    async def shipments(request: Request) -> Response:
        return listing(request, "shipments", SHIPMENT_FILTERS, parse_shipments, world.shipment_bytes)

    def directory(name: str, rows: list[dict]) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            auth(request)
            params = dict(request.query_params)
            unknown = sorted(set(params) - {"page", "limit"})
            if unknown:
                raise _error(400, f"unknown parameter: {', '.join(unknown)}")
            limit = _int_param("limit", params["limit"], 1, MAX_LIMIT) if "limit" in params else MAX_LIMIT
            page = _int_param("page", params["page"], 1) if "page" in params else 1
            chunk = rows[(page - 1) * limit : page * limit]
            body = {
                name: chunk,
                "page": page,
                "limit": limit,
                "total_count": len(rows),
                "total_pages": ceil_div(len(rows), limit),
            }
            return Response(dumps(body), media_type=JSON)

        return handler

    def endpoint(handler: Callable[[Request], Response]) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            return handler(request)

        return run

    for name, rows in (
        ("stores", world.stores),
        ("warehouses", world.warehouses),
        ("customers", world.customers),
    ):
        r.add_api_route(
            f"/{name}", endpoint(directory(name, rows)), methods=["GET"], name=f"dropstream_{name}"
        )
    return r


def _page(resource: str, segment: bytes, meta: dict) -> Response:
    tail = dumps(meta)
    body = b'{"' + resource.encode() + b'":[' + segment + b"]," + tail[1:]
    return Response(body, media_type=JSON)
