"""The sandbox ASGI application: three vendor APIs, the control API, fault injection and counters.

:class:`SandboxApp` is the ASGI callable uvicorn serves. It is a thin layer around a FastAPI app:
it applies the request-level faults (latency, dropped connections, 429s, 5xx, truncated bodies) and
records every request before and after the vendor routes run, and it owns the mutable server state
the routes share (sessions, tokens, served document links).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response

from . import control, dcl, dropstream, live, stream
from ._util import dumps, fmt_seconds
from .clock import SandboxClock
from .common import ApiError, Session, Token, vendor_error
from .counters import RequestLog
from .faults import FaultRuntime, Faults
from .live import LiveData, LiveKnobs
from .world import DEFAULT_END, World

__all__ = ["ApiError", "SandboxApp", "SandboxConfig", "Session", "Token", "vendor_error"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_CREDENTIALS = {
    "dropstream_user": "sandbox-api-user",
    "dropstream_password": "sandbox-api-password",
    "dcl_login": "sandbox-dcl-login",
    "dcl_password": "sandbox-dcl-password",
    "stream_email": "sandbox@example.com",
    "stream_password": "sandbox-stream-password",
}


@dataclass
class SandboxConfig:
    """Everything that shapes a sandbox: the world, the credentials, the TTLs, the initial faults."""

    seed: int = 42
    orders: int = 5000
    end: datetime = DEFAULT_END
    days: float = 90.0
    dcl_orders: int | None = None
    stream_orders: int | None = None
    planted: int = 5
    session_ttl: float = 60.0
    """DropStream sessions expire this long after their last request."""
    token_ttl: float = 900.0
    """DropStream JWTs expire this long after issue (``expires_in``)."""
    stream_token_ttl: float = 3600.0
    link_ttl: float = 300.0
    """Stream document links work this long after the last response that carried them."""
    dropstream_user: str = DEFAULT_CREDENTIALS["dropstream_user"]
    dropstream_password: str = DEFAULT_CREDENTIALS["dropstream_password"]
    dcl_login: str = DEFAULT_CREDENTIALS["dcl_login"]
    dcl_password: str = DEFAULT_CREDENTIALS["dcl_password"]
    stream_email: str = DEFAULT_CREDENTIALS["stream_email"]
    stream_password: str = DEFAULT_CREDENTIALS["stream_password"]
    clock: Callable[[], datetime] | None = None
    """"Now" for natural-language DropStream dates; None = the real current time."""
    advance: str | float = 0
    """Advance the world's own clock this far at start-up (seconds, or "36h", "2d"; see clock.py)."""
    faults: Faults = field(default_factory=Faults)
    live: LiveKnobs = field(default_factory=LiveKnobs)
    """Live-data knobs at start-up: mid-read mutations, page caps, odd answers (see ``live``)."""
    max_records: int = 200_000
    """Per-request records kept by the counters (counts are never capped)."""
    record_cache: int = 20_000
    """Rendered DropStream records kept in memory. Benchmarks raise it to the world's size so that
    serving a page is joining cached bytes, and the sandbox is not what they measure."""

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))


class SandboxApp:
    """The ASGI application. Build it once per server; its state is shared by every request."""

    def __init__(self, config: SandboxConfig | None = None, world: World | None = None) -> None:
        self.config = config = config or SandboxConfig()
        self.world = world or World(
            seed=config.seed,
            orders=config.orders,
            end=config.end,
            days=config.days,
            dcl_orders=config.dcl_orders,
            stream_orders=config.stream_orders,
            planted=config.planted,
            record_cache=config.record_cache,
        )
        self.world_clock = SandboxClock(self.world)
        if config.advance:
            self.world_clock.advance(config.advance)
        self.log = RequestLog(config.max_records)
        self.runtime = FaultRuntime(config.faults)
        self.live = LiveData(self.world, config.live)
        self.lock = threading.Lock()
        self.sessions: dict[str, Session] = {}
        self.tokens: dict[str, Token] = {}
        self.links_served: dict[int, float] = {}
        self._session_counter = itertools.count(1)
        self._token_counter = itertools.count(1)
        self._secret = hashlib.sha256(f"sandbox-secret-{config.seed}".encode()).digest()
        self._background: set[asyncio.Task[Any]] = set()
        self.inner = self._build()

    def _build(self) -> FastAPI:
        api = FastAPI(
            title="Fulfillment sandbox",
            description="Local emulator of the DropStream, DCL and Stream APIs.",
            docs_url="/_control/docs",
            redoc_url=None,
            openapi_url="/_control/openapi.json",
        )
        api.include_router(dropstream.router(self))
        api.include_router(dcl.router(self))
        api.include_router(stream.router(self))
        api.include_router(control.router(self))
        api.include_router(live.router(self.live))

        @api.exception_handler(ApiError)
        async def _api_error(request: Any, exc: ApiError) -> Any:
            return Response(
                exc.body, status_code=exc.status, media_type=exc.content_type, headers=exc.headers
            )

        return api

    # ------------------------------------------------------------------ shared state

    def now(self) -> datetime:
        clock = self.config.clock
        return clock() if clock is not None else datetime.now(UTC)

    @property
    def faults(self) -> Faults:
        return self.runtime.faults

    def set_faults(self, faults: Faults) -> None:
        faults.validate()
        self.runtime = FaultRuntime(faults)

    def new_session_id(self) -> str:
        """Deterministic session ids: the same request sequence gives the same bytes."""
        n = next(self._session_counter)
        digest = hashlib.sha256(f"session-{self.config.seed}-{n}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def session_ttl(self) -> float:
        override = self.faults.session_expire_after
        return self.config.session_ttl if override is None else override

    def purge_sessions(self) -> None:
        ttl = self.session_ttl()
        now = time.monotonic()
        with self.lock:
            for sid in [s.id for s in self.sessions.values() if now - s.last_used >= ttl]:
                del self.sessions[sid]

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def issue_token(self, vendor: str, subject: str) -> tuple[str, float]:
        """A bearer token for ``vendor``: a JWT-looking string for DropStream, opaque for Stream."""
        ttl = self.config.token_ttl if vendor == "dropstream" else self.config.stream_token_ttl
        n = next(self._token_counter)
        if vendor == "dropstream":
            iat = int(time.time())
            header = _b64(b'{"alg":"HS256","typ":"JWT"}')
            payload = _b64(dumps({"sub": subject, "iat": iat, "exp": iat + int(ttl), "jti": n}))
            sig = _b64(hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
            token = f"{header}.{payload}.{sig}"
        else:
            token = "stk_" + hmac.new(self._secret, f"stream-{n}".encode(), hashlib.sha256).hexdigest()
        with self.lock:
            if len(self.tokens) > 10_000:
                now = time.monotonic()
                for t in [t for t, v in self.tokens.items() if now - v.issued > v.ttl]:
                    del self.tokens[t]
            self.tokens[token] = Token(vendor, time.monotonic(), ttl, subject=subject)
            self.live.token_issued(self.tokens, subject, token)
        return token, ttl

    def check_token(self, vendor: str, header: str | None, path: str) -> str | None:
        """None if the ``Authorization`` header carries a live token of ``vendor``; else why not."""
        if not header or not header.startswith("Bearer "):
            return "missing bearer token"
        token = header[7:].strip()
        rt = self.runtime
        f = rt.faults
        scoped = rt.applies("token", path)
        with self.lock:
            t = self.tokens.get(token)
            if t is None or t.vendor != vendor:
                return "invalid token"
            ttl = f.token_expire_after if (scoped and f.token_expire_after is not None) else t.ttl
            if time.monotonic() - t.issued >= ttl:
                return "token expired"
            t.uses += 1
            if scoped and f.token_max_uses:  # uses counted from when the knob was set
                rt.token_uses[token] += 1
                if rt.token_uses[token] > f.token_max_uses:
                    return "token expired"
        return None

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def background(self, work: Iterable[Any]) -> None:
        """Run a generator's steps between requests (page prefetch): one step per loop turn."""

        async def run() -> None:
            for _ in work:
                await asyncio.sleep(0)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_control"):
            await self.inner(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        query: bytes = scope.get("query_string", b"")
        rt = self.runtime
        f = rt.faults
        refused = rt.bucket_refusal(path)  # the gateway decides on arrival; the answer still travels
        delay = rt.delay(path)
        if delay:
            await asyncio.sleep(delay)
        if refused is not None:
            body, ctype = vendor_error(path, 429, "Too many requests: rate limit exceeded")
            await _respond(send, 429, body, ctype, {"retry-after": fmt_seconds(refused)})
            self.log.record(method, path, query, 429, "bucket", delay)
            return
        if rt.trigger("drop", path, f.drop_every, f.drop_rate):
            self.log.record(method, path, query, 0, "drop", delay)
            await _drop_connection(send)
            return
        if rt.trigger("rate_limit", path, f.rate_limit_every, f.rate_limit_rate, f.rate_limit_burst):
            body, ctype = vendor_error(path, 429, "Too many requests: rate limit exceeded")
            await _respond(send, 429, body, ctype, {"retry-after": fmt_seconds(f.retry_after)})
            self.log.record(method, path, query, 429, "rate_limit", delay)
            return
        if rt.trigger("error", path, f.error_every, f.error_rate):
            body, ctype = vendor_error(path, f.error_status, "Injected server error")
            await _respond(send, f.error_status, body, ctype)
            self.log.record(method, path, query, f.error_status, "error", delay)
            return
        truncate = rt.trigger("truncate", path, f.truncate_every, f.truncate_rate)
        status = 0
        fault: str | None = None
        if not truncate:

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.inner(scope, receive, send_wrapper)
            finally:
                self.log.record(method, path, query, status, scope.get("sandbox.fault"), delay)
            return
        # Truncation: buffer the real response, then send half of it.
        start: Message = {}
        chunks: list[bytes] = []

        async def buffer(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.inner(scope, receive, buffer)
        body = b"".join(chunks)
        status = start.get("status", 500)
        cut = body[: len(body) // 2]
        fault = "truncate"
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if f.truncate_mode == "json":
            headers.append((b"content-length", str(len(cut)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": cut, "more_body": False})
        else:
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": cut, "more_body": True})
            self.log.record(method, path, query, status, fault, delay)
            await _drop_connection(send, started=True)
            return
        self.log.record(method, path, query, status, fault, delay)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _respond(
    send: Send, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class DroppedConnection(ConnectionAbortedError):
    """Raised to make the server close a connection when the transport is not reachable."""


async def _drop_connection(send: Send, started: bool = False) -> None:
    """Close the client's connection without (the rest of) a response.

    uvicorn's ``send`` is a bound method of the request cycle, which holds the transport: closing it
    is the one way to end a connection without uvicorn answering 500 for us. The client sees a
    transport error (httpx: ``RemoteProtocolError``). Without uvicorn, raising is the fallback.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise DroppedConnection("sandbox: injected dropped connection")
    transport.close()
    for _ in range(3):  # let connection_lost() mark the cycle disconnected before we return
        await asyncio.sleep(0)
