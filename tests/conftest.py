from __future__ import annotations

import os
import tempfile

# Airflow reads its home and config at import time: isolate every test run before anything imports it.
_home = tempfile.mkdtemp(prefix="fulfillment-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _home)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

import json  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def set_connection(monkeypatch):
    """Define an Airflow connection through AIRFLOW_CONN_<ID>, as Airflow reads it with no supervisor."""

    def define(conn_id: str, conn_type: str, host: str, login=None, password=None, **extra) -> None:
        body = {"conn_type": conn_type, "host": host, "login": login, "password": password, "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))

    return define
