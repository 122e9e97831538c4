"""Crash safety and idempotency of the extract.

- A real extract process killed with SIGKILL mid-write (no `finally`, no cleanup) leaves no file at
  the final path. What it does leave is `_storage.atomic_write`'s hidden temporary
  (`.<name>.tmp-<hex>`, dot-prefixed so Spark/Hive/DuckDB/pandas globs skip it). The next run does
  not clean it: it ignores it — it writes its own temporary and renames it over the final path — so
  the rerun's bytes are exactly an uninterrupted run's, and the leftover never becomes visible.
- Reruns of an interval overwrite its one file with the same bytes; adjacent intervals never share
  a record.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from airflow_provider_fulfillment.sandbox.testing import SandboxServer, run_sandbox
from tests.reliability._support import (
    assert_exactly,
    connect,
    files_under,
    local_path,
    python_env,
    read_keys,
    run_extract,
    sha256_of,
)

pytestmark = pytest.mark.integration

CONN_ID = "crash_dropstream"
FILTERS = {"paging": "session", "limit": 250}
TEMPORARY = re.compile(r"^\.(?P<final>.+)\.tmp-[0-9a-f]{12}$")

# The task, as a worker would run it: build the operator, execute it on the run's data interval.
CHILD = """
import json, sys
from datetime import datetime
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator

spec = json.loads(sys.argv[1])
operator = FulfillmentExtractOperator(
    task_id="extract", conn_id=spec["conn_id"], destination=spec["destination"], filters=spec["filters"]
)
context = {
    "data_interval_start": datetime.fromisoformat(spec["start"]),
    "data_interval_end": datetime.fromisoformat(spec["end"]),
}
print(json.dumps(operator.execute(context)))
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with run_sandbox(seed=31, orders=6000, days=30) as server:
        yield server


@pytest.fixture
def sb(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    sandbox.reset()
    connect(monkeypatch, sandbox, "dropstream", CONN_ID, max_concurrency=1)
    yield sandbox
    sandbox.reset_faults()


def interval(sb: SandboxServer) -> tuple[datetime, datetime]:
    return sb.world.end - timedelta(days=20), sb.world.end


def test_sigkill_mid_write_leaves_no_file_and_the_rerun_writes_the_same_bytes(
    sb: SandboxServer, tmp_path: Path
) -> None:
    start, end = interval(sb)
    expected = sb.world.dropstream.order_ids(window=(start, end), field="created_at")
    assert len(expected) > 3000  # several MiB: the writer flushes 1 MiB at a time
    uninterrupted = run_extract(CONN_ID, (start, end), tmp_path / "uninterrupted", filters=FILTERS)
    reference = local_path(uninterrupted["uri"]).read_bytes()

    # Slow pages: the child is mid-file (bytes on disk, more pages to come) when it is killed.
    sb.set_faults(latency=0.4, latency_prefix="/dropstream/orders")
    root = tmp_path / "crashed"
    spec = {
        "conn_id": CONN_ID,
        "destination": str(root),
        "filters": FILTERS,
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(spec)],
        env=python_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        partial = _wait_for_partial_file(root, child)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()
        child.stderr.close()
    sb.reset_faults()

    assert child.returncode == -signal.SIGKILL
    final = root / local_path(uninterrupted["uri"]).relative_to(tmp_path / "uninterrupted")
    assert not final.exists()
    leftovers = files_under(root)
    assert leftovers == [str(partial.relative_to(root))]  # only the hidden temporary...
    match = TEMPORARY.match(partial.name)
    assert match and match.group("final") == final.name  # ...next to the final path, named after it
    partial_bytes = partial.read_bytes()
    assert 0 < len(partial_bytes) < len(reference)
    assert reference.startswith(partial_bytes)  # a prefix of the real file, cut where the kill hit

    rerun = run_extract(CONN_ID, (start, end), root, filters=FILTERS)
    assert local_path(rerun["uri"]) == final
    assert final.read_bytes() == reference
    assert rerun["sha256"] == uninterrupted["sha256"] and rerun["records"] == len(expected)
    # The rerun ignored the leftover (it is neither read nor published) and did not clean it.
    visible = [name for name in files_under(root) if not Path(name).name.startswith(".")]
    assert visible == [str(final.relative_to(root))]
    assert partial.read_bytes() == partial_bytes
    assert_exactly(read_keys(rerun["uri"], "id"), expected)


def _wait_for_partial_file(root: Path, child: subprocess.Popen[bytes]) -> Path:
    """The child's temporary file, once it holds bytes; fails if the child ends first."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            _, err = child.communicate()
            pytest.fail(
                f"the extract ended (rc {child.returncode}) before it was killed: {err.decode()[-2000:]}"
            )
        for path in root.rglob(".*.tmp-*") if root.exists() else ():
            if path.stat().st_size > 0:
                return path
        time.sleep(0.02)
    pytest.fail("the extract never wrote its temporary file")


def test_reruns_and_adjacent_intervals_never_duplicate(sb: SandboxServer, tmp_path: Path) -> None:
    """Three daily runs, the middle one run again: one file per day, same bytes, no record twice."""
    end = sb.world.end.replace(hour=0, minute=0, second=0)
    days = [(end - timedelta(days=n), end - timedelta(days=n - 1)) for n in (3, 2, 1)]
    manifests = [run_extract(CONN_ID, day, tmp_path) for day in days]
    first_bytes = local_path(manifests[1]["uri"]).read_bytes()
    again = [run_extract(CONN_ID, days[1], tmp_path, filters=FILTERS) for _ in range(2)]

    assert {m["uri"] for m in again} == {manifests[1]["uri"]}
    assert {m["sha256"] for m in again} == {manifests[1]["sha256"]}  # session paging, same bytes
    assert local_path(manifests[1]["uri"]).read_bytes() == first_bytes
    assert sorted(files_under(tmp_path)) == sorted(
        str(local_path(m["uri"]).relative_to(tmp_path)) for m in manifests
    )
    per_day = [read_keys(m["uri"], "id") for m in manifests]
    for day, keys in zip(days, per_day, strict=True):
        assert_exactly(keys, sb.world.dropstream.order_ids(window=day, field="created_at"))
    everything = [key for keys in per_day for key in keys]
    assert_exactly(
        everything, sb.world.dropstream.order_ids(window=(days[0][0], days[-1][1]), field="created_at")
    )
    assert sha256_of(local_path(manifests[1]["uri"])) == manifests[1]["sha256"]
