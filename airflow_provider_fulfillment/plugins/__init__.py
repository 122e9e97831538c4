"""The provider's Airflow plugin: the Fulfillment page in the Airflow 3 UI.

Registered through the `airflow.plugins` entry point (pyproject.toml). Airflow loads a provider
info `plugins` entry only with `[core] lazy_discover_providers = False`, the entry point always.

- `fastapi_apps`: the page's app, mounted by the API server at `/fulfillment` (behind Airflow's login).
- `external_views`: a top-level "Fulfillment" nav entry that frames the page, and a "Fulfillment"
  tab on every DAG run that frames the same page filtered to that run.

The app is built on first access of `fastapi_apps`, so a worker or the scheduler loading plugins
imports neither FastAPI routes nor the ledger.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow.sdk.plugins_manager import AirflowPlugin

URL_PREFIX = "/fulfillment"
NAV_ROUTE = "fulfillment"


@cache
def _fastapi_app() -> Any:
    from airflow_provider_fulfillment.plugins.app import create_app

    return create_app()


class FulfillmentPlugin(AirflowPlugin):
    name = "fulfillment"
    external_views = [
        {
            "name": "Fulfillment",
            "href": f"{URL_PREFIX}/",
            "url_route": NAV_ROUTE,
            "destination": "nav",
            "nav_top_level": True,
            "icon": f"{URL_PREFIX}/static/icon.svg",
        },
        {
            "name": "Fulfillment",
            "href": f"{URL_PREFIX}/?dag_id={{DAG_ID}}&run_id={{RUN_ID}}",
            "url_route": "fulfillment-run",
            "destination": "dag_run",
            "icon": f"{URL_PREFIX}/static/icon.svg",
        },
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [{"app": _fastapi_app(), "url_prefix": URL_PREFIX, "name": "Fulfillment"}]


__all__ = ["NAV_ROUTE", "URL_PREFIX", "FulfillmentPlugin"]
