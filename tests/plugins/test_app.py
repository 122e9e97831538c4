"""The Fulfillment app on real SQLite and PostgreSQL ledgers, through FastAPI's TestClient.

Airflow's own auth dependency guards the routes; only the user it resolves is stubbed for the
authorized requests (the browser test logs in for real).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient

from tests.ledger.conftest import ledger_conn  # noqa: F401  (a fixture)
from tests.plugins import seed


@pytest.fixture
def seeded(ledger_conn) -> str:  # noqa: F811
    from airflow_provider_fulfillment.ledger import Ledger

    with Ledger() as ledger:
        seed.seed(ledger)
    return ledger_conn


def make_client(*, logged_in: bool, files_root=None) -> TestClient:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user

    from airflow_provider_fulfillment.plugins.app import create_app

    app = create_app(clock=lambda: datetime(2026, 6, 1, tzinfo=UTC), files_root=files_root)
    if logged_in:
        app.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(username="ops", role="viewer")
    return TestClient(app)


def cell(html: str, testid: str) -> str:
    match = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>([^<]*)<', html)
    assert match, f"no element with data-testid={testid}"
    return unescape(match.group(1)).strip()


@pytest.mark.parametrize("path", ["/", "/api/overview", "/files?uri=/etc/passwd"])
def test_unauthenticated_requests_are_refused(seeded, path):
    response = make_client(logged_in=False).get(path)
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
    assert "DS-1" not in response.text


def test_static_assets_ship_in_the_package_and_need_no_login():
    client = make_client(logged_in=False)
    for name, kind in (
        ("fulfillment.css", "text/css"),
        ("fulfillment.js", "javascript"),
        ("icon.svg", "svg"),
    ):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]


def test_page_shows_the_ledger_per_vendor(seeded):
    response = make_client(logged_in=True).get("/")
    assert response.status_code == 200
    html = response.text
    assert cell(html, "as-of") == "as of 2026-01-03 00:00 UTC"  # the ledger's latest observation
    for vendor, kinds in seed.EXPECTED_OPEN.items():
        assert cell(html, f"open-{vendor}") == str(sum(map(sum, kinds.values())))
        for kind, buckets in kinds.items():
            assert [cell(html, f"open-{vendor}-{kind}-{i}") for i in range(4)] == [str(n) for n in buckets]
            assert cell(html, f"open-{vendor}-{kind}") == str(sum(buckets))
        assert cell(html, f"errored-{vendor}") == str(len(seed.EXPECTED_ERRORED[vendor]))
    assert cell(html, "resolved-dropstream") == "1" and cell(html, "resolved-dcl") == "0"
    assert cell(html, "ship-dropstream") == "1 orders · median 1d · p90 1d"
    assert cell(html, "error-dropstream") == "1 episodes · median 1d 6h · p90 1d 6h"
    assert cell(html, "error-dcl") == "1 episodes · median 2h · p90 2h"
    # Who found and who resolved the orphan shipment: links to the DAG runs and task instances.
    run1, run2 = (quote_run(r.run_id) for r in seed.RUNS[:2])
    assert f'href="/dags/{seed.DAG_ID}/runs/{run1}/tasks/reconcile"' in html
    resolved_row = re.search(r'data-testid="resolved-list-dropstream-row".*?</tr>', html).group(0)
    assert (
        f"/dags/{seed.DAG_ID}/runs/{run1}" in resolved_row
        and f"/dags/{seed.DAG_ID}/runs/{run2}" in resolved_row
    )
    assert "https://" not in html.replace("http://www.w3.org/2000/svg", "")  # no asset from the internet


def quote_run(run_id: str) -> str:
    from urllib.parse import quote

    return quote(run_id, safe="")


def test_overview_json_matches_the_seed(seeded):
    body = make_client(logged_in=True).get("/api/overview").json()
    assert body["as_of"] == "2026-01-03T00:00:00+00:00"
    assert sorted(body["vendors"]) == ["dcl", "dropstream"]
    for vendor, kinds in seed.EXPECTED_OPEN.items():
        got = body["vendors"][vendor]
        assert {
            kind: list(buckets.values()) for kind, buckets in got["open_by_kind_and_age"].items()
        } == kinds
        assert got["alerts"] == seed.EXPECTED_ALERTS[vendor]
        assert got["errored"] == len(seed.EXPECTED_ERRORED[vendor])
    dropstream = body["vendors"]["dropstream"]
    assert dropstream["time_to_ship"] == {"count": 1, "median_seconds": 86400}
    assert dropstream["time_in_error"] == {"count": 1, "median_seconds": 108000}
    assert [n for _, n in dropstream["open_over_time"][-4:]] == [0, 2, 2, 2]


def test_run_filter_shows_only_what_that_run_found_or_resolved(seeded):
    run2 = seed.RUNS[1]
    html = make_client(logged_in=True).get("/", params={"dag_id": run2.dag_id, "run_id": run2.run_id}).text
    assert f"<b>{run2.dag_id} / {run2.run_id}</b>" in html  # says which run it is filtered to
    # Run 2 opened DS-2 and resolved DS-S9; DS-1 (opened by run 1) and DCL's (run 3) are not its.
    assert re.findall(
        r'data-testid="findings-dropstream-row" data-kind="[^"]+" data-record="([^"]+)"', html
    ) == ["DS-2"]
    assert re.findall(
        r'data-testid="resolved-list-dropstream-row" data-kind="[^"]+" data-record="([^"]+)"', html
    ) == ["DS-S9"]
    assert 'data-testid="findings-dcl-empty"' in html
    # The alerts of the run: sent by its alert task (no task filter given, so every task counts).
    alerts = make_client(logged_in=True).get("/api/overview", params={"run_id": run2.run_id}).json()
    assert alerts["vendors"]["dropstream"]["alerts"] == {"opened": 1, "reminder": 1, "resolved": 1}


def test_vendor_filter(seeded):
    html = make_client(logged_in=True).get("/", params={"vendor": "dcl"}).text
    assert 'data-testid="vendor-dcl"' in html and 'data-testid="vendor-dropstream"' not in html
    assert '<option value="dropstream">' in html  # the other vendor stays selectable


def test_files_are_served_only_from_the_output_root(tmp_path):
    root = tmp_path / "fulfillment"
    (root / "vendor=dcl").mkdir(parents=True)
    report = root / "vendor=dcl" / "report.html"
    report.write_text("<h1>report</h1>")
    (tmp_path / "secret.txt").write_text("no")
    client = make_client(logged_in=True, files_root=lambda: root)
    served = client.get("/files", params={"uri": f"file://{report}"})
    assert served.status_code == 200 and served.text == "<h1>report</h1>"
    assert served.headers["content-type"].startswith("text/html")
    assert client.get("/files", params={"uri": str(root / ".." / "secret.txt")}).status_code == 404
    assert client.get("/files", params={"uri": "s3://bucket/x"}).status_code == 400


def test_empty_ledger(ledger_conn):  # noqa: F811
    html = make_client(logged_in=True).get("/").text
    assert 'data-testid="ledger-empty"' in html
