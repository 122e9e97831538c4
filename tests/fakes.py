"""Scripted in-memory vendors for unit tests through httpx.MockTransport: every request is recorded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

BASE = datetime(2025, 10, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def params_of(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


@contextmanager
def sandbox_connections(**options: Any) -> Iterator[Any]:
    """The in-process sandbox (`run_sandbox(**options)`), every vendor's default connection pointing at it."""
    from airflow_provider_fulfillment.sandbox.testing import run_sandbox

    with run_sandbox(**options) as server, pytest.MonkeyPatch.context() as patch:
        for name, value in server.conn_env().items():
            patch.setenv(name, value)
        yield server


@dataclass
class Recorder:
    """Wraps a handler; keeps (method, path, params) of every request and lets a test inject answers."""

    handler: Callable[[httpx.Request], httpx.Response]
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    raw: list[httpx.Request] = field(default_factory=list)
    # Answers to give instead of the handler's, consumed in order (None = use the handler).
    script: list[Any] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path, params_of(request)))
        self.raw.append(request)
        if self.script:
            answer = self.script.pop(0)
            if isinstance(answer, Exception):
                raise answer
            if answer is not None:
                return answer
        return self.handler(request)

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]

    def data_requests(self, path: str) -> list[dict[str, str]]:
        return [params for _, p, params in self.requests if p == path]


def dropstream_order(i: int, **over: Any) -> dict[str, Any]:
    created = BASE + timedelta(minutes=i)
    record = {
        "id": i,
        "store_id": 7,
        "external_display_id": f"SO{i}",
        "fulfillment_state": "pending_shipment",
        "fulfillment_transitioned_at": iso(created),
        "created_at": iso(created),
        "ordered_at": iso(created),
        "shipping_amount": "1.50",
        "order_items": [{"id": i * 10, "sku": f"SKU{i}", "unit_price": "9.99"}],
    }
    record.update(over)
    return record


class FakeDropStream:
    """DropStream's paging rules, small: sessions (only session_id on continuation), pages, the cap."""

    def __init__(self, orders: list[dict[str, Any]], cap: int = 10_000, token: str = "jwt-1") -> None:
        self.orders = orders
        self.cap = cap
        self.sessions: dict[str, dict[str, Any]] = {}
        self.expired: set[str] = set()
        self.tokens = [token]
        self.valid_tokens = {token}
        self.token_requests = 0

    def issue_token(self) -> str:
        token = f"jwt-{len(self.tokens) + 1}"
        self.tokens.append(token)
        self.valid_tokens.add(token)
        return token

    def select(self, params: dict[str, str]) -> list[dict[str, Any]]:
        rows = self.orders
        for key in ("created_at", "ordered_at"):
            low, high = params.get(f"{key}_min"), params.get(f"{key}_max")
            if low:
                rows = [
                    r
                    for r in rows
                    if datetime.fromisoformat(r[key].replace("Z", "+00:00")) >= datetime.fromisoformat(low)
                ]
            if high:
                rows = [
                    r
                    for r in rows
                    if datetime.fromisoformat(r[key].replace("Z", "+00:00")) < datetime.fromisoformat(high)
                ]
        if "state" in params:
            rows = [r for r in rows if r["fulfillment_state"] == params["state"]]
        return sorted(rows, key=lambda r: r["id"])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/auth/token"):
            self.token_requests += 1
            return json_response(200, {"access_token": self.issue_token(), "token_type": "Bearer"})
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.valid_tokens:
            return json_response(401, {"error": "invalid or expired token"})
        params = params_of(request)
        if "/orders/" in path:
            ident = int(path.rsplit("/", 1)[1])
            found = [o for o in self.orders if o["id"] == ident]
            return (
                json_response(200, {"order": found[0]})
                if found
                else json_response(404, {"error": "not found"})
            )
        limit = int(params.get("limit", 100))
        if "session_id" in params:
            sid = params["session_id"]
            if sid in self.expired or sid not in self.sessions:
                return json_response(404, {"error": f"session {sid} not found or expired"})
            state = self.sessions[sid]
            start = state["offset"]
            chunk = state["rows"][start : start + state["limit"]]
            state["offset"] += len(chunk)
            state["page"] += 1
            return json_response(
                200, {"orders": chunk, "session_id": sid, "page": state["page"], "limit": state["limit"]}
            )
        rows = self.select(params)
        if "page" in params:
            page = int(params["page"])
            total = len(rows)
            visible = rows[: self.cap]
            chunk = visible[(page - 1) * limit : page * limit]
            body: dict[str, Any] = {
                "orders": chunk,
                "page": page,
                "limit": limit,
                "total_count": min(total, self.cap),
                "total_pages": -(-min(total, self.cap) // limit),
            }
            if total > self.cap:
                body["max_total_reached"] = True
            return json_response(200, body)
        sid = f"s{len(self.sessions) + 1}"
        self.sessions[sid] = {"rows": rows, "offset": len(rows[:limit]), "limit": limit, "page": 1}
        return json_response(
            200,
            {
                "orders": rows[:limit],
                "session_id": sid,
                "page": 1,
                "limit": limit,
                "total_count": len(rows),
                "total_pages": -(-len(rows) // limit),
            },
        )
