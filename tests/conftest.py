from __future__ import annotations

import os
import tempfile

# Airflow reads its home and config at import time: isolate every test run before anything imports it.
_home = tempfile.mkdtemp(prefix="fulfillment-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _home)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

import json  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def set_connection(monkeypatch):
    """Define an Airflow connection through AIRFLOW_CONN_<ID>, as Airflow reads it with no supervisor."""

    def define(conn_id: str, conn_type: str, host: str, login=None, password=None, **extra) -> None:
        body = {"conn_type": conn_type, "host": host, "login": login, "password": password, "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))

    return define


# ------------------------------------------------------------------ running DAGs through dag.test()


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh SQLite metadata DB in the test run's AIRFLOW_HOME (see above), made once."""
    from airflow.utils import db

    assert "fulfillment-airflow-home-" in os.environ.get("AIRFLOW_HOME", ""), (
        "tests must run in a throwaway home"
    )
    db.initdb()


def _register(dag: Any) -> None:
    """Write the DAG to the metadata DB, as the DAG processor would: `dag.test()` needs it serialized."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )


@pytest.fixture
def run_dag(airflow_db: None) -> Callable[..., Any]:
    """`run_dag(dag, logical_date)` → the finished DagRun (tasks run in-process, triggers inline)."""

    def run(dag: Any, logical_date: datetime | None = None) -> Any:
        _register(dag)
        return dag.test(logical_date=logical_date)

    return run


@pytest.fixture
def xcom() -> Callable[..., Any]:
    """`xcom(dag_run, task_id, key="return_value")` → the deserialized value (None if absent)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    def read(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
        with create_session() as session:
            row = (
                session.query(XComModel)
                .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key)
                .one_or_none()
            )
            return None if row is None else XComModel.deserialize_value(row)

    return read


# ------------------------------------------------------------------ a real PostgreSQL server


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL cluster for the whole session (tests/postgres.py), stopped at the end."""
    from tests.postgres import postgres_bin, start_postgres

    if postgres_bin() is None:
        pytest.skip("PostgreSQL server binaries not found (scripts/system-deps.sh installs them)")
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_connection_controllers():
    """Each test's connections start with fresh adaptive controllers (no rate learnt by another test)
    and no cached token."""
    from airflow_provider_fulfillment.concurrency import forget_controllers
    from airflow_provider_fulfillment.http import forget_tokens

    forget_controllers()
    forget_tokens()
    yield
    forget_controllers()
    forget_tokens()
