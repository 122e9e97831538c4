"""Pydantic models: one per vendor record (lossless, tolerant) and the normalized ``common`` records."""

from __future__ import annotations

from airflow_provider_fulfillment.models.common import STATUSES, LineItem, Order, Shipment, Status, Vendor
from airflow_provider_fulfillment.models.dcl import DclOrder, DclOrderPage, DclShipment
from airflow_provider_fulfillment.models.dropstream import (
    DropStreamOrder,
    DropStreamOrderEnvelope,
    DropStreamOrderPage,
    DropStreamShipment,
    DropStreamShipmentPage,
)
from airflow_provider_fulfillment.models.states import known_states, normalize, state_table_markdown
from airflow_provider_fulfillment.models.stream import StreamOrder, StreamOrderEnvelope, StreamOrderPage

__all__ = [
    "STATUSES",
    "DclOrder",
    "DclOrderPage",
    "DclShipment",
    "DropStreamOrder",
    "DropStreamOrderEnvelope",
    "DropStreamOrderPage",
    "DropStreamShipment",
    "DropStreamShipmentPage",
    "LineItem",
    "Order",
    "Shipment",
    "Status",
    "StreamOrder",
    "StreamOrderEnvelope",
    "StreamOrderPage",
    "Vendor",
    "known_states",
    "normalize",
    "state_table_markdown",
]
