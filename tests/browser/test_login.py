"""The browser fixture itself: the server asks for a login, and the fixture's login gets past it."""

from __future__ import annotations

import urllib.error
import urllib.request


def test_the_api_refuses_requests_without_a_login(airflow_server):
    status, _ = airflow_server.api("GET", "/api/v2/connections", auth=False)
    assert status == 401


def test_a_wrong_password_gets_no_token(airflow_server):
    body = b'{"username": "admin", "password": "not-the-password"}'
    request = urllib.request.Request(
        airflow_server.url("/auth/token"), data=body, headers={"Content-Type": "application/json"}
    )
    try:
        urllib.request.urlopen(request, timeout=30)
        status = 201
    except urllib.error.HTTPError as error:
        status = error.code
    assert status == 401


def test_the_logged_in_browser_sees_the_ui_and_our_connection_types(airflow_server, airflow_page):
    airflow_page.goto(airflow_server.url("/connections"))
    airflow_page.wait_for_url("**/connections")
    assert "/auth/" not in airflow_page.url
    status, hooks = airflow_server.api("GET", "/ui/connections/hook_meta")
    assert status == 200
    assert {"dropstream", "dcl", "stream"} <= {hook["connection_type"] for hook in hooks}
