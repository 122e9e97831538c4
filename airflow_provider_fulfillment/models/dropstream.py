"""DropStream records (dropstream-order-object.txt, dropstream-shipments-endpoint.txt) and page envelopes.

DropStream sends money as decimal strings ("1.23") and dates as ISO 8601 with ``Z`` or an offset.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from airflow_provider_fulfillment.models._types import (
    DecimalStr,
    DropStreamDateTime,
    OptionalBool,
    OptionalInt,
    VendorModel,
    parse_dropstream_datetime,
)
from airflow_provider_fulfillment.models.common import LineItem, Order, Shipment
from airflow_provider_fulfillment.models.states import state_table

__all__ = [
    "DropStreamAddress",
    "DropStreamOrder",
    "DropStreamOrderEnvelope",
    "DropStreamOrderItem",
    "DropStreamOrderPage",
    "DropStreamShipment",
    "DropStreamShipmentItem",
    "DropStreamShipmentPage",
    "parse_dropstream_datetime",
]

_ORDER_STATES = state_table("dropstream", "orders")
_SHIPMENT_STATES = state_table("dropstream", "shipments")


class DropStreamAddress(VendorModel):
    first_name: str | None = None
    last_name: str | None = None
    street1: str | None = None
    street2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None  # 2-char code
    telephone: str | None = None


class DropStreamOrderItem(VendorModel):
    """An order line, as documented: no item id and no quantity (undocumented fields are kept as extras).

    Its line id is the documented ``external_order_item_id``; a shipment's ``order_items`` are bare
    ``{"id"}`` references that no documented item field matches, so reconciliation compares only
    the number of distinct items (see ``rules.reconcile``).
    """

    name: str | None = None
    sku: str | None = None
    upc: str | None = None
    unit_price: DecimalStr = None
    unit_cost: DecimalStr = None
    weight: DecimalStr = None
    external_order_item_id: str | None = None
    discount_amount: DecimalStr = None
    tax_amount: DecimalStr = None
    gift_wrap: OptionalBool = None
    external_product_id: str | None = None
    customer_notes: str | None = None
    vendor_id: str | None = None
    vendor_part_number: str | None = None
    buyer_part_number: str | None = None
    color_description: str | None = None
    size_description: str | None = None
    drop_ship: str | None = None
    product_type: str | None = None
    created_at: DropStreamDateTime = None
    options: list[dict[str, Any]] | None = None
    custom: dict[str, Any] | None = None

    def to_line_item(self) -> LineItem:
        return LineItem(line_id=self.external_order_item_id, sku=self.sku)


class DropStreamOrder(VendorModel):
    """A DropStream sales order (``GET /orders``, ``GET /orders/{id}``)."""

    id: int
    store_id: OptionalInt = None
    external_id: str | None = None
    external_billing_customer_id: str | None = None
    customer_email: str | None = None
    external_shipping_customer_id: str | None = None
    ordered_at: DropStreamDateTime = None
    invoice_number: str | None = None
    payment_type: str | None = None
    external_warehouse_order_id: str | None = None
    shipping_carrier_name: str | None = None
    shipping_carrier_service_level: str | None = None
    shipping_warehouse_code: str | None = None
    signature_required: OptionalBool = None
    shipping_insurance: OptionalBool = None
    external_shipping_description: str | None = None
    external_display_id: str | None = None
    external_source_display_id: str | None = None
    purchase_order_id: str | None = None
    notes: str | None = None
    shipping_notes: str | None = None
    gift_message: str | None = None
    batch_id: str | None = None
    shipping_amount: DecimalStr = None
    discount_amount: DecimalStr = None
    tax_amount: DecimalStr = None
    shipping_tax_amount: DecimalStr = None
    third_party_account_number: str | None = None
    third_party_billing_code: str | None = None
    discount_codes: str | None = None
    external_source_id: str | None = None
    lead_source: str | None = None
    packing_slip_id: str | None = None
    requested_ship_date: DropStreamDateTime = None
    requested_cancel_date: DropStreamDateTime = None
    payment_date: DropStreamDateTime = None
    external_tags: str | None = None  # comma-delimited
    retailer_id: str | None = None
    supplier_id: str | None = None
    insured_amount: DecimalStr = None
    terms: str | None = None
    sales_rep_last_name: str | None = None
    sales_rep_first_name: str | None = None
    sales_rep_email: str | None = None
    fulfillment_state: str | None = None
    fulfillment_transitioned_at: DropStreamDateTime = None
    external_type: str | None = None
    fulfillment_warehouse_id: OptionalInt = None
    country_of_origin: str | None = None
    shipment_contents: str | None = None
    declared_value: DecimalStr = None
    currency_code: str | None = None
    customer_service_url: str | None = None
    customer_service_email: str | None = None
    customer_service_telephone: str | None = None
    created_at: DropStreamDateTime = None
    custom: dict[str, Any] | None = None
    shipping_address: DropStreamAddress | None = None
    billing_address: DropStreamAddress | None = None
    order_items: list[DropStreamOrderItem] | None = None

    def to_common(self) -> Order:
        raw = self.fulfillment_state or ""
        return Order(
            vendor="dropstream",
            id=str(self.id),
            number=self.external_display_id,
            status=_ORDER_STATES.normalize(raw),
            raw_status=raw,
            status_since=self.fulfillment_transitioned_at,
            created_at=self.created_at,
            ordered_at=self.ordered_at,
            ship_by=self.requested_ship_date,
            items=[item.to_line_item() for item in self.order_items or ()],
        )


class DropStreamShipmentItem(VendorModel):
    """A shipment's reference to an order item: ``{"id": 270322009}`` (all the docs show)."""

    id: OptionalInt = None


class DropStreamShipment(VendorModel):
    """A DropStream shipment (``GET /shipments``)."""

    id: int
    tracking_number: str | None = None
    created_at: DropStreamDateTime = None
    order_id: OptionalInt = None
    shipped_at: DropStreamDateTime = None
    expected_delivery_date: DropStreamDateTime = None  # served, though not in the docs
    weight: DecimalStr = None
    external_shipping_description: str | None = None
    carrier_name: str | None = None
    service_level: str | None = None
    warehouse_id: OptionalInt = None
    state: str | None = None
    order_items: list[DropStreamShipmentItem] | None = None

    def to_common(self) -> Shipment:
        raw = self.state or ""
        return Shipment(
            vendor="dropstream",
            id=str(self.id),
            order_id=None if self.order_id is None else str(self.order_id),
            tracking_numbers=[self.tracking_number] if self.tracking_number else [],
            status=_SHIPMENT_STATES.normalize(raw),
            raw_status=raw,
            created_at=self.created_at,
            shipped_at=self.shipped_at,
            expected_delivery_at=self.expected_delivery_date,
            items=[
                LineItem(line_id=None if item.id is None else str(item.id)) for item in self.order_items or ()
            ],
        )


class _DropStreamPageMeta(VendorModel):
    session_id: str | None = None
    page: OptionalInt = None
    limit: OptionalInt = None
    total_count: OptionalInt = None
    total_pages: OptionalInt = None
    max_total_reached: OptionalBool = None


class DropStreamOrderPage(_DropStreamPageMeta):
    """One ``GET /orders`` response; parse whole pages with ``model_validate_json(body)``."""

    orders: list[DropStreamOrder] = Field(default_factory=list)


class DropStreamShipmentPage(_DropStreamPageMeta):
    """One ``GET /shipments`` response."""

    shipments: list[DropStreamShipment] = Field(default_factory=list)


class DropStreamOrderEnvelope(VendorModel):
    """``GET /orders/{id}``: ``{"order": {...}}``."""

    order: DropStreamOrder
