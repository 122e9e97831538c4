"""The backfill example end to end: a week planned into partitions, one mapped extract task each,
their manifests loaded as one list; together exactly the week's orders, each once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_fulfillment.operators._storage import iter_documents, to_path


@pytest.mark.integration
def test_the_backfill_partitions_cover_the_week_exactly(
    run_example: Any, xcom: Any, default_sandbox: Any
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    logical = datetime(2025, 12, 29, tzinfo=UTC)  # Monday: the run covers 2025-12-22 .. 2025-12-29
    run = run_example("example_fulfillment_backfill", logical)
    assert run.state == "success"
    plan = xcom(run, "plan_partitions")
    assert len(plan) > 1
    windows = [(p["window"]["start"], p["window"]["end"]) for p in plan]
    assert (
        windows[0][0] == (logical - timedelta(days=7)).isoformat() and windows[-1][1] == logical.isoformat()
    )
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))  # adjacent, no gap
    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id="extract_orders", key="return_value")
            .order_by(XComModel.map_index)
            .all()
        )
        manifests = [XComModel.deserialize_value(row) for row in rows]
    assert len(manifests) == len(plan)
    ids = [json.loads(line)["id"] for m in manifests for line in iter_documents(to_path(m["uri"]))]
    expected = default_sandbox.world.dropstream.order_ids(window=(logical - timedelta(days=7), logical))
    assert len(ids) == len(set(ids)) and set(ids) == set(expected)
    assert xcom(run, "load_ledger")["manifests"] == len(plan)
