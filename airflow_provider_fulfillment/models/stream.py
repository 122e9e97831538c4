"""Stream records (stream-orders-endpoint.txt). A Stream order is itself a shipment.

Stream sends money as JSON numbers (5000.0) and dates as "2025/08/04 11:48:40 UTC",
"2024-03-20 09:00:00" (UTC assumed) or "2024-03-20".
"""

from __future__ import annotations

from pydantic import Field

from airflow_provider_fulfillment.models._types import (
    Blankable,
    DecimalNumber,
    OptionalBool,
    OptionalInt,
    StreamDateTime,
    VendorModel,
    parse_stream_datetime,
)
from airflow_provider_fulfillment.models.common import Order, Shipment, Status
from airflow_provider_fulfillment.models.states import state_table

__all__ = [
    "StreamAddress",
    "StreamBillableWeight",
    "StreamBillableWeights",
    "StreamCountry",
    "StreamInvoiceData",
    "StreamInvoiceLineItem",
    "StreamOrder",
    "StreamOrderEnvelope",
    "StreamOrderPage",
    "StreamPageMeta",
    "StreamTaxesAndDutiesConfig",
    "parse_stream_datetime",
]

_STATES = state_table("stream", "orders")
_LINK_SUFFIX = "_link"


class StreamTaxesAndDutiesConfig(VendorModel):
    id: OptionalInt = None
    minimum_value_of_goods: DecimalNumber = None
    minimum_value_of_goods_currency_id: str | None = None


class StreamCountry(VendorModel):
    id: OptionalInt = None
    default_postal_code: str | None = None
    dhl_export_code: str | None = None
    dhl_import_code: str | None = None
    dhl_tax_code: str | None = None
    export_code_label: str | None = None
    import_code_label: str | None = None
    iso_code_2: str | None = None
    iso_code_3: str | None = None
    name: str | None = None
    postal_code_required: OptionalBool = None
    tax_number_label: str | None = None
    taxes_and_duties_config: StreamTaxesAndDutiesConfig | None = None
    vat_rate: DecimalNumber = None


class StreamAddress(VendorModel):
    id: OptionalInt = None
    address_1: str | None = None
    address_2: str | None = None
    address_3: str | None = None
    city: str | None = None
    classification: str | None = None
    company: str | None = None
    country: StreamCountry | None = None
    country_id: OptionalInt = None
    email: str | None = None
    import_code: str | None = None
    latitude: DecimalNumber = None
    longitude: DecimalNumber = None
    name: str | None = None
    phone: str | None = None
    postal_code: str | None = None
    province: str | None = None
    summary: str | None = None
    tax_number: str | None = None
    time_zone_id: str | None = None


class StreamBillableWeight(VendorModel):
    packages: OptionalInt = None
    mass_unit: str | None = None
    distance_unit: str | None = None  # "inches", not "inch"
    volumetric_weight: DecimalNumber = None
    weight: DecimalNumber = None
    billable_weight: DecimalNumber = None
    volume: DecimalNumber = None


class StreamBillableWeights(VendorModel):
    metric: StreamBillableWeight | None = None
    imperial: StreamBillableWeight | None = None


class StreamInvoiceLineItem(VendorModel):
    cost: DecimalNumber = None
    currency_id: str | None = None
    description: str | None = None


class StreamInvoiceData(VendorModel):
    """Filled once the order is invoiced (blank before: "" parses as None)."""

    billable_weights: StreamBillableWeights | None = None
    estimate_id: OptionalInt = None
    line_items: list[StreamInvoiceLineItem] | None = None
    quote_expired: OptionalBool = None
    shipping_company: str | None = None
    shipping_service: str | None = None


class StreamOrder(VendorModel):
    """A Stream order (``GET /orders``, ``GET /orders/{id}``): one consignment, so also a shipment."""

    id: int
    assigned_admin: str | None = None
    ccd_status: str | None = None
    company_id: OptionalInt = None
    created_at: StreamDateTime = None
    customer_reference: str | None = None
    date_delivered: StreamDateTime = None
    description_of_contents: str | None = None
    eei_eligible: OptionalBool = None
    internal_transaction_number: str | None = None
    invoice_data: Blankable[StreamInvoiceData] = None
    invoice_number: str | None = None
    measured_weight: DecimalNumber = None
    origin_address: StreamAddress | None = None
    destination_address: StreamAddress | None = None
    importer_of_record_address: StreamAddress | None = None
    broker_address: StreamAddress | None = None
    pickup_date: StreamDateTime = None
    pickup_instructions: str | None = None
    purpose_of_shipment_id: OptionalInt = None
    quote_id: OptionalInt = None
    reference_number: str | None = None
    scheduled_pickup: StreamDateTime = None
    send_consignee_tracking_details: OptionalBool = None
    status: str | None = None
    tracking_link: str | None = None
    value_of_goods: DecimalNumber = None
    value_of_goods_currency: str | None = None
    waybill: str | None = None
    # Document links: short-lived URLs, refreshed by fetching the order again.
    battery_declaration_link: str | None = None
    commercial_invoice_link: str | None = None
    customs_clearance_document_link: str | None = None
    draft_bill_of_lading_link: str | None = None
    eei_request_document_link: str | None = None
    export_permit_link: str | None = None
    final_bill_of_lading_link: str | None = None
    materials_safety_data_sheet_link: str | None = None
    packaging_list_link: str | None = None
    proof_of_delivery_link: str | None = None
    shippers_letter_of_instruction_link: str | None = None
    stream_packing_list_link: str | None = None
    waybill_document_link: str | None = None

    @property
    def document_links(self) -> dict[str, str]:
        """Every non-empty ``*_link`` document URL, unknown new ones included (``tracking_link`` is not a document)."""
        links = {
            name: value
            for name in type(self).model_fields
            if name.endswith(_LINK_SUFFIX) and name != "tracking_link" and (value := getattr(self, name))
        }
        for name, value in (self.model_extra or {}).items():
            if name.endswith(_LINK_SUFFIX) and isinstance(value, str) and value:
                links[name] = value
        return links

    def _status(self) -> tuple[Status, str]:
        raw = self.status or ""
        return _STATES.normalize(raw), raw

    def to_common(self) -> Order:
        status, raw = self._status()
        return Order(
            vendor="stream",
            id=str(self.id),
            number=self.reference_number,
            status=status,
            raw_status=raw,
            created_at=self.created_at,
        )

    def to_common_shipment(self) -> Shipment:
        """The order as the shipment it is: tracked by its waybill."""
        status, raw = self._status()
        return Shipment(
            vendor="stream",
            id=str(self.id),
            order_id=str(self.id),
            tracking_numbers=[self.waybill] if self.waybill else [],
            status=status,
            raw_status=raw,
            created_at=self.created_at,
            delivered_at=self.date_delivered,
        )


class StreamPageMeta(VendorModel):
    page_count: OptionalInt = None
    record_count: OptionalInt = None


class StreamOrderPage(VendorModel):
    """One ``GET /orders`` response (20 orders a page)."""

    orders: list[StreamOrder] = Field(default_factory=list)
    meta: StreamPageMeta | None = None


class StreamOrderEnvelope(VendorModel):
    """``GET /orders/{id}``: ``{"order": {...}}``."""

    order: StreamOrder
