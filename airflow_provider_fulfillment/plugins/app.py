"""The FastAPI app behind the Fulfillment page, mounted on Airflow's API server at `/fulfillment`.

Every route that shows ledger data or files depends on Airflow's own authentication (the `_token`
JWT cookie the UI's login sets, or a bearer token), so the page sits behind the same login as the
rest of the UI; an unauthenticated request gets Airflow's 401. Static files (CSS, JS, the icon)
ship in the package and hold no data.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlparse

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from airflow_provider_fulfillment.plugins.page import render_page
from airflow_provider_fulfillment.reports.ledger_view import load_overview
from airflow_provider_fulfillment.rules.types import RunRef

log = logging.getLogger(__name__)

DEFAULT_LEDGER_CONN_ID = "fulfillment_ledger"
STATIC_DIR = Path(__file__).parent / "static"


def ledger_conn_id() -> str:
    """`[fulfillment] ledger_conn_id` in airflow.cfg (AIRFLOW__FULFILLMENT__LEDGER_CONN_ID), else the default."""
    from airflow.configuration import conf

    return conf.get("fulfillment", "ledger_conn_id", fallback=DEFAULT_LEDGER_CONN_ID)


def default_ledger() -> Any:
    from airflow_provider_fulfillment.ledger import Ledger

    return Ledger(ledger_conn_id())


def authenticated() -> Callable[..., Any]:
    """Airflow's 'any logged-in user' dependency; imported late, since only the API server needs it."""
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return requires_authenticated()


def request_ledger(request: Request) -> Iterator[Any]:
    """One Ledger per request: its database connection stays on the worker thread that made it."""
    current = request.app.state.ledger_factory()
    try:
        yield current
    finally:
        current.close()


LedgerDep = Annotated[Any, Depends(request_ledger)]


def _run_filter(dag_id: str | None, run_id: str | None, task_id: str | None) -> RunRef | None:
    return RunRef(dag_id or None, run_id or None, task_id or None) if (dag_id or run_id) else None


def create_app(
    ledger_factory: Callable[[], Any] = default_ledger,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    files_root: Callable[[], Path] | None = None,
    auth: Callable[[], Callable[..., Any]] = authenticated,
) -> FastAPI:
    app = FastAPI(title="Fulfillment", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.ledger_factory = ledger_factory
    guard = [Depends(auth())]

    def known_vendors(current: Any) -> list[str]:
        return sorted(
            {f.vendor for f in current.findings(open_only=False)} | {a.vendor for a in current.alerts()}
        )

    @app.get("/", response_class=HTMLResponse, dependencies=guard)
    def page(
        request: Request,
        current: LedgerDep,
        vendor: str | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        task_id: str | None = None,
        days: int = Query(14, ge=1, le=366),
    ) -> HTMLResponse:
        overview = load_overview(
            current, now=clock(), vendor=vendor or None, run=_run_filter(dag_id, run_id, task_id), days=days
        )
        root = request.scope.get("root_path", "").rstrip("/")
        html = render_page(
            overview,
            root=root,
            vendors=known_vendors(current),
            vendor=vendor or None,
            ledger_label=f"{current.ledger_conn_id} ({current.backend})",
        )
        return HTMLResponse(html)

    @app.get("/api/overview", dependencies=guard)
    def overview_json(
        current: LedgerDep,
        vendor: str | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        """The page's numbers, for scripts and checks."""
        overview = load_overview(
            current, now=clock(), vendor=vendor or None, run=_run_filter(dag_id, run_id, task_id)
        )
        return {
            "as_of": overview.as_of.isoformat(),
            "vendors": {
                v.vendor: {
                    "open": len(v.open_findings),
                    "open_by_kind_and_age": v.open_by_kind_and_age(),
                    "errored": len(v.errored),
                    "resolved": len(v.resolved_findings),
                    "alerts": v.alert_counts(),
                    "time_to_ship": {"count": v.time_to_ship.count, "median_seconds": v.time_to_ship.median},
                    "time_in_error": {
                        "count": v.time_in_error.count,
                        "median_seconds": v.time_in_error.median,
                    },
                    "open_over_time": [[t.isoformat(), n] for t, n in v.open_over_time],
                }
                for v in overview.vendors
            },
        }

    @app.get("/files", dependencies=guard)
    def output_file(uri: str) -> FileResponse:
        """A local file the provider wrote (an extract, discrepancies, a run report), under its output root."""
        root = (files_root or _default_files_root)().resolve()
        parsed = urlparse(uri)
        if parsed.scheme not in ("", "file"):
            raise HTTPException(400, f"only local files are served here, not {parsed.scheme}:// URIs")
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise HTTPException(404, f"no file {uri} under {root}")
        media_type = "text/html" if path.suffix == ".html" else mimetypes.guess_type(path.name)[0]
        return FileResponse(path, media_type=media_type or "application/octet-stream")

    return app


def _default_files_root() -> Path:
    """Where the operators write when given no destination (`$AIRFLOW_HOME/fulfillment`)."""
    from airflow_provider_fulfillment.operators._storage import default_root

    return Path(default_root().path)
