"""Parquet from the vendor's record bytes (`ParquetWriter.write_raw`): typed by pyarrow's JSON reader,
the same schema and values as through the models, stable across row groups and files."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_fulfillment.models.dcl import DclOrder
from airflow_provider_fulfillment.models.dropstream import DropStreamOrder
from airflow_provider_fulfillment.operators._storage import (
    ParquetWriter,
    iter_documents,
    parquet_schema,
    to_path,
)


def order(ident: int, **fields) -> bytes:
    record = {"id": ident, "created_at": f"2025-10-01T0{ident % 10}:00:00Z", **fields}
    return json.dumps(record, separators=(",", ":")).encode()


def write(model, raws: list[bytes], row_group_size: int) -> tuple[pq.ParquetFile, ParquetWriter]:
    out = io.BytesIO()
    writer = ParquetWriter(out, model, None, row_group_size)
    for raw in raws:
        writer.write_raw(raw)
    writer.close()
    return pq.ParquetFile(io.BytesIO(out.getvalue())), writer


def test_schema_is_the_models_in_every_row_group_whatever_each_page_holds():
    first = [order(1, store_id=7, batch_id="b1"), order(2, store_id=8, batch_id="b2")]
    # the second page: a field the first lacked (a money amount, an address), a null where the first had values
    second = [
        order(3, store_id=None, batch_id=None, shipping_amount="4.10", shipping_address={"city": "Oslo"}),
        order(4, store_id=9, signature_required=True, ordered_at="2025-09-30T22:00:00+02:00"),
    ]
    parquet, writer = write(DropStreamOrder, first + second, 2)
    assert writer.fallback_batches == 0  # both row groups typed by pyarrow's reader, no model
    assert parquet.metadata.num_row_groups == 2
    assert parquet.schema_arrow == parquet_schema(DropStreamOrder)
    groups = [parquet.read_row_group(i) for i in range(2)]
    assert groups[0].schema == groups[1].schema
    table = parquet.read()
    assert table.column("id").to_pylist() == [1, 2, 3, 4]
    assert table.column("store_id").to_pylist() == [7, 8, None, 9]
    assert table.column("batch_id").to_pylist() == ["b1", "b2", None, None]
    assert table.column("shipping_amount").to_pylist() == [None, None, "4.10", None]  # exact text
    assert table.column("signature_required").to_pylist() == [None, None, None, True]
    assert table.column("ordered_at").to_pylist()[3] == datetime(2025, 9, 30, 20, tzinfo=UTC)
    assert table.column("shipping_address").to_pylist() == [None, None, '{"city":"Oslo"}', None]
    assert table.column("_extra").null_count == 4


def test_files_of_one_partition_concatenate():
    one, _ = write(DropStreamOrder, [order(1, store_id=7)], 10)
    two, _ = write(DropStreamOrder, [order(2, notes="n", shipping_amount="1.00")], 10)
    both = pa.concat_tables([one.read(), two.read()])
    assert both.column("id").to_pylist() == [1, 2]
    assert both.column("notes").to_pylist() == [None, "n"]


def test_rows_read_back_as_the_same_models(tmp_path):
    raws = [
        order(
            1, shipping_amount="12.50", order_items=[{"sku": "A", "unit_price": "1.5", "gift_wrap": False}]
        ),
        order(2, custom={"k": [1, "x"]}, billing_address={"city": "Bergen", "country": "NO"}),
    ]
    path = tmp_path / "orders.parquet"
    out = io.BytesIO()
    writer = ParquetWriter(out, DropStreamOrder, None, 10)
    for raw in raws:
        writer.write_raw(raw)
    writer.close()
    path.write_bytes(out.getvalue())
    read_back = [DropStreamOrder.model_validate(row) for row in iter_documents(to_path(str(path)))]
    assert read_back == [DropStreamOrder.model_validate_json(raw) for raw in raws]
    assert writer.fallback_batches == 0


@pytest.mark.parametrize(
    ("odd", "why"),
    [
        ({"colour": "red"}, "a field the model does not declare goes to _extra"),
        ({"store_id": ""}, "a blank number is the model's null"),
        ({"batch_id": 12}, "a number where text is declared is kept as text"),
    ],
)
def test_what_only_the_model_can_type_goes_through_the_model(odd, why):
    raws = [order(1, store_id=5), order(2, **odd)]
    parquet, writer = write(DropStreamOrder, raws, 10)
    assert writer.fallback_batches == 1, why
    assert parquet.schema_arrow == parquet_schema(DropStreamOrder)
    table = parquet.read()
    expected = [writer.row(DropStreamOrder.model_validate_json(raw)) for raw in raws]
    assert table.to_pylist() == expected, why


def test_dcl_times_are_pacific_and_numbers_exact_decimal_text():
    raws = [
        json.dumps(
            {
                "order_number": "A1",
                "ordered_date": "2025-11-14",
                "order_subtotal": 5,
                "total_due": 2.99,
                "received_date": "2025-07-01T10:00:00",
            }
        ).encode(),
        json.dumps(
            {
                "order_number": "A2",
                "ordered_date": "2025-11-14T10:00:00-05:00",
                "order_subtotal": 5000.0,
                "total_due": "1.10",
            }
        ).encode(),
    ]
    parquet, writer = write(DclOrder, raws, 10)
    assert writer.fallback_batches == 0
    table = parquet.read()
    assert table.column("ordered_date").to_pylist() == [
        datetime(2025, 11, 14, 8, tzinfo=UTC),  # midnight in Fremont, PST
        datetime(2025, 11, 14, 15, tzinfo=UTC),
    ]
    assert table.column("received_date").to_pylist() == [datetime(2025, 7, 1, 17, tzinfo=UTC), None]  # PDT
    assert table.column("order_subtotal").to_pylist() == ["5", "5000.0"]
    assert table.column("total_due").to_pylist() == ["2.99", "1.10"]
    assert [Decimal(v) for v in table.column("total_due").to_pylist()] == [
        DclOrder.model_validate_json(raw).total_due for raw in raws
    ]
