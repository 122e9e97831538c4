"""DCL: HTTP Basic, `page`/`page_size` paging with no total, errors also inside HTTP 200 bodies."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import httpx

from airflow_provider_fulfillment import vendors
from airflow_provider_fulfillment.hooks.base import (
    FulfillmentHook,
    Query,
    RecordModels,
    RecordState,
    Resource,
    boolean,
    bounded_int,
    missing_records,
    raw_bytes_page,
    raw_page,
    text_value,
)
from airflow_provider_fulfillment.http import ClientSettings
from airflow_provider_fulfillment.models._types import parse_dcl_datetime
from airflow_provider_fulfillment.models.dcl import DclOrder, DclOrderPage, DclShipment
from airflow_provider_fulfillment.paging import (
    DCL_EPOCH,
    DCL_MAX_PAGE_SIZE,
    Page,
    PageRequest,
    check_dcl,
    dcl_plan,
)
from airflow_provider_fulfillment.rawpages import RawRecord
from airflow_provider_fulfillment.windows import (
    MIN_SPLIT,
    PACIFIC,
    Window,
    dcl_bounds,
    in_range,
    to_aware_datetime,
)

FILTER_TAGS = (
    "order_stage",
    "order_status",
    "account_number",
    "po_number",
    "customer_number",
    "shipping_carrier",
    "shipping_service",
    "order_type",
    "system_id",
    "custom_field1",
    "custom_field2",
    "custom_field3",
    "custom_field4",
    "custom_field5",
)
FILTER_OPERATORS = ("eq", "neq", "gt", "ge", "lt", "le")
_CLAUSE = re.compile(r'^\s*(\w+)\s+(\w+)\s+("(?:[^"]*)"|-?\d+(?:\.\d+)?)\s*$')
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$")
# Window fields of the order itself; `ship_date` belongs to each nested shipment.
ORDER_WINDOW_FIELDS = ("modified_at", "received_date", "ordered_date")
SHIPMENT_WINDOW_FIELDS = ("ship_date",)


def filter_expression(name: str, value: Any) -> str:
    """Check DCL's `filter` language (`order_stage gt 40, custom_field1 eq "X"`) before sending it."""
    clauses = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if not clauses:
        raise ValueError(f"{name!r} must be a filter expression string, got {value!r}")
    parts: list[str] = []
    for clause in clauses:
        for piece in _split_clauses(str(clause)):
            match = _CLAUSE.match(piece)
            if not match:
                raise ValueError(
                    f"{name!r}: cannot read {piece.strip()!r}; expected '<tag> <op> <value>' "
                    'such as order_stage gt 40 or custom_field1 eq "ABC"'
                )
            tag, operator, operand = match.groups()
            if tag not in FILTER_TAGS:
                raise ValueError(f"{name!r}: unknown tag {tag!r}; known: {', '.join(FILTER_TAGS)}")
            if operator not in FILTER_OPERATORS:
                raise ValueError(
                    f"{name!r}: unknown operator {operator!r}; known: {', '.join(FILTER_OPERATORS)}"
                )
            parts.append(f"{tag} {operator} {operand}")
    return ", ".join(parts)


def _split_clauses(text: str) -> list[str]:
    pieces, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise ValueError(f"'filter': unbalanced quote in {text!r}")
    pieces.append("".join(current))
    return [piece for piece in pieces if piece.strip()]


def local_from(name: str, value: Any) -> str:
    """`received_from`/`shipped_from`: DCL reads a local (US Pacific) date or date-time."""
    if isinstance(value, str) and _LOCAL.match(value.strip()):
        _check_calendar(name, value.strip())
        return value.strip()
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return to_aware_datetime(value, f"filter {name!r}").astimezone(PACIFIC).strftime("%Y-%m-%dT%H:%M:%S")


def local_day(name: str, value: Any) -> str:
    """`received_to`/`shipped_to`: only the (Pacific) date counts, the whole day included."""
    if isinstance(value, str) and _LOCAL.match(value.strip()):
        _check_calendar(name, value.strip())
        return value.strip()[:10]
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return to_aware_datetime(value, f"filter {name!r}").astimezone(PACIFIC).date().isoformat()


def modified_bound(name: str, value: Any) -> str:
    """`modified_*`: any ISO 8601 value; an offset-less one is Pacific local time, as DCL documents.

    A bare date is Pacific midnight (as in `received_*`), sent with its offset.
    """
    day = value if isinstance(value, date) and not isinstance(value, datetime) else None
    if isinstance(value, str) and _LOCAL.match(value.strip()):
        text = value.strip()
        _check_calendar(name, text)
        if "T" in text:
            return text
        day = date.fromisoformat(text)
    if day is not None:
        midnight = datetime(day.year, day.month, day.day, tzinfo=PACIFIC)
        in_range(midnight, f"filter {name!r}", value if isinstance(value, str) else day.isoformat())
        return midnight.isoformat(timespec="seconds")
    return to_aware_datetime(value, f"filter {name!r}").isoformat(timespec="seconds")


def _check_calendar(name: str, text: str) -> None:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"filter {name!r}: {text!r} is not a real date") from None


# What `fields` may name: the documented order fields (the model mirrors the documented order).
ORDER_FIELDS = tuple(DclOrder.model_fields)


def field_names(name: str, value: Any) -> str:
    """`fields`: a comma list of documented order field names, checked before any request."""
    text = comma_list(name, value)
    unknown = [field for field in (part.strip() for part in text.split(",")) if field not in ORDER_FIELDS]
    if unknown:
        raise ValueError(
            f"{name!r}: unknown DCL order field(s) {', '.join(map(repr, unknown))}; known: {', '.join(ORDER_FIELDS)}"
        )
    return ",".join(part.strip() for part in text.split(","))


def comma_list(name: str, value: Any) -> str:
    items = (
        [value]
        if isinstance(value, (str, int))
        else list(value)
        if isinstance(value, (list, tuple))
        else None
    )
    if not items:
        raise ValueError(f"{name!r} must be a string or a list of strings, got {value!r}")
    return ",".join(text_value(name, item) for item in items)


class DclHook(FulfillmentHook):
    """Orders from DCL (with their nested shipments, packages and tracking), over HTTP Basic.

    DCL gives no total: pages are read until an empty or short one. An `error_code` other than 0 is
    an error even in an HTTP 200. Shipments are the orders' nested `shipments`, each tagged with its
    `order_number`. Offset-less DCL times are US Pacific.
    """

    declaration = vendors.DCL
    _order_filters: ClassVar[Mapping[str, Any]] = {
        "status": text_value,
        "order_numbers": comma_list,
        "received_from": local_from,
        "received_to": local_day,
        "shipped_from": local_from,
        "shipped_to": local_day,
        "modified_from": modified_bound,
        "modified_to": modified_bound,
        "fields": field_names,
        "filter": filter_expression,
        "extended_date": boolean,
    }
    filters: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "orders": _order_filters,
        "shipments": _order_filters,
    }

    @classmethod
    def is_raw_state(cls, resource: str, text: str) -> bool:
        return resource == "orders" and text.isdigit()  # an order_stage code (2..70)

    @classmethod
    def state_query(cls, raw_state: str, filters: Mapping[str, Any]) -> dict[str, Any]:
        """A stage code through DCL's filter language, joined to any `filter` given; other raw
        states (`cancelled`, shipment delivery statuses) have no server filter."""
        query = dict(filters)
        if raw_state.isdigit():
            clause = f"order_stage eq {int(raw_state)}"
            existing = query.get("filter")
            if existing:
                existing = ", ".join(existing) if isinstance(existing, (list, tuple)) else str(existing)
            query["filter"] = f"{existing}, {clause}" if existing else clause
        return query

    def build_auth(self, settings: ClientSettings) -> httpx.Auth:
        if not (settings.login and settings.password):
            raise ValueError(f"connection '{settings.conn_id}': DCL needs the account login and password")
        return httpx.BasicAuth(settings.login, settings.password)

    def options_for(self, resource: Resource) -> Mapping[str, Any]:
        return {"page_size": bounded_int(1, DCL_MAX_PAGE_SIZE)}

    def window_fields(self, resource: Resource) -> tuple[str, ...]:
        return ORDER_WINDOW_FIELDS + (SHIPMENT_WINDOW_FIELDS if resource == "shipments" else ())

    def window_params(self, resource: Resource, window: Window, field_name: str) -> dict[str, Any]:
        if field_name == "modified_at":
            return dcl_bounds(window, "modified")
        if field_name == "received_date":
            # Times come back only with extended_date; without them the trim would be by day.
            return {**dcl_bounds(window, "received"), "extended_date": "true"}
        if field_name == "ship_date":
            return {**dcl_bounds(window, "shipped"), "extended_date": "true"}
        return {}  # ordered_date: no server filter, trimmed on the client

    def prepare(self, resource, filters, window, window_field, raw=False):  # type: ignore[override]
        query = super().prepare(resource, filters, window, window_field, raw)
        if query.window is not None:
            bounds = set(self.window_params(resource, query.window, query.window_field or "")) - {
                "extended_date"
            }
            clash = sorted(set(filters) & bounds)
            if clash:
                raise ValueError(f"give either window= or {', '.join(clash)}, not both")
        if "fields" in query.params:
            # Records must still carry what identifies, normalizes and trims them.
            wanted = query.params["fields"].split(",")
            # modified_at: every read is cut into slices at the modification times it saw
            required = ["order_number", "order_stage", "is_cancelled", "modified_at"]
            if query.window_field in ORDER_WINDOW_FIELDS and query.window_field not in required:
                required.append(query.window_field)
            if resource == "shipments":
                required.append("shipments")
            query.params["fields"] = ",".join(wanted + [f for f in required if f not in wanted])
        return query

    @staticmethod
    def parse_page(response: httpx.Response) -> Page[DclOrder]:
        page = DclOrderPage.model_validate_json(response.content)
        if page.orders is None and page.error_code in (None, 0):
            raise missing_records("orders", {"error_message": page.error_message})
        return Page(page.orders or [], {"error_code": page.error_code, "error_message": page.error_message})

    parse_raw_page = staticmethod(raw_page("orders", ("error_code", "error_message"), "order_number"))
    parse_raw_bytes_page = staticmethod(
        raw_bytes_page(
            "orders",
            ("error_code", "error_message"),
            ("order_number", "account_number", "id", *ORDER_WINDOW_FIELDS, "order_stage", "is_cancelled"),
            declaration=vendors.DCL,
            resource="orders",
        )
    )
    parse_time = staticmethod(parse_dcl_datetime)

    def model_for(self, resource: Resource) -> Any:
        return DclOrder if resource == "orders" else DclShipment

    def fetch(self, query: Query) -> Iterator[DclOrder]:
        field_name = query.window_field or ""
        plan = dcl_plan(
            "/orders",
            query.params,
            page_size=query.options.get("page_size", DCL_MAX_PAGE_SIZE),
            window=query.window,
            sliceable=field_name == "modified_at",
            bounds_of=lambda part: dcl_bounds(part, "modified"),
            id_of=lambda order: self.record_key("orders", order),  # (account_number, order_number)
            admit=self.in_window(field_name),
            modified=self.modified_range(query),
            modified_of=lambda order: self.record_time(order, "modified_at"),
        )
        if not query.raw:  # shipments too: they are built from their orders' models
            return self.run_plan(plan, self.parse_raw_bytes_page, RecordModels(DclOrder, "orders"))
        if query.raw == "bytes" and query.resource == "orders":
            return self.run_plan(plan, self.parse_raw_bytes_page)
        return self.run_plan(plan, self.parse_raw_page)

    @staticmethod
    def modified_range(query: Query) -> Window:
        """The modification times a read's slices cover: the `modified_*` filters given, else from
        the window's start (or `DCL_EPOCH`) to a day past now (the outer slices are open anyway)."""
        given = {
            name: parse_dcl_datetime(query.params.get(name)) for name in ("modified_from", "modified_to")
        }
        start = given["modified_from"] or (query.window.start if query.window is not None else DCL_EPOCH)
        latest = max(datetime.now(UTC), query.window.end if query.window is not None else start)
        end = given["modified_to"] or latest + timedelta(days=1)
        return Window(start, max(end, start + MIN_SPLIT))

    def _records(self, query: Query) -> Iterator[Any]:
        orders = self.fetch(query)
        field_name = query.window_field or ""
        if query.resource == "orders":
            return self.trim(orders, query.window, field_name)
        if field_name in ORDER_WINDOW_FIELDS:
            return self._shipments_of(self.trim(orders, query.window, field_name))
        return self.trim(self._shipments_of(orders), query.window, field_name)

    @staticmethod
    def _shipments_of(orders: Iterator[Any]) -> Iterator[Any]:
        for order in orders:
            if type(order) is RawRecord:  # a synthesised shipment has no vendor bytes of its own
                order = order.decode()
            if type(order) is dict:
                copied = {"order_number": order.get("order_number")}  # as DclOrder.shipment_records
                if order.get("account_number") is not None:
                    copied["account_number"] = order["account_number"]
                for shipment in order.get("shipments") or ():
                    yield {**shipment, **copied}
            else:
                yield from order.shipment_records()

    # single records ------------------------------------------------------------------
    def order_request(self, ident: str) -> PageRequest:
        return PageRequest("/orders", {"order_numbers": ident, "page": 1, "page_size": DCL_MAX_PAGE_SIZE})

    def parse_order(self, ident: str, response: httpx.Response) -> DclOrder | None:
        page = self.parse_page(response)
        check_dcl(page)
        return next((o for o in page.records if o.order_number == ident), None)

    def state_request(self, resource: str, ident: str) -> PageRequest:
        return self.order_request(ident)

    def state_from_response(self, resource: str, ident: str, response: httpx.Response) -> RecordState:
        order = self.parse_order(ident, response)
        if order is None:
            return RecordState(self.vendor, resource, ident, found=False)
        if resource == "order":
            common = order.to_common()
        else:
            shipments = order.to_common_shipments()
            if not shipments:
                return RecordState(self.vendor, resource, ident, found=False)
            # An order's shipments move together; the least advanced one says where the order stands.
            rank = {"error": 0, "pending": 1, "processing": 2, "shipped": 3, "delivered": 4, "canceled": 5}
            common = min(shipments, key=lambda s: rank.get(s.status, 2))
        return self.state_of(resource, ident, common)

    def probe(self) -> str:
        page = self.http.request("GET", "/orders", params={"page": 1, "page_size": 1}, parse=self.parse_page)
        check_dcl(page)
        return "orders endpoint answered"


__all__ = ["DclHook", "DclOrder", "DclShipment"]
