"""Identifiers in URL paths reach the server as exactly one path segment, for every caller."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest

from airflow_provider_fulfillment.errors import RecordNotFound
from airflow_provider_fulfillment.hooks import aget_hook, get_hook
from airflow_provider_fulfillment.http import path_segment, record_path
from airflow_provider_fulfillment.sandbox.testing import SandboxServer, run_sandbox
from airflow_provider_fulfillment.sensors.state import OrderStateSensor
from tests.fakes import json_response

ENCODED = {
    "A#1": "A%231",
    "X?y=1": "X%3Fy%3D1",
    "PO 17/2024": "PO%2017%2F2024",
    "../auth/sign_in": "..%2Fauth%2Fsign_in",
    "..": "%2E%2E",
    ".": "%2E",
    "50%": "50%25",
    "ü": "%C3%BC",
}


@pytest.mark.parametrize(("ident", "segment"), ENCODED.items())
def test_path_segment_encodes_everything_that_could_leave_the_segment(ident, segment):
    assert path_segment(ident) == segment
    assert record_path("/orders", ident) == f"/orders/{segment}"
    assert unquote(segment) == ident


def test_an_empty_identifier_is_refused():
    with pytest.raises(ValueError, match="empty identifier"):
        path_segment("")


class StreamByReference:
    """A Stream server that answers `GET /orders/<one segment>` with the order of that reference."""

    def __init__(self) -> None:
        self.raw_paths: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.raw_paths.append(request.url.raw_path)
        if request.url.raw_path == b"/client_api/v2/auth/sign_in":
            return json_response(200, {"token": "tok-paths-1"})
        head, _, segment = request.url.raw_path.decode().rpartition("/")
        assert head == "/client_api/v2/orders", request.url.raw_path
        order = {
            "id": 7,
            "reference_number": unquote(segment),
            "status": "in_transit",
            "created_at": "2025/08/04 11:48:40 UTC",
        }
        return json_response(200, {"order": order})


def _stream_env(monkeypatch, conn_id: str = "st_paths") -> str:
    body = {
        "conn_type": "stream",
        "host": "http://st.test/client_api/v2",
        "login": "ops@example.com",
        "password": "pw-paths-123",
        "extra": {"max_wait": 0, "max_attempts": 1},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))
    return conn_id


@pytest.mark.parametrize("ident", ["A#1", "X?y=1", "PO 17/2024", "../auth/sign_in"])
def test_get_order_and_get_state_send_one_segment_and_return_that_record(monkeypatch, ident):
    server = StreamByReference()
    hook = get_hook(_stream_env(monkeypatch), transport=httpx.MockTransport(server))
    assert hook.get_order(ident).reference_number == ident
    state = hook.get_state("order", ident)
    assert (state.found, state.ident, state.raw_status) == (True, ident, "in_transit")
    wanted = b"/client_api/v2/orders/" + ENCODED[ident].encode()
    assert server.raw_paths == [b"/client_api/v2/auth/sign_in", wanted, wanted]


def test_the_async_twin_used_by_triggers_sends_one_segment(monkeypatch):
    server = StreamByReference()

    async def scenario():
        hook = await aget_hook(_stream_env(monkeypatch), async_transport=httpx.MockTransport(server))
        try:
            return await hook.aget_state("order", "PO 17/2024")
        finally:
            await hook.http.aclose()

    assert asyncio.run(scenario()).found
    assert server.raw_paths[-1] == b"/client_api/v2/orders/PO%2017%2F2024"


def test_dropstream_order_ids_are_one_segment_too(monkeypatch):
    raw_paths: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        raw_paths.append(request.url.raw_path)
        return json_response(404, {"error": "order not found"})

    body = {"conn_type": "dropstream", "host": "http://ds.test", "extra": {"token": "ready-jwt-1"}}
    monkeypatch.setenv("AIRFLOW_CONN_DS_PATHS", json.dumps(body))
    hook = get_hook("ds_paths", transport=httpx.MockTransport(handler))
    with pytest.raises(
        RecordNotFound, match=r"^connection 'ds_paths': DropStream order '\.\./auth/sign_in' not found$"
    ):
        hook.get_order("../auth/sign_in")
    assert raw_paths == [b"/orders/..%2Fauth%2Fsign_in"]


# ------------------------------------------------------------------ against the sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with run_sandbox(seed=11, orders=50, dcl_orders=20, stream_orders=30, days=5) as server:
        yield server


def _sandbox_conn(monkeypatch, sb: SandboxServer, vendor: str) -> str:
    env = f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT"
    body = json.loads(sb.conn_env()[env])
    body["extra"] = {"max_wait": 0, "max_attempts": 1}
    monkeypatch.setenv(f"AIRFLOW_CONN_{vendor.upper()}_PATHS", json.dumps(body))
    return f"{vendor}_paths"


@pytest.mark.integration
@pytest.mark.parametrize("vendor", ["stream", "dropstream"])
def test_the_sandbox_routes_each_identifier_as_one_segment(monkeypatch, sandbox, vendor):
    hook = get_hook(_sandbox_conn(monkeypatch, sandbox, vendor))
    sandbox.reset()
    hook_name = {"stream": "Stream", "dropstream": "DropStream"}[vendor]
    for ident in ("A#1", "X?y=1", "PO 17/2024", "../auth/sign_in"):
        with pytest.raises(RecordNotFound) as caught:
            hook.get_order(ident)
        assert str(caught.value) == f"connection '{vendor}_paths': {hook_name} order {ident!r} not found"
        assert not hook.get_state("order", ident).found
    sign_ins = [r for r in sandbox.counters().requests if r.method == "POST"]
    lookups = [r for r in sandbox.counters().requests if r.method == "GET"]
    assert len(sign_ins) == 1 and len(lookups) == 8
    # Stream answers an unknown id or reference with 400 "Invalid input, object invalid" (its docs).
    assert {r.status for r in lookups} == ({400} if vendor == "stream" else {404})
    # A real record is still found through the same route.
    first = next(iter(hook.iter_orders()))
    assert hook.get_order(first.id).id == first.id
    if vendor == "stream":
        assert hook.get_order(first.reference_number).id == first.id


@pytest.mark.integration
def test_a_sensor_waits_on_an_identifier_with_a_slash_instead_of_reading_another_record(monkeypatch, sandbox):
    conn_id = _sandbox_conn(monkeypatch, sandbox, "stream")
    sensor = OrderStateSensor(task_id="wait", conn_id=conn_id, order_id="PO 17/2024", deferrable=False)
    try:
        assert not sensor.poke({}).is_done
    finally:
        sensor._close_hook()
