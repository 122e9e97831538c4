"""The plugin Airflow loads: registered by entry point, a FastAPI app on the API server, two UI views."""

from __future__ import annotations

import tomllib
from pathlib import Path

from airflow_provider_fulfillment.plugins import URL_PREFIX, FulfillmentPlugin

REPO = Path(__file__).resolve().parents[2]


def test_registered_through_the_airflow_plugins_entry_point():
    entry_points = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    plugin = entry_points["airflow.plugins"]["fulfillment"]
    assert plugin == "airflow_provider_fulfillment.plugins:FulfillmentPlugin"


def test_airflow_accepts_the_plugin_and_mounts_its_app():
    from airflow._shared.plugins_manager import is_valid_plugin
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from fastapi import FastAPI

    assert is_valid_plugin(FulfillmentPlugin)
    [app] = FulfillmentPlugin().fastapi_apps
    assert app["url_prefix"] == URL_PREFIX == "/fulfillment"
    assert not any(URL_PREFIX.startswith(prefix) for prefix in RESERVED_URL_PREFIXES)
    assert isinstance(app["app"], FastAPI)
    assert FulfillmentPlugin().fastapi_apps[0]["app"] is app["app"]  # built once


def test_views_validate_as_airflow_serves_them():
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    nav, run = (ExternalViewResponse(**view) for view in FulfillmentPlugin.external_views)
    assert (nav.destination, nav.url_route, nav.href, nav.nav_top_level) == (
        "nav",
        "fulfillment",
        "/fulfillment/",
        True,
    )
    assert (run.destination, run.href) == ("dag_run", "/fulfillment/?dag_id={DAG_ID}&run_id={RUN_ID}")
