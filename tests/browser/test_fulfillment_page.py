"""The Fulfillment page in a real browser, on the real API server, behind the real login.

The server's ledger (its default SQLite file under the server's AIRFLOW_HOME) is seeded through
the Ledger API with the exact rows of `tests/plugins/seed.py`; the example DAG is serialized and
its three runs created through the REST API, so the page's links lead to runs that exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

import pytest

from tests.plugins import seed


@pytest.fixture(scope="module")
def fulfillment_server(airflow_server) -> Any:
    from airflow_provider_fulfillment.ledger import Ledger
    from airflow_provider_fulfillment.ledger.ledger import DEFAULT_SQLITE_FILE, sqlite_file_hook

    with Ledger(hook=sqlite_file_hook(str(airflow_server.home / DEFAULT_SQLITE_FILE))) as ledger:
        seed.seed(ledger)
    reserialized = airflow_server.airflow("dags", "reserialize", timeout=240)
    assert reserialized.returncode == 0, reserialized.stderr[-3000:]
    for run, logical_date in zip(seed.RUNS, (seed.T0, seed.T1, seed.T2), strict=True):
        status, body = airflow_server.api(
            "POST",
            f"/api/v2/dags/{seed.DAG_ID}/dagRuns",
            {"dag_run_id": run.run_id, "logical_date": logical_date.isoformat()},
        )
        assert status in (200, 409), body  # 409: made by an earlier module of this session
    return airflow_server


def ledger_numbers(server) -> dict[str, dict[str, Any]]:
    """What the page must show, read straight from the ledger (not through the page's own code)."""
    from airflow_provider_fulfillment.ledger import Ledger
    from airflow_provider_fulfillment.ledger.ledger import DEFAULT_SQLITE_FILE, sqlite_file_hook

    with Ledger(hook=sqlite_file_hook(str(server.home / DEFAULT_SQLITE_FILE))) as ledger:
        numbers = {}
        for vendor in seed.VENDORS:
            open_findings = ledger.findings(vendor=vendor)
            kinds = {f.kind for f in open_findings}
            numbers[vendor] = {
                "open": len(open_findings),
                "by_kind": {kind: sum(f.kind == kind for f in open_findings) for kind in kinds},
                "resolved": len(ledger.findings(vendor=vendor, open_only=False)) - len(open_findings),
                "errored": sum(
                    1
                    for resource in ("order", "shipment")
                    for _ in ledger.iter_records(resource, vendor=vendor, statuses=["error"])
                ),
                "alerts": len(ledger.alerts(vendor=vendor)),
            }
        return numbers


def test_a_request_without_the_login_is_refused(fulfillment_server):
    for path in ("/fulfillment/", "/fulfillment/api/overview"):
        status, body = fulfillment_server.api("GET", path, auth=False)
        assert (status, body) == (401, {"detail": "Not authenticated"})


def test_fulfillment_page_in_the_ui_matches_the_ledger_and_links_to_runs(
    fulfillment_server, airflow_page, tmp_path: Path
):
    page = airflow_page
    page.goto(fulfillment_server.url("/"))
    nav = page.get_by_role("link", name="Fulfillment")
    nav.first.click()  # the nav entry the plugin adds
    page.wait_for_url("**/plugin/fulfillment**")
    frame = page.frame_locator("iframe[title=Fulfillment]")
    frame.get_by_test_id("as-of").wait_for()
    assert frame.get_by_test_id("as-of").inner_text() == "as of 2026-01-03 00:00 UTC"

    expected = ledger_numbers(fulfillment_server)
    assert expected["dropstream"]["open"] == 2 and expected["dcl"]["open"] == 2  # the seed, as stored
    for vendor, numbers in expected.items():
        assert frame.get_by_test_id(f"open-{vendor}").inner_text() == str(numbers["open"])
        assert frame.get_by_test_id(f"errored-{vendor}").inner_text() == str(numbers["errored"])
        assert frame.get_by_test_id(f"resolved-{vendor}").inner_text() == str(numbers["resolved"])
        for kind, count in numbers["by_kind"].items():
            assert frame.get_by_test_id(f"open-{vendor}-{kind}").inner_text() == str(count)
            buckets = [frame.get_by_test_id(f"open-{vendor}-{kind}-{i}").inner_text() for i in range(4)]
            assert buckets == [str(n) for n in seed.EXPECTED_OPEN[vendor][kind]]
        assert frame.get_by_test_id(f"findings-{vendor}-row").count() == numbers["open"]
        assert frame.get_by_test_id(f"alerts-{vendor}-row").count() == numbers["alerts"]
        assert frame.get_by_test_id(f"errored-{vendor}-row").count() == numbers["errored"]
    # The charts are drawn (inline SVG) with the numbers of the table.
    chart_values = frame.locator('[data-testid="vendor-dropstream"] svg.chart rect.bar[data-value]')
    assert chart_values.count() > 0
    page.screenshot(path=str(tmp_path / "fulfillment-page.png"), full_page=True)

    # DS-1 (the oldest open finding) was found by run 1's reconcile task: follow the link to the run.
    run = seed.RUNS[0]
    row = frame.locator('[data-testid="findings-dropstream-row"][data-record="DS-1"]')
    row.locator("a[data-testid$='-opened-run']").click()
    run_path = f"/dags/{seed.DAG_ID}/runs/{run.run_id}"
    page.wait_for_url(lambda url: unquote(urlparse(url).path) == run_path)
    page.get_by_text(run.run_id).first.wait_for()
    page.screenshot(path=str(tmp_path / "dag-run.png"), full_page=True)


def test_the_dag_run_tab_shows_the_page_filtered_to_that_run(
    fulfillment_server, airflow_page, tmp_path: Path
):
    run = seed.RUNS[1]  # opened DS-2, resolved DS-S9
    airflow_page.goto(
        fulfillment_server.url(
            f"/dags/{seed.DAG_ID}/runs/{quote(run.run_id, safe='')}/plugin/fulfillment-run"
        )
    )
    frame = airflow_page.frame_locator("iframe[title=Fulfillment]")
    frame.get_by_test_id("run-filter").wait_for()
    assert frame.locator('[data-testid="findings-dropstream-row"]').evaluate_all(
        "rows => rows.map(r => r.dataset.record)"
    ) == ["DS-2"]
    assert frame.locator('[data-testid="resolved-list-dropstream-row"]').evaluate_all(
        "rows => rows.map(r => r.dataset.record)"
    ) == ["DS-S9"]
    airflow_page.screenshot(path=str(tmp_path / "dag-run-tab.png"), full_page=True)
