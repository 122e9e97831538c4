"""The connection form and its Test button, as a user meets them: in Chromium, against the sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_fulfillment.sandbox.testing import run_sandbox

HOOK_NAMES = {"dropstream": "DropStream", "dcl": "DCL", "stream": "Stream"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with run_sandbox(seed=42, orders=300) as server:
        yield server


def add_connection_in_form(page: Any, server: Any, conn_id: str, conn_type: str, fields: dict) -> None:
    page.goto(server.url("/connections"))
    page.get_by_role("button", name="Add Connection").click()
    page.fill("input[name=connection_id]", conn_id)
    page.get_by_role("combobox").first.click()
    page.get_by_role("option", name=HOOK_NAMES[conn_type], exact=True).click()
    for name in ("host", "login", "password"):
        page.fill(f"input[name={name}]", fields[name])
    with page.expect_response(
        lambda r: r.url.endswith("/api/v2/connections") and r.request.method == "POST"
    ) as made:
        page.get_by_role("button", name="Save").click()
    assert made.value.status == 201, made.value.text()


@pytest.mark.parametrize("conn_type", ["dropstream", "dcl", "stream"])
def test_the_test_button_succeeds_on_a_connection_made_in_the_form(
    airflow_server, airflow_page, sandbox, conn_type, tmp_path
):
    fields = json.loads(sandbox.conn_env()[f"AIRFLOW_CONN_{conn_type.upper()}_DEFAULT"])
    conn_id = f"ui_made_{conn_type}"
    add_connection_in_form(airflow_page, airflow_server, conn_id, conn_type, fields)

    status, stored = airflow_server.api("GET", f"/api/v2/connections/{conn_id}")
    assert status == 200
    expected = {"conn_type": conn_type, "host": fields["host"], "login": fields["login"], "port": None}
    assert {key: stored[key] for key in expected} == expected

    row = airflow_page.get_by_role("row").filter(has_text=conn_id)
    with airflow_page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as tested:
        row.get_by_role("button", name="Test Connection").click()
    sent = json.loads(tested.value.request.post_data or "{}")
    assert (sent["connection_id"], sent["port"], sent["password"]) == (conn_id, 0, "***")  # the UI's request
    assert tested.value.status == 200, tested.value.text()
    result = tested.value.json()
    assert result["status"] is True, result
    assert result["message"].startswith(f"Connected to {HOOK_NAMES[conn_type]} at {fields['host']}: ")
    airflow_page.get_by_text("Test Connection Successful").wait_for()  # the UI's success toast
    airflow_page.screenshot(path=str(tmp_path / "tested.png"))
