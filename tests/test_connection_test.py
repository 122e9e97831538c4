"""The middleware that lets the UI's Test button work on a portless connection (Airflow 3.3.0-3.3.2)."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_fulfillment.connection_test import (
    FulfillmentConnectionTestPlugin,
    PortlessConnectionTestMiddleware,
    normalized_test_body,
)

REPO = Path(__file__).resolve().parents[1]
UI_BODY = {  # what the 3.3.2 UI posts for a stored connection with no port
    "conn_type": "dcl",
    "connection_id": "my_dcl",
    "host": "https://api.dclcorp.com/api/v1",
    "login": "me",
    "password": "***",
    "port": 0,
    "schema": "",
    "extra": "{}",
    "description": "",
}


async def echo_app(scope: dict, receive: Any, send: Any) -> None:
    """Answers with the body and content-length the app was given."""
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    length = dict(scope["headers"]).get(b"content-length", b"").decode()
    answer = json.dumps({"body": body.decode(), "content_length": length}).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": answer})


def post(path: str, body: bytes) -> dict:
    async def go() -> dict:
        transport = httpx.ASGITransport(app=PortlessConnectionTestMiddleware(echo_app))
        async with httpx.AsyncClient(transport=transport, base_url="http://airflow") as client:
            response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
            return response.json()

    return asyncio.run(go())


def test_port_zero_from_the_ui_becomes_null_for_our_connection_types():
    seen = post("/api/v2/connections/test", json.dumps(UI_BODY).encode())
    sent = json.loads(seen["body"])
    assert sent == {**UI_BODY, "port": None}
    assert seen["content_length"] == str(len(seen["body"].encode()))


@pytest.mark.parametrize(
    "body",
    [
        {**UI_BODY, "conn_type": "http"},  # another provider's connection: Airflow's behaviour, untouched
        {**UI_BODY, "port": 8443},  # a real port is a real destination
        {**UI_BODY, "port": None},
        {**UI_BODY, "port": False},
    ],
)
def test_other_bodies_pass_through_byte_for_byte(body):
    raw = json.dumps(body, indent=1).encode()
    assert post("/api/v2/connections/test", raw)["body"] == raw.decode()
    assert normalized_test_body(raw) is None


def test_other_routes_and_non_json_pass_through():
    raw = json.dumps(UI_BODY).encode()
    assert post("/api/v2/connections", raw)["body"] == raw.decode()  # saving keeps what the user typed
    assert post("/api/v2/connections/test", b"not json")["body"] == "not json"


def test_the_plugin_is_registered_where_airflow_loads_plugins_from_and_is_valid():
    from airflow.plugins_manager import is_valid_plugin

    entry_points = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    target = entry_points["airflow.plugins"]["fulfillment_connection_test"]
    assert target == "airflow_provider_fulfillment.connection_test:FulfillmentConnectionTestPlugin"
    assert is_valid_plugin(FulfillmentConnectionTestPlugin)
    [middleware] = FulfillmentConnectionTestPlugin.fastapi_root_middlewares
    assert middleware["middleware"] is PortlessConnectionTestMiddleware


def test_a_body_too_large_to_be_a_connection_is_replayed_untouched():
    raw = json.dumps({**UI_BODY, "description": "x" * (1 << 20)}).encode()
    assert post("/api/v2/connections/test", raw)["body"] == raw.decode()
