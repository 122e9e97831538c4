"""Time zones: windows across the US DST changes, and a non-UTC Airflow default timezone.

The sandbox world is anchored around each 2025 US change (2025-03-09, clocks jump 02:00 → 03:00;
2025-11-02, 01:00–02:00 happens twice). DCL speaks US Pacific: `modified_at` with its offset,
`received_date` (with `extended_date`) as a bare local time, `received_to` as a whole local day.

- Every window — UTC days, Pacific days (23 h and 25 h), the hours around each change — holds
  exactly the world's records, and the same window written in Pacific time or in UTC gives the
  same file (path and bytes).
- A child process with `AIRFLOW__CORE__DEFAULT_TIMEZONE=America/Los_Angeles` runs the extracts on
  the intervals Airflow's own `@daily` timetable gives there (pendulum datetimes in Pacific time, as a
  task's context carries them); the files are those of the UTC run of the same instants. With the
  machine's own `TZ` set to a third zone (Tokyo) it does not hold yet: see PENDULUM_BUG.

Known limit (not a bug the provider can fix): a bare DCL local time inside the repeated hour of
2025-11-02 (01:00–02:00) names two instants; it is read as the first (PDT). A `received_date`
window whose boundary falls inside that hour can place such a record one hour early; adjacent windows
still hold each record exactly once (see the last test). `modified_at`, the default, has an offset.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_fulfillment.sandbox.testing import SandboxServer, run_sandbox
from tests.reliability._support import (
    RECORD_KEY,
    assert_exactly,
    connect,
    local_path,
    python_env,
    read_keys,
    run_extract,
)

pytestmark = pytest.mark.integration

PACIFIC = ZoneInfo("America/Los_Angeles")
CHANGES = {"spring-forward": datetime(2025, 3, 9), "fall-back": datetime(2025, 11, 2)}
# (conn_id, window_field): which field of which vendor the window applies to.
TASKS = (
    ("tz_dcl", "modified_at"),
    ("tz_dcl", "received_date"),
    ("tz_dropstream", "created_at"),
    ("tz_stream", "created_at"),
)
VENDOR = {"tz_dcl": "dcl", "tz_dropstream": "dropstream", "tz_stream": "stream"}


@pytest.fixture(scope="module", params=list(CHANGES))
def change(request: pytest.FixtureRequest) -> Iterator[tuple[SandboxServer, datetime]]:
    """A sandbox whose six days end three days after the change; the change day (a naive date)."""
    day = CHANGES[request.param]
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=3)
    with run_sandbox(seed=17, orders=1500, dcl_orders=1500, stream_orders=400, end=end, days=6) as server:
        yield server, day


@pytest.fixture
def sb(change: tuple[SandboxServer, datetime], monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    server = change[0]
    server.reset_faults()
    for conn_id, vendor in VENDOR.items():
        connect(monkeypatch, server, vendor, conn_id)
    return server


def expected(sb: SandboxServer, conn_id: str, field: str, window: tuple[datetime, datetime]) -> list[Any]:
    world = sb.world
    if conn_id == "tz_dcl":
        return world.dcl.order_numbers(
            window=window, field={"received_date": "received_at"}.get(field, field)
        )
    if conn_id == "tz_dropstream":
        return world.dropstream.order_ids(window=window, field=field)
    return world.stream.order_ids(window=window)


def windows_around(day: datetime) -> dict[str, tuple[datetime, datetime]]:
    """UTC days, Pacific days and hours around the change (all aware; Pacific ones in Pacific time)."""
    utc_day = datetime(day.year, day.month, day.day, tzinfo=UTC)
    local_day = datetime(day.year, day.month, day.day, tzinfo=PACIFIC)
    next_local_day = datetime(day.year, day.month, day.day, tzinfo=PACIFIC) + timedelta(days=1)
    # The instant the clocks change: 2025-03-09T10:00Z (02:00 PST) and 2025-11-02T09:00Z (02:00 PDT).
    change_at = utc_day + timedelta(hours=10 if day.month == 3 else 9)
    return {
        "utc-day-before": (utc_day - timedelta(days=1), utc_day),
        "utc-day": (utc_day, utc_day + timedelta(days=1)),
        "utc-day-after": (utc_day + timedelta(days=1), utc_day + timedelta(days=2)),
        "pacific-day": (local_day, next_local_day),  # 23 h in March, 25 h in November
        # Aware arithmetic is wall-clock arithmetic: 06:00 local, 5 h later in March, 7 h in November.
        "pacific-night": (local_day, local_day + timedelta(hours=6)),
        "six-utc-hours-across": (change_at - timedelta(hours=3), change_at + timedelta(hours=3)),
    }


def test_dst_windows_are_exact_and_written_in_any_zone_give_the_same_file(
    sb: SandboxServer, change: tuple[SandboxServer, datetime], tmp_path: Path
) -> None:
    day = change[1]
    spans = set()
    for name, (start, end) in windows_around(day).items():
        spans.add(end.astimezone(UTC) - start.astimezone(UTC))
        for conn_id, field in TASKS:
            key = RECORD_KEY[VENDOR[conn_id]]
            pacific = run_extract(
                conn_id,
                (start.astimezone(PACIFIC), end.astimezone(PACIFIC)),
                tmp_path / "pacific",
                window_field=field,
                task_id=f"p_{name}",
            )
            utc = run_extract(
                conn_id,
                (start.astimezone(UTC), end.astimezone(UTC)),
                tmp_path / "utc",
                window_field=field,
                task_id=f"u_{name}",
            )
            truth = expected(sb, conn_id, field, (start, end))
            assert_exactly(read_keys(utc["uri"], key), truth)
            assert utc["sha256"] == pacific["sha256"], (name, conn_id, field)
            assert local_path(utc["uri"]).relative_to(tmp_path / "utc") == local_path(
                pacific["uri"]
            ).relative_to(tmp_path / "pacific")
            assert utc["window"] == pacific["window"]  # the manifest speaks UTC either way
    # The Pacific day really was 23 or 25 hours long, and the wall-clock night 5 or 7.
    short, long = {timedelta(hours=23), timedelta(hours=5)}, {timedelta(hours=25), timedelta(hours=7)}
    assert short <= spans if day.month == 3 else long <= spans


CHILD = """
import json, sys
from airflow import settings
from airflow.sdk import timezone
from airflow.timetables.interval import CronDataIntervalTimetable
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator

spec = json.loads(sys.argv[1])
timetable = CronDataIntervalTimetable("@daily", timezone=settings.TIMEZONE)
out = {"timezone": str(settings.TIMEZONE), "runs": []}
for day in spec["days"]:
    run_after = timezone.parse(day).add(days=1, hours=1)  # a naive date: the default timezone's
    interval = timetable.infer_manual_data_interval(run_after=run_after)
    start = interval.start.in_timezone(settings.TIMEZONE)
    end = interval.end.in_timezone(settings.TIMEZONE)
    for conn_id, field in spec["tasks"]:
        operator = FulfillmentExtractOperator(
            task_id="extract", conn_id=conn_id, window_field=field, destination=spec["destination"]
        )
        manifest = operator.execute({"data_interval_start": start, "data_interval_end": end})
        out["runs"].append({"conn_id": conn_id, "field": field, "start": start.isoformat(),
                            "end": end.isoformat(), "manifest": manifest})
print("RESULT " + json.dumps(out))
"""


PENDULUM_BUG = (
    "BUG windows.py Window.__post_init__/to_aware_datetime: Airflow's pendulum datetimes are kept as pendulum "
    "DateTime with tzinfo=datetime.timezone.utc, and pendulum 3 arithmetic on those drops the tzinfo: "
    "`window.start - SEND_MARGIN` is naive, so iso_with_offset's astimezone() reads it as the machine's local "
    "time and the server-side bounds (DCL modified_*, DropStream *_min/_max) shift by the local offset: "
    "records go missing silently on a worker whose OS time zone is not UTC"
)


@pytest.mark.parametrize(
    "machine_tz",
    ["UTC", "Asia/Tokyo"],
)
def test_a_non_utc_airflow_default_timezone_gives_the_utc_files(
    sb: SandboxServer, change: tuple[SandboxServer, datetime], tmp_path: Path, machine_tz: str
) -> None:
    """Airflow's default timezone is Pacific; the worker's own clock is UTC, or Tokyo (a third zone)."""
    day = change[1]
    # Three Pacific days around the change (the Tokyo case needs one to show its bug).
    days = [
        (day + timedelta(days=n)).date().isoformat() for n in ((-1, 0, 1) if machine_tz == "UTC" else (0,))
    ]
    spec = {"days": days, "tasks": TASKS, "destination": str(tmp_path / "child")}
    env = python_env(AIRFLOW__CORE__DEFAULT_TIMEZONE="America/Los_Angeles", TZ=machine_tz)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [text for text in done.stdout.splitlines() if text.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["timezone"] == "America/Los_Angeles"
    assert len(result["runs"]) == len(days) * len(TASKS)

    for run in result["runs"]:
        start, end = datetime.fromisoformat(run["start"]), datetime.fromisoformat(run["end"])
        assert start.utcoffset() != timedelta(0)  # the interval came in Pacific time
        local = start.astimezone(PACIFIC)
        assert (local.hour, local.minute) == (0, 0) and end.astimezone(PACIFIC).hour == 0  # a Pacific day
        utc = run_extract(
            run["conn_id"],
            (start.astimezone(UTC), end.astimezone(UTC)),
            tmp_path / "utc",
            window_field=run["field"],
        )
        child = run["manifest"]
        assert (child["records"], child["sha256"]) == (utc["records"], utc["sha256"]), run
        assert local_path(child["uri"]).relative_to(tmp_path / "child") == local_path(utc["uri"]).relative_to(
            tmp_path / "utc"
        )
        assert_exactly(
            read_keys(utc["uri"], RECORD_KEY[VENDOR[run["conn_id"]]]),
            expected(sb, run["conn_id"], run["field"], (start, end)),
        )


def test_hourly_received_date_windows_across_the_changes_hold_each_record_once(
    sb: SandboxServer, change: tuple[SandboxServer, datetime], tmp_path: Path
) -> None:
    """24 hourly runs on DCL's bare local `received_date` over the change night: no record lost or doubled;
    each hour exact except where a bare local time is ambiguous (the repeated hour, see the module doc)."""
    day = change[1]
    start = datetime(day.year, day.month, day.day, tzinfo=PACIFIC).astimezone(UTC) - timedelta(hours=6)
    hours = [(start + timedelta(hours=n), start + timedelta(hours=n + 1)) for n in range(24)]
    per_hour = []
    off = []
    for n, window in enumerate(hours):
        manifest = run_extract("tz_dcl", window, tmp_path, window_field="received_date", task_id=f"h{n}")
        keys = read_keys(manifest["uri"], "order_number")
        per_hour.append(keys)
        if set(keys) != set(expected(sb, "tz_dcl", "received_date", window)):
            off.append(window[0])
    everything = [key for keys in per_hour for key in keys]
    assert_exactly(everything, expected(sb, "tz_dcl", "received_date", (hours[0][0], hours[-1][1])))
    # Every hour is exact but the two 01:00–02:00 of 2025-11-02 (PDT, then PST): the second one's
    # records, written "01:xx" with no offset, are read as the first's.
    ambiguous = [datetime(2025, 11, 2, 8, tzinfo=UTC), datetime(2025, 11, 2, 9, tzinfo=UTC)]
    assert off == ([] if day.month == 3 else ambiguous)
