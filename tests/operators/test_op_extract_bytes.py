"""The raw-bytes extraction path: byte-identical to the dict path it replaced, for every vendor.

The old path parsed each page to dicts and wrote `pydantic_core.to_json(record)`; the new one
writes the vendor's bytes as they came. Same sandbox world, same window: the files must be equal.
Parquet from the same bytes must hold what the model path wrote.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime

import pytest
from pydantic_core import to_json

from airflow_provider_fulfillment.hooks import get_hook
from airflow_provider_fulfillment.operators._storage import ParquetWriter, columns_of, iter_documents, to_path
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from airflow_provider_fulfillment.rawpages import RawRecord
from tests.fakes import sandbox_connections

pytestmark = pytest.mark.integration

WINDOW = (datetime(2025, 11, 20, tzinfo=UTC), datetime(2025, 12, 5, tzinfo=UTC))
EVERY_RESOURCE = [
    ("dropstream_default", "orders"),
    ("dropstream_default", "shipments"),
    ("dcl_default", "orders"),
    ("dcl_default", "shipments"),
    ("stream_default", "orders"),
]


@pytest.fixture(scope="module")
def sandbox():
    with sandbox_connections(seed=7, orders=3000) as server:
        yield server


def old_path_bytes(conn_id: str, resource: str) -> bytes:
    """What the extract operator wrote before: dicts from the hook, re-serialized one a line."""
    hook = get_hook(conn_id)
    try:
        return b"".join(to_json(r) + b"\n" for r in hook.iter_records(resource, window=WINDOW, raw=True))
    finally:
        hook.close()


@pytest.mark.parametrize(("conn_id", "resource"), EVERY_RESOURCE)
def test_new_extract_is_byte_identical_to_the_old_one(sandbox, tmp_path, conn_id, resource):
    manifest = FulfillmentExtractOperator(
        task_id="extract", conn_id=conn_id, resource=resource, destination=str(tmp_path), window=WINDOW
    ).execute(context={})
    written = to_path(manifest["uri"]).read_bytes()
    expected = old_path_bytes(conn_id, resource)
    assert manifest["records"] == expected.count(b"\n") > 0
    assert written == expected
    assert manifest["sha256"] == hashlib.sha256(expected).hexdigest()


def test_bytes_mode_yields_the_vendor_bytes_with_identity_and_window_fields(sandbox):
    hook = get_hook("dropstream_default")
    records = list(hook.iter_orders(window=WINDOW, raw="bytes"))
    dicts = list(hook.iter_orders(window=WINDOW, raw=True))
    assert all(type(r) is RawRecord for r in records)
    assert [r["id"] for r in records] == [d["id"] for d in dicts]
    assert [r.decode() for r in records] == dicts
    assert all(WINDOW[0] <= hook.record_time(r, "created_at") < WINDOW[1] for r in records)
    assert hook.normalize("orders", records[0]) == hook.normalize("orders", dicts[0])


@pytest.mark.parametrize(("conn_id", "resource"), EVERY_RESOURCE)
def test_parquet_from_the_bytes_holds_what_the_model_path_wrote(sandbox, tmp_path, conn_id, resource):
    """Same rows, ids and typed columns as the model path it replaced; nested columns hold the same
    values (the vendor's JSON text of them, which reads back to the same models)."""
    import pyarrow.parquet as pq

    manifest = FulfillmentExtractOperator(
        task_id="extract",
        conn_id=conn_id,
        resource=resource,
        destination=str(tmp_path),
        window=WINDOW,
        format="parquet",
        row_group_size=40,
    ).execute(context={})
    written = pq.read_table(to_path(manifest["uri"]).path)
    hook = get_hook(conn_id)
    try:
        models = list(hook.iter_records(resource, window=WINDOW))
    finally:
        hook.close()
    model = type(models[0])
    buffer = io.BytesIO()
    old = ParquetWriter(buffer, model, None, 40)
    for record in models:
        old.write(record)
    old.close()
    expected = pq.read_table(io.BytesIO(buffer.getvalue()))
    assert manifest["records"] == written.num_rows == len(models) > 0
    assert written.schema == expected.schema
    identity = list(getattr(hook, "identity_fields", {}).get(resource, ("id",)))
    assert written.select(identity).to_pylist() == expected.select(identity).to_pylist()
    for name, kind in columns_of(model):
        if kind != "json":
            assert written.column(name).to_pylist() == expected.column(name).to_pylist(), name
    read_back = [model.model_validate(row) for row in iter_documents(to_path(manifest["uri"]))]
    assert read_back == models


def test_progress_takes_the_total_from_the_reads_first_answer(sandbox, tmp_path, capsys):
    """No request of its own for the progress count: the sizing request the read makes anyway tells it."""
    sandbox.reset_counters()
    operator = FulfillmentExtractOperator(
        task_id="extract",
        conn_id="dropstream_default",
        destination=str(tmp_path),
        window=WINDOW,
        progress_interval=0,
    )
    manifest = operator.execute(context={})
    sent = sandbox.counters().params("/dropstream/orders")
    # the window widened by the send margin (a second each side), trimmed exactly on the client
    window = {"created_at_min": "2025-11-19T23:59:59+00:00", "created_at_max": "2025-12-05T00:00:01+00:00"}
    pages = -(-manifest["records"] // 1000)
    # the sizing request (a session at the page size) is the window's page 1 too
    assert sent == [{**window, "limit": "1000"}] + [
        {**window, "limit": "1000", "page": str(page)} for page in range(2, pages + 1)
    ]
    assert manifest["requests"]["requests"] == len(sent)
    assert manifest["expected_records"] == manifest["records"] == 500
    progress = [line for line in capsys.readouterr().out.splitlines() if " of 500 records (" in line]
    assert progress and re.search(
        r": \d+ of 500 records \(\d+%\), [\d,]+ records/s, ETA [\d,]+ s", progress[0]
    )
