"""Inputs each vendor documents are accepted and sent exactly; the rest fail before any request."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import httpx
import pytest

from airflow_provider_fulfillment.hooks.dcl import ORDER_FIELDS, DclHook
from airflow_provider_fulfillment.hooks.dropstream import ORDER_SORTS, SHIPMENT_SORTS, DropStreamHook
from airflow_provider_fulfillment.models.dcl import DclOrder
from tests.fakes import Recorder, json_response, params_of


def _dropstream(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/auth/token"):
        return json_response(200, {"access_token": "jwt-inputs", "token_type": "Bearer"})
    resource = request.url.path.rsplit("/", 1)[-1]
    return json_response(
        200, {resource: [], "session_id": "s1", "page": 1, "limit": 1000, "total_count": 0, "total_pages": 0}
    )


def _dcl(request: httpx.Request) -> httpx.Response:
    return json_response(200, {"error_code": 0, "error_message": "", "orders": []})


@pytest.fixture
def dropstream(set_connection):
    set_connection(
        "ds_in", "dropstream", "http://ds.test", "api-user", "pw-inputs-1", max_wait=0, max_concurrency=1
    )
    recorder = Recorder(_dropstream)
    return DropStreamHook("ds_in", transport=httpx.MockTransport(recorder)), recorder


@pytest.fixture
def dcl(set_connection):
    set_connection(
        "dcl_in", "dcl", "http://dcl.test/api/v1", "acct", "pw-inputs-2", max_wait=0, max_concurrency=1
    )
    recorder = Recorder(_dcl)
    return DclHook("dcl_in", transport=httpx.MockTransport(recorder)), recorder


def _first_get(recorder: Recorder) -> dict[str, str]:
    return next(params for method, _, params in recorder.requests if method == "GET")


# ------------------------------------------------------------------ DropStream


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("2022-12-01", "2022-12-01T00:00:00+00:00"),
        ("2022-12", "2022-12-01T00:00:00+00:00"),
        ("2022", "2022-01-01T00:00:00+00:00"),
        ("2022-12-01T00:25:00-05:00", "2022-12-01T05:25:00+00:00"),
    ],
)
def test_dropstream_partial_iso_dates_are_sent_in_full(dropstream, given, sent):
    hook, recorder = dropstream
    assert list(hook.iter_orders(ordered_at_min=given, paging="session")) == []
    assert _first_get(recorder)["ordered_at_min"] == sent


def test_dropstream_sorts_on_any_documented_property(dropstream):
    hook, recorder = dropstream
    assert {"batch_id", "purchase_order_id", "declared_value", "fulfillment_state"} <= set(ORDER_SORTS)
    assert not {"order_items", "shipping_address", "custom"} & set(ORDER_SORTS)
    assert {"tracking_number", "shipped_at", "created_at", "warehouse_id", "state", "weight"} <= set(
        SHIPMENT_SORTS
    )
    list(hook.iter_orders(sort="batch_id", paging="session"))
    list(hook.iter_shipments(sort="carrier_name", paging="session"))
    assert [params.get("sort") for method, _, params in recorder.requests if method == "GET"] == [
        "batch_id",
        "carrier_name",
    ]


def test_windows_near_datetime_min_fail_before_any_request(dropstream):
    hook, recorder = dropstream
    with pytest.raises(ValueError, match=r"^window start: 0001-01-01T00:00:00\+00:00 is out of range"):
        hook.iter_orders(window=(datetime.min.replace(tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC)))
    assert recorder.requests == []


# ------------------------------------------------------------------ DCL


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("2025-10-01", "2025-10-01T00:00:00-07:00"),  # Pacific daylight time
        ("2025-01-15", "2025-01-15T00:00:00-08:00"),  # Pacific standard time
        (date(2025, 10, 1), "2025-10-01T00:00:00-07:00"),
        ("2025-10-01T08:30:00", "2025-10-01T08:30:00"),  # local PST as documented, as given
        ("2025-10-01T08:30:00+00:00", "2025-10-01T08:30:00+00:00"),
    ],
)
def test_dcl_bare_dates_in_modified_bounds_are_pacific_midnight(dcl, given, sent):
    hook, recorder = dcl
    list(hook.iter_orders(modified_from=given, modified_to=given))
    params = _first_get(recorder)
    assert (params["modified_from"], params["modified_to"]) == (sent, sent)


@pytest.mark.parametrize(
    ("given", "sent"), [("true", "true"), ("false", "false"), (" True ", "true"), (True, "true")]
)
def test_dcl_extended_date_accepts_rendered_strings(dcl, given, sent):
    hook, recorder = dcl
    list(hook.iter_orders(extended_date=given))
    assert _first_get(recorder)["extended_date"] == sent


def test_dcl_fields_are_documented_names_and_sent_with_what_identifies_a_record(dcl):
    hook, recorder = dcl
    assert {"order_number", "received_date", "po_number", "shipments", "modified_at"} <= set(ORDER_FIELDS)
    list(hook.iter_orders(fields="po_number, received_date"))
    assert (
        _first_get(recorder)["fields"]
        == "po_number,received_date,order_number,order_stage,is_cancelled,modified_at"
    )


def test_every_documented_dcl_field_is_accepted(dcl):
    hook, recorder = dcl
    list(hook.iter_orders(fields=list(ORDER_FIELDS)))
    assert _first_get(recorder)["fields"].split(",") == list(ORDER_FIELDS)
    assert json.loads(json.dumps(params_of(recorder.raw[0])))["page"] == "1"


# ------------------------------------------------------------------ bad input, both vendors

BAD_INPUT = [
    ("dropstream", {"sort": "colour"}, "'sort': unknown sort property 'colour'; known: "),
    ("dropstream", {"sort": "order_items"}, "'sort': unknown sort property 'order_items'; known: "),
    ("dropstream", {"ordered_at_min": "2022-13"}, "filter 'ordered_at_min': '2022-13' is not a real month"),
    ("dropstream", {"ordered_at_min": "0001-01-01"}, "filter 'ordered_at_min': '0001-01-01' is out of range"),
    ("dropstream", {"created_at_max": "last monday"}, "filter 'created_at_max': cannot parse 'last monday'"),
    (
        "dcl",
        {"fields": "order_number,colour"},
        "'fields': unknown DCL order field(s) 'colour'; known: order_number, ",
    ),
    (
        "dcl",
        {"fields": ["po_number", "tracking"]},
        "'fields': unknown DCL order field(s) 'tracking'; known: ",
    ),
    ("dcl", {"extended_date": "yes"}, "'extended_date' must be true or false, got 'yes'"),
    ("dcl", {"modified_from": "2025-02-30"}, "filter 'modified_from': '2025-02-30' is not a real date"),
    ("dcl", {"modified_to": "0001-01-01"}, "filter 'modified_to': '0001-01-01' is out of range"),
]


@pytest.mark.parametrize(("vendor", "filters", "message"), BAD_INPUT)
def test_bad_input_fails_before_any_request(request, vendor, filters, message):
    hook, recorder = request.getfixturevalue(vendor)
    with pytest.raises(ValueError) as caught:
        hook.iter_orders(**filters)
    assert str(caught.value).startswith(message)
    assert recorder.requests == []


def test_a_dcl_orders_identity_is_account_and_order_number(dcl, dropstream):
    hook, _ = dcl
    order = {"account_number": "10501", "order_number": "TEST02", "order_stage": 60}
    assert hook.record_key("orders", order) == ("10501", "TEST02")
    assert hook.record_key("orders", DclOrder.model_validate(order)) == ("10501", "TEST02")
    # the same order number in another account is another order
    assert hook.record_key("orders", {**order, "account_number": "20777"}) != hook.record_key("orders", order)
    ds_hook, _ = dropstream
    assert ds_hook.record_key("orders", {"id": 7}) == (7,)
