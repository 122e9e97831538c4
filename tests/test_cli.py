"""`fulfillment extract|reconcile|state` against the sandbox, as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_fulfillment.hooks import get_hook
from airflow_provider_fulfillment.sandbox.testing import run_sandbox

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sandbox():
    with run_sandbox(seed=7, orders=800, dcl_orders=300) as server:
        yield server


def fulfillment(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")},
        "PYTHONPATH": str(REPO),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_fulfillment.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=180,
    )


def test_extract_with_a_json_connection_writes_exactly_the_windows_records(sandbox, tmp_path, monkeypatch):
    conn = sandbox.conn_env()["AIRFLOW_CONN_DROPSTREAM_DEFAULT"]
    result = fulfillment(
        "extract",
        "--conn",
        conn,
        "--resource",
        "orders",
        "--start",
        "2025-12-01",
        "--end",
        "2025-12-08",
        "--destination",
        str(tmp_path),
        "--filter",
        "state=pending_shipment",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads(result.stdout)
    ids = [
        json.loads(line)["id"]
        for line in Path(manifest["uri"].removeprefix("file://")).read_text().splitlines()
    ]
    monkeypatch.setenv("AIRFLOW_CONN_DROPSTREAM_DEFAULT", conn)
    with get_hook("dropstream_default") as hook:
        expected = [
            o.id
            for o in hook.iter_orders(
                window=("2025-12-01T00:00:00Z", "2025-12-08T00:00:00Z"), state="pending_shipment"
            )
        ]
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids)) == manifest["records"] > 0
    assert (
        "DropStream orders 2025-12-01T00:00:00+00:00 → 2025-12-08T00:00:00+00:00 [" in result.stderr
    )  # the bar
    assert f"{len(ids)}/{len(ids)} 100%" in result.stderr


def test_state_by_connection_id_from_the_environment(sandbox, monkeypatch):
    env = {"AIRFLOW_CONN_DROPSTREAM_DEFAULT": sandbox.conn_env()["AIRFLOW_CONN_DROPSTREAM_DEFAULT"]}
    monkeypatch.setenv("AIRFLOW_CONN_DROPSTREAM_DEFAULT", env["AIRFLOW_CONN_DROPSTREAM_DEFAULT"])
    with get_hook("dropstream_default") as hook:
        shipment = next(iter(hook.iter_shipments(window=("2025-12-01T00:00:00Z", "2025-12-08T00:00:00Z"))))
        expected = hook.get_state("shipment", shipment.tracking_number).to_dict()
    result = fulfillment(
        "state", "--conn", "dropstream_default", "shipment", shipment.tracking_number, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == expected and expected["found"] is True


def test_reconcile_extracts_both_resources_and_reports_discrepancies(sandbox, tmp_path):
    conn = sandbox.conn_env()["AIRFLOW_CONN_DCL_DEFAULT"]
    result = fulfillment(
        "reconcile",
        "--conn",
        conn,
        "--start",
        "2025-12-01",
        "--end",
        "2025-12-15",
        "--destination",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["orders"]["records"] > 0 and report["shipments"]["records"] > 0
    assert report["reconciliation"]["orders_read"] == report["orders"]["records"]
    assert report["reconciliation"]["shipments_read"] == report["shipments"]["records"]


def test_errors_are_one_line_and_exit_1(tmp_path):
    result = fulfillment("state", "--conn", "no_such_connection", "order", "1")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("fulfillment state: ")
