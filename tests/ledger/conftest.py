"""The ledger on SQLite and on PostgreSQL: every test here runs on both (`postgres_server` is in tests/conftest.py)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_conn(request, monkeypatch, tmp_path) -> str:
    """The `fulfillment_ledger` connection pointed at a fresh SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        body = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")})
    else:
        server = request.getfixturevalue("postgres_server")
        body = server.connection_json(server.create_database())
    monkeypatch.setenv("AIRFLOW_CONN_FULFILLMENT_LEDGER", body)
    return request.param


@pytest.fixture
def ledger(ledger_conn):
    from airflow_provider_fulfillment.ledger import Ledger

    with Ledger() as opened:
        assert opened.backend == ledger_conn
        yield opened
