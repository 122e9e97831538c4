"""The example DAGs: they import cleanly under Airflow 3.3, are documented, do nothing at import, and
run as they stand against the sandbox's default world (the one `make demo` and docker-compose serve)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
EXPECTED_DAG_IDS = frozenset(
    {
        "example_fulfillment_orders_to_shipments",
        "example_fulfillment_daily_ledger",
        "example_dcl_orders",
        "example_stream_orders",
        "example_wait_for_shipment",
        "example_fulfillment_backfill",
    }
)
DAG_FILES = sorted(path for path in DAGS.glob("*.py") if path.stem.startswith("example_"))
HELPERS = sorted(path for path in DAGS.glob("*.py") if not path.stem.startswith("example_"))

# Parses the DAG folder in a fresh interpreter (so every module, the provider's too, is imported anew)
# with sockets that refuse to connect or resolve, and reports what happened as JSON.
PROBE = r"""
import builtins, importlib, json, socket, sys, warnings
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[1:] if args and isinstance(args[0], socket.socket) else args)[:200])
    raise OSError("network access during DAG import")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse
import airflow  # Airflow's own start-up is not the DAGs' doing
from airflow.dag_processing.dagbag import DagBag

def is_deprecation(type_name):
    module, _, name = type_name.rpartition(".")
    cls = getattr(importlib.import_module(module), name, None) if module else getattr(builtins, name, None)
    return isinstance(cls, type) and issubclass(cls, (DeprecationWarning, PendingDeprecationWarning))

folder = sys.argv[1]
sys.path.append(folder)  # as Airflow does for a bundle's root
warnings.simplefilter("always")  # DeprecationWarnings are hidden by default outside __main__
bag = DagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
# DagBag records every warning raised while importing a file as "<file>:<line>: <category>: <message>".
deprecations = [
    line for lines in bag.captured_warnings.values() for line in lines if is_deprecation(line.split(": ")[1])
]
print(json.dumps({"dags": sorted(bag.dags), "errors": bag.import_errors, "attempts": attempts,
                  "deprecations": deprecations}))
"""


def run_probe(folder: Path) -> dict[str, Any]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW_CONN_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    return run_probe(DAGS)


def test_every_dag_file_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == EXPECTED_DAG_IDS


def test_each_example_file_holds_the_dag_named_after_it(dagbag: Any) -> None:
    assert {path.stem for path in DAG_FILES} == EXPECTED_DAG_IDS
    for path in DAG_FILES:
        dag = dagbag.dags[path.stem]
        assert Path(dag.fileloc).resolve() == path.resolve()
    for helper in HELPERS:  # helper modules (the notifier) define no DAG
        assert all(Path(dag.fileloc).resolve() != helper.resolve() for dag in dagbag.dags.values())


def test_no_deprecation_warnings_and_no_network_at_import(probe: dict[str, Any]) -> None:
    assert probe["errors"] == {}
    assert set(probe["dags"]) == EXPECTED_DAG_IDS
    assert probe["deprecations"] == []
    assert probe["attempts"] == []


def test_the_probe_catches_network_and_deprecations(tmp_path: Path) -> None:
    """The guard above can fail: a DAG file that connects and warns at import is reported."""
    (tmp_path / "bad_dag.py").write_text(
        "import socket, warnings\n"
        "from datetime import datetime\n"
        "from airflow.sdk import DAG\n"
        "warnings.warn('old API', DeprecationWarning)\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "except OSError:\n"
        "    pass\n"
        "with DAG('bad_dag', schedule=None, start_date=datetime(2025, 1, 1)):\n"
        "    pass\n"
    )
    report = run_probe(tmp_path)
    assert report["dags"] == ["bad_dag"]
    assert len(report["attempts"]) == 1
    assert [line.split(": ")[1:] for line in report["deprecations"]] == [["DeprecationWarning", "old API"]]


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_dag_has_owner_tags_and_docs(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert dag.owner == "fulfillment"
    assert {"example", "fulfillment"} <= set(dag.tags)
    assert dag.doc_md and "What it shows" in dag.doc_md
    assert dag.description
    for task in dag.tasks:
        assert task.owner == "fulfillment", task.task_id


@pytest.mark.parametrize("path", DAG_FILES + HELPERS, ids=lambda path: path.name)
def test_module_docstring_and_airflow3_imports(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path.name} has no module docstring"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "airflow":
            # Airflow 3: DAG authoring comes from the Task SDK, not from airflow.models / airflow.operators.
            assert node.module == "airflow.sdk" or node.module.startswith("airflow.providers."), node.module


def _notifier_class() -> type:
    import fulfillment_alerts

    return fulfillment_alerts.FulfillmentAlertNotifier


def _callbacks(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value] if value else []


def test_alerting_tasks_send_their_alerts_out_of_airflow(dagbag: Any) -> None:
    from airflow_provider_fulfillment.operators.alert import (
        FulfillmentAlertOperator,
        FulfillmentErrorStateOperator,
    )
    from airflow_provider_fulfillment.sensors.state import ShipmentStateSensor

    notifier = _notifier_class()
    alerting = [
        task
        for dag in dagbag.dags.values()
        for task in dag.tasks
        if isinstance(task, (FulfillmentAlertOperator, FulfillmentErrorStateOperator, ShipmentStateSensor))
    ]
    assert {task.dag_id for task in alerting} == EXPECTED_DAG_IDS
    for task in alerting:
        assert any(isinstance(cb, notifier) for cb in _callbacks(task.on_failure_callback)), task.task_id
        if getattr(task, "soft", False):  # a soft alert succeeds: the notifier must fire on success too
            assert any(isinstance(cb, notifier) for cb in _callbacks(task.on_success_callback)), task.task_id
            assert task.trigger_rule == "all_done"  # alert even when an upstream task failed


def test_orders_to_shipments_extracts_reconciles_then_alerts(dagbag: Any) -> None:
    from airflow.sdk import Asset

    from airflow_provider_fulfillment.operators.reconcile import FulfillmentReconcileOperator

    dag = dagbag.dags["example_fulfillment_orders_to_shipments"]
    extract_orders, extract_shipments = dag.get_task("extract_orders"), dag.get_task("extract_shipments")
    assert [(type(o), o.uri) for o in extract_orders.outlets] == [(Asset, "fulfillment://dropstream/orders")]
    assert [(type(o), o.uri) for o in extract_shipments.outlets] == [
        (Asset, "fulfillment://dropstream/shipments")
    ]
    reconcile = dag.get_task("reconcile")
    assert isinstance(reconcile, FulfillmentReconcileOperator)
    assert reconcile.upstream_task_ids == {"extract_orders", "extract_shipments"}
    assert reconcile.orders.operator is extract_orders and reconcile.shipments.operator is extract_shipments
    assert reconcile.ship_deadline == timedelta(days=2)  # file mode: no ledger involved
    assert dag.get_task("alert_errored_orders").upstream_task_ids == {"reconcile"}
    assert dag.get_task("alert_errored_shipments").upstream_task_ids == {"reconcile"}


def test_the_daily_ledger_dag_extracts_captures_loads_reconciles_and_alerts(dagbag: Any) -> None:
    dag = dagbag.dags["example_fulfillment_daily_ledger"]
    resources = {"dropstream": ("orders", "shipments"), "dcl": ("orders",), "stream": ("orders", "shipments")}
    for vendor, names in resources.items():
        sources = {f"{step}_{vendor}_{name}" for name in names for step in ("extract", "capture")}
        assert dag.get_task(f"load_{vendor}").upstream_task_ids == sources
    assert dag.get_task("reconcile").upstream_task_ids == {"load_dropstream", "load_dcl", "load_stream"}
    assert dag.get_task("alert").upstream_task_ids == {"reconcile"}
    assert dag.get_task("sla").upstream_task_ids == {"reconcile"}
    assert {dag.get_task(t).ledger_conn_id for t in ("load_dcl", "reconcile", "alert", "sla")} == {
        "fulfillment_ledger"
    }
    assert dag.max_active_runs == 1


def test_the_sensor_defers_and_fails_fast(dagbag: Any) -> None:
    dag = dagbag.dags["example_wait_for_shipment"]
    sensor = dag.get_task("wait_for_shipment")
    assert sensor.deferrable is True
    assert "error" in sensor.failure_states
    assert sensor.ident == "{{ params.tracking_number }}"
    assert dag.get_task("report").upstream_task_ids == {"wait_for_shipment"}


def _core_timetable(dag: Any) -> Any:
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(dag.timetable)


def test_demo_dates_fall_inside_the_sandbox_world_and_in_the_past(dagbag: Any, demo_script: Any) -> None:
    """`make demo` runs the scheduled DAGs for the world's end date: their intervals must hold data."""
    from airflow_provider_fulfillment.sandbox.app import SandboxConfig
    from airflow_provider_fulfillment.sandbox.world import World

    config = SandboxConfig()
    assert (config.seed, config.orders) == (demo_script.SEED, demo_script.ORDERS)
    assert config.end.date().isoformat() == demo_script.WORLD_END
    world = World(seed=config.seed, orders=config.orders, end=config.end, days=config.days)
    logical = datetime.fromisoformat(demo_script.WORLD_END).replace(tzinfo=UTC)
    scheduled = [dag for dag in dagbag.dags.values() if dag.timetable.can_be_scheduled]
    assert {dag.dag_id for dag in scheduled} == EXPECTED_DAG_IDS - {"example_wait_for_shipment"}
    for dag in scheduled:
        interval = _core_timetable(dag).infer_manual_data_interval(run_after=logical)
        assert world.start <= interval.start < interval.end <= world.end, dag.dag_id
        assert interval.end <= datetime.now(UTC)
        assert interval.end - interval.start >= timedelta(days=1), dag.dag_id


def test_default_tracking_number_is_a_shipped_shipment_of_the_default_world(dagbag: Any) -> None:
    from airflow_provider_fulfillment.models.states import normalize
    from airflow_provider_fulfillment.sandbox.app import SandboxConfig
    from airflow_provider_fulfillment.sandbox.world import World

    dag = dagbag.dags["example_wait_for_shipment"]
    tracking = dag.params["tracking_number"]
    config = SandboxConfig()
    shipments = World(seed=config.seed, orders=config.orders).dropstream
    (shipment_id,) = shipments.shipment_ids(tracking_number=tracking)
    state = shipments.shipment(shipment_id)["state"]
    assert normalize("dropstream", "shipments", state) in dag.get_task("wait_for_shipment").target_states


# --------------------------------------------------------------------------- the notifier


class _TI:
    dag_id = "example_dag"
    task_id = "alert_task"
    run_id = "manual__1"

    def __init__(self, xcoms: dict[str, Any]) -> None:
        self.xcoms = xcoms

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        assert task_ids == self.task_id
        return self.xcoms.get(key)


REPORT = {
    "vendor": "dropstream",
    "resource": "orders",
    "count": 7,
    "by_state": {"error": 5, "error_processing": 2},
    "records": [
        {"id": str(1000 + n), "raw_status": "error", "since": "2025-12-30T00:00:00+00:00"} for n in range(7)
    ],
}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_notifier_sends_a_soft_report_with_records(dags_on_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "alerts.jsonl"
    _notifier_class()(path=str(target), channel="ops").notify({"ti": _TI({"return_value": REPORT})})
    (alert,) = _lines(target)
    assert alert["kind"] == "soft" and alert["channel"] == "ops" and alert["count"] == 7
    assert alert["source"] == "example_dag.alert_task" and alert["run_id"] == "manual__1"
    assert alert["message"].startswith(
        "dropstream orders: 7 in errored states (by state: error=5, error_processing=2)"
    )
    assert "1000 (error since 2025-12-30" in alert["message"] and alert["message"].endswith("and 2 more")


def test_notifier_stays_quiet_on_a_clean_report(dags_on_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "alerts.jsonl"
    notifier = _notifier_class()(path=str(target))
    notifier.notify({"ti": _TI({"return_value": {**REPORT, "count": 0, "records": []}})})
    notifier.notify({"ti": _TI({"return_value": "not a report"})})
    assert not target.exists()


def test_notifier_sends_a_failure_with_its_message(dags_on_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "nested" / "alerts.jsonl"
    error = RuntimeError("DropStream (conn dropstream_default): 7 orders in errored states: ...")
    _notifier_class()(path=str(target)).notify({"ti": _TI({"errored": REPORT}), "exception": error})
    (alert,) = _lines(target)
    assert alert["kind"] == "failure" and alert["message"] == str(error)
    assert alert["by_state"] == REPORT["by_state"] and alert["count"] == 7
    # A failing sensor pushes no report: the alert still goes out, with the error alone.
    _notifier_class()(path=str(target)).notify({"ti": _TI({}), "exception": error})
    assert _lines(target)[-1]["count"] is None and _lines(target)[-1]["message"] == str(error)


def test_notifier_default_path_is_under_airflow_home(
    dags_on_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fulfillment_alerts

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    fulfillment_alerts.FulfillmentAlertNotifier().notify({"ti": _TI({"return_value": REPORT})})
    assert _lines(tmp_path / fulfillment_alerts.ALERTS_FILE_NAME)[0]["count"] == 7


# --------------------------------------------------------------------------- end to end


@pytest.mark.integration
def test_examples_run_against_the_default_sandbox(run_example: Any, xcom: Any, default_sandbox: Any) -> None:
    """Every example runs to success as it stands; what it extracted is exactly the sandbox's records."""
    logical = datetime(2026, 1, 1, tzinfo=UTC)
    world = default_sandbox.world.dropstream

    run = run_example("example_fulfillment_orders_to_shipments", logical)
    assert run.state == "success"
    orders, shipments = xcom(run, "extract_orders"), xcom(run, "extract_shipments")
    window = (logical - timedelta(days=3), logical)
    assert orders["records"] == len(world.order_ids(window=window)) > 0
    assert shipments["records"] == len(world.shipment_ids(window=window)) > 0
    summary = xcom(run, "reconcile")
    assert summary["orders_read"] == orders["records"] and summary["shipments_read"] == shipments["records"]
    assert summary["counts"]["errored_order"] > 0 and summary["counts"]["late_order"] > 0
    assert xcom(run, "alert_errored_orders")["count"] == len(default_sandbox.world.truth.errored_orders)

    for dag_id in ("example_dcl_orders", "example_stream_orders"):
        run = run_example(dag_id, logical)
        assert run.state == "success", dag_id
        assert all(ti.state == "success" for ti in run.get_task_instances()), dag_id

    run = run_example("example_wait_for_shipment")
    assert run.state == "success"
    assert xcom(run, "wait_for_shipment")["status"] == "shipped"

    alerts = _lines(Path(os.environ["AIRFLOW_HOME"]) / "fulfillment-alerts.jsonl")
    assert {
        "example_fulfillment_orders_to_shipments.alert_errored_orders",
        "example_dcl_orders.alert_orders_on_hold",
    } <= {alert["source"] for alert in alerts}


@pytest.mark.integration
def test_the_sensor_fails_fast_on_an_errored_shipment(run_example: Any, default_sandbox: Any) -> None:
    world = default_sandbox.world.dropstream
    errored = sorted(default_sandbox.world.truth.errored_shipments)[0]
    tracking = world.shipment(errored)["tracking_number"]
    before = default_sandbox.counters().count(path="/dropstream/shipments")
    run = run_example("example_wait_for_shipment", conf={"tracking_number": tracking})
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"wait_for_shipment": "failed", "report": "upstream_failed"}
    assert (
        default_sandbox.counters().count(path="/dropstream/shipments") - before == 1
    )  # one look: failed at once
    alerts = _lines(Path(os.environ["AIRFLOW_HOME"]) / "fulfillment-alerts.jsonl")
    assert any(alert["kind"] == "failure" and tracking in alert["message"] for alert in alerts)
