"""The ledger on SQLite and on PostgreSQL: every test here runs on both (`postgres_server` is in tests/conftest.py)."""

from __future__ import annotations

import json

import pytest

from tests.postgres import ledger_connection


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_conn(request, monkeypatch, tmp_path) -> str:
    """The `fulfillment_ledger` connection pointed at a fresh SQLite file or a fresh PostgreSQL database."""
    return _define_ledger_connection(request, monkeypatch, tmp_path, request.param)


def _define_ledger_connection(request, monkeypatch, tmp_path, backend: str) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_FULFILLMENT_LEDGER", ledger_connection(backend, request, tmp_path))
    return backend


class Psycopg2Hook:
    """PostgresHook's connection as it is where psycopg 3 is not installed (Airflow images): psycopg2."""

    conn_type = "postgres"

    def __init__(self, body: str) -> None:
        self.params = json.loads(body)

    def get_conn(self):
        import psycopg2

        p = self.params
        return psycopg2.connect(host=p["host"], port=p["port"], user=p["login"], dbname=p["schema"])


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-psycopg2"])
def ledger(request, monkeypatch, tmp_path):
    """A fresh ledger on SQLite, on PostgreSQL through PostgresHook (psycopg 3), and through psycopg2."""
    import os

    from airflow_provider_fulfillment.ledger import Ledger

    backend = _define_ledger_connection(request, monkeypatch, tmp_path, request.param.split("-")[0])
    hook = (
        Psycopg2Hook(os.environ["AIRFLOW_CONN_FULFILLMENT_LEDGER"])
        if request.param.endswith("psycopg2")
        else None
    )
    with Ledger(hook=hook) as opened:
        assert opened.backend == backend
        assert getattr(opened.dialect, "psycopg3", None) is {
            "postgresql": True,
            "postgresql-psycopg2": False,
        }.get(request.param)
        yield opened
