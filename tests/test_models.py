"""Vendor models: the api-docs' samples parse losslessly, and every conversion is exact."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError

from airflow_provider_fulfillment.models.common import STATUSES, LineItem, Order, Shipment
from airflow_provider_fulfillment.models.dcl import (
    DclOrder,
    DclOrderPage,
    DclShipment,
    parse_dcl_datetime,
)
from airflow_provider_fulfillment.models.dropstream import (
    DropStreamOrder,
    DropStreamOrderEnvelope,
    DropStreamOrderPage,
    DropStreamShipment,
    DropStreamShipmentPage,
    parse_dropstream_datetime,
)
from airflow_provider_fulfillment.models.states import (
    DCL_ORDER_STAGE_RANGES,
    STATE_TABLES,
    known_states,
    normalize,
    state_table_markdown,
)
from airflow_provider_fulfillment.models.stream import (
    StreamOrder,
    StreamOrderEnvelope,
    StreamOrderPage,
    parse_stream_datetime,
)

SAMPLES = Path(__file__).parent / "samples"
PACIFIC = ZoneInfo("America/Los_Angeles")
PST = timezone(timedelta(hours=-8))
PDT = timezone(timedelta(hours=-7))


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def sample(name: str) -> Any:
    return json.loads(sample_bytes(name))


# ---------------------------------------------------------------------------------------------
# Lossless round trips of every sample in the api-docs
# ---------------------------------------------------------------------------------------------

SAMPLE_CASES: list[tuple[str, type[BaseModel], Callable[[Any], datetime | None]]] = [
    ("dropstream_order.json", DropStreamOrderEnvelope, parse_dropstream_datetime),
    ("dropstream_orders_page.json", DropStreamOrderPage, parse_dropstream_datetime),
    ("dropstream_shipments_page1.json", DropStreamShipmentPage, parse_dropstream_datetime),
    ("dropstream_shipments_page2.json", DropStreamShipmentPage, parse_dropstream_datetime),
    ("dropstream_shipments_session1.json", DropStreamShipmentPage, parse_dropstream_datetime),
    ("dropstream_shipments_session2.json", DropStreamShipmentPage, parse_dropstream_datetime),
    ("dropstream_shipments_tracking.json", DropStreamShipmentPage, parse_dropstream_datetime),
    ("dropstream_shipments_errored.json", DropStreamShipmentPage, parse_dropstream_datetime),
    ("dcl_orders_page.json", DclOrderPage, parse_dcl_datetime),
    ("stream_orders_page.json", StreamOrderPage, parse_stream_datetime),
    ("stream_order.json", StreamOrderEnvelope, parse_stream_datetime),
]


def test_every_docs_sample_is_covered() -> None:
    assert {name for name, _, _ in SAMPLE_CASES} == {path.name for path in SAMPLES.glob("*.json")}


def assert_same_keys(dumped: Any, given: Any, path: str = "$") -> None:
    """Recursive key-set equality: nothing dropped, nothing made up."""
    if isinstance(given, dict):
        assert isinstance(dumped, dict), path
        assert set(dumped) == set(given), f"{path}: {set(dumped) ^ set(given)}"
        for key in given:
            assert_same_keys(dumped[key], given[key], f"{path}.{key}")
    elif isinstance(given, list):
        assert isinstance(dumped, list) and len(dumped) == len(given), path
        for index, (left, right) in enumerate(zip(dumped, given, strict=True)):
            assert_same_keys(left, right, f"{path}[{index}]")


def assert_same_values(dumped: Any, given: Any, parse_date: Callable[[Any], Any], path: str = "$") -> None:
    """Same data: equal scalars and JSON types, except that dates may be re-spelled as ISO 8601."""
    if isinstance(given, dict):
        for key in given:
            assert_same_values(dumped[key], given[key], parse_date, f"{path}.{key}")
    elif isinstance(given, list):
        for index, (left, right) in enumerate(zip(dumped, given, strict=True)):
            assert_same_values(left, right, parse_date, f"{path}[{index}]")
    elif isinstance(given, str) and dumped != given:
        assert parse_date(dumped) == parse_date(given), path
    else:
        assert type(dumped) is type(given) and dumped == given, f"{path}: {dumped!r} != {given!r}"


@pytest.mark.parametrize(("name", "model", "parse_date"), SAMPLE_CASES, ids=[c[0] for c in SAMPLE_CASES])
def test_docs_sample_round_trips_losslessly(
    name: str, model: type[BaseModel], parse_date: Callable[[Any], Any]
) -> None:
    given = sample(name)
    from_bytes = model.model_validate_json(sample_bytes(name))
    from_python = model.model_validate(given)
    assert from_bytes == from_python

    dumped = from_bytes.model_dump(mode="json")
    assert_same_keys(dumped, given)
    assert_same_values(dumped, given, parse_date)
    assert_same_keys(json.loads(from_bytes.model_dump_json()), given)
    # and the dump parses back to the same record
    assert model.model_validate_json(from_bytes.model_dump_json()) == from_bytes


def test_unknown_fields_are_kept_at_every_level() -> None:
    page = sample("dcl_orders_page.json")
    order = page["orders"][0]
    order["new_top"] = {"nested": [1, {"deep": None}]}
    order["shipping_address"]["address3"] = "Dock 4"
    order["order_lines"][1]["bundle_lines"][0]["lot_policy"] = "FIFO"
    order["shipments"][0]["packages"][0]["shipped_items"][0]["lot_details"][0]["expires"] = "2015-01-01"
    order["shipments"][0]["packages"][0]["signed_by"] = None
    parsed = DclOrderPage.model_validate_json(json.dumps(page))
    dumped = parsed.model_dump(mode="json")
    assert_same_keys(dumped, page)
    assert parsed.orders is not None
    assert parsed.orders[0].model_extra == {"new_top": {"nested": [1, {"deep": None}]}}
    dumped_order = dumped["orders"][0]
    assert dumped_order["new_top"] == {"nested": [1, {"deep": None}]}
    assert dumped_order["shipping_address"]["address3"] == "Dock 4"
    assert dumped_order["order_lines"][1]["bundle_lines"][0]["lot_policy"] == "FIFO"
    package = dumped_order["shipments"][0]["packages"][0]
    assert package["shipped_items"][0]["lot_details"][0]["expires"] == "2015-01-01"
    assert "signed_by" in package and package["signed_by"] is None

    stream = sample("stream_order.json")
    stream["order"]["destination_address"]["country"]["eu_member"] = False
    stream["order"]["customs_hold_link"] = "https://example.com/documents/hold.pdf"
    parsed_stream = StreamOrderEnvelope.model_validate(stream)
    assert_same_keys(parsed_stream.model_dump(mode="json"), stream)
    assert parsed_stream.order.document_links["customs_hold_link"] == "https://example.com/documents/hold.pdf"


def test_absent_fields_stay_absent_and_explicit_nulls_stay() -> None:
    given = {"id": 7, "billing_address": None, "order_items": [{"sku": "A"}], "custom": {"k": None}}
    order = DropStreamOrder.model_validate(given)
    assert order.model_dump(mode="json") == given
    assert json.loads(order.model_dump_json()) == given
    assert order.model_dump() == given
    # a fixed-schema dump is still available on request
    full = order.model_dump(mode="json", exclude_unset=False)
    assert full["shipping_address"] is None and "fulfillment_state" in full


# ---------------------------------------------------------------------------------------------
# Money and numbers
# ---------------------------------------------------------------------------------------------


def test_dropstream_money_strings_are_exact_decimals_dumped_back_as_strings() -> None:
    order = DropStreamOrderEnvelope.model_validate_json(sample_bytes("dropstream_order.json")).order
    assert order.shipping_amount == Decimal("1.23") and isinstance(order.shipping_amount, Decimal)
    assert order.insured_amount == Decimal("123.45")
    assert order.order_items is not None
    assert str(order.order_items[0].unit_price) == "1.0"
    dumped = order.model_dump(mode="json")
    assert dumped["insured_amount"] == "123.45"
    assert dumped["order_items"][0]["unit_price"] == "1.0"


@pytest.mark.parametrize("how", ["json", "python"])
def test_dcl_and_stream_json_numbers_become_exact_decimals(how: str) -> None:
    dcl_raw, stream_raw = sample("dcl_orders_page.json"), sample("stream_order.json")
    if how == "json":
        dcl = DclOrderPage.model_validate_json(sample_bytes("dcl_orders_page.json"))
        stream = StreamOrderEnvelope.model_validate_json(sample_bytes("stream_order.json")).order
    else:  # floats already decoded by json.loads: still no binary artefact
        dcl = DclOrderPage.model_validate(dcl_raw)
        stream = StreamOrderEnvelope.model_validate(stream_raw).order
    assert dcl.orders is not None
    order = dcl.orders[0]
    assert order.order_lines is not None and order.shipments is not None
    price = order.order_lines[0].price
    assert isinstance(price, Decimal) and str(price) == "2.99" and price != Decimal(2.99)
    assert order.order_lines[0].quantity == Decimal(5)
    assert order.shipments[0].total_charge == Decimal("7.35")
    assert dcl.orders[1].order_lines is not None and dcl.orders[1].order_lines[1].price == Decimal("5.2")
    assert stream.value_of_goods == Decimal("5000.0")
    assert stream.invoice_data is not None and stream.invoice_data.line_items is not None
    assert [item.cost for item in stream.invoice_data.line_items] == [
        Decimal("1250"),
        Decimal("187.5"),
        Decimal("95"),
    ]
    assert sum(item.cost for item in stream.invoice_data.line_items if item.cost) == Decimal("1532.5")
    # dumped back as JSON numbers of the same kind
    dumped_line = order.model_dump(mode="json")["order_lines"][0]
    assert dumped_line["price"] == 2.99 and type(dumped_line["price"]) is float
    assert dumped_line["quantity"] == 5 and type(dumped_line["quantity"]) is int


def test_blank_strings_are_none_for_dates_money_numbers_and_objects() -> None:
    order = DropStreamOrder.model_validate(
        {
            "id": 1,
            "shipping_amount": "",
            "requested_ship_date": "",
            "store_id": "",
            "signature_required": "",
        }
    )
    assert order.shipping_amount is None and order.requested_ship_date is None
    assert order.store_id is None and order.signature_required is None
    assert set(order.model_dump(mode="json")) == {
        "id",
        "shipping_amount",
        "requested_ship_date",
        "store_id",
        "signature_required",
    }
    dcl = DclOrder.model_validate({"order_number": "X", "total_due": " ", "modified_at": ""})
    assert dcl.total_due is None and dcl.modified_at is None
    stream = StreamOrder.model_validate(
        {"id": 1, "invoice_data": "", "date_delivered": "", "value_of_goods": ""}
    )
    assert stream.invoice_data is None and stream.date_delivered is None and stream.value_of_goods is None


def test_numbers_sent_for_string_fields_are_tolerated() -> None:
    order = DclOrder.model_validate({"order_number": 12345, "po_number": 100002})
    assert order.order_number == "12345" and order.po_number == "100002"


@pytest.mark.parametrize("bad", ["abc", "1.2.3", "NaN", "Infinity", [1]])
def test_bad_money_is_a_validation_error_naming_the_field(bad: Any) -> None:
    with pytest.raises(ValidationError) as excinfo:
        DropStreamOrder.model_validate({"id": 1, "tax_amount": bad})
    assert excinfo.value.errors()[0]["loc"] == ("tax_amount",)


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------

DATE_CASES = [
    # DropStream: ISO 8601 with Z or an offset
    (parse_dropstream_datetime, "2022-10-03T04:28:20Z", datetime(2022, 10, 3, 4, 28, 20, tzinfo=UTC), UTC),
    (parse_dropstream_datetime, "2022-12-01T05:25:00.000Z", datetime(2022, 12, 1, 5, 25, tzinfo=UTC), UTC),
    (
        parse_dropstream_datetime,
        "2022-12-01T00:25:00-05:00",
        datetime(2022, 12, 1, 5, 25, tzinfo=UTC),
        timezone(timedelta(hours=-5)),
    ),
    (parse_dropstream_datetime, "2022-12-01", datetime(2022, 12, 1, tzinfo=UTC), UTC),
    # DCL: bare dates and offset-less times are US Pacific, DST-correct
    (parse_dcl_datetime, "2014-11-25", datetime(2014, 11, 25, 8, tzinfo=UTC), PST),
    (parse_dcl_datetime, "2014-11-28T11:05:22", datetime(2014, 11, 28, 19, 5, 22, tzinfo=UTC), PST),
    (parse_dcl_datetime, "2014-07-04", datetime(2014, 7, 4, 7, tzinfo=UTC), PDT),
    (parse_dcl_datetime, "2014-07-04T10:00:00", datetime(2014, 7, 4, 17, tzinfo=UTC), PDT),
    (parse_dcl_datetime, "2014-03-09T01:59:59", datetime(2014, 3, 9, 9, 59, 59, tzinfo=UTC), PST),
    (parse_dcl_datetime, "2014-03-09T03:00:00", datetime(2014, 3, 9, 10, tzinfo=UTC), PDT),
    (parse_dcl_datetime, "2014-11-25T09:01:28-08:00", datetime(2014, 11, 25, 17, 1, 28, tzinfo=UTC), PST),
    (parse_dcl_datetime, "2014-11-25T09:01:28Z", datetime(2014, 11, 25, 9, 1, 28, tzinfo=UTC), UTC),
    # Stream
    (parse_stream_datetime, "2025/08/04 11:48:40 UTC", datetime(2025, 8, 4, 11, 48, 40, tzinfo=UTC), UTC),
    (parse_stream_datetime, "2024-03-20 09:00:00", datetime(2024, 3, 20, 9, tzinfo=UTC), UTC),
    (parse_stream_datetime, "2024-03-20", datetime(2024, 3, 20, tzinfo=UTC), UTC),
    (
        parse_stream_datetime,
        "2025/08/04 13:48:40 +0200",
        datetime(2025, 8, 4, 11, 48, 40, tzinfo=UTC),
        timezone(timedelta(hours=2)),
    ),
]


@pytest.mark.parametrize(("parse", "text", "instant", "offset_zone"), DATE_CASES)
def test_each_vendor_date_format_is_the_exact_aware_instant(
    parse: Callable[[Any], datetime | None], text: str, instant: datetime, offset_zone: timezone
) -> None:
    parsed = parse(text)
    assert parsed is not None and parsed.tzinfo is not None
    assert parsed == instant
    assert parsed.utcoffset() == offset_zone.utcoffset(None)


def test_dcl_pacific_times_follow_dst_in_the_model() -> None:
    winter = DclShipment.model_validate({"ship_id": 1, "ship_date": "2014-11-28T11:05:22"})
    summer = DclShipment.model_validate({"ship_id": 1, "ship_date": "2014-07-28T11:05:22"})
    assert winter.ship_date == datetime(2014, 11, 28, 11, 5, 22, tzinfo=PACIFIC)
    assert winter.ship_date is not None and winter.ship_date.utcoffset() == timedelta(hours=-8)
    assert summer.ship_date is not None and summer.ship_date.utcoffset() == timedelta(hours=-7)
    assert winter.model_dump(mode="json")["ship_date"] == "2014-11-28T11:05:22-08:00"
    assert summer.model_dump(mode="json")["ship_date"] == "2014-07-28T11:05:22-07:00"


@pytest.mark.parametrize("parse", [parse_dropstream_datetime, parse_dcl_datetime, parse_stream_datetime])
def test_date_parsers_pass_through_none_blank_and_datetimes(parse: Callable[[Any], datetime | None]) -> None:
    assert parse(None) is None
    assert parse("") is None
    assert parse("   ") is None
    aware = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=3)))
    assert parse(aware) is aware
    naive = parse(datetime(2024, 1, 2, 3, 4, 5))
    assert naive is not None and naive.tzinfo is not None


@pytest.mark.parametrize("parse", [parse_dropstream_datetime, parse_dcl_datetime, parse_stream_datetime])
@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01", "04/08/2025", 1722772120])
def test_unparsable_dates_raise_value_error(parse: Callable[[Any], datetime | None], bad: Any) -> None:
    with pytest.raises(ValueError):
        parse(bad)


def test_unparsable_date_in_a_record_names_the_field() -> None:
    with pytest.raises(ValidationError) as excinfo:
        StreamOrder.model_validate({"id": 1, "created_at": "sometime"})
    assert excinfo.value.errors()[0]["loc"] == ("created_at",)


# ---------------------------------------------------------------------------------------------
# to_common
# ---------------------------------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def pacific(*args: int) -> datetime:
    return datetime(*args, tzinfo=PACIFIC)  # type: ignore[misc]


def test_dropstream_order_to_common() -> None:
    order = DropStreamOrderEnvelope.model_validate_json(sample_bytes("dropstream_order.json")).order
    assert order.to_common() == Order(
        vendor="dropstream",
        id="123456789",
        number="SO12345",
        status="processing",
        raw_status="pending_shipment",
        status_since=utc(2021, 10, 15, 3, 25, 1),
        created_at=utc(2022, 10, 3, 4, 28, 20),
        ordered_at=utc(2022, 11, 29, 3, 20, 18),
        ship_by=utc(2022, 10, 5, 1, 43, 7),
        items=[
            LineItem(line_id="4403098091556", sku="RDSHRT-123"),
            LineItem(line_id="4403098091557", sku="BLSCKS-456"),
        ],
    )


def test_dropstream_order_items_use_only_documented_fields() -> None:
    """Undocumented item `id`/`quantity` are kept as extras, never read into the normalized items."""
    order = DropStreamOrder.model_validate(
        {
            "id": 97721881,
            "fulfillment_state": "error_sending_to_warehouse",
            "order_items": [
                {"id": 270322009, "sku": "A", "quantity": 2, "external_order_item_id": "4403098091556"},
                {"sku": "B"},
            ],
        }
    )
    common = order.to_common()
    assert common.status == "error" and common.raw_status == "error_sending_to_warehouse"
    assert common.number is None and common.status_since is None
    assert common.items == [LineItem(line_id="4403098091556", sku="A"), LineItem(sku="B")]
    assert order.order_items is not None and order.order_items[0].model_extra == {
        "id": 270322009,
        "quantity": 2,
    }


def test_dropstream_shipment_to_common() -> None:
    page = DropStreamShipmentPage.model_validate_json(sample_bytes("dropstream_shipments_page2.json"))
    assert page.shipments[0].to_common() == Shipment(
        vendor="dropstream",
        id="75702644",
        order_id="97747902",
        tracking_numbers=["TRACK7029385590"],
        status="shipped",
        raw_status="notified_shipped",
        created_at=utc(2022, 9, 10, 12, 28, 30),
        shipped_at=utc(2022, 9, 10, 12, 28, 27),
        items=[LineItem(line_id="270391360"), LineItem(line_id="270391366"), LineItem(line_id="270391370")],
    )
    errored = DropStreamShipmentPage.model_validate_json(sample_bytes("dropstream_shipments_errored.json"))
    assert errored.shipments[0].to_common().status == "error"


def test_dropstream_shipment_expected_delivery_date() -> None:
    shipment = DropStreamShipment.model_validate(
        {
            "id": 1,
            "state": "new",
            "expected_delivery_date": "2022-09-14T00:00:00-05:00",
            "tracking_number": "",
        }
    )
    assert shipment.expected_delivery_date == utc(2022, 9, 14, 5)
    common = shipment.to_common()
    assert common.expected_delivery_at == utc(2022, 9, 14, 5)
    assert common.tracking_numbers == [] and common.order_id is None and common.items == []


def test_dcl_order_to_common() -> None:
    page = DclOrderPage.model_validate_json(sample_bytes("dcl_orders_page.json"))
    assert page.orders is not None
    shipped, received = page.orders
    assert shipped.to_common() == Order(
        vendor="dcl",
        id="TEST02",
        account="10501",  # with id, the identity: two accounts may share a number
        number="TEST02",
        status="shipped",
        raw_status="60",
        created_at=pacific(2014, 11, 25),
        ordered_at=pacific(2014, 11, 25),
        modified_at=datetime(2014, 11, 25, 9, 1, 28, tzinfo=PST),
        ship_by=pacific(2014, 11, 26),
        # the bundle line 2 is carried as its components, as the packages list them
        items=[
            LineItem(line_id="1", sku="1002-002-DEMO2", quantity=Decimal(5)),
            LineItem(line_id="2001", sku="ITEM-001", quantity=Decimal(2)),
            LineItem(line_id="2002", sku="ITEM-002", quantity=Decimal(4)),
        ],
    )
    assert received.to_common() == Order(
        vendor="dcl",
        id="TEST03",
        account="10501",  # with id, the identity: two accounts may share a number
        number="TEST03",
        status="processing",
        raw_status="10",
        created_at=pacific(2014, 11, 25),
        ordered_at=pacific(2014, 11, 25),
        modified_at=datetime(2014, 11, 25, 5, 1, 28, tzinfo=PST),
        ship_by=pacific(2014, 11, 26),
        items=[
            LineItem(line_id="2", sku="1002-002-DEMO2", quantity=Decimal(5)),
            LineItem(line_id="1", sku="1001-001-DEMO", quantity=Decimal(1)),
        ],
    )
    assert received.to_common_shipments() == []


def test_dcl_ship_by_is_the_earliest_line() -> None:
    order = DclOrder.model_validate(
        {
            "order_number": "X",
            "order_lines": [
                {"line_number": 1, "ship_by": "2014-11-27"},
                {
                    "line_number": 2,
                    "ship_by": None,
                    "bundle_lines": [{"line_number": 3, "ship_by": "2014-11-24"}],
                },
                {"line_number": 4},
            ],
        }
    )
    assert order.to_common().ship_by == pacific(2014, 11, 24)
    assert DclOrder.model_validate({"order_number": "Y"}).to_common().ship_by is None


def test_dcl_shipments_to_common() -> None:
    page = DclOrderPage.model_validate_json(sample_bytes("dcl_orders_page.json"))
    assert page.orders is not None
    order = page.orders[0]
    assert order.to_common_shipments() == [
        Shipment(
            vendor="dcl",
            id="5721085",
            account="10501",
            order_id="TEST02",
            tracking_numbers=["1Z05R2W10381474503", "1Z05R2W10381474504"],
            status="delivered",
            raw_status="Delivered",
            shipped_at=pacific(2014, 11, 25),
            delivered_at=pacific(2014, 11, 28, 11, 5, 23),
            items=[
                LineItem(line_id="1", sku="1002-002-DEMO2", quantity=Decimal(5)),
                LineItem(line_id="2001", sku="ITEM-001", quantity=Decimal(2)),
                LineItem(line_id="2002", sku="ITEM-002", quantity=Decimal(4)),
            ],
        )
    ]
    # the nested shipment alone does not know its order; shipment_records() fills it in
    assert order.shipments is not None and order.shipments[0].order_number is None
    record = order.shipment_records()[0]
    assert record.order_number == "TEST02" and record.model_dump(mode="json")["order_number"] == "TEST02"
    assert "order_number" not in order.model_dump(mode="json")["shipments"][0]


def test_dcl_shipment_partly_delivered_split_lines_and_fallbacks() -> None:
    shipment = DclShipment.model_validate(
        {
            "ship_id": 9,
            "order_number": "T9",
            "reference1": "REF-TRACK",
            "packages": [
                {
                    "tracking_number": "T1",
                    "delivery_status": "Delivered",
                    "delivery_date": "2014-11-28T11:05:22",
                    "shipped_items": [{"line_number": 1, "item_number": "A", "quantity": 2}],
                },
                {
                    "tracking_number": "T1",
                    "delivery_status": "In Transit",
                    "shipped_items": [
                        {"line_number": 1, "item_number": "A", "quantity": 3},
                        {"line_number": 2, "item_number": "B", "quantity": 1},
                    ],
                },
            ],
        }
    )
    common = shipment.to_common()
    assert common.status == "shipped" and common.raw_status == "Delivered, In Transit"
    assert common.delivered_at is None
    assert common.tracking_numbers == ["T1"]
    assert common.items == [
        LineItem(line_id="1", sku="A", quantity=Decimal(5)),
        LineItem(line_id="2", sku="B", quantity=Decimal(1)),
    ]
    # no packages: reference1 tracks it, shipped_lines (bundles expanded) give the items
    bare = DclShipment.model_validate(
        {
            "ship_id": 10,
            "reference1": "1ZREF",
            "shipped_lines": [
                {
                    "line_number": 2,
                    "item_number": "KIT",
                    "quantity": 1,
                    "bundle_lines": [
                        {"line_number": 2001, "item_number": "C", "quantity": 2},
                    ],
                },
            ],
        }
    )
    bare_common = bare.to_common()
    assert bare_common.tracking_numbers == ["1ZREF"] and bare_common.raw_status == ""
    assert bare_common.status == "shipped" and bare_common.order_id is None
    assert bare_common.items == [LineItem(line_id="2001", sku="C", quantity=Decimal(2))]


def test_dcl_cancelled_order_is_canceled_whatever_the_stage() -> None:
    order = DclOrder.model_validate({"order_number": "C1", "order_stage": 60, "is_cancelled": True})
    common = order.to_common()
    assert (common.status, common.raw_status) == ("canceled", "cancelled")


def test_stream_order_to_common_and_as_shipment() -> None:
    order = StreamOrderEnvelope.model_validate_json(sample_bytes("stream_order.json")).order
    assert order.to_common() == Order(
        vendor="stream",
        id="12345",
        number="SHIP-2024-001",
        status="shipped",
        raw_status="in_transit",
        created_at=utc(2025, 8, 4, 11, 48, 40),
    )
    assert order.to_common_shipment() == Shipment(
        vendor="stream",
        id="12345",
        order_id="12345",
        tracking_numbers=["WB123456789"],
        status="shipped",
        raw_status="in_transit",
        created_at=utc(2025, 8, 4, 11, 48, 40),
    )
    assert order.pickup_date == utc(2024, 3, 20)
    assert order.scheduled_pickup == utc(2024, 3, 20, 9)
    assert order.destination_address is not None and order.destination_address.country is not None
    assert order.destination_address.country.iso_code_2 == "US"
    assert order.destination_address.country.vat_rate == Decimal("0.08")
    assert len(order.document_links) == 13
    assert "tracking_link" not in order.document_links

    delivered = StreamOrder.model_validate(
        {"id": 5, "status": "delivered", "date_delivered": "2025/08/09 08:00:00 UTC"}
    ).to_common_shipment()
    assert (delivered.status, delivered.delivered_at) == ("delivered", utc(2025, 8, 9, 8))


# ---------------------------------------------------------------------------------------------
# State maps
# ---------------------------------------------------------------------------------------------

# Copied from the docs (dropstream-order-object.txt, fulfillment_state "One of: ...").
_DROPSTREAM_ORDER_DOCS_TEXT = (
    "archived bundled canceled delayed_processing delayed_sending_completion_acknowledgement "
    "delayed_sending_receipt_acknowledgement delayed_sending_to_warehouse error error_processing "
    "error_sending_completion_acknowledgement error_sending_receipt_acknowledgement "
    "error_sending_to_warehouse new new_manual partially_shipped pending_shipment processing queued "
    "ready_for_warehouse scheduled_completion_acknowledgement scheduled_processing_order "
    "scheduled_receipt_acknowledgement scheduled_request sending_completion_acknowledgement "
    "sending_receipt_acknowledgement sending_to_warehouse sent_completion_acknowledgement "
    "sent_to_warehouse shipped skipped split waiting"
)
DROPSTREAM_ORDER_DOCUMENTED = _DROPSTREAM_ORDER_DOCS_TEXT.split()
DROPSTREAM_ORDER_EXPECTED = {
    "error": {
        "error",
        "error_processing",
        "error_sending_completion_acknowledgement",
        "error_sending_receipt_acknowledgement",
        "error_sending_to_warehouse",
    },
    "canceled": {"canceled", "archived", "skipped"},
    "pending": {"new", "new_manual", "queued", "waiting", "scheduled_request"},
    "shipped": {
        "shipped",
        "scheduled_completion_acknowledgement",
        "sending_completion_acknowledgement",
        "delayed_sending_completion_acknowledgement",
        "sent_completion_acknowledgement",
    },
}
_DROPSTREAM_SHIPMENT_DOCS_TEXT = (
    "new ready_for_shipment_notification scheduled_notify_of_shipment scheduled_processing_shipment "
    "errored_processing scheduled_notify_of_shipment delayed_notifying_of_shipment "
    "errored_notifying_of_shipment notified_shipped archived"
)
DROPSTREAM_SHIPMENT_DOCUMENTED = _DROPSTREAM_SHIPMENT_DOCS_TEXT.split()
STREAM_EXPECTED = {
    "order_received": "pending",
    "awaiting_prepayment": "pending",
    "additional_document_required": "error",
    "pickup_missed": "error",
    "incomplete": "error",
    "lost_in_transit": "error",
    "awaiting_waybill_generation": "processing",
    "prepayment_received": "processing",
    "client_to_schedule_pickup": "processing",
    "admin_to_schedule_pickup": "processing",
    "system_to_schedule_pickup": "processing",
    "awaiting_pickup": "processing",
    "awaiting_swap_out": "processing",
    "in_transit": "shipped",
    "partially_delivered": "shipped",
    "delivered": "delivered",
    "invoice_paid": "delivered",
    "cancelled": "canceled",
}


def expected_dropstream_order(raw: str) -> str:
    for status, raws in DROPSTREAM_ORDER_EXPECTED.items():
        if raw in raws:
            return status
    return "processing"


@pytest.mark.parametrize("raw", DROPSTREAM_ORDER_DOCUMENTED)
def test_dropstream_order_states(raw: str) -> None:
    assert normalize("dropstream", "orders", raw) == expected_dropstream_order(raw)
    common = DropStreamOrder.model_validate({"id": 1, "fulfillment_state": raw}).to_common()
    assert (common.status, common.raw_status) == (expected_dropstream_order(raw), raw)


def test_dropstream_known_states_are_exactly_the_documented_ones() -> None:
    assert len(DROPSTREAM_ORDER_DOCUMENTED) == 32  # the docs list 32 distinct values
    assert known_states("dropstream", "orders") == frozenset(DROPSTREAM_ORDER_DOCUMENTED)
    assert known_states("dropstream", "shipments") == frozenset(DROPSTREAM_SHIPMENT_DOCUMENTED)
    assert (
        known_states("stream", "orders") == frozenset(STREAM_EXPECTED) == known_states("stream", "shipments")
    )
    assert len(STREAM_EXPECTED) == 18


@pytest.mark.parametrize("raw", sorted(set(DROPSTREAM_SHIPMENT_DOCUMENTED)))
def test_dropstream_shipment_states(raw: str) -> None:
    expected = "error" if raw in {"errored_processing", "errored_notifying_of_shipment"} else "shipped"
    assert normalize("dropstream", "shipments", raw) == expected
    assert DropStreamShipment.model_validate({"id": 1, "state": raw}).to_common().status == expected


@pytest.mark.parametrize(("raw", "expected"), sorted(STREAM_EXPECTED.items()))
def test_stream_states(raw: str, expected: str) -> None:
    assert normalize("stream", "orders", raw) == expected
    order = StreamOrder.model_validate({"id": 1, "status": raw})
    assert (order.to_common().status, order.to_common().raw_status) == (expected, raw)
    assert order.to_common_shipment().status == expected


@pytest.mark.parametrize(
    ("stage", "cancelled", "expected"),
    [
        (2, False, "error"),
        (3, None, "pending"),
        (9, False, "pending"),
        (10, False, "processing"),
        (40, False, "processing"),
        (59, False, "processing"),
        (60, False, "shipped"),
        (61, False, "processing"),  # undocumented stage
        (62, False, "shipped"),
        (65, False, "processing"),  # undocumented stage
        (70, False, "delivered"),
        (99, False, "processing"),  # undocumented stage
        (1, False, "processing"),  # below the documented range
        (None, False, "processing"),
        (2, True, "canceled"),
        (70, True, "canceled"),
    ],
)
def test_dcl_order_stages(stage: int | None, cancelled: bool | None, expected: str) -> None:
    order = DclOrder.model_validate({"order_number": "N", "order_stage": stage, "is_cancelled": cancelled})
    common = order.to_common()
    assert common.status == expected
    assert common.raw_status == ("cancelled" if cancelled else "" if stage is None else str(stage))
    assert normalize("dcl", "orders", common.raw_status) == expected


def test_dcl_stage_ranges_are_disjoint_and_cover_the_documented_codes() -> None:
    codes = [code for r in DCL_ORDER_STAGE_RANGES for code in range(r.first, r.last + 1)]
    assert len(codes) == len(set(codes))
    assert {2, 10, 60, 62, 70} <= set(codes)
    assert known_states("dcl", "orders") == frozenset({"cancelled", *map(str, codes)})


@pytest.mark.parametrize(
    ("vendor", "resource"),
    [("dropstream", "orders"), ("dropstream", "shipments"), ("dcl", "orders"), ("stream", "orders")],
)
def test_unknown_raw_state_is_processing_and_kept(vendor: str, resource: str) -> None:
    assert normalize(vendor, resource, "teleported_by_drone") == "processing"
    assert normalize(vendor, resource, None) == "processing"


def test_unknown_state_in_a_record_does_not_crash() -> None:
    common = DropStreamOrder.model_validate({"id": 3, "fulfillment_state": "quantum_limbo"}).to_common()
    assert (common.status, common.raw_status) == ("processing", "quantum_limbo")
    shipment = StreamOrder.model_validate({"id": 3, "status": "on_the_moon"}).to_common_shipment()
    assert (shipment.status, shipment.raw_status) == ("processing", "on_the_moon")
    assert DropStreamOrder.model_validate({"id": 4}).to_common().raw_status == ""


def test_dcl_shipment_delivery_status_map() -> None:
    assert normalize("dcl", "shipments", "Delivered") == "delivered"
    assert normalize("dcl", "shipments", "DELIVERED") == "delivered"
    assert normalize("dcl", "shipments", "In Transit") == "shipped"
    assert normalize("dcl", "shipments", "") == "shipped"


def test_unknown_vendor_or_resource_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'shopify'"):
        known_states("shopify", "orders")
    with pytest.raises(ValueError, match="'returns'"):
        normalize("dcl", "returns", "60")


def test_every_mapped_status_is_a_normalized_status() -> None:
    for table in STATE_TABLES:
        assert set(table.states.values()) <= set(STATUSES)
        assert table.fallback in STATUSES


def test_state_table_markdown_documents_every_raw_state() -> None:
    text = state_table_markdown()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0] == "| vendor | resource | normalized | raw states |"
    assert all(row.count(" | ") == 3 for row in rows)
    for raw in [*DROPSTREAM_ORDER_DOCUMENTED, *DROPSTREAM_SHIPMENT_DOCUMENTED, *STREAM_EXPECTED]:
        assert f"`{raw}`" in text
    for stage_range in DCL_ORDER_STAGE_RANGES:
        assert f"`order_stage` {stage_range.first}" in text
    error_row = next(row for row in rows if row.startswith("| DCL | orders") and "`error`" in row)
    assert "`order_stage` 2 " in error_row
    assert "is_cancelled" in text and "any other value" in text


# ---------------------------------------------------------------------------------------------
# Required fields and envelopes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "payload", "field"),
    [
        (DropStreamOrder, {"store_id": 1}, "id"),
        (DropStreamShipment, {"tracking_number": "T"}, "id"),
        (DclOrder, {"order_stage": 10}, "order_number"),
        (DclShipment, {"ship_date": "2014-11-25"}, "ship_id"),
        (StreamOrder, {"status": "in_transit"}, "id"),
        (DropStreamOrder, {"id": None}, "id"),
    ],
)
def test_missing_id_is_a_validation_error_naming_the_field(
    model: type[BaseModel], payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        model.model_validate(payload)
    assert [error["loc"] for error in excinfo.value.errors()] == [(field,)]


def test_missing_id_inside_a_page_names_its_path() -> None:
    body = b'{"error_code": 0, "error_message": "", "orders": [{"order_number": "A"}, {"order_stage": 10}]}'
    with pytest.raises(ValidationError) as excinfo:
        DclOrderPage.model_validate_json(body)
    assert excinfo.value.errors()[0]["loc"] == ("orders", 1, "order_number")


def test_dropstream_page_meta() -> None:
    page = DropStreamOrderPage.model_validate_json(
        b'{"orders": [{"id": 1}, {"id": 2}], "page": 100, "limit": 100, "total_count": 12000,'
        b' "total_pages": 120, "max_total_reached": true}'
    )
    assert [order.id for order in page.orders] == [1, 2]
    assert (page.page, page.limit, page.total_count, page.total_pages) == (100, 100, 12000, 120)
    assert page.max_total_reached is True and page.session_id is None
    session = DropStreamShipmentPage.model_validate_json(sample_bytes("dropstream_shipments_session2.json"))
    assert session.session_id == "e3ed2e5b-2d5e-4f05-a9b1-6f6790996f0b"
    assert session.total_count is None and session.max_total_reached is None
    empty = DropStreamShipmentPage.model_validate_json(b'{"session_id": "s"}')
    assert empty.shipments == [] and empty.session_id == "s"
    assert empty.model_dump(mode="json") == {"session_id": "s"}


def test_dcl_page_error_body() -> None:
    page = DclOrderPage.model_validate_json(
        b'{"error_code": 5, "error_message": "Invalid filter: order_stage gt x", "orders": null}'
    )
    assert (page.error_code, page.error_message, page.orders) == (5, "Invalid filter: order_stage gt x", None)
    ok = DclOrderPage.model_validate_json(sample_bytes("dcl_orders_page.json"))
    assert ok.error_code == 0 and ok.orders is not None
    assert [order.order_number for order in ok.orders] == ["TEST02", "TEST03"]


def test_stream_page_meta_and_single_envelope() -> None:
    page = StreamOrderPage.model_validate_json(sample_bytes("stream_orders_page.json"))
    assert page.meta is not None and (page.meta.page_count, page.meta.record_count) == (1, 1)
    single = StreamOrderEnvelope.model_validate_json(sample_bytes("stream_order.json"))
    assert single.order == page.orders[0]
    ds_single = DropStreamOrderEnvelope.model_validate_json(sample_bytes("dropstream_order.json"))
    ds_page = DropStreamOrderPage.model_validate_json(sample_bytes("dropstream_orders_page.json"))
    assert ds_single.order == ds_page.orders[0]
