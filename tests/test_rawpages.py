"""The raw-bytes page splitter: exact vendor bytes, only the wanted fields decoded, bad shapes refused."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from airflow_provider_fulfillment.errors import MissingRecords
from airflow_provider_fulfillment.http import InvalidBody
from airflow_provider_fulfillment.rawpages import PageSplitter, RawRecord, jsonl_bytes

SAMPLES = Path(__file__).parent / "samples"
META = ("session_id", "page", "limit", "total_count", "total_pages", "max_total_reached")


def splitter() -> PageSplitter:
    return PageSplitter("orders", META, ("id", "created_at", "fulfillment_state"))


def test_records_keep_the_vendor_bytes_and_the_wanted_fields():
    body = (
        b'{"orders":[{"id":7,"note":"caf\\u00e9 \xc3\xa9","total":12.50,"items":[{"sku":"A","qty":2}],'
        b'"created_at":"2025-10-01T00:00:00Z"} , {"id":"8","created_at":null}],'
        b'"page":1,"limit":2,"total_count":2,"extra":{"x":1}}'
    )
    records, meta = splitter().split(body)
    assert [r.raw for r in records] == [
        b'{"id":7,"note":"caf\\u00e9 \xc3\xa9","total":12.50,"items":[{"sku":"A","qty":2}],'
        b'"created_at":"2025-10-01T00:00:00Z"}',
        b'{"id":"8","created_at":null}',
    ]
    assert records[0].fields == {"id": 7, "created_at": "2025-10-01T00:00:00Z"}
    assert records[1]["id"] == "8" and records[1]["created_at"] is None
    assert "created_at" in records[1] and "fulfillment_state" not in records[1]
    assert records[1].get("fulfillment_state", "absent") == "absent"
    assert meta == {
        "session_id": None,
        "page": 1,
        "limit": 2,
        "total_count": 2,
        "total_pages": None,
        "max_total_reached": None,
    }
    assert jsonl_bytes(records) == records[0].raw + b"\n" + records[1].raw + b"\n"


def test_a_sample_page_splits_into_exactly_its_records():
    body = (SAMPLES / "dropstream_orders_page.json").read_bytes()
    records, meta = splitter().split(body)
    expected = json.loads(body)["orders"]
    assert [r.decode() for r in records] == expected
    assert [r["id"] for r in records] == [o["id"] for o in expected]
    assert all(isinstance(r, RawRecord) for r in records)


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b"[1, 2]", InvalidBody, "expected a JSON object, got list"),
        (b'{"orders": [1]}', InvalidBody, "orders.0: Expected `object`, got `int`"),
        (b'{"orders": [{"id": 1}, {"x": 1}]}', InvalidBody, "orders.1.id: Field required"),
        (b'{"orders": {"id": 1}}', InvalidBody, "orders: Expected `array | null`, got `object`"),
        (b'{"orders": [{"id": 1}', ValueError, "EOF while parsing a list at line 1 column 21"),
    ],
)
def test_bad_pages_are_refused_with_where(body, error, message):
    with pytest.raises(error) as raised:
        splitter().split(body)
    assert str(raised.value) == message


def test_an_empty_page_has_no_records_and_a_page_without_its_key_is_an_error():
    assert splitter().split(b'{"orders": [], "page": 2}') == ([], {**dict.fromkeys(META), "page": 2})
    # A 200 without its records is a vendor fault (retried, then loud), never an empty last page;
    # a null list is no list (DCL sends one with an error_code, which the page parser reads).
    for body in (b'{"page": 2}', b'{"orders": null, "page": 2}'):
        with pytest.raises(MissingRecords, match="the answer has no 'orders'"):
            splitter().split(body)


def test_a_record_s_time_is_parsed_once_for_two_asks_on_the_same_field():
    (record,), _ = splitter().split(b'{"orders":[{"id":1,"created_at":"2025-10-01T00:00:00Z"}]}')
    parsed: list[object] = []

    def parse(value: object) -> object:
        parsed.append(value)
        return f"parsed {value}"

    assert record.moment("created_at", parse) == "parsed 2025-10-01T00:00:00Z"
    assert record.moment("created_at", parse) == "parsed 2025-10-01T00:00:00Z"
    assert record.moment("fulfillment_state", parse) == "parsed None"  # another field: parsed
    assert parsed == ["2025-10-01T00:00:00Z", None]


def test_records_are_not_tracked_by_the_garbage_collector():
    # One record per vendor record, a page of them held by the read-ahead: tracked, they pushed
    # the collector into full passes over the whole heap (benchmarks/README.md).
    records, _ = splitter().split(b'{"orders":[{"id":1,"created_at":null,"items":[{"sku":"A"}]}]}')
    assert not gc.is_tracked(records[0]) and not gc.is_tracked(records[0].decoded)
