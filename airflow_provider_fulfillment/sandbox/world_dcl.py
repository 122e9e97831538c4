"""The DCL part of the world: orders with stages, lines, bundle lines, shipments, packages, tracking.

Like DropStream's, built for size: per-order tag values (stage, carrier, custom fields...) live in
byte arrays so that ``filter`` expressions scan them without generating records; the records
themselves are generated on demand from ``(seed, index)``. Orders are listed by ascending received
time (their index). DCL's clock is US Pacific: ``received_date``/``ship_date`` are Pacific dates,
``modified_at`` is Pacific time with its -08:00/-07:00 offset.

``order_stage`` codes run from 2 to 70 (10 received, 60 fully shipped, 62 closed short are the known
ones; the other descriptions are the sandbox's own). ``status`` values are the sandbox's reading of
"status of the order": see :data:`STATUSES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from . import catalog
from ._util import (
    DAY,
    HOUR,
    LRU,
    Timeline,
    dumps,
    mixed_codes,
    pacific_date,
    pacific_iso,
    pacific_local,
    random_bytes,
    record_rng,
    weighted_table,
)
from .dates import pacific_midnight, parse_dcl_date, parse_dcl_datetime
from .world_dropstream import ParamError

STAGES: dict[int, str] = {
    2: "On Hold",
    10: "Order Received",
    20: "Released to Warehouse",
    30: "Allocated",
    40: "Picking",
    45: "Packed",
    50: "Partially Shipped",
    60: "Fully Shipped",
    62: "Closed Short",
    70: "Closed",
}
SHIPPED_STAGES = frozenset({50, 60, 62, 70})
STATUSES = ("any", "open", "on_hold", "back_order", "shipped", "cancelled")
"""``status`` values: ``open`` = not cancelled and stage < 60; ``on_hold`` = stage 2; ``back_order`` =
``is_back_order``; ``shipped`` = stage 60, 62 or 70; ``cancelled`` = ``is_cancelled``; ``any`` = all."""

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
NUMERIC_TAGS = frozenset({"order_stage", "order_status"})
OPERATORS = ("eq", "neq", "gt", "ge", "lt", "le")

# (stage, is_cancelled, is_back_order) per code; the mixes below draw codes.
_KINDS: list[tuple[int, bool, bool]] = []


def _kind(stage: int, cancelled: bool = False, back: bool = False) -> int:
    entry = (stage, cancelled, back)
    if entry not in _KINDS:
        _KINDS.append(entry)
    return _KINDS.index(entry)


_OLD_MIX = weighted_table(
    [
        (_kind(60), 196),
        (_kind(62), 10),
        (_kind(70), 20),
        (_kind(50), 4),
        (_kind(10), 3),
        (_kind(10, back=True), 2),
        (_kind(2), 3),
        (_kind(20), 2),
        (_kind(30), 2),
        (_kind(40), 2),
        (_kind(10, cancelled=True), 8),
        (_kind(2, cancelled=True), 2),
        (_kind(30, cancelled=True), 2),
    ]
)
_RECENT_MIX = weighted_table(
    [
        (_kind(10), 50),
        (_kind(10, back=True), 8),
        (_kind(20), 28),
        (_kind(30), 24),
        (_kind(40), 20),
        (_kind(45), 15),
        (_kind(50), 16),
        (_kind(60), 72),
        (_kind(62), 4),
        (_kind(70), 2),
        (_kind(2), 6),
        (_kind(10, cancelled=True), 6),
        (_kind(20, cancelled=True), 3),
        (_kind(2, cancelled=True), 2),
    ]
)
DRAWN_KINDS = len(_KINDS)  # the codes the mixes draw; the sandbox clock (clock.py) reaches the rest
for _stage in STAGES:
    for _cancelled in (False, True):
        for _back in (False, True):
            _kind(_stage, _cancelled, _back)
KINDS: tuple[tuple[int, bool, bool], ...] = tuple(_KINDS)

ACCOUNTS = ("10501", "10502", "20117")
ORDER_TYPES = ("REST", "WEB", "EDI", "B2B")
CARRIERS = (
    ("UPS", "Ground"),
    ("UPS", "2nd Day Air"),
    ("FEDEX", "Home Delivery"),
    ("USPS", "Priority Mail"),
    ("DHL", "Express"),
)
CUSTOMER_NUMBERS = ("", "C1001", "C1002", "C2040", "C3300")
CF1 = ("", "ABC123", "SPRING24", "VIP")
CF2 = ("", "WHOLESALE", "RETAIL")
CF3 = ("", "GIFT")
CF4 = ("", "RUSH")
CF5 = ("", "X")

_TABLES: dict[str, tuple[tuple[str, ...], bytes]] = {
    "account_number": (ACCOUNTS, weighted_table([(0, 160), (1, 64), (2, 32)])),
    "order_type": (ORDER_TYPES, weighted_table([(0, 128), (1, 64), (2, 40), (3, 24)])),
    "system_id": (("P", "T"), weighted_table([(0, 230), (1, 26)])),
    "carrier": (
        tuple(f"{c}|{s}" for c, s in CARRIERS),
        weighted_table([(0, 100), (1, 30), (2, 50), (3, 56), (4, 20)]),
    ),
    "customer_number": (CUSTOMER_NUMBERS, weighted_table([(0, 180), (1, 20), (2, 20), (3, 20), (4, 16)])),
    "custom_field1": (CF1, weighted_table([(0, 140), (1, 50), (2, 40), (3, 26)])),
    "custom_field2": (CF2, weighted_table([(0, 156), (1, 50), (2, 50)])),
    "custom_field3": (CF3, weighted_table([(0, 226), (1, 30)])),
    "custom_field4": (CF4, weighted_table([(0, 246), (1, 10)])),
    "custom_field5": (CF5, weighted_table([(0, 252), (1, 4)])),
    "po": (("", "po"), weighted_table([(0, 40), (1, 216)])),
}
ORDER_NUMBER_BASE = 100_000
MAX_FIRST_SHIP = 3 * DAY + 6 * HOUR  # first shipment is at most this long after receipt
MAX_MODIFIED = 10 * DAY  # modified_at is at most this long after receipt


@dataclass(frozen=True)
class Condition:
    """One ``filter`` term: ``tag op value``."""

    tag: str
    op: str
    value: str | float

    def test(self, actual: str | int) -> bool:
        if isinstance(self.value, float) and isinstance(actual, int):
            a: Any = float(actual)
            b: Any = self.value
        else:
            a, b = (
                str(actual),
                str(self.value) if not isinstance(self.value, float) else _num_text(self.value),
            )
        if self.op == "eq":
            return a == b
        if self.op == "neq":
            return a != b
        if self.op == "gt":
            return a > b
        if self.op == "ge":
            return a >= b
        if self.op == "lt":
            return a < b
        return a <= b


def _num_text(x: float) -> str:
    return str(int(x)) if x.is_integer() else str(x)


_TERM = re.compile(
    r"""^\s*(?P<tag>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<op>[A-Za-z]+)\s+"""
    r"""(?:"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>(?:[^'\\]|\\.)*)'|(?P<num>[+-]?\d+(?:\.\d+)?))\s*$"""
)


def parse_filter(text: str) -> list[Condition]:
    """Parse DCL's filter language: ``tag op value`` terms joined by commas (AND); strings quoted.

    Commas inside quoted strings do not split terms. Numeric tags compare as numbers (a quoted
    number is accepted for them); other tags compare as strings.
    """
    terms: list[str] = []
    buf: list[str] = []
    quote: str | None = None
    escaped = False
    for ch in text:
        if quote:
            buf.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            buf.append(ch)
        elif ch == ",":
            terms.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if quote:
        raise ParamError(f"Invalid filter: unterminated string in {text!r}")
    terms.append("".join(buf))
    out: list[Condition] = []
    for term in terms:
        if not term.strip():
            if len(terms) == 1:
                return []
            raise ParamError(f"Invalid filter: empty term in {text!r}")
        m = _TERM.match(term)
        if not m:
            raise ParamError(f"Invalid filter term {term.strip()!r}: expected 'tag operator value'")
        tag = m.group("tag").lower()
        op = m.group("op").lower()
        if tag not in FILTER_TAGS:
            raise ParamError(f"Invalid filter tag {m.group('tag')!r}; supported: {', '.join(FILTER_TAGS)}")
        if op not in OPERATORS:
            raise ParamError(f"Invalid filter operator {m.group('op')!r}; supported: {', '.join(OPERATORS)}")
        if m.group("num") is not None:
            value: str | float = float(m.group("num"))
        else:
            raw = m.group("dq") if m.group("dq") is not None else m.group("sq")
            value = re.sub(r"\\(.)", r"\1", raw)
        if tag in NUMERIC_TAGS and isinstance(value, str):
            try:
                value = float(value)
            except ValueError as exc:
                raise ParamError(f"Invalid filter value {value!r} for numeric tag {tag}") from exc
        out.append(Condition(tag, op, value))
    return out


@dataclass(frozen=True)
class DclQuery:
    """Parsed ``GET /orders`` filters (epoch seconds; None = not filtered)."""

    status: str = "any"
    order_numbers: tuple[int, ...] | None = None
    received_from: float | None = None
    received_before: float | None = None  # exclusive: midnight after the received_to day
    shipped_from: float | None = None
    shipped_before: float | None = None
    modified_from: float | None = None
    modified_to: float | None = None  # inclusive
    conditions: tuple[Condition, ...] = ()


class DclWorld(Timeline):
    """DCL orders of one seed, generated lazily; see the module docstring."""

    def __init__(self, seed: int, n_orders: int, start: int, end: int, recent_days: float = 7.0) -> None:
        self.seed = seed
        n = max(1, n_orders)
        self._init_timeline(seed, 101, n, start, end)
        self.recent_start = max(start, end - int(recent_days * DAY))
        k = self.index_at(self.recent_start)
        # every stage (and cancelled/back-order variant) appears: one of each opens the recent zone
        # mutable: the live-data knobs move an order to another stage (set_stage)
        self._kind = bytearray(mixed_codes(random_bytes(seed, 102, n), k, _OLD_MIX, _RECENT_MIX, DRAWN_KINDS))
        self._tags = {
            name: random_bytes(seed, 103 + j, n).translate(table)
            for j, (name, (_, table)) in enumerate(_TABLES.items())
        }
        self._shipb = random_bytes(seed, 120, n)
        self._modb = random_bytes(seed, 121, n)
        self._bytes: LRU[tuple[int, bool], bytes] = LRU(20_000)
        # Moved by the sandbox clock (clock.py): order index -> (its shipment time, modified_at).
        self.now = end
        self.moved: dict[int, tuple[int | None, int]] = {}
        self._modified_at: dict[int, int] = {}

    # ---------------------------------------------------------------- scalars

    received = Timeline.time_of

    def order_number(self, j: int) -> str:
        return f"ORD-{ORDER_NUMBER_BASE + j}"

    def order_index(self, number: str) -> int:
        m = re.fullmatch(r"ORD-(\d+)", number.strip())
        if not m:
            return -1
        j = int(m.group(1)) - ORDER_NUMBER_BASE
        return j if 0 <= j < self.n and self.order_number(j) == number.strip() else -1

    def kind(self, j: int) -> tuple[int, bool, bool]:
        return KINDS[self._kind[j]]

    def stage(self, j: int) -> int:
        return KINDS[self._kind[j]][0]

    def cancelled(self, j: int) -> bool:
        return KINDS[self._kind[j]][1]

    def order_status(self, j: int) -> int:
        """1 active, 2 on hold, 3 cancelled (the sandbox's codes)."""
        stage, cancelled, _ = KINDS[self._kind[j]]
        return 3 if cancelled else 2 if stage == 2 else 1

    def _tag_text(self, name: str, j: int) -> str:
        values, _ = _TABLES[name]
        return values[self._tags[name][j]]

    def carrier(self, j: int) -> tuple[str, str]:
        return CARRIERS[self._tags["carrier"][j]]

    def po_number(self, j: int) -> str:
        return f"{100000 + j}" if self._tags["po"][j] else ""

    def tag(self, j: int, tag: str) -> str | int:
        """The value a ``filter`` tag tests for order ``j``."""
        if tag == "order_stage":
            return self.stage(j)
        if tag == "order_status":
            return self.order_status(j)
        if tag == "po_number":
            return self.po_number(j)
        if tag == "shipping_carrier":
            return self.carrier(j)[0]
        if tag == "shipping_service":
            return self.carrier(j)[1]
        return self._tag_text(tag, j)

    def n_shipments(self, j: int) -> int:
        stage, cancelled, _ = KINDS[self._kind[j]]
        if stage not in SHIPPED_STAGES:
            return 0
        if j in self.moved:
            return 1
        return 2 if stage in (60, 70) and self._shipb[j] < 40 and self._nlines(j) >= 2 else 1

    def ship_time(self, j: int, s: int) -> int:
        if j in self.moved and self.moved[j][0] is not None:
            return self.moved[j][0]  # type: ignore[return-value]
        r = self.received(j)
        t = r + 6 * HOUR + (self._shipb[j] * 997) % (3 * DAY) + s * (DAY + 2 * HOUR)
        avail = self.end - 1 - r
        if t - r > avail:
            t = r + max(0, avail * (self._shipb[j] + 1) // (257 + s))
        return t

    def first_ship(self, j: int) -> int | None:
        return self.ship_time(j, 0) if self.n_shipments(j) else None

    def delivery_after(self, j: int, shipped: int) -> int:
        return shipped + 2 * DAY + (self._modb[j] * 331) % DAY

    def delivered_time(self, j: int, s: int) -> int | None:
        t = self.delivery_after(j, self.ship_time(j, s))
        return t if t < self.now else None

    def set_modified(self, j: int, t: int) -> None:
        """Order ``j`` was modified at ``t`` (live-data knobs): filters and renderings see it from now on."""
        self._modified_at[j] = t
        self._bytes = LRU(20_000)

    def set_stage(self, j: int, t: int) -> int:
        """Order ``j`` moves to another ``order_stage`` at ``t`` (live-data knobs), as DCL would: its
        ``modified_at`` moves too. Shipped orders stay shipped (their shipments are kept); returns
        the new stage."""
        stage, cancelled, back = KINDS[self._kind[j]]
        shipped = stage in SHIPPED_STAGES
        self._kind[j] = next(
            k
            for k, (other, other_cancelled, _) in enumerate(KINDS)
            if other != stage and (other in SHIPPED_STAGES) == shipped and other_cancelled == cancelled
        )
        self.set_modified(j, t)
        return self.stage(j)

    def modified(self, j: int) -> int:
        if j in self._modified_at:
            return self._modified_at[j]
        if j in self.moved:
            return self.moved[j][1]
        r = self.received(j)
        n = self.n_shipments(j)
        if n:
            last = self.ship_time(j, n - 1)
            delivered = self.delivered_time(j, n - 1)
            t = (delivered or last) + 600 + self._modb[j] * 7
        else:
            t = r + HOUR + self._modb[j] * 97
        return min(t, self.now - 1, r + MAX_MODIFIED)

    def _nlines(self, j: int) -> int:
        return 1 + (self._shipb[j] * 7 + self._modb[j]) % 4

    # ---------------------------------------------------------------- records

    def order_dict(self, j: int, extended_date: bool = False) -> dict[str, Any]:
        """The full DCL order object of index ``j``."""
        r = record_rng(self.seed, 110, j)
        rnd = r.random
        stage, cancelled, back = KINDS[self._kind[j]]
        received = self.received(j)
        carrier, service = self.carrier(j)
        nlines = self._nlines(j)
        products = _dcl_products(self.seed)
        lines: list[dict[str, Any]] = []
        bundle_at = int(rnd() * nlines) if rnd() < 0.15 else -1
        ship_by = pacific_date(received + 2 * DAY)
        nbt = pacific_date(received)
        for ln in range(1, nlines + 1):
            cf3 = str(1 + int(rnd() * 5))
            if ln - 1 == bundle_at:
                comps = []
                for c in range(2):
                    p = products[int(rnd() * len(products))]
                    comps.append(
                        {
                            "line_number": ln * 1000 + c + 1,
                            "item_number": p[0],
                            "description": p[1],
                            "quantity": 1 + int(rnd() * 4),
                            "is_back_order": False,
                            "price": 0.0,
                            "do_not_ship_before": nbt,
                            "ship_by": ship_by,
                            "comments": "",
                            "custom_field1": "",
                            "custom_field2": "",
                            "custom_field3": cf3,
                            "custom_field4": "",
                            "custom_field5": "",
                        }
                    )
                lines.append(
                    {
                        "line_number": ln,
                        "item_number": f"BUNDLE{ln:03d}",
                        "description": "Bundle Kit",
                        "quantity": 1,
                        "is_back_order": False,
                        "price": round(9.99 + int(rnd() * 40), 2),
                        "do_not_ship_before": nbt,
                        "ship_by": ship_by,
                        "comments": "",
                        "custom_field1": "",
                        "custom_field2": "",
                        "custom_field3": cf3,
                        "custom_field4": "",
                        "custom_field5": "",
                        "bundle_lines": comps,
                    }
                )
            else:
                p = products[int(rnd() * len(products))]
                lines.append(
                    {
                        "line_number": ln,
                        "item_number": p[0],
                        "description": p[1],
                        "quantity": 1 + int(rnd() * 5) if rnd() < 0.3 else 1,
                        "is_back_order": back and ln == nlines,
                        "price": p[2],
                        "do_not_ship_before": nbt,
                        "ship_by": ship_by,
                        "comments": "",
                        "custom_field1": "",
                        "custom_field2": "",
                        "custom_field3": cf3,
                        "custom_field4": "",
                        "custom_field5": "",
                        "bundle_lines": None,
                    }
                )
        if stage in (50, 62) and lines[-1]["quantity"] < 2:
            lines[-1]["quantity"] = 2  # so that some of it can stay unshipped (partial / closed short)
        ship_addr = self._address(rnd)
        subtotal = round(sum(line["price"] * line["quantity"] for line in lines), 2)
        shipping = round(4.5 + rnd() * 12, 2)
        tax = round(subtotal * 0.0725, 2)
        shipments = self._shipments(j, r, lines, carrier, service, ship_addr, stage, extended_date)
        received_s = pacific_local(received) if extended_date else pacific_date(received)
        order: dict[str, Any] = {
            "order_status": self.order_status(j),
            "order_number": self.order_number(j),
            "location": "FR" if self._shipb[j] & 1 else "KY",
            "order_stage": stage,
            "stage_description": STAGES[stage],
            "is_cancelled": cancelled,
            "is_back_order": back,
            "account_number": self._tag_text("account_number", j),
            "order_type": self._tag_text("order_type", j),
            "system_id": self._tag_text("system_id", j),
            "ordered_date": pacific_date(received - self._jit[j] * 60),
            "received_date": received_s,
            "po_number": self.po_number(j),
            "customer_number": self._tag_text("customer_number", j),
            "freight_account": "00500",
            "consignee_number": "",
            "shipping_carrier": carrier,
            "shipping_service": service,
            "shipping_address": ship_addr,
            "billing_address": ship_addr if rnd() < 0.6 else None,
            "international_code": 0,
            "order_subtotal": subtotal,
            "shipping_handling": shipping,
            "sales_tax": tax,
            "international_handling": 0.0,
            "total_due": round(subtotal + shipping + tax, 2),
            "amount_paid": round(subtotal + shipping + tax, 2),
            "net_due_currency": 0.0,
            "balance_due_us": 0.0,
            "international_declared_value": 0.0,
            "insurance": 0.0,
            "payment_type": "",
            "terms": "DAP",
            "fob": "",
            "packing_list_type": 101,
            "packing_list_comments": "",
            "shipping_instructions": "",
            "custom_field1": self._tag_text("custom_field1", j),
            "custom_field2": self._tag_text("custom_field2", j),
            "custom_field3": self._tag_text("custom_field3", j),
            "custom_field4": self._tag_text("custom_field4", j),
            "custom_field5": self._tag_text("custom_field5", j),
            "order_lines": lines,
            "shipments": shipments,
            "modified_at": pacific_iso(self.modified(j)),
        }
        return order

    @staticmethod
    def _address(rnd: Callable[[], float]) -> dict[str, Any]:
        city, region, postal, _ = catalog.CITIES[int(rnd() * 15)]  # US cities only
        first = catalog.FIRST_NAMES[int(rnd() * len(catalog.FIRST_NAMES))]
        last = catalog.LAST_NAMES[int(rnd() * len(catalog.LAST_NAMES))]
        return {
            "company": f"{last} {catalog.BUSINESS_WORDS[int(rnd() * len(catalog.BUSINESS_WORDS))]}"
            if rnd() < 0.4
            else "",
            "attention": f"{first} {last}",
            "address1": f"{1 + int(rnd() * 9800)} {catalog.STREETS[int(rnd() * len(catalog.STREETS))]}",
            "address2": "",
            "email": "",
            "phone": "",
            "city": city,
            "state_province": region,
            "postal_code": f"{postal}{int(rnd() * 100):02d}",
            "country": "UNITED STATES",
        }

    def _shipments(
        self,
        j: int,
        r: Any,
        lines: list[dict[str, Any]],
        carrier: str,
        service: str,
        address: dict[str, Any],
        stage: int,
        extended_date: bool,
    ) -> list[dict[str, Any]] | None:
        n = self.n_shipments(j)
        if not n:
            return None
        rnd = r.random
        # Which lines (and how much of each) ship in which shipment.
        plan: list[list[tuple[dict[str, Any], int]]] = [[] for _ in range(n)]
        for idx, line in enumerate(lines):
            qty = line["quantity"]
            if stage == 50 and idx == len(lines) - 1 and len(lines) > 1:
                continue  # partially shipped: the last line is still open
            if stage == 62 and idx == len(lines) - 1:
                qty = max(0, qty - 1)  # closed short: one unit of the last line never shipped
                if qty == 0:
                    continue
            plan[idx % n if n > 1 else 0].append((line, qty))
        if stage == 50 and len(lines) == 1:
            line = lines[0]
            plan[0] = [(line, max(1, line["quantity"] // 2))] if line["quantity"] > 1 else [(line, 1)]
        out = []
        for s in range(n):
            t = self.ship_time(j, s)
            delivered = self.delivered_time(j, s)
            ship_id = 5_700_000 + 3 * j + s
            entries = plan[s] or [(lines[0], 1)]
            npk = 1 if len(entries) == 1 or rnd() < 0.6 else 2
            packages = []
            for pk in range(npk):
                tracking = _tracking(carrier, j, s, pk)
                items = []
                for line, qty in entries[pk::npk]:
                    items.extend(_shipped_items(line, qty, rnd, bundle_nested=False))
                weight = round(0.5 + rnd() * 10, 1)
                packages.append(
                    {
                        "carton_id": f"DCLL{(ship_id * 2 + pk) % 10**6:06d}",
                        "carton_count_number": pk + 1,
                        "weight": weight,
                        "freight": round(3 + weight * 0.8, 2),
                        "dimension": "10x8x5" if weight < 4 else "16x12x10",
                        "tracking_number": tracking,
                        "delivery_date": pacific_local(delivered) if delivered else None,
                        "delivery_status": "Delivered" if delivered else "In Transit",
                        "asn": None,
                        "shipped_items": items,
                    }
                )
            shipped_lines = []
            for line, qty in entries:
                shipped_lines.extend(_shipped_items(line, qty, rnd, bundle_nested=True))
            out.append(
                {
                    "ship_id": ship_id,
                    "ship_date": pacific_local(t) if extended_date else pacific_date(t),
                    "shipping_carrier": carrier,
                    "shipping_service": service.upper(),
                    "freight_account": "",
                    "total_weight": round(sum(p["weight"] for p in packages), 1),
                    "total_charge": round(sum(p["freight"] for p in packages), 2),
                    "reference1": packages[0]["tracking_number"],
                    "reference2": "",
                    "reference3": "",
                    "reference4": "",
                    "rs_tracking_number": "",
                    "packages": packages,
                    "shipped_lines": shipped_lines,
                    "shipping_address": {
                        **address,
                        "city": address["city"].upper(),
                        "country": "UNITED_STATES",
                    },
                }
            )
        return out

    def order_bytes(self, j: int, extended_date: bool = False) -> bytes:
        key = (j, extended_date)
        b = self._bytes.get(key)
        if b is None:
            b = dumps(self.order_dict(j, extended_date))
            self._bytes.put(key, b)
        return b

    def order(self, order_number: str, extended_date: bool = False) -> dict[str, Any] | None:
        j = self.order_index(order_number)
        return None if j < 0 else self.order_dict(j, extended_date)

    def iter_orders(self, extended_date: bool = False) -> Iterator[dict[str, Any]]:
        for j in range(self.n):
            yield self.order_dict(j, extended_date)

    # ---------------------------------------------------------------- queries

    def parse_query(self, params: Mapping[str, str]) -> DclQuery:
        """``GET /orders`` filter parameters (without paging/fields) to a :class:`DclQuery`."""
        q: dict[str, Any] = {}
        status = params.get("status", "any").strip().lower() or "any"
        if status not in STATUSES:
            raise ParamError(f"Invalid status '{params['status']}'; expected one of: {', '.join(STATUSES)}")
        q["status"] = status
        if params.get("order_numbers", "").strip():
            q["order_numbers"] = tuple(
                self.order_index(x) for x in params["order_numbers"].split(",") if x.strip()
            )
        for name in ("received", "shipped"):
            if params.get(f"{name}_from", "").strip():
                q[f"{name}_from"] = _dcl_instant(f"{name}_from", params[f"{name}_from"])
            if params.get(f"{name}_to", "").strip():
                try:
                    d = parse_dcl_date(params[f"{name}_to"])
                except ValueError as exc:
                    raise ParamError(f"Invalid {name}_to: {exc}") from exc
                q[f"{name}_before"] = pacific_midnight(d + timedelta(days=1)).timestamp()
        if params.get("modified_from", "").strip():
            q["modified_from"] = _dcl_instant("modified_from", params["modified_from"])
        if params.get("modified_to", "").strip():
            q["modified_to"] = _dcl_instant("modified_to", params["modified_to"])
        if params.get("filter", "").strip():
            q["conditions"] = tuple(parse_filter(params["filter"]))
        return DclQuery(**q)

    def select(self, q: DclQuery) -> Sequence[int]:
        """Order indices matching ``q``, in listing order (ascending receipt)."""
        lo, hi = 0, self.n
        if q.received_from is not None:
            lo = max(lo, self.index_at(q.received_from))
        if q.received_before is not None:
            hi = min(hi, self.index_at(q.received_before))
        # records the clock moved change up to a week after receipt, plus how far it moved
        moved_lag = (self.now - self.end + 7 * DAY) if self.moved else 0
        if q.shipped_from is not None:  # received <= first ship
            lo = max(lo, self.index_at(q.shipped_from - MAX_FIRST_SHIP - moved_lag))
        if q.shipped_before is not None:
            hi = min(hi, self.index_at(q.shipped_before))
        if q.modified_from is not None:
            lo = max(lo, self.index_at(q.modified_from - MAX_MODIFIED - moved_lag))
        if q.modified_to is not None:
            hi = min(hi, self.index_at(q.modified_to + 1))
        checks: list[Callable[[int], bool]] = []
        if q.status != "any":
            checks.append(_STATUS_TESTS[q.status](self))
        if q.shipped_from is not None or q.shipped_before is not None:
            lo_s = q.shipped_from if q.shipped_from is not None else float("-inf")
            hi_s = q.shipped_before if q.shipped_before is not None else float("inf")

            def shipped_ok(j: int) -> bool:
                t = self.first_ship(j)
                return t is not None and lo_s <= t < hi_s

            checks.append(shipped_ok)
        if q.modified_from is not None:
            checks.append(lambda j, t=q.modified_from: self.modified(j) >= t)
        if q.modified_to is not None:
            checks.append(lambda j, t=q.modified_to: self.modified(j) <= t)
        for cond in q.conditions:
            checks.append(lambda j, c=cond: c.test(self.tag(j, c.tag)))
        candidates: Sequence[int]
        if q.order_numbers is not None:
            candidates = sorted({j for j in q.order_numbers if lo <= j < hi})
        else:
            candidates = range(lo, max(lo, hi))
        if not checks:
            return candidates
        return [j for j in candidates if all(c(j) for c in checks)]

    def order_numbers(
        self, window: tuple[datetime, datetime] | None = None, field: str = "modified_at", **params: str
    ) -> list[str]:
        """Order numbers ``GET /orders`` returns for these API filters (strings, as sent), in order;
        ``window=(start, end)`` keeps those whose ``field`` (``modified_at``, ``received_at`` or
        ``shipped_at``, the first shipment) lies in the half-open window, exactly."""
        rows = self.select(self.parse_query(params))
        if window is not None:
            a, b = window[0].timestamp(), window[1].timestamp()
            fn: Callable[[int], int | None] = {
                "modified_at": self.modified,
                "received_at": self.received,
                "shipped_at": self.first_ship,
            }[field]
            rows = [j for j in rows if (t := fn(j)) is not None and a <= t < b]
        return [self.order_number(j) for j in rows]

    def numbers_by_stage(self) -> dict[int, frozenset[str]]:
        out: dict[int, set[str]] = {s: set() for s in STAGES}
        for j in range(self.n):
            out[self.stage(j)].add(self.order_number(j))
        return {s: frozenset(v) for s, v in out.items()}


def _dcl_instant(name: str, value: str) -> float:
    try:
        return parse_dcl_datetime(value).timestamp()
    except ValueError as exc:
        raise ParamError(f"Invalid {name}: {exc}") from exc


_STATUS_TESTS: dict[str, Callable[[DclWorld], Callable[[int], bool]]] = {
    "open": lambda w: lambda j: not w.cancelled(j) and w.stage(j) < 60,
    "on_hold": lambda w: lambda j: w.stage(j) == 2,
    "back_order": lambda w: lambda j: KINDS[w._kind[j]][2],
    "shipped": lambda w: lambda j: w.stage(j) in (60, 62, 70),
    "cancelled": lambda w: lambda j: w.cancelled(j),
}


def _tracking(carrier: str, j: int, s: int, pk: int) -> str:
    n = (j * 7 + s * 3 + pk) * 7919 % 10**10
    if carrier == "UPS":
        return f"1Z05R2W1{n:010d}"
    if carrier == "FEDEX":
        return f"78{n:010d}"
    if carrier == "USPS":
        return f"9400111899{n:012d}"
    return f"JD0146{n:010d}"


def _shipped_items(
    line: dict[str, Any], qty: int, rnd: Callable[[], float], bundle_nested: bool
) -> list[dict[str, Any]]:
    """A line as shipped: in packages bundles ship as their components; in shipped_lines the bundle
    line carries its components nested (as DCL's sample shows)."""
    components = line.get("bundle_lines")

    def item(src: dict[str, Any], q: int) -> dict[str, Any]:
        serials = (
            [f"{src['item_number'][:3]}{int(rnd() * 10**6):06d}" for _ in range(q)] if rnd() < 0.3 else None
        )
        lots = ["ABC123", "DEF456"] if q >= 2 and rnd() < 0.2 else None
        return {
            "item_number": src["item_number"],
            "description": src["description"],
            "line_number": src["line_number"],
            "custom_field3": src["custom_field3"],
            "quantity": q,
            "serial_numbers": serials,
            "lot_numbers": lots,
            "lot_details": [
                {"lot_number": lots[0], "quantity": q - 1},
                {"lot_number": lots[1], "quantity": 1},
            ]
            if lots
            else None,
        }

    if not components:
        return [item(line, qty)]
    parts = [item(c, c["quantity"] * qty) for c in components]
    if not bundle_nested:
        return parts
    head = item(line, qty)
    head["serial_numbers"] = head["lot_numbers"] = head["lot_details"] = None
    head["bundle_lines"] = parts
    return [head]


_PRODUCTS: dict[int, list[tuple[str, str, float]]] = {}


def _dcl_products(seed: int) -> list[tuple[str, str, float]]:
    got = _PRODUCTS.get(seed)
    if got is None:
        got = _PRODUCTS[seed] = [
            (f"{p['sku']}-DCL", p["name"], p["unit_price"]) for p in catalog.products(seed + 1, 80)
        ]
    return got


def received_date_of(t: int) -> date:
    """The Pacific calendar date DCL reports for an instant."""
    return datetime.fromisoformat(pacific_iso(t)).date()
