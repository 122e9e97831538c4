"""Stream routes under ``/stream/client_api/v2``: ``POST /auth/sign_in``, ``GET /orders`` (``status``,
``page``, 20 a page, ``meta.page_count``/``meta.record_count``), ``GET /orders/{id or reference_number}``;
and the document links under ``/stream/documents``.

Errors are ``{"success": false, "error": "..."}`` (400, 404), except 401, which is plain text, as the
docs show. Orders are listed by ascending id; a page past the last is empty.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ._util import ceil_div, dumps, one_segment
from .common import ApiError
from .world_stream import DOCUMENTS, PAGE_SIZE, STATUSES, ParamError

if TYPE_CHECKING:
    from .app import SandboxApp

JSON = "application/json"
UNAUTHORIZED = "Access token is missing or invalid."


def _error(status: int, message: str) -> ApiError:
    if status == 401:
        return ApiError(401, message.encode(), "text/plain; charset=utf-8", {"www-authenticate": "Bearer"})
    return ApiError(status, dumps({"success": False, "error": message}), JSON)


def router(app: SandboxApp) -> APIRouter:
    r = APIRouter(prefix="/stream")
    world = app.world.stream
    cfg = app.config

    def auth(request: Request) -> None:
        why = app.check_token("stream", request.headers.get("authorization"), request.url.path)
        if why:
            if why == "token expired":
                request.scope["sandbox.fault"] = "token_expired"
            raise _error(401, UNAUTHORIZED)

    def link_base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def served(ids: list[int]) -> None:
        now = time.monotonic()
        with app.lock:
            for oid in ids:
                app.links_served[oid] = now

    @r.post("/client_api/v2/auth/sign_in")
    async def sign_in(request: Request) -> Response:
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        user = body.get("api_user") if isinstance(body, dict) else None
        if (
            not isinstance(user, dict)
            or not isinstance(user.get("email"), str)
            or not isinstance(user.get("password"), str)
        ):
            raise _error(400, "Invalid input, object invalid")
        if user["email"] != cfg.stream_email or user["password"] != cfg.stream_password:
            raise _error(401, "Invalid email or password.")
        token, _ = app.issue_token("stream", user["email"])
        return Response(dumps({"token": token}), media_type=JSON)

    @r.get("/client_api/v2/orders")
    async def orders(request: Request) -> Response:
        auth(request)
        params = dict(request.query_params)
        unknown = sorted(set(params) - {"status", "page"})
        if unknown:
            raise _error(400, f"Invalid input, unknown parameter: {', '.join(unknown)}")
        page_text = params.get("page", "1")
        if not page_text.isdigit() or int(page_text) < 1:
            raise _error(400, f"Invalid input, page must be a positive integer: {page_text!r}")
        page = int(page_text)
        try:
            rows = world.select(params.get("status") or None)
        except ParamError as exc:
            raise _error(400, f"Invalid input, {exc}; expected one of: {', '.join(STATUSES)}") from exc
        live = app.live
        failed = live.error_response("stream", request)
        if failed is not None:
            return failed
        rows = live.visible("stream", rows, world.n)
        chunk = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        base = link_base(request)
        served([world.order_id(s) for s in chunk])
        seg = b",".join(dumps(world.order_dict(s, base)) for s in chunk)
        live.served("stream", chunk)
        if live.omit_totals("stream"):
            return Response(b'{"orders":[' + seg + b"]}", media_type=JSON)
        meta = dumps({"meta": {"page_count": ceil_div(len(rows), PAGE_SIZE), "record_count": len(rows)}})
        return Response(b'{"orders":[' + seg + b"]," + meta[1:], media_type=JSON)

    @r.get("/client_api/v2/orders/{key:path}")
    async def order(request: Request, key: str) -> Response:
        # `{key:path}` takes what the decoded path splits; the raw path must hold one segment.
        single = one_segment(request.scope.get("raw_path") or b"", b"/client_api/v2/orders/")
        if single is None:
            return Response(b'{"detail":"Not Found"}', status_code=404, media_type=JSON)
        key = single
        auth(request)
        s = world.index_of(key)
        if s < 0:  # as the docs show: an unknown id or reference is "invalid input"
            raise _error(400, "Invalid input, object invalid")
        served([world.order_id(s)])
        return Response(b'{"order":' + dumps(world.order_dict(s, link_base(request))) + b"}", media_type=JSON)

    @r.get("/documents/{order_id}/{doc}")
    async def document(request: Request, order_id: str, doc: str) -> Response:
        s = world.index_of(order_id) if order_id.isdigit() else -1
        if s < 0 or doc not in DOCUMENTS or not world.documents(s)[doc]:
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        if request.query_params.get("signature") != world.signature(int(order_id), doc):
            return Response(b"SignatureDoesNotMatch", status_code=403, media_type="text/plain")
        with app.lock:
            last = app.links_served.get(int(order_id))
        if last is None or time.monotonic() - last >= cfg.link_ttl:
            return Response(b"Request has expired", status_code=403, media_type="text/plain")
        pdf = _pdf(f"{doc.replace('_', ' ').title()} for order {order_id}")
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"content-disposition": f'inline; filename="{doc}-{order_id}.pdf"'},
        )

    return r


def _pdf(title: str) -> bytes:
    """A tiny valid-looking PDF: clients download bytes, they do not render them."""
    text = title.replace("(", "").replace(")", "")
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\n"
        b"% " + text.encode() + b"\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
