"""Past the retry budget, an extract task fails loudly and leaves nothing behind.

Each case runs a real task (`dag.test()`) against the sandbox, with faults that outlast the
connection's `max_attempts`. The task must fail with the provider's `FulfillmentAPIError` (so Airflow's
task retries still apply: these faults are transient), whose message names the connection, the exact
request (method, path and query, as the vendor received it), the last HTTP status and the vendor's
own words — and the destination must hold no file at all: not the final path, not a temporary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from airflow.sdk import DAG

from airflow_provider_fulfillment.http import (
    FulfillmentAPIError,
    FulfillmentAuthError,
    FulfillmentVendorError,
)
from airflow_provider_fulfillment.operators import _storage
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from airflow_provider_fulfillment.sandbox.counters import Counters
from airflow_provider_fulfillment.sandbox.testing import SandboxServer, run_sandbox
from tests.reliability._support import conn_body, env_name, files_under

pytestmark = pytest.mark.integration

CONN_ID = "wh_east"  # a name that does not give the vendor away: the message must


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with run_sandbox(seed=5, orders=3000, dcl_orders=600, stream_orders=300, days=30) as server:
        yield server


@pytest.fixture
def sb(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    sandbox.reset()
    yield sandbox
    sandbox.reset_faults()


class Failures:
    def __init__(self) -> None:
        self.errors: dict[str, BaseException | None] = {}

    def __call__(self, context: Any) -> None:
        self.errors[context["ti"].task_id] = context.get("exception")


@dataclass(frozen=True)
class Case:
    vendor: str
    knobs: dict[str, Any]
    extra: dict[str, Any]
    filters: dict[str, Any]
    error: type[FulfillmentAPIError]
    # The message, from what the sandbox saw (the last request of the failing kind) and its URL.
    message: Callable[[Counters, str], str]
    password: str | None = None
    # Whether the failure comes after the output's temporary file was opened (every read starts
    # inside the write: the progress count comes with the read's first answer).
    opens_output: bool = True


def _last(counters: Counters, path: str, **criteria: Any) -> str:
    """`path?query` of the last request the sandbox recorded for `path` (and `status`/`fault`)."""
    record = counters.select(path=path, **criteria)[-1]
    return "/" + path.split("/")[-1] + ("?" + urlencode(record.query) if record.query else "")


RATE_HINT = "rate limited: raise the connection's max_attempts/max_wait or lower max_concurrency"

CASES: dict[str, Case] = {
    # The sizing request (a session at the page size, which also tells the progress total and is
    # page 1: 1,000 orders, over 1 MiB, written to the temporary file) passes, then page 2 meets
    # a burst of 429s longer than the budget.
    "dropstream-429-past-budget-mid-file": Case(
        "dropstream",
        {"rate_limit_every": 10, "rate_limit_burst": 9, "retry_after": 0, "prefix": "/dropstream/orders"},
        {"max_attempts": 4, "max_concurrency": 1},
        {"paging": "page", "limit": 1000},
        FulfillmentAPIError,
        lambda c, url: (
            f"DropStream connection '{CONN_ID}': GET {_last(c, '/dropstream/orders', status=429)} failed after "
            f"4 attempts: HTTP 429: Too many requests: rate limit exceeded ({RATE_HINT})"
        ),
    ),
    "dropstream-dropped-past-budget": Case(
        "dropstream",
        {"drop_every": 1, "prefix": "/dropstream/orders"},
        {"max_attempts": 3},
        {"paging": "session"},
        FulfillmentAPIError,
        lambda c, url: (
            f"DropStream connection '{CONN_ID}': GET {_last(c, '/dropstream/orders', fault='drop')} failed after "
            f"3 attempts: no response: RemoteProtocolError: Server disconnected without sending a response. "
            f"(is {url}/dropstream reachable?)"
        ),
    ),
    "dropstream-refused-sign-in": Case(
        "dropstream",
        {},
        {},
        {},
        FulfillmentAuthError,
        lambda c, url: (
            f"DropStream connection '{CONN_ID}': POST /dropstream/auth/token failed: HTTP 401: invalid_client: "
            "bad API user or password (the sign-in was refused: check the connection's login and password)"
        ),
        password="not-the-password",
    ),
    # A DCL error inside an HTTP 200 is an error at once (never an empty page, never retried).
    "dcl-error-code-in-200": Case(
        "dcl",
        {"dcl_error_every": 2},
        {"max_attempts": 4, "max_concurrency": 1},
        {"page_size": 20},
        FulfillmentVendorError,
        lambda c, url: (
            f"DCL connection '{CONN_ID}': GET {_last(c, '/dcl/api/v1/orders')} failed: HTTP 200: "
            "error_code 503: The service is temporarily unavailable. Please try again later."
        ),
    ),
    "dcl-5xx-past-budget": Case(
        "dcl",
        {"error_every": 1, "error_status": 502, "prefix": "/dcl"},
        {"max_attempts": 3},
        {},
        FulfillmentAPIError,
        lambda c, url: (
            f"DCL connection '{CONN_ID}': GET {_last(c, '/dcl/api/v1/orders', status=502)} failed after "
            "3 attempts: HTTP 502: Injected server error"
        ),
    ),
    "dcl-wrong-password": Case(
        "dcl",
        {},
        {},
        {},
        FulfillmentAuthError,
        lambda c, url: (
            f"DCL connection '{CONN_ID}': GET {_last(c, '/dcl/api/v1/orders', status=401)} failed: "
            "HTTP 401: Authorization has been denied for this request. (check the connection's credentials)"
        ),
        password="not-the-password",
    ),
    "stream-5xx-past-budget": Case(
        "stream",
        {"error_every": 1, "prefix": "/stream/client_api/v2/orders"},
        {"max_attempts": 3},
        {},
        FulfillmentAPIError,
        lambda c, url: (
            f"Stream connection '{CONN_ID}': GET {_last(c, '/stream/client_api/v2/orders', status=503)} "
            "failed after 3 attempts: HTTP 503: Injected server error"
        ),
    ),
    "stream-429-past-budget": Case(
        "stream",
        {"rate_limit_every": 1, "retry_after": 0, "prefix": "/stream/client_api/v2/orders"},
        {"max_attempts": 2},
        {},
        FulfillmentAPIError,
        lambda c, url: (
            f"Stream connection '{CONN_ID}': GET {_last(c, '/stream/client_api/v2/orders', status=429)} "
            f"failed after 2 attempts: HTTP 429: Too many requests: rate limit exceeded ({RATE_HINT})"
        ),
    ),
}


def interval(sb: SandboxServer) -> tuple[datetime, datetime]:
    return sb.world.end - timedelta(days=20), sb.world.end


def _dag(name: str, sb: SandboxServer, destination: Path, filters: dict[str, Any], failures: Failures) -> DAG:
    start, end = interval(sb)
    with DAG(name, schedule=None, start_date=start, catchup=False) as dag:
        FulfillmentExtractOperator(
            task_id="extract",
            conn_id=CONN_ID,
            destination=str(destination),
            filters=filters,
            window=(start.isoformat(), end.isoformat()),
            on_failure_callback=failures,
        )
    return dag


@pytest.mark.parametrize("case_name", list(CASES))
def test_past_the_budget_the_task_fails_loudly_and_writes_nothing(
    sb: SandboxServer,
    run_dag: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    case_name: str,
) -> None:
    case = CASES[case_name]
    body = conn_body(sb, case.vendor, **case.extra)
    if case.password:
        body["password"] = case.password
    monkeypatch.setenv(env_name(CONN_ID), json.dumps(body))
    removed: list[int] = []  # sizes of the temporary files the failed write removed
    remove = _storage._remove_quietly

    def spy(path: Any) -> None:
        removed.append(path.stat().st_size if path.exists() else -1)
        remove(path)

    monkeypatch.setattr(_storage, "_remove_quietly", spy)
    sb.set_faults(**case.knobs)
    failures = Failures()

    run = run_dag(_dag(re.sub(r"\W", "_", case_name), sb, tmp_path, case.filters, failures))

    assert run.state == "failed"
    error = failures.errors["extract"]
    assert type(error) is case.error
    assert str(error) == case.message(sb.counters(), sb.url)
    assert files_under(tmp_path) == []  # no final file, no temporary
    # Where the temporary existed, the failure removed it...
    assert len(removed) == (1 if case.opens_output else 0)
    if case_name.endswith("mid-file"):
        assert removed[0] > 1 << 20  # ...after a whole page had reached it


@pytest.mark.parametrize(
    ("vendor", "name"), [("dropstream", "DropStream"), ("dcl", "DCL"), ("stream", "Stream")]
)
def test_the_failure_names_the_vendor(
    sb: SandboxServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, vendor: str, name: str
) -> None:
    from tests.reliability._support import run_extract

    monkeypatch.setenv(env_name(CONN_ID), json.dumps(conn_body(sb, vendor, max_attempts=2)))
    sb.set_faults(error_every=1, prefix=f"/{vendor}")
    with pytest.raises(FulfillmentAPIError) as caught:
        run_extract(CONN_ID, interval(sb), tmp_path)
    assert re.search(rf"\b{name}\b", str(caught.value)), str(caught.value)
    assert files_under(tmp_path) == []


def test_a_failed_rerun_keeps_the_previous_file_whole(
    sb: SandboxServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Readers see the last good file, byte for byte, while a rerun of its interval fails midway."""
    from tests.reliability._support import local_path, run_extract

    monkeypatch.setenv(
        env_name(CONN_ID), json.dumps(conn_body(sb, "dropstream", max_attempts=3, max_concurrency=1))
    )
    good = run_extract(CONN_ID, interval(sb), tmp_path, filters={"paging": "page", "limit": 1000})
    final = local_path(good["uri"])
    before = final.read_bytes()
    sb.reset_counters()
    sb.set_faults(rate_limit_every=10, rate_limit_burst=9, retry_after=0, prefix="/dropstream/orders")
    with pytest.raises(FulfillmentAPIError, match=r"failed after 3 attempts: HTTP 429"):
        run_extract(CONN_ID, interval(sb), tmp_path, filters={"paging": "page", "limit": 1000})
    # Page 1 was read (and written to a temporary) again before the 429s.
    assert sb.counters().count(path="/dropstream/orders", status=200) == 1
    assert final.read_bytes() == before
    assert files_under(tmp_path) == [str(final.relative_to(tmp_path))]
