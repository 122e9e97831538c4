"""Stream: a token from `POST /auth/sign_in`, 20 orders a page, no date filter (windows trim on the client)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import httpx

from airflow_provider_fulfillment import vendors
from airflow_provider_fulfillment.errors import FulfillmentAPIError
from airflow_provider_fulfillment.hooks.base import (
    FulfillmentHook,
    Query,
    RecordModels,
    RecordState,
    Resource,
    missing_records,
    one_of,
    raw_bytes_page,
    raw_page,
    record_of,
)
from airflow_provider_fulfillment.http import BearerTokenAuth, ClientSettings, record_path
from airflow_provider_fulfillment.models import states
from airflow_provider_fulfillment.models._types import parse_stream_datetime
from airflow_provider_fulfillment.models.stream import StreamOrder, StreamOrderPage
from airflow_provider_fulfillment.paging import Page, PageRequest, stream_plan
from airflow_provider_fulfillment.rawpages import RawRecord


class StreamHook(FulfillmentHook):
    """Orders from Stream; a Stream order is itself a shipment, so `iter_shipments` reads the same orders.

    Login (email) and password are exchanged at `POST /auth/sign_in` for a token (cached, renewed
    once on 401), or a ready token is given in the connection extra `token`. Stream has no date
    filter: a window reads every page (of the `status` asked for) and keeps the records inside it.
    """

    declaration = vendors.STREAM
    _filters: ClassVar[Mapping[str, Any]] = {
        "status": one_of(states.known_states("stream", "orders"), "Stream order status"),
    }
    filters: ClassVar[Mapping[str, Mapping[str, Any]]] = {"orders": _filters, "shipments": _filters}

    def build_auth(self, settings: ClientSettings) -> httpx.Auth:
        if settings.token:
            return BearerTokenAuth(None, None, ready_token=settings.token)
        if not (settings.login and settings.password):
            raise ValueError(
                f"connection '{settings.conn_id}': Stream needs login (email) and password, "
                "or a ready token in extra 'token'"
            )
        url = f"{settings.base_url}/auth/sign_in"
        body = {"api_user": {"email": settings.login, "password": settings.password}}

        def token_request() -> httpx.Request:
            return httpx.Request("POST", url, json=body, headers={"Accept": "application/json"})

        def read_token(response: httpx.Response) -> str:
            token = response.json().get("token")
            if not token:
                raise ValueError("the sign-in endpoint answered without a token")
            return token

        return BearerTokenAuth(token_request, read_token, shared_by=(settings.conn_id, url, settings.login))

    def window_fields(self, resource: Resource) -> tuple[str, ...]:
        return ("created_at", "date_delivered")

    @staticmethod
    def parse_page(response: httpx.Response) -> Page[StreamOrder]:
        page = StreamOrderPage.model_validate_json(response.content)
        if "orders" not in page.model_fields_set:
            raise missing_records("orders", page.model_extra)
        meta = page.meta
        return Page(
            page.orders,
            {
                "meta": {
                    "page_count": getattr(meta, "page_count", None),
                    "record_count": getattr(meta, "record_count", None),
                }
            },
        )

    parse_raw_page = staticmethod(raw_page("orders", ("meta",)))
    parse_raw_bytes_page = staticmethod(
        raw_bytes_page(
            "orders",
            ("meta",),
            ("id", "created_at", "date_delivered", "status"),
            declaration=vendors.STREAM,
            resource="orders",
        )
    )
    parse_time = staticmethod(parse_stream_datetime)

    def model_for(self, resource: Resource) -> Any:
        return StreamOrder

    def fetch(self, query: Query) -> Iterator[StreamOrder]:
        plan = stream_plan("/orders", query.params, id_of=self.record_id)
        if query.raw is True:
            return self.run_plan(plan, self.parse_raw_page)
        models = None if query.raw else RecordModels(StreamOrder, "orders")
        return self.run_plan(plan, self.parse_raw_bytes_page, models)

    def normalize(self, resource: Resource, record: Any) -> Any:
        if type(record) is RawRecord:
            record = StreamOrder.model_validate_json(record.raw)
        elif type(record) is dict:
            record = StreamOrder.model_validate(record)
        return record.to_common() if resource == "orders" else record.to_common_shipment()

    # single records ------------------------------------------------------------------
    def order_request(self, ident: str) -> PageRequest:
        return PageRequest(record_path("/orders", ident))

    def parse_order(self, ident: str, response: httpx.Response) -> StreamOrder:
        return StreamOrder.model_validate(record_of(response, "order"))

    def means_not_found(self, error: FulfillmentAPIError) -> bool:
        # Stream answers an unknown id or reference with 400 "Invalid input, object invalid".
        invalid = error.status == 400 and "object invalid" in (error.vendor_message or "").lower()
        return invalid or super().means_not_found(error)

    def state_request(self, resource: str, ident: str) -> PageRequest:
        return self.order_request(ident)

    def state_from_response(self, resource: str, ident: str, response: httpx.Response) -> RecordState:
        order = self.parse_order(ident, response)
        common = order.to_common() if resource == "order" else order.to_common_shipment()
        return self.state_of(resource, ident, common)

    def probe(self) -> str:
        page = self.http.request("GET", "/orders", params={"page": 1}, parse=self.parse_page)
        count = page.meta["meta"].get("record_count")
        return f"{count if count is not None else 'some'} orders visible"


__all__ = ["StreamHook", "StreamOrder"]
