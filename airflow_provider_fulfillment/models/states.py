"""State maps as data: every vendor's raw order/shipment state -> the normalized ``Status``.

One table per (vendor, resource). The hooks validate ``state``/``status`` filters against
``known_states``; the models call ``normalize``; the README embeds ``state_table_markdown()``.
A raw value the table does not know (API drift) never raises: it gets the table's fallback
(``processing`` unless said otherwise) and the raw value is kept beside it as ``raw_status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from airflow_provider_fulfillment.models.common import STATUSES, Status, Vendor

__all__ = [
    "DCL_CANCELLED",
    "DCL_ORDER_STAGE_RANGES",
    "DCL_ORDER_STATES",
    "DCL_SHIPMENT_STATES",
    "DROPSTREAM_ORDER_STATES",
    "DROPSTREAM_SHIPMENT_STATES",
    "DROPSTREAM_SHIPMENT_TERMINAL",
    "STATE_TABLES",
    "STREAM_ORDER_STATES",
    "TERMINAL_RAW_STATES",
    "Resource",
    "StageRange",
    "StateTable",
    "dcl_order_raw_state",
    "dcl_shipment_raw_state",
    "known_states",
    "normalize",
    "state_table",
    "state_table_markdown",
]

Resource = Literal["orders", "shipments"]


def _invert(groups: Mapping[Status, tuple[str, ...]]) -> Mapping[str, Status]:
    table: dict[str, Status] = {}
    for status, raws in groups.items():
        for raw in raws:
            if raw in table:
                raise ValueError(f"state {raw!r} mapped twice")
            table[raw] = status
    return MappingProxyType(table)


# --- DropStream -------------------------------------------------------------------------------

# `fulfillment_state`, all 32 values documented in dropstream-order-object.txt.
DROPSTREAM_ORDER_STATES: Mapping[str, Status] = _invert(
    {
        "pending": ("new", "new_manual", "queued", "waiting", "scheduled_request"),
        "processing": (
            "bundled",
            "delayed_processing",
            "delayed_sending_receipt_acknowledgement",
            "delayed_sending_to_warehouse",
            "partially_shipped",
            "pending_shipment",
            "processing",
            "ready_for_warehouse",
            "scheduled_processing_order",
            "scheduled_receipt_acknowledgement",
            "sending_receipt_acknowledgement",
            "sending_to_warehouse",
            "sent_to_warehouse",
            "split",
        ),
        "shipped": (
            "shipped",
            "scheduled_completion_acknowledgement",
            "sending_completion_acknowledgement",
            "delayed_sending_completion_acknowledgement",
            "sent_completion_acknowledgement",
        ),
        "canceled": ("canceled", "archived", "skipped"),
        "error": (
            "error",
            "error_processing",
            "error_sending_completion_acknowledgement",
            "error_sending_receipt_acknowledgement",
            "error_sending_to_warehouse",
        ),
    }
)

# Shipment `state`, the values listed in dropstream-shipments-endpoint.txt (a shipment record
# exists once the warehouse shipped; its states track DropStream notifying the sales channel).
DROPSTREAM_SHIPMENT_STATES: Mapping[str, Status] = _invert(
    {
        "shipped": (
            "new",
            "ready_for_shipment_notification",
            "scheduled_notify_of_shipment",
            "scheduled_processing_shipment",
            "delayed_notifying_of_shipment",
            "notified_shipped",
            "archived",
        ),
        "error": ("errored_processing", "errored_notifying_of_shipment"),
    }
)
# Where a DropStream shipment's lifecycle ends: DropStream has told the sales channel it shipped,
# or has archived it (the docs list states, not transitions: read from their names). Both
# normalize to `shipped` like the states before them (DropStream says nothing of delivery), so
# the status cannot tell a finished shipment from one in flight: these raw states do.
DROPSTREAM_SHIPMENT_TERMINAL: frozenset[str] = frozenset({"notified_shipped", "archived"})


# --- DCL --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageRange:
    """An inclusive range of DCL ``order_stage`` codes and what they normalize to."""

    first: int
    last: int
    status: Status
    meaning: str


# DCL's raw order state is `order_stage` (codes 2..70), overridden by `is_cancelled`.
DCL_ORDER_STAGE_RANGES: tuple[StageRange, ...] = (
    # DCL documents no error stage: 2 (on hold / exception), the lowest documented code, is
    # the one read as error, so alerting sees orders DCL has stopped working on.
    StageRange(2, 2, "error", "on hold / exception"),
    StageRange(3, 9, "pending", "not yet received"),
    StageRange(10, 59, "processing", "10 = received, then in the warehouse"),
    StageRange(60, 60, "shipped", "fully shipped"),
    StageRange(62, 62, "shipped", "closed short"),
    StageRange(70, 70, "delivered", "delivered"),
)
DCL_CANCELLED = "cancelled"  # raw_status of an order with is_cancelled=true, whatever its stage


def _dcl_order_states() -> Mapping[str, Status]:
    table: dict[str, Status] = {DCL_CANCELLED: "canceled"}
    for stage_range in DCL_ORDER_STAGE_RANGES:
        for code in range(stage_range.first, stage_range.last + 1):
            if str(code) in table:
                raise ValueError(f"DCL order_stage {code} mapped twice")
            table[str(code)] = stage_range.status
    return MappingProxyType(table)


DCL_ORDER_STATES: Mapping[str, Status] = _dcl_order_states()

# DCL shipments carry no state of their own, only each package's `delivery_status` (DCL
# documents just "Delivered"). DCL lists a shipment only once it has shipped, so anything
# else (in transit, no status yet, a mix) is shipped: that table's fallback is "shipped".
DCL_SHIPMENT_STATES: Mapping[str, Status] = MappingProxyType({"Delivered": "delivered"})


def dcl_order_raw_state(order_stage: int | None, is_cancelled: bool | None) -> str:
    """The raw state string of a DCL order: ``cancelled`` or the stage code ("60"); "" if DCL sent neither."""
    if is_cancelled:
        return DCL_CANCELLED
    return "" if order_stage is None else str(order_stage)


def dcl_shipment_raw_state(delivery_statuses: Iterable[str | None]) -> str:
    """The raw state of a DCL shipment: its packages' distinct ``delivery_status`` values, joined."""
    seen: dict[str, None] = {}
    for value in delivery_statuses:
        if value and value.strip():
            seen.setdefault(value.strip(), None)
    return ", ".join(seen)


# --- Stream -----------------------------------------------------------------------------------

# `status`, all 18 values documented in stream-orders-endpoint.txt. A Stream order is itself
# the shipment, so the same map serves both resources.
STREAM_ORDER_STATES: Mapping[str, Status] = _invert(
    {
        "pending": ("order_received", "awaiting_prepayment"),
        "processing": (
            "awaiting_waybill_generation",
            "prepayment_received",
            "client_to_schedule_pickup",
            "admin_to_schedule_pickup",
            "system_to_schedule_pickup",
            "awaiting_pickup",
            "awaiting_swap_out",
        ),
        "shipped": ("in_transit", "partially_delivered"),
        "delivered": ("delivered", "invoice_paid"),
        "canceled": ("cancelled",),
        "error": ("additional_document_required", "pickup_missed", "incomplete", "lost_in_transit"),
    }
)


# Raw states that end a record's lifecycle though their normalized status does not (a record in
# one is no longer "open": change capture stops re-reading it), per (vendor, resource).
TERMINAL_RAW_STATES: Mapping[tuple[str, Resource], frozenset[str]] = MappingProxyType(
    {("dropstream", "shipments"): DROPSTREAM_SHIPMENT_TERMINAL}
)

# --- The registry -----------------------------------------------------------------------------

_VENDOR_NAMES: Mapping[str, str] = {"dropstream": "DropStream", "dcl": "DCL", "stream": "Stream"}


@dataclass(frozen=True)
class StateTable:
    """One vendor resource's map from raw state to normalized status."""

    vendor: Vendor
    resources: tuple[Resource, ...]
    field: str  # where the raw state comes from, for the docs
    states: Mapping[str, Status]
    fallback: Status = "processing"
    note: str = ""
    # How to show a status's raw states in the docs, where listing the values is not the clearest.
    display: Mapping[Status, str] = field(default_factory=dict)
    _folded: Mapping[str, Status] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_folded", {raw.casefold(): status for raw, status in self.states.items()})

    def normalize(self, raw: str | int | None) -> Status:
        """Normalized status of a raw state; unknown values (API drift) get the fallback."""
        if raw is None:
            return self.fallback
        key = raw if isinstance(raw, str) else str(raw)
        status = self.states.get(key)
        if status is None:
            status = self._folded.get(key.strip().casefold(), self.fallback)
        return status

    def known_states(self) -> frozenset[str]:
        return frozenset(self.states)


def _range_label(stage_range: StageRange) -> str:
    if stage_range.first == stage_range.last:
        return str(stage_range.first)
    return f"{stage_range.first}–{stage_range.last}"


def _dcl_order_display() -> Mapping[Status, str]:
    by_status: dict[Status, list[str]] = {}
    for stage_range in DCL_ORDER_STAGE_RANGES:
        by_status.setdefault(stage_range.status, []).append(
            f"`order_stage` {_range_label(stage_range)} ({stage_range.meaning})"
        )
    display = {status: "; ".join(labels) for status, labels in by_status.items()}
    display["canceled"] = f"`is_cancelled: true`, whatever the stage (raw `{DCL_CANCELLED}`)"
    return display


STATE_TABLES: tuple[StateTable, ...] = (
    StateTable(
        vendor="dropstream",
        resources=("orders",),
        field="fulfillment_state",
        states=DROPSTREAM_ORDER_STATES,
    ),
    StateTable(
        vendor="dropstream",
        resources=("shipments",),
        field="state",
        states=DROPSTREAM_SHIPMENT_STATES,
        note="`notified_shipped` and `archived` end a shipment's lifecycle (the ledger's change "
        "capture stops re-reading it); the other `shipped` states are still in flight.",
    ),
    StateTable(
        vendor="dcl",
        resources=("orders",),
        field="is_cancelled, order_stage",
        states=DCL_ORDER_STATES,
        note=(
            "`raw_status` is `cancelled` when `is_cancelled` is true, else the `order_stage` code "
            '(`"60"`). DCL documents no error stage: stage 2 (on hold / exception, the lowest '
            "documented code) is read as error. Stages not listed (below 2, 61, 63–69, above 70) are "
            "processing."
        ),
        display=_dcl_order_display(),
    ),
    StateTable(
        vendor="dcl",
        resources=("shipments",),
        field="packages[].delivery_status",
        states=DCL_SHIPMENT_STATES,
        fallback="shipped",
        note=(
            "`raw_status` is the packages' distinct `delivery_status` values, joined by `, `. A shipment "
            "is delivered when every package is `Delivered`; DCL lists a shipment only once it has "
            "shipped, so anything else is shipped."
        ),
    ),
    StateTable(
        vendor="stream",
        resources=("orders", "shipments"),
        field="status",
        states=STREAM_ORDER_STATES,
        note="A Stream order is itself the shipment: one map serves both.",
    ),
)

_BY_KEY: Mapping[tuple[str, str], StateTable] = {
    (table.vendor, resource): table for table in STATE_TABLES for resource in table.resources
}


def state_table(vendor: str, resource: str) -> StateTable:
    """The table for a vendor resource; ``ValueError`` naming the pair if there is none."""
    try:
        return _BY_KEY[(vendor, resource)]
    except KeyError:
        known = ", ".join(f"{v}/{r}" for v, r in _BY_KEY)
        raise ValueError(
            f"no state table for vendor {vendor!r}, resource {resource!r} (known: {known})"
        ) from None


def known_states(vendor: str, resource: str) -> frozenset[str]:
    """Every documented raw state of a vendor resource (what a ``state``/``status`` filter may name)."""
    return state_table(vendor, resource).known_states()


def normalize(vendor: str, resource: str, raw: str | int | None) -> Status:
    """Normalized status of a vendor's raw state; an unknown raw value never raises."""
    return state_table(vendor, resource).normalize(raw)


def state_table_markdown() -> str:
    """The one state table the README embeds verbatim: vendor | resource | normalized | raw states."""
    lines = [
        "| vendor | resource | normalized | raw states |",
        "|---|---|---|---|",
    ]
    notes: list[str] = []
    for table in STATE_TABLES:
        vendor = _VENDOR_NAMES[table.vendor]
        resource = " / ".join(table.resources) + f" (`{table.field}`)"
        for status in STATUSES:
            if status in table.display:
                raw_text = table.display[status]
            else:
                raws = [raw for raw, mapped in table.states.items() if mapped == status]
                raw_text = ", ".join(f"`{raw}`" for raw in raws)
            if status == table.fallback:
                raw_text = f"{raw_text}; any other value" if raw_text else "any other value"
            if raw_text:
                lines.append(f"| {vendor} | {resource} | `{status}` | {raw_text} |")
        if table.note:
            notes.append(f"- {vendor} {' / '.join(table.resources)}: {table.note}")
    lines.append("")
    lines.append(
        "A raw value not in the table (API drift) never fails: it maps to the fallback shown as "
        '"any other value", and the raw value is kept as `raw_status`.'
    )
    lines.extend(notes)
    return "\n".join(lines) + "\n"
