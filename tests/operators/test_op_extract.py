"""FulfillmentExtractOperator through `dag.test()`, against a scripted hook (the sandbox tests are separate)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.sdk import DAG

from airflow_provider_fulfillment.models.common import Order
from airflow_provider_fulfillment.models.dropstream import DropStreamOrder
from airflow_provider_fulfillment.operators import extract as extract_module
from airflow_provider_fulfillment.operators._storage import iter_documents, to_path
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator, asset_uri
from tests.operators.helpers import BASE, FakeHook, ds_order

START = BASE  # 2025-10-01T00:00Z
DAY2 = datetime(2025, 10, 2, tzinfo=UTC)  # logical date whose @daily interval is [10-01, 10-02)


def dag_id(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:200]


@pytest.fixture
def orders() -> list[dict]:
    # 60 orders 30 min apart: 48 on 2025-10-01, 12 on 10-02; ids 1000..1059
    return [ds_order(i, state="error" if i % 7 == 0 else "pending_shipment") for i in range(60)]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, orders: list[dict]) -> FakeHook:
    hook = FakeHook(orders)
    monkeypatch.setattr(extract_module, "get_hook", lambda conn_id: hook)
    return hook


def make_dag(name: str, schedule: str | None = "@daily", **op_kwargs) -> DAG:
    with DAG(name, schedule=schedule, start_date=START, catchup=False) as dag:
        FulfillmentExtractOperator(task_id="extract", conn_id="dropstream_default", **op_kwargs)
    return dag


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_extracts_exactly_the_interval(request, run_dag, xcom, fake, tmp_path, orders):
    run = run_dag(make_dag(dag_id(request), destination=str(tmp_path)), DAY2)
    assert run.state == "success"
    manifest = xcom(run, "extract")
    expected = [o["id"] for o in orders if o["created_at"] < "2025-10-02"]
    assert len(expected) == 48
    path = (
        tmp_path / "vendor=dropstream/resource=orders/date=2025-10-01/20251001T000000Z_20251002T000000Z.jsonl"
    )
    assert listing(tmp_path) == [str(path.relative_to(tmp_path))]
    lines = path.read_bytes().splitlines()
    assert [json.loads(line)["id"] for line in lines] == expected
    # the record exactly as the vendor sent it: unknown fields kept, its own date and money formats
    first = json.loads(lines[0])
    assert first == orders[0] and first["unknown_vendor_field"] == {"kept": True}
    assert fake.calls[0][1]["raw"] == "bytes"  # the vendor's bytes, no dicts, no models
    data = path.read_bytes()
    assert manifest == {
        "uri": f"file://{path}",
        "records": 48,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "window": {"start": "2025-10-01T00:00:00+00:00", "end": "2025-10-02T00:00:00+00:00"},
        "window_field": "created_at",
        "vendor": "dropstream",
        "resource": "orders",
        "format": "jsonl",
        "compression": None,
        "normalized": False,
        "conn_id": "dropstream_default",
        "expected_records": None,  # the fake reports no totals
        "requests": {},  # and has no HTTP core
        # the fake vendor's extra field is counted, once per record
        # (the fake's order items carry two fields DropStream does not document: two items an order)
        "drift": {
            "unknown_fields": {
                "order_items[].id": 96,
                "order_items[].quantity": 96,
                "unknown_vendor_field": 48,
            },
            "unknown_states": {},
            "tolerant_values": {},
        },
        "identity": ["id"],
    }
    # the hook was asked for exactly that half-open window
    assert fake.calls[0][1]["window"].start == START and fake.calls[0][1]["window"].end == DAY2


def test_emits_an_asset_event_with_the_manifest(request, run_dag, xcom, fake, tmp_path):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    run = run_dag(make_dag(dag_id(request), destination=str(tmp_path)), DAY2)
    manifest = xcom(run, "extract")
    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(
                AssetModel.uri == asset_uri("dropstream", "orders"), AssetEvent.source_run_id == run.run_id
            )
            .all()
        )
        extras = [event.extra for event in events]
    assert extras == [manifest]


def test_a_known_vendor_gives_a_static_asset_outlet(request, run_dag, xcom, fake, tmp_path):
    from airflow.sdk import Asset

    dag = make_dag(dag_id(request), destination=str(tmp_path), vendor="dropstream")
    assert dag.task_dict["extract"].outlets == [
        Asset(
            uri="fulfillment://dropstream/orders", name="fulfillment://dropstream/orders", group="fulfillment"
        )
    ]
    assert run_dag(dag, DAY2).state == "success"
    with pytest.raises(ValueError, match="vendor must be one of"):
        FulfillmentExtractOperator(task_id="x", conn_id="c", vendor="shopify")


def test_rerun_overwrites_the_same_path_with_the_same_bytes(request, run_dag, xcom, fake, tmp_path):
    dag = make_dag(dag_id(request), destination=str(tmp_path), compression="gzip")
    first = xcom(run_dag(dag, DAY2), "extract")
    before = Path(first["uri"].removeprefix("file://")).read_bytes()
    second = xcom(run_dag(dag, DAY2), "extract")
    assert second["uri"] == first["uri"] and second["uri"].endswith(".jsonl.gz")
    assert second["sha256"] == first["sha256"]
    assert Path(second["uri"].removeprefix("file://")).read_bytes() == before
    assert len(listing(tmp_path)) == 1  # one file, no temporary left over
    assert len(gzip.decompress(before).splitlines()) == 48


def test_a_failure_mid_write_leaves_nothing(request, run_dag, fake, tmp_path, failures, task_states):
    fake.fail_after = 5
    run = run_dag(make_dag(dag_id(request), destination=str(tmp_path), on_failure_callback=failures), DAY2)
    assert task_states(run) == {"extract": "failed"}
    assert "HTTP 503" in str(failures.errors["extract"])
    assert listing(tmp_path) == []  # no final file, no temporary (the date folder may remain, empty)


def test_a_failed_rerun_keeps_the_previous_file_whole(request, run_dag, xcom, fake, tmp_path, task_states):
    dag = make_dag(dag_id(request), destination=str(tmp_path))
    good = xcom(run_dag(dag, DAY2), "extract")
    before = Path(good["uri"].removeprefix("file://")).read_bytes()
    fake.fail_after = 5
    assert task_states(run_dag(dag, DAY2)) == {"extract": "failed"}
    assert Path(good["uri"].removeprefix("file://")).read_bytes() == before
    assert len(listing(tmp_path)) == 1


def test_parquet_and_jsonl_agree(request, run_dag, xcom, fake, tmp_path):
    import pyarrow.parquet as pq

    with DAG(dag_id(request), schedule="@daily", start_date=START, catchup=False) as dag:
        for fmt in ("jsonl", "parquet"):
            FulfillmentExtractOperator(
                task_id=fmt,
                conn_id="dropstream_default",
                destination=str(tmp_path),
                format=fmt,
                row_group_size=7,
            )
    run = run_dag(dag, DAY2)
    as_json = to_path(xcom(run, "jsonl")["uri"])
    as_parquet = to_path(xcom(run, "parquet")["uri"])
    assert as_parquet.name == "20251001T000000Z_20251002T000000Z.parquet"
    from_json = [DropStreamOrder.model_validate_json(doc) for doc in iter_documents(as_json)]
    from_parquet = [DropStreamOrder.model_validate(doc) for doc in iter_documents(as_parquet)]
    assert [o.id for o in from_parquet] == [o.id for o in from_json]
    assert from_parquet == from_json  # same values, unknown fields included
    assert [o.to_common() for o in from_parquet] == [o.to_common() for o in from_json]
    parquet = pq.ParquetFile(as_parquet.path)
    assert parquet.metadata.num_rows == 48
    assert parquet.metadata.num_row_groups == 7  # 48 rows in groups of 7: bounded batches
    schema = parquet.schema_arrow
    assert str(schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("id").type) == "int64"
    assert str(schema.field("shipping_amount").type) == "string"  # exact decimal text
    assert xcom(run, "parquet")["records"] == 48


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_normalized_records(request, run_dag, xcom, fake, tmp_path, orders, fmt):
    run = run_dag(make_dag(dag_id(request), destination=str(tmp_path), normalized=True, format=fmt), DAY2)
    manifest = xcom(run, "extract")
    assert manifest["uri"].endswith(f".common.{fmt}") and manifest["normalized"] is True
    records = [
        Order.model_validate(doc) if isinstance(doc, dict) else Order.model_validate_json(doc)
        for doc in iter_documents(to_path(manifest["uri"]))
    ]
    assert records == [DropStreamOrder.model_validate(o).to_common() for o in orders[:48]]
    assert {r.status for r in records} == {"error", "processing"}


def test_no_data_interval_fails_clearly_and_window_replaces_it(
    request, run_dag, xcom, fake, tmp_path, failures
):
    dag = make_dag(dag_id(request), schedule=None, destination=str(tmp_path), on_failure_callback=failures)
    run = run_dag(dag, None)
    assert run.state == "failed"
    message = str(failures.errors["extract"])
    assert "no data interval" in message and "window=(start, end)" in message
    assert listing(tmp_path) == []

    with DAG(dag_id(request) + "_w", schedule=None, start_date=START, catchup=False) as windowed:
        FulfillmentExtractOperator(
            task_id="extract",
            conn_id="dropstream_default",
            destination=str(tmp_path),
            window=("2025-10-01T06:00:00+00:00", "{{ macros.ds_add('2025-10-01', 0) }}T12:00:00+00:00"),
        )
    manifest = xcom(run_dag(windowed, None), "extract")
    assert manifest["records"] == 12 and manifest["window"]["end"] == "2025-10-01T12:00:00+00:00"


def test_bad_filter_fails_before_writing(request, run_dag, fake, tmp_path, failures):
    run = run_dag(
        make_dag(
            dag_id(request),
            destination=str(tmp_path),
            filters={"colour": "red"},
            on_failure_callback=failures,
        ),
        DAY2,
    )
    assert run.state == "failed"
    assert "unknown filter(s) 'colour'" in str(failures.errors["extract"])
    assert listing(tmp_path) == []


def test_templated_filters(request, run_dag, xcom, fake, tmp_path):
    dag = make_dag(dag_id(request), destination=str(tmp_path), filters={"state": "{{ 'er' + 'ror' }}"})
    manifest = xcom(run_dag(dag, DAY2), "extract")
    assert fake.calls[-1][1]["state"] == "error"
    assert manifest["records"] == 7  # ids 1000, 1007, ..., 1042


def test_parquet_without_pyarrow_names_the_extra(request, run_dag, fake, tmp_path, failures, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    run = run_dag(
        make_dag(dag_id(request), destination=str(tmp_path), format="parquet", on_failure_callback=failures),
        DAY2,
    )
    assert run.state == "failed"
    assert "pip install 'airflow-provider-fulfillment[parquet]'" in str(failures.errors["extract"])


def test_default_destination_is_under_airflow_home(request, run_dag, xcom, fake):
    import os

    manifest = xcom(run_dag(make_dag(dag_id(request)), DAY2), "extract")
    home = os.path.abspath(os.environ["AIRFLOW_HOME"])
    assert manifest["uri"].startswith(
        f"file://{home}/fulfillment/vendor=dropstream/resource=orders/date=2025-10-01/"
    )
    Path(manifest["uri"].removeprefix("file://")).unlink()


def test_remote_store_write_then_move(request, run_dag, xcom, fake, monkeypatch):
    """A non-local fsspec store (memory://) takes the write-temp-then-mv path."""
    import airflow.sdk.io.fs as airflow_fs
    from fsspec.implementations.memory import MemoryFileSystem

    memory = MemoryFileSystem()
    monkeypatch.setitem(airflow_fs._BUILTIN_SCHEME_TO_FS, "memory", lambda conn_id, options: memory)
    airflow_fs._register_filesystems.cache_clear()
    try:
        manifest = xcom(
            run_dag(make_dag(dag_id(request), destination="memory://bucket/landing"), DAY2), "extract"
        )
        names = sorted(memory.find("/bucket/landing"))
        assert names == [
            "/bucket/landing/vendor=dropstream/resource=orders/date=2025-10-01/20251001T000000Z_20251002T000000Z.jsonl"
        ]
        data = memory.cat_file(names[0])
        assert manifest["uri"] == "memory://bucket/landing/" + names[0].split("/bucket/landing/")[1]
        assert manifest["sha256"] == hashlib.sha256(data).hexdigest() and len(data.splitlines()) == 48
        fake.fail_after = 3
        run_dag(make_dag(dag_id(request) + "_fail", destination="memory://bucket/other"), DAY2)
        assert memory.find("/bucket/other") == []
    finally:
        airflow_fs._register_filesystems.cache_clear()


def test_memory_does_not_grow_with_records(tmp_path, monkeypatch):
    """50,000 records stream through; the peak of Python allocations stays far below their size."""
    template = ds_order(0)

    class ManyHook(FakeHook):
        def _records(self, resource, window, field, filters, raw=False):
            for i in range(50_000):
                record = {**template, "id": i}
                yield record if raw else DropStreamOrder.model_validate(record)

    monkeypatch.setattr(extract_module, "get_hook", lambda conn_id: ManyHook())
    for fmt in ("jsonl", "parquet"):
        op = FulfillmentExtractOperator(
            task_id=f"m_{fmt}", conn_id="c", destination=str(tmp_path / fmt), format=fmt, row_group_size=2000
        )
        context = {"data_interval_start": START, "data_interval_end": DAY2}
        tracemalloc.start()
        try:
            manifest = op.execute(context)  # type: ignore[arg-type]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert manifest["records"] == 50_000
        written = len(template.__repr__()) * 50_000
        assert peak < 12 * 2**20 < written  # bounded by a buffer / row group, not by the record count


def test_constructor_checks():
    with pytest.raises(ValueError, match="resource"):
        FulfillmentExtractOperator(task_id="a", conn_id="c", resource="invoices")
    with pytest.raises(ValueError, match="format"):
        FulfillmentExtractOperator(task_id="b", conn_id="c", format="csv")
    with pytest.raises(ValueError, match="compression"):
        FulfillmentExtractOperator(task_id="d", conn_id="c", compression="zip")


def test_window_in_the_future_is_refused(request, run_dag, fake, tmp_path, failures):
    future = datetime.now(UTC) + timedelta(days=3)
    with DAG(dag_id(request), schedule=None, start_date=START, catchup=False) as dag:
        FulfillmentExtractOperator(
            task_id="extract",
            conn_id="dropstream_default",
            destination=str(tmp_path),
            window=(START.isoformat(), future.isoformat()),
            on_failure_callback=failures,
        )
    assert run_dag(dag, None).state == "failed"
    assert "ends in the future" in str(failures.errors["extract"])
