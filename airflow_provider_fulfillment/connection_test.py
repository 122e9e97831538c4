"""Make the Airflow UI's connection Test button work on our connections (Airflow 3.3.0 to 3.3.2).

The UI builds the test request from the stored connection with ``port: Number(connection.port)``, and
``Number(null)`` is ``0``. Our connections have no port (the base URL carries it), so the API server
compares the requested port 0 with the stored NULL, decides the caller is testing a different
destination, and answers 400 "The host or port to test differs from the stored connection" — the
masked ``***`` password the UI sends is rightly not accepted as new credentials.
apache/airflow#73298 fixes the comparison in the API (0 means "no port", like a blank field). Until a
user's Airflow has it, this root middleware does the same normalisation in front of the route, for
this provider's connection types only: a ``"port": 0`` in a ``POST /api/v2/connections/test`` body
becomes ``null``. Nothing addresses port 0, so where Airflow has the fix this changes nothing.
Registered as a plugin in ``get_provider_info()["plugins"]``; it runs only in the API server.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.sdk.plugins_manager import AirflowPlugin

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TEST_ROUTE_SUFFIX = "/api/v2/connections/test"
CONN_TYPES = frozenset({"dropstream", "dcl", "stream"})
MAX_BODY = 1 << 20  # a connection body is a few KB; anything larger is passed through untouched


def normalized_test_body(body: bytes) -> bytes | None:
    """The body with ``"port": 0`` made ``null`` when it tests one of our connection types, else None."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("conn_type") not in CONN_TYPES:
        return None
    port = payload.get("port")
    if port != 0 or isinstance(port, bool):
        return None
    payload["port"] = None
    return json.dumps(payload).encode()


class PortlessConnectionTestMiddleware:
    """Pure ASGI: buffers only the test route's request body, rewrites it, replays it to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope.get("type") != "http"
            or scope.get("method") != "POST"
            or not str(scope.get("path", "")).endswith(TEST_ROUTE_SUFFIX)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                await self.app(scope, _replay([*_as_messages(chunks), message]), send)
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = bool(message.get("more_body"))
            if size > MAX_BODY:
                await self.app(scope, _replay(_as_messages(chunks), receive, more), send)
                return
        body = b"".join(chunks)
        rewritten = normalized_test_body(body)
        if rewritten is not None:
            body = rewritten
            headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
            scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}]), send)


def _as_messages(chunks: list[bytes]) -> list[Message]:
    return [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]


def _replay(messages: list[Message], rest: Receive | None = None, more: bool = False) -> Receive:
    """A ``receive`` that yields the buffered messages, then the live stream (if any is left)."""
    pending = list(messages)
    if pending and not more and pending[-1]["type"] == "http.request":
        pending[-1] = {**pending[-1], "more_body": False}

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if rest is not None:
            return await rest()
        return {"type": "http.disconnect"}

    return receive


class FulfillmentConnectionTestPlugin(AirflowPlugin):
    name = "fulfillment_connection_test"
    fastapi_root_middlewares = [
        {"middleware": PortlessConnectionTestMiddleware, "name": "Fulfillment: portless connection test"}
    ]
