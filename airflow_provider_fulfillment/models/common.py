"""Normalized records: the vendor-neutral shape that reconciliation and alerting work on."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Vendor = Literal["dropstream", "dcl", "stream"]
Status = Literal["pending", "processing", "shipped", "delivered", "canceled", "error"]
STATUSES: tuple[Status, ...] = ("pending", "processing", "shipped", "delivered", "canceled", "error")


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_none(value: object) -> bool:
    return value is None


# The vendor's account (DCL's `account_number`), which with `id` identifies a record: two DCL
# accounts may share an order number. Left out of dumps when None (vendors without accounts), so
# their normalized files are unchanged.
Account = Field(default=None, exclude_if=_is_none)


class LineItem(_Common):
    """One ordered or shipped line. `line_id` is what a shipment points back to (when the vendor says)."""

    line_id: str | None = None
    sku: str | None = None
    quantity: Decimal | None = None


class Order(_Common):
    vendor: Vendor
    id: str
    account: str | None = Account
    number: str | None = None  # the human-facing number: external_display_id, order_number, reference_number
    status: Status
    raw_status: str
    status_since: datetime | None = None
    created_at: datetime | None = None
    ordered_at: datetime | None = None
    modified_at: datetime | None = None
    ship_by: datetime | None = None
    items: list[LineItem] = Field(default_factory=list)


class Shipment(_Common):
    vendor: Vendor
    id: str
    account: str | None = Account
    order_id: str | None
    tracking_numbers: list[str] = Field(default_factory=list)
    status: Status
    raw_status: str
    status_since: datetime | None = None
    created_at: datetime | None = None
    shipped_at: datetime | None = None
    expected_delivery_at: datetime | None = None
    delivered_at: datetime | None = None
    items: list[LineItem] = Field(default_factory=list)
