"""DCL records (dcl-orders-endpoint.txt): orders with their lines, shipments, packages and tracking.

DCL sends money as JSON numbers (2.99) and dates as "2014-11-25" or "2014-11-28T11:05:22" in US
Pacific local time, or ISO 8601 with an offset ("modified_at").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from airflow_provider_fulfillment.models._types import (
    DclDateTime,
    DecimalNumber,
    OptionalBool,
    OptionalInt,
    StringOrList,
    VendorModel,
    parse_dcl_datetime,
)
from airflow_provider_fulfillment.models.common import LineItem, Order, Shipment
from airflow_provider_fulfillment.models.states import (
    dcl_order_raw_state,
    dcl_shipment_raw_state,
    state_table,
)

__all__ = [
    "DclAddress",
    "DclBundleLine",
    "DclLotDetail",
    "DclOrder",
    "DclOrderLine",
    "DclOrderPage",
    "DclPackage",
    "DclShipment",
    "DclShippedItem",
    "parse_dcl_datetime",
]

_ORDER_STATES = state_table("dcl", "orders")
_SHIPMENT_STATES = state_table("dcl", "shipments")


class DclAddress(VendorModel):
    company: str | None = None
    attention: str | None = None
    address1: str | None = None
    address2: str | None = None
    email: str | None = None
    phone: str | None = None
    city: str | None = None
    state_province: str | None = None
    postal_code: str | None = None
    country: str | None = None  # a name ("UNITED STATES"), not a code


class DclBundleLine(VendorModel):
    """A component line of a bundle (kit) order line."""

    line_number: OptionalInt = None
    item_number: str | None = None
    description: str | None = None
    quantity: DecimalNumber = None
    is_back_order: OptionalBool = None
    price: DecimalNumber = None
    do_not_ship_before: DclDateTime = None
    ship_by: DclDateTime = None
    comments: str | None = None
    custom_field1: str | None = None
    custom_field2: str | None = None
    custom_field3: str | None = None
    custom_field4: str | None = None
    custom_field5: str | None = None

    def to_line_item(self) -> LineItem:
        return LineItem(
            line_id=None if self.line_number is None else str(self.line_number),
            sku=self.item_number,
            quantity=self.quantity,
        )


class DclOrderLine(DclBundleLine):
    """An order line; a bundle (kit) line lists its components in ``bundle_lines``."""

    bundle_lines: list[DclBundleLine] | None = None


class DclLotDetail(VendorModel):
    lot_number: str | None = None
    quantity: DecimalNumber = None


class DclShippedItem(VendorModel):
    """An item in a package (``shipped_items``) or a shipped line (``shipped_lines``, which may nest bundles)."""

    item_number: str | None = None
    description: str | None = None
    line_number: OptionalInt = None
    custom_field3: str | None = None
    quantity: DecimalNumber = None
    # Documented as lists; some DCL accounts send one string (see `StringOrList`).
    serial_numbers: StringOrList = None
    lot_numbers: StringOrList = None
    lot_details: list[DclLotDetail] | None = None
    bundle_lines: list[DclShippedItem] | None = None


class DclPackage(VendorModel):
    carton_id: str | None = None
    carton_count_number: OptionalInt = None
    weight: DecimalNumber = None
    freight: DecimalNumber = None
    dimension: str | None = None
    tracking_number: str | None = None
    delivery_date: DclDateTime = None
    delivery_status: str | None = None
    asn: Any = None  # documented only as null
    shipped_items: list[DclShippedItem] | None = None


def _physical_lines(lines: Iterable[DclShippedItem]) -> Iterable[DclShippedItem]:
    """Bundles expand into their components: the components are what packages carry."""
    for line in lines:
        if line.bundle_lines:
            yield from _physical_lines(line.bundle_lines)
        else:
            yield line


def _aggregate(items: Iterable[DclShippedItem]) -> list[LineItem]:
    """One LineItem per (line, sku), quantities summed: a line split over cartons is one shipped line."""
    totals: dict[tuple[int | None, str | None], Decimal | None] = {}
    for item in items:
        key = (item.line_number, item.item_number)
        if key in totals:
            previous = totals[key]
            totals[key] = None if previous is None or item.quantity is None else previous + item.quantity
        else:
            totals[key] = item.quantity
    return [
        LineItem(line_id=None if line is None else str(line), sku=sku, quantity=quantity)
        for (line, sku), quantity in totals.items()
    ]


class DclShipment(VendorModel):
    """A shipment nested in a DCL order. ``order_number`` and ``account_number`` are not DCL's: the
    hook copies them from the order, so a shipment read alone still names its order (order numbers
    are unique per account only)."""

    ship_id: int
    order_number: str | None = None
    account_number: str | None = None
    ship_date: DclDateTime = None
    shipping_carrier: str | None = None
    shipping_service: str | None = None
    freight_account: str | None = None
    total_weight: DecimalNumber = None
    total_charge: DecimalNumber = None
    reference1: str | None = None
    reference2: str | None = None
    reference3: str | None = None
    reference4: str | None = None
    rs_tracking_number: str | None = None
    packages: list[DclPackage] | None = None
    shipped_lines: list[DclShippedItem] | None = None
    shipping_address: DclAddress | None = None

    @property
    def raw_status(self) -> str:
        return dcl_shipment_raw_state(package.delivery_status for package in self.packages or ())

    def tracking_numbers(self) -> list[str]:
        """The packages' tracking numbers (unique, in order); ``reference1`` when no package has one."""
        numbers = dict.fromkeys(
            package.tracking_number.strip()
            for package in self.packages or ()
            if package.tracking_number and package.tracking_number.strip()
        )
        if not numbers and self.reference1 and self.reference1.strip():
            return [self.reference1.strip()]
        return list(numbers)

    def to_common(self) -> Shipment:
        packages = self.packages or []
        raw = self.raw_status
        status = _SHIPMENT_STATES.normalize(raw)
        delivered_at: datetime | None = None
        if status == "delivered":
            dates = [package.delivery_date for package in packages if package.delivery_date is not None]
            delivered_at = max(dates) if dates else None
        shipped = [item for package in packages for item in package.shipped_items or ()]
        if not shipped:
            shipped = list(_physical_lines(self.shipped_lines or ()))
        return Shipment(
            vendor="dcl",
            id=str(self.ship_id),
            account=self.account_number,
            order_id=self.order_number,
            tracking_numbers=self.tracking_numbers(),
            status=status,
            raw_status=raw,
            shipped_at=self.ship_date,
            delivered_at=delivered_at,
            items=_aggregate(shipped),
        )


class DclOrder(VendorModel):
    """A DCL order (``GET api/v1/orders``), with its shipments nested."""

    order_number: str
    order_status: OptionalInt = None
    location: str | None = None
    order_stage: OptionalInt = None
    stage_description: str | None = None
    is_cancelled: OptionalBool = None
    is_back_order: OptionalBool = None
    account_number: str | None = None
    order_type: str | None = None
    system_id: str | None = None
    ordered_date: DclDateTime = None
    received_date: DclDateTime = None  # a time only with extended_date=true
    po_number: str | None = None
    customer_number: str | None = None
    freight_account: str | None = None
    consignee_number: str | None = None
    shipping_carrier: str | None = None
    shipping_service: str | None = None
    shipping_address: DclAddress | None = None
    billing_address: DclAddress | None = None
    international_code: OptionalInt = None
    order_subtotal: DecimalNumber = None
    shipping_handling: DecimalNumber = None
    sales_tax: DecimalNumber = None
    international_handling: DecimalNumber = None
    total_due: DecimalNumber = None
    amount_paid: DecimalNumber = None
    net_due_currency: DecimalNumber = None
    balance_due_us: DecimalNumber = None
    international_declared_value: DecimalNumber = None
    insurance: DecimalNumber = None
    payment_type: str | None = None
    terms: str | None = None
    fob: str | None = None
    packing_list_type: OptionalInt = None
    packing_list_comments: str | None = None
    shipping_instructions: str | None = None
    custom_field1: str | None = None
    custom_field2: str | None = None
    custom_field3: str | None = None
    custom_field4: str | None = None
    custom_field5: str | None = None
    order_lines: list[DclOrderLine] | None = None
    shipments: list[DclShipment] | None = None
    modified_at: DclDateTime = None

    @property
    def raw_status(self) -> str:
        return dcl_order_raw_state(self.order_stage, self.is_cancelled)

    def physical_lines(self) -> list[DclBundleLine]:
        """Order lines with bundles expanded into their components (what packages carry)."""
        lines: list[DclBundleLine] = []
        for line in self.order_lines or ():
            if line.bundle_lines:
                lines.extend(line.bundle_lines)
            else:
                lines.append(line)
        return lines

    def earliest_ship_by(self) -> datetime | None:
        """The earliest ``ship_by`` of any line (bundle components included)."""
        dates = [line.ship_by for line in self.order_lines or () if line.ship_by is not None]
        dates.extend(
            component.ship_by
            for line in self.order_lines or ()
            for component in line.bundle_lines or ()
            if component.ship_by is not None
        )
        return min(dates) if dates else None

    def shipment_records(self) -> list[DclShipment]:
        """The nested shipments as standalone records, each with its order's ``order_number`` (and
        ``account_number``, where the order has one) filled in.

        Shallow copies: this order's own dump is unchanged.
        """
        records = []
        for shipment in self.shipments or ():
            record = shipment.model_copy()
            record.order_number = self.order_number  # assignment marks the field set: it is dumped
            if self.account_number is not None:
                record.account_number = self.account_number
            records.append(record)
        return records

    def to_common(self) -> Order:
        raw = self.raw_status
        return Order(
            vendor="dcl",
            id=self.order_number,
            account=self.account_number,
            number=self.order_number,
            status=_ORDER_STATES.normalize(raw),
            raw_status=raw,
            created_at=self.received_date,
            ordered_at=self.ordered_date,
            modified_at=self.modified_at,
            ship_by=self.earliest_ship_by(),
            items=[line.to_line_item() for line in self.physical_lines()],
        )

    def to_common_shipments(self) -> list[Shipment]:
        return [shipment.to_common() for shipment in self.shipment_records()]


class DclOrderPage(VendorModel):
    """One ``GET api/v1/orders`` response. ``error_code != 0`` is an error even in an HTTP 200."""

    error_code: OptionalInt = None
    error_message: str | None = None
    orders: list[DclOrder] | None = None
