"""Fixtures for the example DAGs' tests: the parsed DAG folder, and running a DAG against the sandbox."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"


@pytest.fixture(scope="session")
def dags_on_path() -> Iterator[Path]:
    """The DAG folder on `sys.path`, as Airflow puts a bundle's root wherever it parses or runs DAGs."""
    added = str(DAGS) not in sys.path
    if added:
        sys.path.append(str(DAGS))
    yield DAGS
    if added:
        sys.path.remove(str(DAGS))


@pytest.fixture(scope="session")
def dagbag(dags_on_path: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(dags_on_path), bundle_path=dags_on_path, bundle_name="dags-folder")


@pytest.fixture(scope="session")
def demo_script() -> ModuleType:
    """scripts/demo.py as a module (stdlib only; importing it starts nothing)."""
    spec = importlib.util.spec_from_file_location("fulfillment_demo_script", REPO / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def default_sandbox() -> Iterator[Any]:
    """The sandbox's default world (what `make demo` and docker-compose serve), in-process on loopback."""
    from airflow_provider_fulfillment.sandbox.app import SandboxConfig
    from airflow_provider_fulfillment.sandbox.testing import run_sandbox

    defaults = SandboxConfig()
    with run_sandbox(seed=defaults.seed, orders=defaults.orders) as server:
        yield server


@pytest.fixture
def run_example(
    airflow_db: None, dagbag: Any, default_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """`run_example(dag_id, logical_date=None, conf=None)` → the finished DagRun, connections on the sandbox."""
    from tests.conftest import _register

    for name, value in default_sandbox.conn_env().items():
        monkeypatch.setenv(name, value)

    def run(dag_id: str, logical_date: Any = None, conf: dict[str, Any] | None = None) -> Any:
        dag = dagbag.dags[dag_id]
        _register(dag)
        return dag.test(logical_date=logical_date, run_conf=conf)

    return run
