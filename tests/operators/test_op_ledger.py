"""Load and change-capture operators against the sandbox on loopback, into a real ledger (SQLite here;
the ledger's own suite runs on both databases). Ground truth: a full re-read through the hooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fulfillment.hooks import get_hook
from airflow_provider_fulfillment.ledger import Ledger
from airflow_provider_fulfillment.models.common import Order
from airflow_provider_fulfillment.models.states import known_states, normalize
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from airflow_provider_fulfillment.operators.ledger import (
    FulfillmentChangeCaptureOperator,
    FulfillmentLedgerLoadOperator,
    creation_windows,
    flatten_manifests,
    manifest_rows,
)
from airflow_provider_fulfillment.rules.types import record_key
from airflow_provider_fulfillment.windows import to_aware_datetime
from tests.postgres import ledger_connection

pytestmark = pytest.mark.integration

END = datetime(2026, 1, 1, tzinfo=UTC)  # the sandbox world's end
DAY1 = (END - timedelta(days=91), END)  # the whole world: old orders change too


@pytest.fixture
def sandbox():
    from airflow_provider_fulfillment.sandbox.testing import run_sandbox

    with run_sandbox(seed=11, orders=600, dcl_orders=300) as server, pytest.MonkeyPatch.context() as patch:
        for name, value in server.conn_env().items():
            patch.setenv(name, value)
        yield server


@pytest.fixture
def ledger_file(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_FULFILLMENT_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.db")})
    )
    return tmp_path


def extract(conn_id: str, resource: str, tmp_path, window=DAY1) -> dict:
    op = FulfillmentExtractOperator(
        task_id=f"x_{conn_id}_{resource}",
        conn_id=conn_id,
        resource=resource,
        destination=str(tmp_path / "files"),
        window=window,
    )
    return op.execute({})


def load(manifests, observed_at=None) -> dict:
    return FulfillmentLedgerLoadOperator(
        task_id="load", manifests=manifests, observed_at=observed_at
    ).execute({})


def current_states(conn_id: str, resource: str, **query) -> dict[str, str]:
    with get_hook(conn_id) as hook:
        return {
            (c := hook.normalize(resource, r)).id: c.raw_status for r in hook.iter_records(resource, **query)
        }


def capture_operator(
    conn_id: str, resource: str, end: datetime, tmp_path, **options
) -> FulfillmentChangeCaptureOperator:
    return FulfillmentChangeCaptureOperator(
        task_id="capture",
        conn_id=conn_id,
        resource=resource,
        end=end,
        destination=str(tmp_path / "files"),
        **options,
    )


def manifest_lines(manifest: dict) -> list[dict]:
    return [json.loads(line) for line in Path(to_path_of(manifest)).read_text().splitlines()]


def test_flatten_manifests_takes_one_a_list_or_lists_of_lists():
    a, b, c = {"uri": "a"}, {"uri": "b"}, {"uri": "c"}
    assert flatten_manifests(a) == [a]
    assert flatten_manifests([a, [b, None, [c]]]) == [a, b, c]
    with pytest.raises(ValueError, match="must be dicts"):
        flatten_manifests("file:///x.jsonl")


def test_loading_manifests_is_idempotent_and_dcl_and_stream_orders_give_shipments(sandbox, ledger_file):
    ds = extract("dropstream_default", "orders", ledger_file)
    dcl = extract("dcl_default", "orders", ledger_file)
    stream = extract("stream_default", "orders", ledger_file)
    first = load([[ds], [dcl, stream]], observed_at=END)
    n_orders = ds["records"] + dcl["records"] + stream["records"]
    assert first["orders"]["inserted"] == n_orders > 0
    with Ledger() as ledger:
        stored = {(o.vendor, o.id): o.raw_status for o in ledger.iter_records("orders")}
        dcl_shipments = {s.id for s in ledger.iter_records("shipments", vendor="dcl")}
        stream_shipments = {s.id for s in ledger.iter_records("shipments", vendor="stream")}
        conn_ids = {row[0] for row in ledger._all("SELECT DISTINCT conn_id FROM fulfillment_orders")}
        assert conn_ids == {
            "dropstream_default",
            "dcl_default",
            "stream_default",
        }  # each row's own connection
        accounts = {
            row[0]
            for row in ledger._all("SELECT DISTINCT account FROM fulfillment_orders WHERE vendor = 'dcl'")
        }
    expected = {
        ("dropstream", k): v for k, v in current_states("dropstream_default", "orders", window=DAY1).items()
    }
    expected |= {("stream", k): v for k, v in current_states("stream_default", "orders", window=DAY1).items()}
    expected |= {("dcl", k): v for k, v in current_states("dcl_default", "orders", window=DAY1).items()}
    assert stored == expected
    assert stream_shipments == {k for (v, k) in expected if v == "stream"}
    assert first["shipments"]["inserted"] == len(dcl_shipments) + len(stream_shipments)
    assert accounts != {""}  # DCL records carry their account_number
    # The same files again, and overlapping: nothing new, nothing counted twice.
    again = load([ds, [ds, dcl], stream], observed_at=END)
    assert again["orders"] == {
        "inserted": 0,
        "updated": 0,
        "unchanged": n_orders + ds["records"],
        "stale": 0,
        "state_changes": 0,
    }
    with Ledger() as ledger:
        assert ledger.counts()["fulfillment_orders"] == n_orders


def test_a_bad_manifest_fails_the_task_and_writes_nothing(sandbox, ledger_file):
    ds = extract("dropstream_default", "orders", ledger_file)
    broken = dict(ds, uri=ds["uri"].replace(".jsonl", "-gone.jsonl"))
    with pytest.raises(FileNotFoundError):
        load([ds, broken], observed_at=END)
    with pytest.raises(AirflowFailException, match="lacks resource, vendor"):
        load({"uri": ds["uri"]})
    with Ledger() as ledger:
        assert ledger.counts()["fulfillment_orders"] == 0


def test_dropstream_capture_sees_changes_after_the_creation_window(sandbox, ledger_file):
    load(extract("dropstream_default", "orders", ledger_file), observed_at=END)
    with Ledger() as ledger:
        before = ledger.open_record_ids("dropstream", "orders", "dropstream_default")
    assert before
    sandbox.advance("1d")
    day2 = END + timedelta(days=1)
    capture = capture_operator(
        "dropstream_default",
        "orders",
        day2,
        ledger_file,
        lookback=timedelta(hours=6),
        initial_lookback=timedelta(days=1),
    )
    sandbox.reset_counters()
    manifest = capture.execute({})
    per_query = manifest["capture"]["per_query"]
    assert {label for label in per_query if label.startswith("state=")} == {
        f"state={s}" for s in set(before.values())
    }
    # One server-side state-filtered query per open state (each a session or pages: at least one request).
    state_requests = {
        r.params.get("state") for r in sandbox.counters().requests if r.path == "/dropstream/orders"
    }
    assert set(before.values()) <= state_requests
    assert to_aware_datetime(manifest["observed_at"], "observed_at") > END  # read now, not at `end`
    result = load(manifest, observed_at=day2)
    now = current_states("dropstream_default", "orders", window=DAY1)
    moved = {ident: now[ident] for ident, raw in before.items() if now[ident] != raw}
    assert moved, "the sandbox clock moved nothing"
    with Ledger() as ledger:
        seen = {c.record_id: c.raw_status for c in ledger.state_changes(since=day2)}
        assert {o.id: o.raw_status for o in ledger.iter_records("orders") if o.id in before} == {
            ident: now[ident] for ident in before
        }
        assert ledger.get_watermark("dropstream", "orders", "dropstream_default") == day2
    assert seen == moved
    assert result["orders"]["state_changes"] == len(moved)
    assert result["watermarks"] == [
        {
            "vendor": "dropstream",
            "resource": "orders",
            "conn_id": "dropstream_default",
            "watermark": day2.isoformat(),
        }
    ]


def test_dropstream_shipments_that_left_the_queried_states_are_found_again(sandbox, ledger_file):
    """DropStream has no shipment lookup by id: the ones no state query returns any more (they
    moved to a state no open shipment in the ledger holds) are found by their creation time."""
    in_flight = sorted(known_states("dropstream", "shipments") - {"notified_shipped", "archived"})
    day1 = [
        FulfillmentExtractOperator(
            task_id=f"x_{state}",
            conn_id="dropstream_default",
            resource="shipments",
            destination=str(ledger_file / "files"),
            window=DAY1,
            filters={"state": state},
        ).execute({})
        for state in in_flight
    ]
    load(day1, observed_at=END)  # the ledger holds the shipments in flight on day 1
    with Ledger() as ledger:
        before = ledger.open_record_ids("dropstream", "shipments", "dropstream_default")
    sandbox.advance("1d")
    day2 = END + timedelta(days=1)
    manifest = capture_operator(
        "dropstream_default", "shipments", day2, ledger_file, initial_lookback=timedelta(days=1)
    ).execute({})
    now = current_states("dropstream_default", "shipments", window=DAY1)
    left = {ident for ident in before if now[ident] not in before.values()}
    assert left, "no shipment left the queried states"
    assert manifest["capture"]["per_query"]["lookups"] == len(left)
    lines = manifest_lines(manifest)
    assert len(lines) == len({str(line["id"]) for line in lines}) == manifest["records"]  # each once
    assert set(before) <= {str(line["id"]) for line in lines}
    result = load(manifest, observed_at=day2)
    moved = {ident: now[ident] for ident, raw in before.items() if now[ident] != raw}
    with Ledger() as ledger:
        transitions = {
            c.record_id: (c.previous_status, c.raw_status) for c in ledger.state_changes(since=day2)
        }
        held = {s.id: s.raw_status for s in ledger.iter_records("shipments") if s.id in before}
    assert held == {ident: now[ident] for ident in before}
    assert {ident: change for ident, change in transitions.items() if ident in before} == {
        ident: (ledger_status(before[ident]), raw) for ident, raw in moved.items()
    }
    first_sightings = {ident for ident, (previous, _) in transitions.items() if previous is None}
    assert first_sightings == set(transitions) - set(before)  # shipped since day 1 (the recent query)
    assert result["shipments"]["state_changes"] == len(moved) + len(first_sightings)


def test_dropstream_shipments_notified_leave_the_open_set_and_are_read_no_more(sandbox, ledger_file):
    """notified_shipped and archived end a DropStream shipment: the sandbox clock notifies the
    ones in flight, and change capture re-reads only those still in flight."""
    terminal = {"notified_shipped", "archived"}
    load(extract("dropstream_default", "shipments", ledger_file), observed_at=END)
    with Ledger() as ledger:
        day1 = {s.id: s.raw_status for s in ledger.iter_records("shipments")}
        open1 = ledger.open_record_ids("dropstream", "shipments", "dropstream_default")
    assert open1 == {ident: raw for ident, raw in day1.items() if raw not in terminal}
    assert 0 < len(open1) < len(day1)
    sandbox.advance("1d")
    day2 = END + timedelta(days=1)
    manifest = capture_operator(
        "dropstream_default", "shipments", day2, ledger_file, initial_lookback=timedelta(days=1)
    ).execute({})
    per_query = manifest["capture"]["per_query"]
    assert {label for label in per_query if label.startswith("state=")} == {
        f"state={raw}" for raw in set(open1.values())
    }
    read = {str(line["id"]) for line in manifest_lines(manifest)}
    assert read & set(day1) == set(open1)  # every one in flight, none that was done
    load(manifest, observed_at=day2)
    now = current_states("dropstream_default", "shipments", window=(DAY1[0], day2))
    moved = {ident: now[ident] for ident, raw in open1.items() if now[ident] != raw}
    assert moved and set(moved.values()) == {"notified_shipped"}
    with Ledger() as ledger:
        transitions = {
            c.record_id: (c.previous_status, c.raw_status)
            for c in ledger.state_changes(since=day2)
            if c.record_id in day1
        }
        open2 = ledger.open_record_ids("dropstream", "shipments", "dropstream_default")
        held = {s.id: s.raw_status for s in ledger.iter_records("shipments")}
    assert transitions == {ident: (ledger_status(open1[ident]), raw) for ident, raw in moved.items()}
    assert held == {ident: now[ident] for ident in held}
    # The day-1 open set shrank by exactly the notified ones; shipments made since join it until notified.
    assert set(open2) & set(day1) == set(open1) - set(moved)
    assert set(open2) - set(day1) == {
        ident for ident in held.keys() - day1.keys() if now[ident] not in terminal
    }


def test_dropstream_shipments_read_again_count_as_updated_only_when_they_changed(sandbox, ledger_file):
    """DropStream shipments carry no version: each capture re-reads the open ones, and the load
    summary counts as updated only those whose content changed."""
    load(extract("dropstream_default", "shipments", ledger_file), observed_at=END)
    with Ledger() as ledger:
        before = {s.id: s.raw_status for s in ledger.iter_records("shipments")}
    sandbox.advance("1d")
    day2 = END + timedelta(days=1)
    manifest = capture_operator(
        "dropstream_default", "shipments", day2, ledger_file, initial_lookback=timedelta(days=1)
    ).execute({})
    read = {str(line["id"]) for line in manifest_lines(manifest)}
    now = current_states("dropstream_default", "shipments", window=(DAY1[0], day2))
    moved = {ident for ident in read & set(before) if now[ident] != before[ident]}
    new = read - set(before)
    assert moved and new and read & set(before) - moved
    result = load(manifest, observed_at=day2)
    assert result["shipments"] == {
        "inserted": len(new),
        "updated": len(moved),
        "unchanged": len(read & set(before)) - len(moved),
        "stale": 0,
        "state_changes": len(moved) + len(new),
    }
    # Read again the next day with nothing moved: all unchanged.
    again = load(manifest, observed_at=day2 + timedelta(hours=1))
    assert again["shipments"] == {
        "inserted": 0,
        "updated": 0,
        "unchanged": len(read),
        "stale": 0,
        "state_changes": 0,
    }


def test_creation_windows_are_disjoint_short_and_hold_a_bounded_number_of_instants():
    us = timedelta(microseconds=1)
    t = [END + timedelta(minutes=m) for m in (0, 10, 10, 50, 61, 200)] + [END + timedelta(days=3)]
    assert creation_windows(reversed(t), most=3, span=timedelta(hours=1)) == [
        (t[0], t[2] + us),  # 3 instants (two share one time)
        (t[3], t[4] + us),  # 50 and 61 minutes: within an hour of its start
        (t[5], t[5] + us),
        (t[6], t[6] + us),
    ]
    assert creation_windows([]) == []


def ledger_status(raw: str) -> str:
    return normalize("dropstream", "shipments", raw)


def to_path_of(manifest: dict) -> str:
    return manifest["uri"].removeprefix("file://")


def test_dcl_capture_resumes_from_its_watermark_minus_the_lookback(sandbox, ledger_file):
    def capture(end: datetime) -> dict:
        return capture_operator(
            "dcl_default",
            "orders",
            end,
            ledger_file,
            lookback=timedelta(hours=2),
            initial_lookback=timedelta(days=91),
        ).execute({})

    first = capture(END)
    assert first["window"] == {"start": DAY1[0].isoformat(), "end": END.isoformat()}
    with Ledger() as ledger:
        assert ledger.get_watermark("dcl", "orders", "dcl_default") is None  # not before the load
    load(first, observed_at=END)
    with Ledger() as ledger:
        before = {o.id: o.raw_status for o in ledger.iter_records("orders")}
        accounts = {o.id: o.account for o in ledger.iter_records("orders")}
    assert before == current_states("dcl_default", "orders", window=DAY1, window_field="modified_at")
    assert set(accounts.values()) == {"10501", "10502", "20117"}
    sandbox.advance("1d")
    day2 = END + timedelta(days=1)
    second = capture(day2)
    assert second["window"]["start"] == (END - timedelta(hours=2)).isoformat()
    load(second, observed_at=day2)
    modified = current_states(
        "dcl_default", "orders", window=(END - timedelta(hours=2), day2), window_field="modified_at"
    )
    with Ledger() as ledger:
        changed = {c.record_id: c.raw_status for c in ledger.state_changes(since=day2) if c.previous_status}
        assert ledger.get_watermark("dcl", "orders", "dcl_default") == day2
    # A DCL state change names its order as "account/order_number".
    assert changed == {
        record_key(accounts[i], i): raw for i, raw in modified.items() if i in before and before[i] != raw
    }
    assert changed, "the sandbox clock changed no DCL order"


# ---------------------------------------------------------------- on both databases, from sample files

SAMPLES = Path(__file__).parent.parent / "samples"


@pytest.fixture(params=["sqlite", "postgresql"])
def either_ledger(request, monkeypatch, tmp_path) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_FULFILLMENT_LEDGER", ledger_connection(request.param, request, tmp_path))
    return request.param


def dcl_capture_manifest(tmp_path, orders: list[dict], observed: datetime) -> dict:
    """A DCL capture manifest (what the capture task returns) over the given vendor records."""
    path = tmp_path / f"dcl-{observed:%Y%m%d%H%M}.capture.jsonl"
    path.write_text("".join(json.dumps(order) + "\n" for order in orders))
    return {
        "uri": str(path),
        "vendor": "dcl",
        "resource": "orders",
        "conn_id": "dcl_default",
        "records": len(orders),
        "observed_at": observed.isoformat(),
        "capture": {"watermark": observed.isoformat(), "lookback_seconds": 0},
    }


def ledger_rows(ledger: Ledger) -> dict[str, list[tuple]]:
    """Every row of every ledger table, in a stable order."""
    return {
        name: sorted(map(tuple, ledger._all(f"SELECT * FROM {name}")), key=repr) for name in ledger.counts()
    }


def test_a_load_is_one_transaction_a_failure_after_the_orders_leaves_the_previous_rows(
    either_ledger, tmp_path, monkeypatch
):
    shipped, processing = json.loads((SAMPLES / "dcl_orders_page.json").read_text())["orders"]
    load(dcl_capture_manifest(tmp_path, [processing], END))
    with Ledger() as ledger:
        before = ledger_rows(ledger)
    assert {name: len(rows) for name, rows in before.items() if rows} == {
        "fulfillment_orders": 1,
        "fulfillment_state_changes": 1,
        "fulfillment_watermarks": 1,
    }
    day2 = END + timedelta(days=1)
    moved = dict(processing, order_stage=60, modified_at="2026-01-01T10:00:00-08:00")
    manifest = dcl_capture_manifest(tmp_path, [shipped, moved], day2)
    merged_orders = []
    real_merge = Ledger.merge

    def merge_then_fail_at_shipments(self, resource, rows, **kwargs):
        if resource == "shipments":
            raise RuntimeError("injected: the worker died after the orders")
        merged_orders.append(real_merge(self, resource, rows, **kwargs))
        return merged_orders[-1]

    with monkeypatch.context() as patch, pytest.raises(RuntimeError, match="injected"):
        patch.setattr(Ledger, "merge", merge_then_fail_at_shipments)
        load(manifest)
    assert [m.as_dict() for m in merged_orders] == [
        {"inserted": 1, "updated": 1, "unchanged": 0, "stale": 0, "state_changes": 2}
    ]  # the orders part ran, inside the load's transaction
    with Ledger() as ledger:
        assert ledger_rows(ledger) == before
    # The retry lands all of it once: orders, the shipment, their state changes and the watermark.
    result = load(manifest)
    assert (result["orders"]["inserted"], result["orders"]["updated"]) == (1, 1)
    assert result["shipments"]["inserted"] == 1
    with Ledger() as ledger:
        assert ledger.get_watermark("dcl", "orders", "dcl_default") == day2
        assert {name: len(rows) for name, rows in ledger_rows(ledger).items() if rows} == {
            "fulfillment_orders": 2,
            "fulfillment_shipments": 1,
            "fulfillment_state_changes": 4,
            "fulfillment_watermarks": 1,
        }


def test_normalized_dcl_files_keep_each_record_s_account_through_the_load(sandbox, tmp_path, monkeypatch):
    """DCL's identity is (account_number, order_number): a normalized file that dropped the account
    loaded every order under the operator's one account, so two accounts' same number were one row."""
    raw = extract("dcl_default", "orders", tmp_path / "raw")
    normalized = FulfillmentExtractOperator(
        task_id="x_dcl_common",
        conn_id="dcl_default",
        resource="orders",
        destination=str(tmp_path / "common"),
        window=DAY1,
        normalized=True,
    ).execute({})
    lines = manifest_lines(normalized)
    assert lines and all(line["account"] for line in lines)  # every sandbox DCL order names its account

    def keys(manifest: dict, name: str) -> set[tuple[str, str]]:
        monkeypatch.setenv(
            "AIRFLOW_CONN_FULFILLMENT_LEDGER",
            json.dumps({"conn_type": "sqlite", "host": str(tmp_path / f"{name}.db")}),
        )
        load([manifest], observed_at=END)
        with Ledger() as ledger:
            return {(o.account, o.id) for o in ledger.iter_records("orders", vendor="dcl")}

    from_raw = keys(raw, "raw")
    assert keys(normalized, "common") == from_raw
    assert len({account for account, _ in from_raw}) > 1 and len(from_raw) == raw["records"]


def test_two_dcl_accounts_sharing_an_order_number_in_a_normalized_file_are_two_rows(tmp_path):
    orders = [
        Order(vendor="dcl", id="D1", account=account, status="processing", raw_status="10")
        for account in ("10501", "10502")
    ]
    path = tmp_path / "dcl.common.jsonl"
    path.write_text("".join(order.model_dump_json() + "\n" for order in orders))
    manifest = {"uri": path.as_uri(), "vendor": "dcl", "resource": "orders", "normalized": True}

    rows = list(manifest_rows(manifest, "orders", "", END))

    assert [(row.account, row.record.id) for row in rows] == [("10501", "D1"), ("10502", "D1")]


def test_a_capture_file_holds_the_vendor_s_bytes_as_an_extract_does(ledger_file, set_connection, monkeypatch):
    """Re-serialized, a captured record's raw text differed from the same record loaded from an
    extract (spacing, number spelling), and the ledger compares raw text: the capture writes bytes."""
    import httpx

    from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
    from airflow_provider_fulfillment.operators import ledger as ledger_operators
    from tests.fakes import BASE, FakeDropStream, dropstream_order

    orders = [dropstream_order(i) for i in range(5)]
    fake = FakeDropStream(orders)  # json.dumps' own spacing: '{"id": 0, "store_id": 7, ...}'
    set_connection("ds", "dropstream", "http://ds.test/dropstream", "api-user", "secret", max_wait=0)
    monkeypatch.setattr(
        ledger_operators,
        "get_hook",
        lambda conn_id: DropStreamHook(conn_id, transport=httpx.MockTransport(fake)),
    )
    end = BASE + timedelta(days=1)
    manifest = capture_operator("ds", "orders", end, ledger_file, initial_lookback=timedelta(days=2)).execute(
        {}
    )

    assert Path(to_path_of(manifest)).read_bytes().splitlines() == [
        json.dumps(order).encode() for order in orders
    ]
