"""DCL routes under ``/dcl/api/v1``: ``GET /orders`` with HTTP Basic auth.

Parameters as documented: ``status``, ``order_numbers``, ``received_from``/``received_to``,
``shipped_from``/``shipped_to`` (``_to`` is a whole Pacific day, inclusive; its time part is
ignored), ``modified_from``/``modified_to`` (inclusive; offset-less values are US Pacific), ``fields``,
``page`` (default 1), ``page_size`` (1..100, default 100), ``extended_date`` and ``filter``. There is no
total: clients stop at a short or empty page. Every answer carries ``error_code``/``error_message``;
errors use them with a 4xx status, and (fault knob ``dcl_error_every``) inside an HTTP 200.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from starlette.responses import Response

from ._util import ceil_seconds, dumps, fmt_seconds
from .common import ApiError
from .world_dropstream import ParamError

if TYPE_CHECKING:
    from .app import SandboxApp

ALLOWED = frozenset(
    {
        "status",
        "order_numbers",
        "received_from",
        "received_to",
        "shipped_from",
        "shipped_to",
        "modified_from",
        "modified_to",
        "fields",
        "page",
        "page_size",
        "filter",
        "extended_date",
    }
)
MAX_PAGE_SIZE = 100
JSON = "application/json"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status, dumps({"error_code": status, "error_message": message}), JSON, headers)


def router(app: SandboxApp) -> APIRouter:
    r = APIRouter(prefix="/dcl/api/v1")
    world = app.world.dcl
    cfg = app.config
    field_names = tuple(world.order_dict(0))

    def auth(request: Request) -> None:
        header = request.headers.get("authorization", "")
        login = password = None
        if header.startswith("Basic "):
            try:
                login, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                login = None
        if login != cfg.dcl_login or password != cfg.dcl_password:
            raise _error(
                401,
                "Authorization has been denied for this request.",
                {"www-authenticate": 'Basic realm="DCL"'},
            )

    @r.get("/orders")
    async def orders(request: Request) -> Response:
        wait = app.runtime.dcl_rate_limited()
        if wait is not None:
            request.scope["sandbox.fault"] = "dcl_rate_limit"
            raise _error(
                429, "Too many requests. Please slow down.", {"retry-after": fmt_seconds(ceil_seconds(wait))}
            )
        auth(request)
        params = dict(request.query_params)  # a repeated name: the last value wins
        unknown = sorted(set(params) - ALLOWED)
        if unknown:
            raise _error(400, f"Unknown parameter(s): {', '.join(unknown)}")
        page = _int(params.get("page", "1"), "page", 1, None)
        page_size = _int(params.get("page_size", str(MAX_PAGE_SIZE)), "page_size", 1, MAX_PAGE_SIZE)
        extended = params.get("extended_date", "false").strip().lower()
        if extended not in ("true", "false", "1", "0", ""):
            raise _error(400, f"Invalid extended_date '{params['extended_date']}': expected true or false")
        extended_date = extended in ("true", "1")
        wanted: list[str] | None = None
        if params.get("fields", "").strip():
            wanted = [f.strip() for f in params["fields"].split(",") if f.strip()]
            bad = [f for f in wanted if f not in field_names]
            if bad:
                raise _error(400, f"Unknown field(s) in fields: {', '.join(bad)}")
        try:
            q = world.parse_query(params)
        except ParamError as exc:
            raise _error(400, str(exc)) from exc
        if app.runtime.trigger("dcl_error", request.url.path, app.faults.dcl_error_every):
            request.scope["sandbox.fault"] = "dcl_error"
            body = {
                "error_code": app.faults.dcl_error_code,
                "error_message": app.faults.dcl_error_message,
                "orders": None,
            }
            return Response(dumps(body), media_type=JSON)
        live = app.live
        failed = live.error_response("dcl", request)
        if failed is not None:
            return failed
        page_size = live.served_limit("dcl", page_size)
        rows = live.visible("dcl", world.select(q), world.n)
        chunk = rows[(page - 1) * page_size : page * page_size]
        if wanted is None:
            seg = b",".join(world.order_bytes(j, extended_date) for j in chunk)
        else:
            keep = set(wanted)
            seg = b",".join(
                dumps({k: v for k, v in world.order_dict(j, extended_date).items() if k in keep})
                for j in chunk
            )
        live.served("dcl", chunk)
        return Response(b'{"error_code":0,"error_message":"","orders":[' + seg + b"]}", media_type=JSON)

    return r


def _int(value: str, name: str, low: int, high: int | None) -> int:
    try:
        n = int(value)
    except ValueError:
        n = None
    if n is None or n < low or (high is not None and n > high):
        rng = f"between {low} and {high}" if high is not None else f">= {low}"
        raise _error(400, f"Invalid {name} '{value}': must be an integer {rng}")
    return n
