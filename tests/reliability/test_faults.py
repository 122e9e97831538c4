"""Extractions under injected faults: every vendor, every paging mode, exactly the right file.

`FulfillmentExtractOperator` reads a seeded sandbox world while the sandbox injects ~10% 5xx, 429
bursts with `Retry-After`, dropped connections, truncated bodies (cut mid-body and cut JSON in a
200), DropStream sessions expiring mid-stream, bearer tokens expiring, and all of them at once. Each
extraction must hold exactly the world's ids for the interval (none missing, none twice) and be
byte-for-byte the file of a fault-free run. Each case also checks that its fault really fired, so a
knob that stopped working cannot turn the suite vacuous.

The hook-level twin is tests/integration/test_hooks_sandbox.py; this is the operator level (what a
scheduler runs), on small worlds with fast retries, plus one soak (`make test-soak`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from airflow_provider_fulfillment.sandbox.counters import Counters
from airflow_provider_fulfillment.sandbox.testing import SandboxServer, run_sandbox
from tests.reliability._support import (
    RECORD_KEY,
    assert_exactly,
    connect,
    files_under,
    local_path,
    read_keys,
    run_extract,
    sha256_of,
)

pytestmark = pytest.mark.integration

RATE_SEED = 7  # the seeded RNG behind error_rate: its first hits come within the first few requests


@dataclass(frozen=True)
class Mode:
    vendor: str
    filters: dict[str, Any]
    concurrency: int
    # A smaller DropStream result cap, so the windowed modes split the interval into parts (as they
    # do past 10,000 records) without needing a world that large.
    cap: int | None = None


MODES: dict[str, Mode] = {
    "dropstream-session": Mode("dropstream", {"paging": "session", "limit": 50}, 1),
    "dropstream-windowed-concurrent": Mode("dropstream", {"limit": 50}, 4, cap=300),
    "dropstream-page": Mode("dropstream", {"paging": "page", "limit": 50}, 1, cap=300),
    "dcl-sequential": Mode("dcl", {"page_size": 20}, 1),
    "dcl-fetch-ahead": Mode("dcl", {"page_size": 20}, 4),
    "stream-sequential": Mode("stream", {}, 1),
    "stream-concurrent": Mode("stream", {}, 4),
}


def _faults_seen(kind: str) -> Callable[[Counters], bool]:
    return lambda counters: counters.faults()[kind] > 0


def _statuses_seen(status: int, prefix: str = "") -> Callable[[Counters], bool]:
    return lambda counters: counters.count(status=status, prefix=prefix or None) > 0


def _sessions_reopened(counters: Counters) -> bool:
    expired = [r for r in counters.select(path="/dropstream/orders", status=404) if "session_id" in r.params]
    return bool(expired)


@dataclass(frozen=True)
class Fault:
    knobs: dict[str, Any]
    fired: Callable[[Counters], bool] = field(default=lambda counters: True)
    vendors: tuple[str, ...] = ("dropstream", "dcl", "stream")
    modes: tuple[str, ...] | None = None  # None: every mode of those vendors
    extra: dict[str, Any] = field(default_factory=dict)  # connection extras for this fault


ALL_AT_ONCE = {
    "error_rate": 0.1,
    "seed": RATE_SEED,
    "rate_limit_every": 9,
    "rate_limit_burst": 2,
    "retry_after": 0,
    "drop_every": 11,
    "truncate_every": 13,  # mode "length" (cut mid-body); cut JSON has its own case, and see
    # test_token_answer_cut_in_transit_is_retried for cut JSON from a token endpoint.
}

FAULTS: dict[str, Fault] = {
    "none": Fault({}),
    "5xx-10pct": Fault({"error_rate": 0.1, "seed": RATE_SEED}, _faults_seen("error")),
    "429-bursts": Fault(
        {"rate_limit_every": 6, "rate_limit_burst": 3, "retry_after": 0}, _statuses_seen(429)
    ),
    "dropped-connections": Fault({"drop_every": 7}, _faults_seen("drop")),
    "truncated-length": Fault({"truncate_every": 6}, _faults_seen("truncate")),
    "truncated-json": Fault({"truncate_every": 6, "truncate_mode": "json"}, _faults_seen("truncate")),
    "session-expiry": Fault(
        {"session_max_pages": 3}, _sessions_reopened, vendors=("dropstream",), modes=("dropstream-session",)
    ),
    "token-expiry": Fault({"token_max_uses": 6}, _statuses_seen(401), vendors=("dropstream", "stream")),
    "dcl-rate-limit": Fault(
        # DCL's own limit answers 429 with the seconds left in its window: the hook waits that long.
        {"dcl_rate_limit": 4, "dcl_rate_window": 0.2},
        _statuses_seen(429, "/dcl"),
        vendors=("dcl",),
        extra={"max_wait": 0.25},
    ),
    "dcl-all-at-once": Fault(
        {**ALL_AT_ONCE, "dcl_rate_limit": 6, "dcl_rate_window": 0.2},
        lambda c: all(c.faults()[k] for k in ("error", "rate_limit", "drop", "truncate")),
        vendors=("dcl",),
        extra={"max_wait": 0.25},
    ),
    "all-at-once": Fault(
        {**ALL_AT_ONCE, "token_max_uses": 7, "session_max_pages": 4},
        lambda c: (
            all(c.faults()[k] for k in ("error", "rate_limit", "drop", "truncate"))
            and c.count(status=401) > 0
        ),
        vendors=("dropstream", "stream"),
    ),
}


def cases() -> Iterator[Any]:
    for mode_name, mode in MODES.items():
        for fault_name, fault in FAULTS.items():
            if mode.vendor in fault.vendors and (fault.modes is None or mode_name in fault.modes):
                yield pytest.param(mode_name, fault_name, id=f"{mode_name}-{fault_name}")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    # 30 days: 3,000 DropStream orders, 600 DCL, 300 Stream; the interval below is the last 10 days.
    with run_sandbox(seed=11, orders=3000, dcl_orders=600, stream_orders=300, days=30) as server:
        yield server


def interval(sb: SandboxServer) -> tuple[datetime, datetime]:
    return sb.world.end - timedelta(days=10), sb.world.end


def expected_keys(sb: SandboxServer, vendor: str) -> list[Any]:
    window = interval(sb)
    if vendor == "dropstream":
        return sb.world.dropstream.order_ids(window=window, field="created_at")
    if vendor == "dcl":
        return sb.world.dcl.order_numbers(window=window, field="modified_at")
    return sb.world.stream.order_ids(window=window)


@pytest.fixture(scope="module")
def reference(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """sha256 of a fault-free extraction of the interval, per vendor and paging filters: a DCL window
    is read in time slices sized by the page, so the page size shapes the records' order."""
    shas: dict[tuple[str, str], str] = {}

    def sha(vendor: str, filters: dict[str, Any]) -> str:
        key = (vendor, repr(sorted(filters.items())))
        if key not in shas:
            sandbox.reset_faults()
            with pytest.MonkeyPatch.context() as patch:
                conn_id = connect(patch, sandbox, vendor, f"reference_{vendor}")
                root = tmp_path_factory.mktemp(f"reference-{vendor}")
                manifest = run_extract(conn_id, interval(sandbox), root, filters=filters)
            assert manifest["records"] == len(expected_keys(sandbox, vendor)) > 50
            shas[key] = manifest["sha256"]
            sandbox.reset_counters()
        return shas[key]

    return sha


@pytest.fixture
def sb(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    sandbox.reset()
    yield sandbox
    sandbox.reset_faults()


@pytest.mark.parametrize(("mode_name", "fault_name"), list(cases()))
def test_extract_is_exact_under_faults(
    sb: SandboxServer,
    reference: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mode_name: str,
    fault_name: str,
) -> None:
    mode, fault = MODES[mode_name], FAULTS[fault_name]
    expected_sha = reference(mode.vendor, {k: v for k, v in mode.filters.items() if k != "paging"})
    conn_id = connect(
        monkeypatch,
        sb,
        mode.vendor,
        f"{mode.vendor}_{mode.concurrency}",
        max_concurrency=mode.concurrency,
        **fault.extra,
    )
    if mode.cap is not None:
        monkeypatch.setattr(DropStreamHook, "result_cap", mode.cap)
    sb.set_faults(prefix=f"/{mode.vendor}", **fault.knobs)

    manifest = run_extract(conn_id, interval(sb), tmp_path, filters=mode.filters)

    counters = sb.counters()
    sb.reset_faults()
    final = local_path(manifest["uri"])
    keys = read_keys(manifest["uri"], RECORD_KEY[mode.vendor])
    expected = expected_keys(sb, mode.vendor)
    assert_exactly(keys, expected)
    assert manifest["records"] == len(expected)
    assert manifest["sha256"] == sha256_of(final) == expected_sha
    assert files_under(tmp_path) == [str(final.relative_to(tmp_path))]  # no temporary left behind
    assert fault.fired(counters), f"{fault_name} never fired: {counters.faults()}"
    if mode.cap is not None:  # the windowed modes did cut the interval into parts
        bounds = {
            (q.get("created_at_min"), q.get("created_at_max")) for q in counters.params("/dropstream/orders")
        }
        assert len(bounds - {(None, None)}) >= 4


# --------------------------------------------------------------------------- soak

SOAK_ORDERS = 120_000


@pytest.mark.soak
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("paging", ["windowed-concurrent", "session"])
def test_soak_dropstream_all_faults_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, paging: str
) -> None:
    """≥100,000 DropStream orders (past the 10,000 cap many times over) through every fault at once."""
    with run_sandbox(seed=23, orders=SOAK_ORDERS, days=60) as server:
        window = (server.world.start, server.world.end)
        expected = server.world.dropstream.order_ids(window=window, field="created_at")
        assert len(expected) >= 100_000
        filters = {"limit": 1000} if paging == "windowed-concurrent" else {"limit": 1000, "paging": "session"}
        conn_id = connect(monkeypatch, server, "dropstream", "soak", max_concurrency=4, max_attempts=12)
        clean = run_extract(conn_id, window, tmp_path / "clean", filters=filters)
        local_path(clean["uri"]).unlink()  # ~180 MB: its sha256 is all we need
        server.reset_counters()
        server.set_faults(
            prefix="/dropstream",
            error_rate=0.1,
            seed=RATE_SEED,
            rate_limit_every=9,
            rate_limit_burst=3,
            retry_after=0,
            drop_every=11,
            truncate_every=13,
            token_max_uses=25,
            session_max_pages=7,
        )
        faulty = run_extract(conn_id, window, tmp_path / "faulty", filters=filters)
        counters = server.counters()
        server.reset_faults()
        assert_exactly(read_keys(faulty["uri"], "id"), expected)
        assert faulty["records"] == clean["records"] == len(expected)
        assert faulty["sha256"] == clean["sha256"] == sha256_of(local_path(faulty["uri"]))
        assert all(counters.faults()[k] > 10 for k in ("error", "rate_limit", "drop", "truncate"))
        assert counters.count(status=401) > 0
        local_path(faulty["uri"]).unlink()


# --------------------------------------------------------------------------- the task runner's context


@pytest.mark.parametrize(("paging", "concurrency"), [("page", 1), ("auto", 4)])
def test_a_scheduled_run_over_the_cap_is_split(
    sb: SandboxServer,
    run_dag: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    paging: str,
    concurrency: int,
) -> None:
    """Through `dag.test()`, so the interval comes from Airflow itself (pendulum), over a (lowered) cap."""
    from airflow.sdk import DAG

    from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator

    monkeypatch.setattr(DropStreamHook, "result_cap", 40)
    conn_id = connect(monkeypatch, sb, "dropstream", f"scheduled_{concurrency}", max_concurrency=concurrency)
    end = sb.world.end - timedelta(days=1)
    errors: list[BaseException | None] = []
    with DAG(
        f"scheduled_split_{concurrency}", schedule="@daily", start_date=end - timedelta(days=3), catchup=False
    ) as dag:
        FulfillmentExtractOperator(
            task_id="extract",
            conn_id=conn_id,
            destination=str(tmp_path),
            filters={"limit": 20, "paging": paging},
            on_failure_callback=lambda context: errors.append(context.get("exception")),
        )
    run = run_dag(dag, end)
    assert run.state == "success", errors
    (final,) = [p for p in tmp_path.rglob("*.jsonl")]
    expected = sb.world.dropstream.order_ids(window=(end - timedelta(days=1), end), field="created_at")
    assert len(expected) > 40
    assert_exactly(read_keys(f"file://{final}", "id"), expected)


@pytest.mark.parametrize(
    ("vendor", "sign_in"),
    [("dropstream", "/dropstream/auth/token"), ("stream", "/stream/client_api/v2/auth/sign_in")],
)
def test_token_answer_cut_in_transit_is_retried(
    sb: SandboxServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, vendor: str, sign_in: str
) -> None:
    """Tokens expire every few requests; every second sign-in answer is cut JSON in a 200."""
    conn_id = connect(monkeypatch, sb, vendor, f"cut_{vendor}", max_concurrency=1)
    sb.set_faults(
        prefix=f"/{vendor}", token_max_uses=5, truncate_every=2, truncate_mode="json", truncate_prefix=sign_in
    )
    manifest = run_extract(
        conn_id, interval(sb), tmp_path, filters={"limit": 50} if vendor == "dropstream" else {}
    )
    counters = sb.counters()
    assert counters.faults()["truncate"] > 0
    assert_exactly(read_keys(manifest["uri"], "id"), expected_keys(sb, vendor))
    assert manifest["sha256"] == sha256_of(local_path(manifest["uri"]))


@pytest.mark.parametrize(("retry_after", "max_wait", "waited"), [(0.3, 5.0, 0.3), (2.0, 0.1, 0.1)])
def test_retry_after_is_honoured_up_to_max_wait(
    sb: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    retry_after: float,
    max_wait: float,
    waited: float,
) -> None:
    """Each 429 waits what its `Retry-After` asks, capped by the connection's `max_wait`; a 5xx waits an
    exponential backoff with jitter under the same cap. The waits are recorded, not slept."""
    import tenacity

    waits: list[float] = []
    monkeypatch.setattr(tenacity.nap, "sleep", waits.append)
    conn_id = connect(monkeypatch, sb, "dropstream", "honour", max_concurrency=1, max_wait=max_wait)
    sb.set_faults(prefix="/dropstream/orders", rate_limit_every=4, retry_after=retry_after)
    manifest = run_extract(conn_id, interval(sb), tmp_path, filters={"paging": "session", "limit": 100})
    limited = sb.counters().count(status=429)
    assert_exactly(read_keys(manifest["uri"], "id"), expected_keys(sb, "dropstream"))
    assert limited >= 2 and waits == [waited] * limited

    waits.clear()
    sb.reset_counters()
    sb.set_faults(prefix="/dropstream/orders", error_every=3)
    run_extract(conn_id, interval(sb), tmp_path, filters={"paging": "session", "limit": 100})
    assert len(waits) == sb.counters().count(status=503) >= 2
    assert all(0 <= wait <= min(max_wait, 0.5) for wait in waits)  # first retry: jitter in [0, 0.5 s]
