"""A scripted in-memory hook and helpers to run DAGs through `dag.test()` in tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_fulfillment.hooks.base import RecordState
from airflow_provider_fulfillment.http import FulfillmentAPIError
from airflow_provider_fulfillment.models.dropstream import DropStreamOrder, DropStreamShipment
from airflow_provider_fulfillment.windows import Window

BASE = datetime(2025, 10, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ds_order(
    i: int, *, state: str = "pending_shipment", minutes: int | None = None, **over: Any
) -> dict[str, Any]:
    """A DropStream order created `minutes` (default i*30) after BASE, with two items."""
    created = BASE + timedelta(minutes=30 * i if minutes is None else minutes)
    record: dict[str, Any] = {
        "id": 1000 + i,
        "external_display_id": f"SO{1000 + i}",
        "fulfillment_state": state,
        "fulfillment_transitioned_at": iso(created + timedelta(minutes=5)),
        "created_at": iso(created),
        "ordered_at": iso(created),
        "requested_ship_date": iso(created + timedelta(days=1)),
        "shipping_amount": "1.50",
        "custom": {"channel": "shopify"},
        "shipping_address": {"city": "Fremont", "country": "US"},
        "order_items": [
            {"id": (1000 + i) * 10, "sku": f"SKU{i}", "quantity": 1, "unit_price": "9.99"},
            {"id": (1000 + i) * 10 + 1, "sku": f"SKU{i}b", "quantity": 2, "unit_price": "0.10"},
        ],
        "unknown_vendor_field": {"kept": True},
    }
    record.update(over)
    return record


def ds_shipment(
    j: int,
    order_id: int | None,
    *,
    state: str = "notified_shipped",
    item_ids=(),
    hours: int = 30,
    tracking: str | None = None,
    **over: Any,
) -> dict[str, Any]:
    created = BASE + timedelta(hours=hours)
    record: dict[str, Any] = {
        "id": 5000 + j,
        "tracking_number": tracking or f"1Z{5000 + j:08d}",
        "created_at": iso(created),
        "shipped_at": iso(created - timedelta(minutes=10)),
        "order_id": order_id,
        "state": state,
        "order_items": [{"id": item} for item in item_ids],
    }
    record.update(over)
    return record


class FakeHook:
    """Enough of a DropStream `FulfillmentHook` for the operators: records, filters, states."""

    vendor = "dropstream"
    hook_name = "DropStream"
    conn_type = "dropstream"
    default_window_field = {"orders": "created_at", "shipments": "created_at"}

    def __init__(
        self,
        orders: list[dict[str, Any]] | None = None,
        shipments: list[dict[str, Any]] | None = None,
        *,
        fail_after: int | None = None,
        states: list[RecordState] | None = None,
    ) -> None:
        self.orders = orders or []
        self.shipments = shipments or []
        self.fail_after = fail_after
        self.states = list(states or [])
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.closed = 0

    def iter_records(
        self,
        resource: str,
        *,
        window: Any = None,
        window_field: str | None = None,
        raw: bool = False,
        **filters: Any,
    ):
        allowed = {"state", "store_id", "sort"}
        unknown = sorted(set(filters) - allowed)
        if unknown:
            raise ValueError(f"dropstream {resource}: unknown filter(s) {', '.join(map(repr, unknown))}")
        exact = None if window is None else Window.coerce(window)
        self.calls.append((resource, {"window": exact, "window_field": window_field, "raw": raw, **filters}))
        return self._records(resource, exact, window_field or "created_at", filters, raw)

    def _records(
        self, resource: str, window: Window | None, field: str, filters: dict[str, Any], raw: bool = False
    ) -> Iterator[Any]:
        rows = self.orders if resource == "orders" else self.shipments
        model = DropStreamOrder if resource == "orders" else DropStreamShipment
        state_key = "fulfillment_state" if resource == "orders" else "state"
        sent = 0
        for row in rows:
            if "state" in filters and row[state_key] != filters["state"]:
                continue
            record = model.model_validate(json.loads(json.dumps(row)))
            moment = getattr(record, field)
            if window is not None and not (moment is not None and window.start <= moment < window.end):
                continue
            if self.fail_after is not None and sent >= self.fail_after:
                raise FulfillmentAPIError(
                    conn_id="fake",
                    method="GET",
                    path=f"/{resource}",
                    params={"page": 2},
                    status=503,
                    vendor_message="unavailable",
                    attempts=5,
                )
            sent += 1
            yield json.loads(json.dumps(row)) if raw else record

    def normalize(self, resource: str, record: Any) -> Any:
        if type(record) is dict:
            record = (DropStreamOrder if resource == "orders" else DropStreamShipment).model_validate(record)
        return record.to_common()

    def get_state(self, resource: str, ident: Any) -> RecordState:
        self.calls.append(("state", {"resource": resource, "ident": str(ident)}))
        if len(self.states) > 1:
            return self.states.pop(0)
        return self.states[0]

    async def aget_state(self, resource: str, ident: Any) -> RecordState:
        self.calls.append(("astate", {"resource": resource, "ident": str(ident)}))
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def close(self) -> None:
        self.closed += 1


def state(
    raw: str | None,
    status: str | None,
    *,
    found: bool = True,
    ident: str = "1001",
    resource: str = "order",
    since: str | None = "2025-10-01T00:05:00+00:00",
) -> RecordState:
    return RecordState("dropstream", resource, ident, found, raw, status, since if found else None)
