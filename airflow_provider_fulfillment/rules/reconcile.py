"""Reconciliation rules: normalized orders and shipments in, typed findings out (no Airflow, no I/O).

What is wrong *now* is all a rule says; whether a finding is new, still open or resolved is the
ledger's business (`Ledger.sync_findings`), so the same rules serve a window of files and the
whole ledger alike.

- `late_order`: an order not closed, with no shipment that left, whose deadline (its ship-by date,
  else creation + `ship_deadline`) is before `as_of`. Independent of `errored_order`: an order
  that errors stays late, and stays late after it recovers until something ships.
- `shipped_without_shipment`: an order whose status says shipped/delivered, with no shipment.
- `orphan_shipment`: a shipment whose order is not among the orders given (or that names none).
- `item_mismatch`: one finding per order, listing what its shipments carry that it does not.
  How items compare is a per-vendor fact (`ITEM_CHECKS`), because the vendors document different
  things: DCL lines carry line numbers, SKUs and quantities on both sides; a DropStream shipment's
  `order_items` are bare `{"id"}` references that no documented order item field links back to,
  and neither side documents a quantity, so only the count of distinct items is compared, and the
  finding says so; a Stream order is its own shipment.
- `errored_order`, `errored_shipment`: records whose normalized status is `error`.

A finding's `record_id` is `types.record_key(account, id)`: "10501/D1" for DCL account 10501's
order D1 (two DCL accounts may share an order number), the bare id where there is no account.
Its summary names the record the same way.

Memory is bounded by the shipments' index: shipments are indexed first (a few fields each), then
orders stream past it, then the unclaimed shipments are the orphans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_fulfillment.rules._format import duration
from airflow_provider_fulfillment.rules.types import Finding, FindingKind, Severity, record_key

if TYPE_CHECKING:
    from airflow_provider_fulfillment.models.common import Order, Shipment

ItemCheck = Literal["lines", "count", "none"]
"""How a vendor's shipped items are compared with its ordered items (see the module docstring)."""

ITEM_CHECKS: Mapping[str, ItemCheck] = {"dcl": "lines", "dropstream": "count", "stream": "none"}
# Vendors whose order is its own shipment: an order ships when its own status says so.
SELF_SHIPPING: frozenset[str] = frozenset({"stream"})
# Raw states that close an order without it ever shipping, though their status is not `canceled`
# (DropStream `bundled`/`split`: merged into, or split into, other orders that ship instead).
CLOSED_STATES: Mapping[str, frozenset[str]] = {"dropstream": frozenset({"bundled", "split"})}
SEVERITIES: Mapping[str, Severity] = {
    "late_order": "warning",
    "shipped_without_shipment": "warning",
    "orphan_shipment": "warning",
    "item_mismatch": "warning",
    "errored_order": "critical",
    "errored_shipment": "critical",
}
_LEFT = frozenset({"shipped", "delivered", "error"})  # shipment statuses that mean it left the warehouse
_DONE = frozenset({"shipped", "delivered"})
_NO_QUANTITY = "{vendor} documents no item quantities: quantities were not compared"
_NO_LINK = (
    "DropStream documents no field linking a shipment's order_items to the order's items: "
    "only the number of distinct items was compared"
)


@dataclass(frozen=True)
class ReconcilePolicy:
    """The knobs of reconciliation; the defaults describe the three vendors as documented."""

    ship_deadline: timedelta = timedelta(days=2)
    closed_states: Mapping[str, frozenset[str]] = field(default_factory=lambda: dict(CLOSED_STATES))
    item_checks: Mapping[str, ItemCheck] = field(default_factory=lambda: dict(ITEM_CHECKS))
    self_shipping: frozenset[str] = SELF_SHIPPING
    severities: Mapping[str, Severity] = field(default_factory=lambda: dict(SEVERITIES))

    def __post_init__(self) -> None:
        if self.ship_deadline < timedelta(0):
            raise ValueError(f"ship_deadline must not be negative, got {self.ship_deadline!r}")

    def deadline(self, order: Order) -> datetime | None:
        if order.ship_by is not None:
            return order.ship_by
        return None if order.created_at is None else order.created_at + self.ship_deadline

    def closed(self, order: Order) -> bool:
        return order.status == "canceled" or order.raw_status in self.closed_states.get(order.vendor, ())


@dataclass(slots=True)
class _ShipmentFacts:
    """What the join keeps of one shipment."""

    id: str
    order_id: str | None
    status: str
    raw_status: str
    when: datetime | None
    tracking_numbers: tuple[str, ...]
    items: tuple[tuple[str | None, str | None, Decimal | None], ...]  # (line_id, sku, quantity)
    self_shipment: bool


def account_of(record: Any) -> str:
    """The record's account (DCL `account_number`), '' where the vendor has none."""
    return getattr(record, "account", None) or ""


def reconcile(
    orders: Iterable[Order],
    shipments: Iterable[Shipment],
    *,
    as_of: datetime,
    policy: ReconcilePolicy | None = None,
) -> list[Finding]:
    """Every finding that holds at `as_of`, sorted by (vendor, kind, record_id)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    policy = policy or ReconcilePolicy()
    findings: list[Finding] = []
    index: dict[tuple[str, str, str], list[_ShipmentFacts]] = {}
    unreferenced: list[tuple[str, str, _ShipmentFacts]] = []
    for shipment in shipments:
        facts = _ShipmentFacts(
            id=shipment.id,
            order_id=shipment.order_id,
            status=shipment.status,
            raw_status=shipment.raw_status,
            when=shipment.shipped_at or shipment.created_at,
            tracking_numbers=tuple(shipment.tracking_numbers),
            items=tuple((item.line_id, item.sku, item.quantity) for item in shipment.items),
            self_shipment=shipment.vendor in policy.self_shipping and shipment.id == shipment.order_id,
        )
        account = account_of(shipment)
        if shipment.order_id is None:
            unreferenced.append((shipment.vendor, account, facts))
        else:
            index.setdefault((shipment.vendor, account, shipment.order_id), []).append(facts)
        if shipment.status == "error" and not facts.self_shipment:
            findings.append(_errored_shipment(shipment.vendor, account, facts, shipment.status_since, policy))
    claimed: set[tuple[str, str, str]] = set()
    for order in orders:
        key = (order.vendor, account_of(order), order.id)
        related = index.get(key, [])
        if related:
            claimed.add(key)
        findings.extend(_check_order(order, related, as_of, policy))
    for (vendor, account, order_id), related in index.items():
        if (vendor, account, order_id) in claimed:
            continue
        for facts in related:
            if not facts.self_shipment:
                findings.append(
                    _orphan(
                        vendor,
                        account,
                        facts,
                        policy,
                        f"refers to order {record_key(account, order_id)}, which is unknown",
                    )
                )
    for vendor, account, facts in unreferenced:
        findings.append(_orphan(vendor, account, facts, policy, "names no order"))
    findings.sort(key=lambda finding: finding.key)
    return findings


def _finding(
    kind: FindingKind,
    vendor: str,
    record_id: str,
    account: str,
    policy: ReconcilePolicy,
    *,
    resource: Literal["order", "shipment"] = "order",
    since: datetime | None,
    details: dict[str, Any],
) -> Finding:
    return Finding(
        vendor=vendor,
        kind=kind,
        record_id=record_key(account, record_id),
        account=account,
        resource=resource,
        severity=policy.severities.get(kind, "warning"),
        since=since,
        details=details,
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _shipment_details(facts: _ShipmentFacts) -> dict[str, Any]:
    return {
        "shipment_id": facts.id,
        "order_id": facts.order_id,
        "status": facts.status,
        "raw_status": facts.raw_status,
        "tracking_numbers": list(facts.tracking_numbers),
    }


def _errored_shipment(
    vendor: str, account: str, facts: _ShipmentFacts, since: datetime | None, policy: ReconcilePolicy
) -> Finding:
    return _finding(
        "errored_shipment",
        vendor,
        facts.id,
        account,
        policy,
        resource="shipment",
        since=since or facts.when,
        details={
            **_shipment_details(facts),
            "summary": f"shipment {record_key(account, facts.id)} is in {facts.raw_status} (error)",
        },
    )


def _orphan(vendor: str, account: str, facts: _ShipmentFacts, policy: ReconcilePolicy, why: str) -> Finding:
    return _finding(
        "orphan_shipment",
        vendor,
        facts.id,
        account,
        policy,
        resource="shipment",
        since=facts.when,
        details={**_shipment_details(facts), "summary": f"shipment {record_key(account, facts.id)} {why}"},
    )


def _check_order(
    order: Order, related: list[_ShipmentFacts], as_of: datetime, policy: ReconcilePolicy
) -> list[Finding]:
    vendor, account = order.vendor, account_of(order)
    label = record_key(account, order.id)
    self_shipping = vendor in policy.self_shipping
    shipped = order.status in _DONE if self_shipping else any(s.status in _LEFT for s in related)
    deadline = policy.deadline(order)
    base = {
        "number": order.number,
        "status": order.status,
        "raw_status": order.raw_status,
        "deadline": _iso(deadline),
        "shipment_ids": [] if self_shipping else [s.id for s in related],
    }
    found: list[Finding] = []
    if order.status == "error":
        found.append(
            _finding(
                "errored_order",
                vendor,
                order.id,
                account,
                policy,
                since=order.status_since or order.modified_at or order.created_at,
                details={**base, "summary": f"order {label} is in {order.raw_status} (error)"},
            )
        )
    if shipped:
        if not self_shipping:
            mismatch = _check_items(order, label, related, policy)
            if mismatch is not None:
                found.append(
                    _finding(
                        "item_mismatch",
                        vendor,
                        order.id,
                        account,
                        policy,
                        since=min((s.when for s in related if s.when), default=None),
                        details={**base, **mismatch},
                    )
                )
        return found
    if order.status in _DONE:
        found.append(
            _finding(
                "shipped_without_shipment",
                vendor,
                order.id,
                account,
                policy,
                since=order.status_since or order.created_at,
                details={
                    **base,
                    "summary": f"order {label} is {order.raw_status} but no shipment refers to it",
                },
            )
        )
    elif not policy.closed(order) and deadline is not None and deadline < as_of:
        how = "its ship-by date" if order.ship_by else f"creation + {duration(policy.ship_deadline)}"
        found.append(
            _finding(
                "late_order",
                vendor,
                order.id,
                account,
                policy,
                since=deadline,
                details={
                    **base,
                    "summary": f"order {label} ({order.raw_status}) should have shipped by "
                    f"{deadline.isoformat()} ({how}) and has no shipment",
                },
            )
        )
    return found


def _number(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _vendor_name(vendor: str) -> str:
    return {"dropstream": "DropStream", "dcl": "DCL", "stream": "Stream"}.get(vendor, vendor)


def _check_items(
    order: Order, label: str, related: list[_ShipmentFacts], policy: ReconcilePolicy
) -> dict[str, Any] | None:
    """The item part of a finding's details, or None when the items add up."""
    check = policy.item_checks.get(order.vendor, "lines")
    if check == "none":
        return None
    if check == "count":
        referenced = sorted({line for s in related for line, _, _ in s.items if line is not None})
        if not referenced or not order.items or len(referenced) <= len(order.items):
            return None
        return {
            "reason": "more_items_than_ordered",
            "ordered_items": len(order.items),
            "shipped_items": len(referenced),
            "shipped_item_ids": referenced,
            "quantity_checked": False,
            "note": f"{_NO_LINK}; {_NO_QUANTITY.format(vendor=_vendor_name(order.vendor))}",
            "summary": f"order {label}: its shipments carry {len(referenced)} distinct items, "
            f"the order has {len(order.items)}",
        }
    line_ids = {item.line_id for item in order.items if item.line_id}
    skus = {item.sku for item in order.items if item.sku}
    by_line = bool(line_ids)

    def key_of(line_id: str | None, sku: str | None) -> str | None:
        return line_id if by_line and line_id else sku

    lines: list[dict[str, Any]] = []
    foreign: set[str | None] = set()
    for shipment in related:
        for line_id, sku, quantity in shipment.items:
            on_order = line_id in line_ids if by_line and line_id else sku is None or sku in skus
            if not on_order:
                foreign.add(key_of(line_id, sku))
                lines.append(
                    {
                        "shipment_id": shipment.id,
                        "line_id": line_id,
                        "sku": sku,
                        "ordered": None,
                        "shipped": _number(quantity),
                        "reason": "not_on_order",
                    }
                )
    quantities = all(q is not None for s in related for _, _, q in s.items) and all(
        item.quantity is not None for item in order.items
    )
    shipped_items = [item for s in related for item in s.items]
    if quantities and shipped_items and order.items:
        ordered: dict[str | None, Decimal] = {}
        skus_of: dict[str | None, str | None] = {}
        for item in order.items:
            key = key_of(item.line_id, item.sku)
            ordered[key] = ordered.get(key, Decimal(0)) + (item.quantity or Decimal(0))
            skus_of.setdefault(key, item.sku)
        sent: dict[str | None, Decimal] = {}
        for line_id, sku, quantity in shipped_items:
            key = key_of(line_id, sku)
            if key not in foreign:
                sent[key] = sent.get(key, Decimal(0)) + (quantity or Decimal(0))
        complete = order.status in _DONE
        for key in sorted(ordered.keys() | sent.keys(), key=str):
            want, got = ordered.get(key, Decimal(0)), sent.get(key, Decimal(0))
            if got > want or (complete and got < want):
                lines.append(
                    {
                        "shipment_id": None,
                        "line_id": key if by_line else None,
                        "sku": skus_of.get(key, None if by_line else key),
                        "ordered": _number(want),
                        "shipped": _number(got),
                        "reason": "quantity",
                    }
                )
    if not lines:
        return None
    listed = "; ".join(
        f"{'line ' + str(line['line_id']) if line['line_id'] else 'SKU ' + str(line['sku'])}: "
        + (
            "not on the order"
            if line["reason"] == "not_on_order"
            else f"ordered {line['ordered']}, shipped {line['shipped']}"
        )
        for line in lines
    )
    details: dict[str, Any] = {
        "reason": "quantity" if all(line["reason"] == "quantity" for line in lines) else "not_on_order",
        "lines": lines,
        "quantity_checked": quantities,
        "summary": f"order {label}: {listed}",
    }
    if not quantities:
        details["note"] = _NO_QUANTITY.format(vendor=_vendor_name(order.vendor))
    return details


__all__ = ["ITEM_CHECKS", "ReconcilePolicy", "account_of", "reconcile"]
