"""Fixtures for operator tests: XCom and failure capture (`airflow_db` and `run_dag` live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

DROPSTREAM_CONN = (
    '{"conn_type": "dropstream", "host": "http://127.0.0.1:9/dropstream", "login": "u", "password": "p"}'
)


@pytest.fixture
def task_states() -> Callable[[Any], dict[str, str]]:
    def states(dag_run: Any) -> dict[str, str]:
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}

    return states


class Failures:
    """An `on_failure_callback` that records each failed task's exception (tasks run in-process)."""

    def __init__(self) -> None:
        self.errors: dict[str, BaseException] = {}

    def __call__(self, context: Any) -> None:
        self.errors[context["ti"].task_id] = context.get("exception")


@pytest.fixture
def failures() -> Iterator[Failures]:
    yield Failures()


@pytest.fixture
def dropstream_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_DROPSTREAM_DEFAULT", DROPSTREAM_CONN)
    return "dropstream_default"
