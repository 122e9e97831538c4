"""Fixtures for the sandbox's own tests: one shared in-process sandbox (faults and counters reset
around every test), authenticated httpx clients per vendor, and brute-force expectations computed
from fully materialised records (independent of the sandbox's own query engine)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from airflow_provider_fulfillment.sandbox.app import DEFAULT_CREDENTIALS
from airflow_provider_fulfillment.sandbox.testing import SandboxServer, run_sandbox

SHARED_ORDERS = 12_000  # > 10,000 so the page-based cap is reachable; records are generated lazily


@pytest.fixture(scope="session")
def shared_sandbox() -> Iterator[SandboxServer]:
    with run_sandbox(seed=42, orders=SHARED_ORDERS) as sb:
        yield sb


def _clean(sb: SandboxServer) -> None:
    sb.reset()
    sb.app.config.clock = None


@pytest.fixture
def sb(shared_sandbox: SandboxServer) -> Iterator[SandboxServer]:
    """The shared sandbox, with no faults, empty counters and no sessions, before and after the test."""
    _clean(shared_sandbox)
    yield shared_sandbox
    _clean(shared_sandbox)


@dataclass
class Vendor:
    """An httpx client authenticated for one vendor, with the vendor's base path."""

    client: httpx.Client
    base: str

    def get(self, path: str, params: Any = None, **kw: Any) -> httpx.Response:
        return self.client.get(self.base + path, params=params, **kw)

    def json(self, path: str, params: Any = None) -> Any:
        r = self.get(path, params)
        assert r.status_code == 200, r.text
        return r.json()


def dropstream_token(client: httpx.Client, url: str) -> str:
    r = client.post(
        f"{url}/dropstream/auth/token",
        auth=(DEFAULT_CREDENTIALS["dropstream_user"], DEFAULT_CREDENTIALS["dropstream_password"]),
        json={"grant_type": "client_credentials"},
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def stream_token(client: httpx.Client, url: str) -> str:
    r = client.post(
        f"{url}/stream/client_api/v2/auth/sign_in",
        json={
            "api_user": {
                "email": DEFAULT_CREDENTIALS["stream_email"],
                "password": DEFAULT_CREDENTIALS["stream_password"],
            }
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["token"]


@pytest.fixture
def http(sb: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sb.url, timeout=30) as client:
        yield client


@pytest.fixture
def ds(sb: SandboxServer, http: httpx.Client) -> Vendor:
    http.headers["Authorization"] = f"Bearer {dropstream_token(http, sb.url)}"
    return Vendor(http, "/dropstream")


@pytest.fixture
def dcl(sb: SandboxServer) -> Iterator[Vendor]:
    auth = (DEFAULT_CREDENTIALS["dcl_login"], DEFAULT_CREDENTIALS["dcl_password"])
    with httpx.Client(base_url=sb.url, auth=auth, timeout=30) as client:
        yield Vendor(client, "/dcl/api/v1")


@pytest.fixture
def stream(sb: SandboxServer) -> Iterator[Vendor]:
    with httpx.Client(base_url=sb.url, timeout=30) as client:
        client.headers["Authorization"] = f"Bearer {stream_token(client, sb.url)}"
        yield Vendor(client, "/stream/client_api/v2")


@pytest.fixture(scope="session")
def all_orders(shared_sandbox: SandboxServer) -> list[dict[str, Any]]:
    """Every DropStream order of the shared world, materialised (for brute-force expectations)."""
    return list(shared_sandbox.world.dropstream.iter_orders())


@pytest.fixture(scope="session")
def all_shipments(shared_sandbox: SandboxServer) -> list[dict[str, Any]]:
    return list(shared_sandbox.world.dropstream.iter_shipments())


@pytest.fixture(scope="session")
def all_dcl_orders(shared_sandbox: SandboxServer) -> list[dict[str, Any]]:
    return list(shared_sandbox.world.dcl.iter_orders())


def collect_session(vendor: Vendor, resource: str, params: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Follow a DropStream session to its end; return (records, page envelopes without records)."""
    first = vendor.json(f"/{resource}", params)
    records = list(first[resource])
    envelopes = [{k: v for k, v in first.items() if k != resource}]
    page = first
    while len(page[resource]) == page["limit"]:
        page = vendor.json(f"/{resource}", {"session_id": first["session_id"]})
        records.extend(page[resource])
        envelopes.append({k: v for k, v in page.items() if k != resource})
    return records, envelopes


def collect_pages(vendor: Vendor, resource: str, params: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Fetch every page of a page-based DropStream query (as many as ``total_pages`` says)."""
    first = vendor.json(f"/{resource}", {**params, "page": 1})
    records = list(first[resource])
    envelopes = [{k: v for k, v in first.items() if k != resource}]
    for p in range(2, first["total_pages"] + 1):
        page = vendor.json(f"/{resource}", {**params, "page": p})
        records.extend(page[resource])
        envelopes.append({k: v for k, v in page.items() if k != resource})
    return records, envelopes


@pytest.fixture
def helpers() -> Any:
    """Paging helpers as a namespace (test modules cannot import conftest)."""

    class H:
        session = staticmethod(collect_session)
        pages = staticmethod(collect_pages)
        ds_token = staticmethod(dropstream_token)
        stream_token = staticmethod(stream_token)

        @staticmethod
        def ids(records: list[dict]) -> list[int]:
            return [r["id"] for r in records]

        @staticmethod
        def canonical(data: Any) -> str:
            return json.dumps(data, sort_keys=True)

    return H
