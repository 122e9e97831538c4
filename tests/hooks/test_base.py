"""The concurrent paging driver (`FulfillmentHook.run_plan`) around a head request that waits."""

from __future__ import annotations

import gc
import json
import threading
from datetime import timedelta

import httpx
import pytest

from airflow_provider_fulfillment.drift import state_fields
from airflow_provider_fulfillment.errors import FulfillmentAPIError
from airflow_provider_fulfillment.hooks import base
from airflow_provider_fulfillment.hooks.base import raw_bytes_page
from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook, DropStreamOrder
from airflow_provider_fulfillment.rawpages import RawRecord
from airflow_provider_fulfillment.vendors import VENDORS
from tests.fakes import BASE, FakeDropStream, Recorder, dropstream_order

HOST = "http://ds.test/dropstream"


def test_a_head_waiting_for_its_retry_does_not_stop_the_pages_behind_it(set_connection):
    fake = FakeDropStream([dropstream_order(i) for i in range(250)])
    answered_503 = []
    others: set[str] = set()
    six_others = threading.Event()
    retry_saw_six_others: list[bool] = []

    def first_page_once_unavailable(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        if "page" in params:  # the opening session's answer is page 1: page 2 is the head
            if params["page"] == "2":
                if not answered_503:
                    answered_503.append(True)
                    return httpx.Response(503, json={"error": "busy"})
                # The retry is answered only once 6 other pages were asked (so a loaded machine's
                # slow threads cannot make the head look as if it stopped the rest); a driver
                # stalled behind its head would ask none, and the wait would time out.
                retry_saw_six_others.append(six_others.wait(timeout=5))
            else:
                others.add(params["page"])
                if len(others) >= 6:
                    six_others.set()
        return fake(request)

    recorder = Recorder(first_page_once_unavailable)
    # The retry waits 0.25-0.3 s; every other answer is instant.
    set_connection("ds", "dropstream", HOST, "api-user", "secret", max_wait=0.3, max_concurrency=8)
    hook = DropStreamHook("ds", transport=httpx.MockTransport(recorder))
    ids = [o.id for o in hook.iter_orders(window=(BASE, BASE + timedelta(minutes=250)), limit=10)]

    assert ids == list(range(250))  # in order, each once
    pages = [int(p["page"]) for p in recorder.data_requests("/dropstream/orders") if "page" in p]
    # While page 2 waited for its retry, more pages went out than the controller's read-ahead
    # (limit + 1 = 5 at the start, 3 after the 503's cut): the others did not wait behind the head.
    assert pages[0] == 2 and retry_saw_six_others == [True]
    assert sorted(pages) == [2, *range(2, 26)]  # nothing read twice but the retried page


@pytest.mark.parametrize(("max_concurrency", "capped"), [(4, 1), (1, 0)])
def test_a_concurrent_read_caps_the_malloc_arenas_first(set_connection, monkeypatch, max_concurrency, capped):
    calls = []
    monkeypatch.setattr(base, "cap_malloc_arenas", lambda: calls.append("cap"))
    set_connection("ds", "dropstream", HOST, "api-user", "secret", max_concurrency=max_concurrency)
    hook = DropStreamHook(
        "ds", transport=httpx.MockTransport(FakeDropStream([dropstream_order(i) for i in range(30)]))
    )
    ids = [o.id for o in hook.iter_orders(window=(BASE, BASE + timedelta(minutes=30)), limit=10)]
    assert ids == list(range(30))
    assert calls == ["cap"] * capped  # a serial read has no paging threads, so no arenas of theirs


# --------------------------------------------------------------------------- bytes parsers
# A record kept as bytes carries only the fields its parser decoded: without its identity,
# exactly-once dedupes nothing; without its state, the drift check sees no unknown state.


@pytest.mark.parametrize(
    ("declaration", "resource"),
    [(declaration, resource) for declaration in VENDORS.values() for resource in declaration.resources],
)
def test_every_declared_vendor_s_bytes_parser_must_decode_identity_and_state(declaration, resource):
    needed = (*declaration.identity_fields[resource], *state_fields(declaration.vendor, resource))
    raw_bytes_page(resource, (), needed, declaration=declaration, resource=resource)  # enough

    for left_out in dict.fromkeys(needed):
        fields = tuple(name for name in needed if name != left_out) or ("something_else",)
        with pytest.raises(TypeError) as refused:
            raw_bytes_page(resource, (), fields, declaration=declaration, resource=resource)
        assert str(refused.value) == (
            f"{declaration.name} {resource}: a bytes page parser must decode {left_out} (identity and "
            "state fields), or records kept as bytes lose their identity or state"
        )


def test_the_state_fields_are_the_ones_the_drift_meter_reads():
    assert state_fields("dropstream", "orders") == ("fulfillment_state",)
    assert state_fields("dropstream", "shipments") == ("state",)
    assert state_fields("dcl", "orders") == ("order_stage", "is_cancelled")
    assert state_fields("dcl", "shipments") == ()  # built from orders, no state table of its own
    assert state_fields("stream", "orders") == ("status",)


def records_in_flight(hook: DropStreamHook) -> list[object]:
    """Every record of every page the hook's paging threads receive, as they hand it over."""
    in_flight: list[object] = []
    send_page = hook.send_page

    def recording(request, parse):
        page = send_page(request, parse)
        in_flight.extend(page.records)
        return page

    hook.send_page = recording  # type: ignore[method-assign]
    return in_flight


def test_raw_dicts_travel_untracked_and_are_built_only_as_the_caller_takes_them(set_connection):
    """Dicts built in the paging threads and held by the read-ahead reach the collector's oldest
    generation, whose full passes stop every thread: in flight, a record is untracked bytes."""
    orders = [dropstream_order(i) for i in range(120)]
    set_connection("ds", "dropstream", HOST, "api-user", "secret", max_wait=0, max_concurrency=4)
    hook = DropStreamHook("ds", transport=httpx.MockTransport(FakeDropStream(orders)))
    in_flight = records_in_flight(hook)
    taken = list(hook.iter_orders(window=(BASE, BASE + timedelta(minutes=120)), limit=10, raw=True))

    assert taken == json.loads(json.dumps(orders))  # the vendor's objects, in order, each once
    assert all(type(record) is dict for record in taken)
    assert in_flight and {type(record) for record in in_flight} == {RawRecord}
    assert not any(gc.is_tracked(record) for record in in_flight)


def test_models_travel_as_untracked_bytes_and_are_validated_only_as_the_caller_takes_them(
    set_connection, monkeypatch
):
    """A page of models held until consumed outlives the collector's young generations; each one
    is built from its bytes as it is taken, so none outlives its turn unless the caller keeps it."""
    orders = [dropstream_order(i) for i in range(40)]
    set_connection("ds", "dropstream", HOST, "api-user", "secret", max_wait=0, max_concurrency=4)
    hook = DropStreamHook("ds", transport=httpx.MockTransport(FakeDropStream(orders)))
    built: list[int] = []

    class CountedOrder(DropStreamOrder):
        @classmethod
        def model_validate_json(cls, data, **kwargs):  # type: ignore[override]
            built.append(1)
            return DropStreamOrder.model_validate_json(data, **kwargs)

    monkeypatch.setattr(DropStreamHook, "model_for", lambda self, resource: CountedOrder)
    in_flight = records_in_flight(hook)
    records = hook.iter_orders(window=(BASE, BASE + timedelta(minutes=40)), limit=10)
    first = next(records)

    assert len(built) == 1 and len(in_flight) >= 10  # a whole page read, one model built
    assert {type(record) for record in in_flight} == {RawRecord}
    assert not any(gc.is_tracked(record) for record in in_flight)
    taken = [first, *records]
    assert taken == [DropStreamOrder.model_validate(order) for order in orders]  # in order, each once
    assert len(built) == 40


def test_a_record_that_fails_validation_is_named_by_its_request_and_place_in_the_page(set_connection):
    orders = [dropstream_order(i) for i in range(25)]
    orders[13]["shipping_amount"] = "lots"  # page 2, its fourth record
    set_connection("ds", "dropstream", HOST, "api-user", "secret", max_wait=0, max_concurrency=1)
    recorder = Recorder(FakeDropStream(orders))
    hook = DropStreamHook("ds", transport=httpx.MockTransport(recorder))
    taken: list[int] = []

    with pytest.raises(FulfillmentAPIError) as raised:
        for order in hook.iter_orders(paging="session", limit=10):
            taken.append(order.id)

    assert taken == list(range(13))  # everything before it, each once
    assert str(raised.value) == (
        "DropStream connection 'ds': GET /orders?session_id=s1 failed: HTTP 200: invalid response body: "
        "orders.3.shipping_amount: Value error, not a decimal number: 'lots' (the response body was not "
        "what the API documents)"
    )
    assert len(recorder.data_requests("/dropstream/orders")) == 2  # not retried: it will not change
