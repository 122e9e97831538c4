"""Writing a run's report from a real ledger (SQLite and PostgreSQL), atomically, where it belongs."""

from __future__ import annotations

from airflow.sdk import ObjectStoragePath

from airflow_provider_fulfillment.operators.report import write_run_report
from tests.ledger.conftest import ledger, ledger_conn  # noqa: F401  (fixtures)
from tests.plugins import seed


def test_report_of_a_seeded_ledger(ledger, tmp_path):  # noqa: F811
    seed.seed(ledger)
    run = seed.RUNS[2]
    uri = write_run_report(
        ledger, run=run, summary={"open": 4}, as_of=seed.T2, root=ObjectStoragePath(f"file://{tmp_path}")
    )
    path = (
        tmp_path
        / "reports"
        / f"dag_id={seed.DAG_ID}"
        / "run_id=manual__2026-01-03T00_00_00_00_00"
        / "reconcile.html"
    )
    assert uri == f"file://{path}"
    assert sorted(p.name for p in path.parent.iterdir()) == ["reconcile.html"]  # no temporary left
    html = path.read_text()
    assert 'data-testid="as-of">as of 2026-01-03 00:00 UTC<' in html
    assert 'data-testid="open-dropstream">2<' in html and 'data-testid="open-dcl">2<' in html
    assert 'data-testid="summary-open">4<' in html


def test_reconcile_from_the_ledger_writes_its_report_and_returns_its_uri(ledger, tmp_path):  # noqa: F811
    from types import SimpleNamespace

    from airflow_provider_fulfillment.operators.reconcile import FulfillmentReconcileOperator

    seed.seed(ledger)
    operator = FulfillmentReconcileOperator(
        task_id="reconcile",
        as_of=seed.T2.isoformat(),
        vendors=["dropstream", "dcl"],
        destination=str(tmp_path),
    )
    run_id = seed.RUNS[2].run_id
    ti = SimpleNamespace(dag_id=seed.DAG_ID, task_id="reconcile", run_id=run_id, xcom_push=lambda **kw: None)
    summary = operator.execute({"ti": ti, "dag_run": SimpleNamespace(run_id=run_id)})  # type: ignore[arg-type]
    path = (
        tmp_path
        / "reports"
        / f"dag_id={seed.DAG_ID}"
        / "run_id=manual__2026-01-03T00_00_00_00_00"
        / "reconcile.html"
    )
    assert summary["report_uri"] == f"file://{path}"
    html = path.read_text()
    # The seeded findings are not what the records say now: this run resolved them, and the report says so.
    assert f'data-testid="summary-resolved">{summary["resolved"]}<' in html
    assert f'data-testid="summary-open">{summary["open"]}<' in html
