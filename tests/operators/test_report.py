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
