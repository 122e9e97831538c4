"""DropStream: JWT from `POST /auth/token`, session- or page-based paging with the 10,000 cap."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import httpx

from airflow_provider_fulfillment import vendors
from airflow_provider_fulfillment.hooks.base import (
    FulfillmentHook,
    Query,
    RecordModels,
    RecordState,
    Resource,
    bounded_int,
    date_value,
    id_or_name,
    missing_records,
    one_of,
    raw_bytes_page,
    raw_page,
    record_of,
    text_value,
)
from airflow_provider_fulfillment.http import BearerTokenAuth, ClientSettings, record_path
from airflow_provider_fulfillment.models import states
from airflow_provider_fulfillment.models._types import parse_dropstream_datetime
from airflow_provider_fulfillment.models.dropstream import (
    DropStreamOrder,
    DropStreamOrderPage,
    DropStreamShipment,
    DropStreamShipmentPage,
)
from airflow_provider_fulfillment.paging import (
    DROPSTREAM_MAX_LIMIT,
    DROPSTREAM_RESULT_CAP,
    Page,
    PageRequest,
    dropstream_plan,
)
from airflow_provider_fulfillment.windows import Window, dropstream_bounds

log = logging.getLogger(__name__)

PAGING_MODES = ("auto", "session", "page")
_PAGE_META = ("session_id", "page", "limit", "total_count", "total_pages", "max_total_reached")
# What paging (identity, session resume), windows and states read of a record kept as bytes.
_RAW_FIELDS = {
    "orders": ("id", "created_at", "ordered_at", "fulfillment_state"),
    "shipments": ("id", "created_at", "shipped_at", "state"),
}
# Declared once, so a parser missing an identity or state field fails at import, not mid-read.
_BYTES_PAGES = {
    resource: raw_bytes_page(resource, _PAGE_META, fields, declaration=vendors.DROPSTREAM, resource=resource)
    for resource, fields in _RAW_FIELDS.items()
}
# Our default page size: the API's maximum, because round trips, not bytes, bound extraction time.
DEFAULT_LIMIT = DROPSTREAM_MAX_LIMIT
# `sort` takes any documented property (the docs: "specify them by name"); the models mirror the
# documented objects, so their scalar fields are the list. Nested objects cannot be sorted on.
_NESTED = frozenset({"custom", "shipping_address", "billing_address", "order_items"})
ORDER_SORTS = tuple(name for name in DropStreamOrder.model_fields if name not in _NESTED)
SHIPMENT_SORTS = tuple(name for name in DropStreamShipment.model_fields if name not in _NESTED)


def _sort(choices: tuple[str, ...]):
    check = one_of(choices, "sort property")

    def validate(name: str, value: Any) -> str:
        # The API honours only the last `sort`; so do we, rather than send several.
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError(f"{name!r} must not be empty")
            value = value[-1]
        return check(name, value)

    return validate


class DropStreamHook(FulfillmentHook):
    """Orders and shipments from DropStream.

    Login and password are exchanged for a JWT at `POST /auth/token` (cached, renewed once on 401);
    a ready JWT can be given in the connection extra `token` instead.

    `paging="auto"` (default) reads a window page-based, halving it until every part fits the
    10,000-result cap, and reads anything without a window through a session; `"session"` and
    `"page"` force one mode (page mode still never truncates: it splits or falls back to a session).
    Records come in ascending id within each window part, parts in time order.
    """

    declaration = vendors.DROPSTREAM
    reports_read_total = True  # a read opens with a session or sizing request: its total_count
    # Most results a page-based query returns; more means `max_total_reached` and a cut set.
    result_cap: int = DROPSTREAM_RESULT_CAP
    filters: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "orders": {
            "ordered_at_min": date_value,
            "ordered_at_max": date_value,
            "created_at_min": date_value,
            "created_at_max": date_value,
            "store_id": id_or_name,
            "external_id": text_value,
            "external_display_id": text_value,
            "state": one_of(states.known_states("dropstream", "orders"), "DropStream order state"),
            "sort": _sort(ORDER_SORTS),
        },
        "shipments": {
            "shipped_at_min": date_value,
            "shipped_at_max": date_value,
            "created_at_min": date_value,
            "created_at_max": date_value,
            "tracking_number": text_value,
            "store_id": id_or_name,
            "warehouse_id": id_or_name,
            "customer_id": id_or_name,
            "state": one_of(states.known_states("dropstream", "shipments"), "DropStream shipment state"),
            "sort": _sort(SHIPMENT_SORTS),
        },
    }

    # auth ----------------------------------------------------------------------------
    def build_auth(self, settings: ClientSettings) -> httpx.Auth:
        if settings.token:
            return BearerTokenAuth(None, None, ready_token=settings.token)
        if not (settings.login and settings.password):
            raise ValueError(
                f"connection '{settings.conn_id}': DropStream needs login and password (API user), "
                "or a ready JWT in extra 'token'"
            )
        basic = base64.b64encode(f"{settings.login}:{settings.password}".encode()).decode()
        url = f"{settings.base_url}/auth/token"

        def token_request() -> httpx.Request:
            return httpx.Request(
                "POST",
                url,
                json={"grant_type": "client_credentials"},
                headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
            )

        def read_token(response: httpx.Response) -> str:
            token = response.json().get("access_token")
            if not token:
                raise ValueError("the token endpoint answered without an access_token")
            return token

        return BearerTokenAuth(token_request, read_token, shared_by=(settings.conn_id, url, settings.login))

    # filters and windows -------------------------------------------------------------
    def options_for(self, resource: Resource) -> Mapping[str, Any]:
        return {"paging": one_of(PAGING_MODES, "paging mode"), "limit": bounded_int(1, DROPSTREAM_MAX_LIMIT)}

    def window_fields(self, resource: Resource) -> tuple[str, ...]:
        return ("created_at", "ordered_at") if resource == "orders" else ("created_at", "shipped_at")

    def window_params(self, resource: Resource, window: Window, field_name: str) -> dict[str, Any]:
        return dropstream_bounds(window, field_name)

    def prepare(self, resource, filters, window, window_field, raw=False):  # type: ignore[override]
        query = super().prepare(resource, filters, window, window_field, raw)
        if query.window is not None:
            clash = sorted(set(filters) & set(dropstream_bounds(query.window, query.window_field or "")))
            if clash:
                raise ValueError(f"give either window= or {', '.join(clash)}, not both")
        return query

    # paging --------------------------------------------------------------------------
    @staticmethod
    def parse_page(resource: Resource, raw: bool | str = False):
        if raw == "bytes":
            return _BYTES_PAGES[resource]
        if raw:
            return raw_page(resource, _PAGE_META)
        model = DropStreamOrderPage if resource == "orders" else DropStreamShipmentPage

        def parse(response: httpx.Response) -> Page[Any]:
            page = model.model_validate_json(response.content)
            if resource not in page.model_fields_set:
                raise missing_records(resource, page.model_extra)
            return Page(getattr(page, resource), {name: getattr(page, name) for name in _PAGE_META})

        return parse

    parse_time = staticmethod(parse_dropstream_datetime)

    def model_for(self, resource: Resource) -> Any:
        return DropStreamOrder if resource == "orders" else DropStreamShipment

    def fetch(self, query: Query) -> Iterator[Any]:
        field_name = query.window_field or "created_at"
        plan = dropstream_plan(
            f"/{query.resource}",
            query.params,
            mode=query.options.get("paging", "auto"),
            limit=query.options.get("limit", DEFAULT_LIMIT),
            window=query.window,
            width=self.settings.max_concurrency,
            bounds_of=lambda part: dropstream_bounds(part, field_name),
            id_of=self.record_id,
            time_of=lambda record: self.record_time(record, "created_at"),
            admit=self.in_window(field_name),
            cap=self.result_cap,
        )
        if query.raw:
            return self.run_plan(plan, self.parse_page(query.resource, query.raw))
        models = RecordModels(self.model_for(query.resource), query.resource)
        return self.run_plan(plan, self.parse_page(query.resource, "bytes"), models)

    def count_records(self, resource, window, *, window_field=None, **filters):  # type: ignore[override]
        """`total_count` of a one-record session-opening request (not capped at 10,000)."""
        query = self.prepare(resource, {**filters, "limit": 1}, window, window_field, raw=True)
        page = self.http.request(
            "GET", f"/{resource}", params={**query.params, "limit": 1}, parse=self.parse_page(resource, True)
        )
        total = page.meta.get("total_count")
        return None if total is None else int(total)

    # single records ------------------------------------------------------------------
    def order_request(self, ident: str) -> PageRequest:
        return PageRequest(record_path("/orders", ident))

    def parse_order(self, ident: str, response: httpx.Response) -> DropStreamOrder:
        return DropStreamOrder.model_validate(record_of(response, "order"))

    def state_request(self, resource: str, ident: str) -> PageRequest:
        if resource == "order":
            return self.order_request(ident)
        return PageRequest("/shipments", {"tracking_number": ident, "page": 1, "limit": 100})

    def state_from_response(self, resource: str, ident: str, response: httpx.Response) -> RecordState:
        if resource == "order":
            common = self.parse_order(ident, response).to_common()
        else:
            shipments = DropStreamShipmentPage.model_validate_json(response.content).shipments
            if not shipments:
                return RecordState(self.vendor, resource, ident, found=False)
            # A tracking number can be reused; the latest shipment carrying it is the one that counts.
            latest = max(shipments, key=lambda s: (s.created_at is not None, s.created_at, s.id))
            common = latest.to_common()
        return self.state_of(resource, ident, common)

    def probe(self) -> str:
        page = self.http.request(
            "GET", "/orders", params={"page": 1, "limit": 1}, parse=self.parse_page("orders")
        )
        total = page.meta.get("total_count")
        return f"{total if total is not None else 'some'} orders visible"


__all__ = ["DropStreamHook", "DropStreamOrder", "DropStreamShipment"]
