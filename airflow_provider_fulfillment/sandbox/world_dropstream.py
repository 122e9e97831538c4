"""The DropStream part of the world: orders, order items, shipments, stores, warehouses, customers.

Scale is the design constraint (1,000,000 orders must start instantly): only a handful of compact
byte arrays are built at start-up (a few C-speed ``randbytes`` + ``translate`` calls, no per-order
Python loop); every order and shipment is generated on demand from ``(seed, index)`` with its own
RNG. The shipment index (which orders shipped when, sorted by shipment time so shipment ids ascend
with ``created_at``) is built on first use. Order ids, item ids, external ids and tracking numbers
are invertible functions of the index, so lookups never need a dictionary.

Time: order ``i`` is created at ``start + i*span/N`` plus jitter inside its slot, so ids ascend with
``created_at``. Ranges are half-open: ``*_min`` inclusive, ``*_max`` exclusive.
"""

from __future__ import annotations

import bisect
import json
import re
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from . import catalog
from ._util import (
    DAY,
    HOUR,
    LRU,
    Timeline,
    date_utc,
    dumps,
    iso_z,
    key64,
    money,
    random_bytes,
    record_bytes,
    record_rng,
    to_epoch,
    weighted_table,
)
from .dates import parse_dropstream_date

ORDER_STATES: tuple[str, ...] = (
    "archived",
    "bundled",
    "canceled",
    "delayed_processing",
    "delayed_sending_completion_acknowledgement",
    "delayed_sending_receipt_acknowledgement",
    "delayed_sending_to_warehouse",
    "error",
    "error_processing",
    "error_sending_completion_acknowledgement",
    "error_sending_receipt_acknowledgement",
    "error_sending_to_warehouse",
    "new",
    "new_manual",
    "partially_shipped",
    "pending_shipment",
    "processing",
    "queued",
    "ready_for_warehouse",
    "scheduled_completion_acknowledgement",
    "scheduled_processing_order",
    "scheduled_receipt_acknowledgement",
    "scheduled_request",
    "sending_completion_acknowledgement",
    "sending_receipt_acknowledgement",
    "sending_to_warehouse",
    "sent_completion_acknowledgement",
    "sent_to_warehouse",
    "shipped",
    "skipped",
    "split",
    "waiting",
)
"""Every documented ``fulfillment_state``, in the docs' order (the index is the state's code)."""

SHIPMENT_STATES: tuple[str, ...] = (
    "new",
    "ready_for_shipment_notification",
    "scheduled_notify_of_shipment",
    "scheduled_processing_shipment",
    "errored_processing",
    "delayed_notifying_of_shipment",
    "errored_notifying_of_shipment",
    "notified_shipped",
    "archived",
)
"""Every documented shipment ``state`` (the docs list one twice)."""

OS = {name: code for code, name in enumerate(ORDER_STATES)}
SS = {name: code for code, name in enumerate(SHIPMENT_STATES)}

# Order state categories: each documented state is in exactly one.
SHIPPED_STATES = frozenset(
    {
        "shipped",
        "scheduled_completion_acknowledgement",
        "sending_completion_acknowledgement",
        "sent_completion_acknowledgement",
        "delayed_sending_completion_acknowledgement",
        "error_sending_completion_acknowledgement",
        "archived",
    }
)
"""States of orders that left the warehouse in full: they have shipments."""
PARTIAL_STATES = frozenset({"partially_shipped"})
CLOSED_STATES = frozenset({"canceled", "skipped", "bundled", "split"})
"""Closed without shipping (canceled, or merged/split into other orders): never late."""
ORDER_ERROR_STATES = frozenset(s for s in ORDER_STATES if s.startswith("error"))
PRESHIP_ERROR_STATES = ORDER_ERROR_STATES - SHIPPED_STATES
OPEN_STATES = frozenset(ORDER_STATES) - SHIPPED_STATES - PARTIAL_STATES - CLOSED_STATES - ORDER_ERROR_STATES
"""Awaiting shipment, not errored."""
SHIPMENT_ERROR_STATES = frozenset({"errored_processing", "errored_notifying_of_shipment"})

ORDER_ID_BASE = 97_000_000
ITEM_ID_BASE = 270_000_000
ITEMS_PER_ORDER_MAX = 5
SHIPMENT_ID_BASE = 75_000_000
CLOCK_SHIPMENT = 3  # shipment-key kind of a shipment the sandbox clock made (see clock.py)
EXTERNAL_ID_BASE = 4_403_000_000_000
DISPLAY_ID_BASE = 10_000
MAX_ORDER_LAG = 256 * 60  # ordered_at is at most this many seconds before created_at
MAX_SHIP_LAG = 3600  # shipped_at is at most this many seconds before the shipment's created_at
ADDRESS_POOL = 4096  # addresses are drawn from a seeded pool: realistic repeats, cheap records
TRACK_MOD = 10**10
TRACK_MUL = 7_654_321_397  # odd and not a multiple of 5: a bijection mod 10**10
TRACK_INV = pow(TRACK_MUL, -1, TRACK_MOD)

_OLD_ORDER_MIX = weighted_table(
    [
        (OS["shipped"], 186),
        (OS["sent_completion_acknowledgement"], 10),
        (OS["archived"], 6),
        (OS["error_sending_completion_acknowledgement"], 2),
        (OS["partially_shipped"], 10),
        (OS["canceled"], 12),
        (OS["skipped"], 2),
        (OS["split"], 1),
        (OS["bundled"], 1),
        (OS["error"], 3),
        (OS["error_sending_to_warehouse"], 3),
        (OS["error_processing"], 2),
        (OS["pending_shipment"], 6),
        (OS["sent_to_warehouse"], 4),
        (OS["ready_for_warehouse"], 2),
        (OS["waiting"], 2),
        (OS["delayed_sending_to_warehouse"], 2),
        (OS["new_manual"], 2),
    ]
)
_RECENT_ORDER_MIX = weighted_table(
    [
        (OS["new"], 18),
        (OS["queued"], 8),
        (OS["processing"], 8),
        (OS["scheduled_processing_order"], 4),
        (OS["ready_for_warehouse"], 14),
        (OS["sending_to_warehouse"], 6),
        (OS["sent_to_warehouse"], 28),
        (OS["scheduled_receipt_acknowledgement"], 2),
        (OS["sending_receipt_acknowledgement"], 2),
        (OS["delayed_sending_receipt_acknowledgement"], 1),
        (OS["error_sending_receipt_acknowledgement"], 1),
        (OS["pending_shipment"], 46),
        (OS["waiting"], 4),
        (OS["delayed_processing"], 2),
        (OS["delayed_sending_to_warehouse"], 2),
        (OS["scheduled_request"], 2),
        (OS["new_manual"], 2),
        (OS["error_sending_to_warehouse"], 5),
        (OS["error"], 3),
        (OS["error_processing"], 3),
        (OS["canceled"], 6),
        (OS["partially_shipped"], 12),
        (OS["shipped"], 63),
        (OS["scheduled_completion_acknowledgement"], 3),
        (OS["sending_completion_acknowledgement"], 3),
        (OS["delayed_sending_completion_acknowledgement"], 2),
        (OS["sent_completion_acknowledgement"], 4),
        (OS["error_sending_completion_acknowledgement"], 2),
    ]
)
_OLD_SHIPMENT_MIX = weighted_table(
    [
        (SS["notified_shipped"], 230),
        (SS["archived"], 18),
        (SS["errored_notifying_of_shipment"], 5),
        (SS["errored_processing"], 3),
    ]
)
_RECENT_SHIPMENT_MIX = weighted_table(
    [
        (SS["new"], 20),
        (SS["ready_for_shipment_notification"], 30),
        (SS["scheduled_notify_of_shipment"], 25),
        (SS["scheduled_processing_shipment"], 15),
        (SS["delayed_notifying_of_shipment"], 8),
        (SS["errored_notifying_of_shipment"], 10),
        (SS["errored_processing"], 6),
        (SS["notified_shipped"], 142),
    ]
)
_NITEMS = weighted_table([(1, 100), (2, 70), (3, 45), (4, 25), (5, 16)])
# Per state code: 0 no shipment, 1 shipped in full, 2 partially shipped.
_SHIPCAT = bytes(1 if s in SHIPPED_STATES else 2 if s in PARTIAL_STATES else 0 for s in ORDER_STATES) + bytes(
    256 - len(ORDER_STATES)
)


def _spread(weights: Sequence[int]) -> bytes:
    return weighted_table(list(enumerate(weights)))


def _j(value: Any) -> str:
    """JSON text of a value (for pre-rendered fragments)."""
    return json.dumps(value, ensure_ascii=False)


def _q(text: str) -> str:
    return f'"{text}"'


_PAYMENT_TYPES = tuple(_j(x) for x in ("paypal", "credit_card", "shopify_payments", "net30"))
_TAGS = tuple(_j(x) for x in ("", "vip", "wholesale", "vip,gift", "subscription"))
_WELCOME = _j("WELCOME10")


def _finder(code: int) -> re.Pattern[bytes]:
    return re.compile(re.escape(bytes([code])))


class ParamError(ValueError):
    """A bad request parameter: the API answers 400 with this message."""


@dataclass(frozen=True)
class OrderQuery:
    """Parsed ``GET /orders`` filters (epoch seconds; index-space ids; None = not filtered)."""

    created_min: float | None = None
    created_max: float | None = None
    ordered_min: float | None = None
    ordered_max: float | None = None
    store: int | None = None
    external: int | None = None
    display: int | None = None
    state: int | None = None
    sort: str | None = None

    def key(self) -> tuple:
        return ("orders", *(getattr(self, f) for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class ShipmentQuery:
    """Parsed ``GET /shipments`` filters."""

    created_min: float | None = None
    created_max: float | None = None
    shipped_min: float | None = None
    shipped_max: float | None = None
    tracking: int | None = None
    store: int | None = None
    warehouse: int | None = None
    customer: int | None = None
    state: int | None = None
    sort: str | None = None

    def key(self) -> tuple:
        return ("shipments", *(getattr(self, f) for f in self.__dataclass_fields__))


ORDER_FILTERS = (
    "ordered_at_min",
    "ordered_at_max",
    "created_at_min",
    "created_at_max",
    "store_id",
    "external_id",
    "external_display_id",
    "state",
)
SHIPMENT_FILTERS = (
    "shipped_at_min",
    "shipped_at_max",
    "created_at_min",
    "created_at_max",
    "tracking_number",
    "store_id",
    "warehouse_id",
    "customer_id",
    "state",
)
# The five the docs list as sortable, and every other documented scalar shipment property.
SHIPMENT_SORTS = (
    "id",
    "tracking_number",
    "shipped_at",
    "created_at",
    "warehouse_id",
    "state",
    "order_id",
    "expected_delivery_date",
    "weight",
    "external_shipping_description",
    "carrier_name",
    "service_level",
)
NON_SCALAR_ORDER_FIELDS = frozenset({"custom", "shipping_address", "billing_address", "order_items"})
NOT_FOUND = -1


@dataclass
class DropStreamTruth:
    """Ground truth for tests, as sets of DropStream ids (orders or shipments, as named).

    - ``late``: orders in an open (awaiting shipment, not errored) state, ``requested_ship_date``
      before the world's end, no shipment.
    - ``unshipped_past_deadline``: every order with no shipment, ``requested_ship_date`` before the
      world's end, and not closed (canceled/skipped/bundled/split): ``late`` plus pre-ship errors plus
      ``shipped_without_shipment``. What a reconciliation of all orders and shipments should flag.
    - ``errored_orders``: ``fulfillment_state`` starting with ``error``; ``errored_shipments``: shipment
      state ``errored_*``; ``canceled``; ``partially_shipped``.
    - Planted discrepancies: ``shipped_without_shipment`` (orders in state ``shipped``, no shipment),
      ``orphan_shipments`` (shipment ``order_id`` matches no order), ``foreign_item_shipments``
      (a shipment listing an order item id that is not on its order).
    """

    late: frozenset[int]
    unshipped_past_deadline: frozenset[int]
    errored_orders: frozenset[int]
    errored_shipments: frozenset[int]
    canceled: frozenset[int]
    partially_shipped: frozenset[int]
    shipped_without_shipment: frozenset[int]
    orphan_shipments: frozenset[int]
    foreign_item_shipments: frozenset[int]
    order_ids_by_state: dict[str, frozenset[int]] = field(repr=False)
    shipment_ids_by_state: dict[str, frozenset[int]] = field(repr=False)

    def summary(self) -> dict[str, int]:
        return {
            name: len(getattr(self, name))
            for name in (
                "late",
                "unshipped_past_deadline",
                "errored_orders",
                "errored_shipments",
                "canceled",
                "partially_shipped",
                "shipped_without_shipment",
                "orphan_shipments",
                "foreign_item_shipments",
            )
        }

    def as_json(self) -> dict[str, list[int]]:
        return {name: sorted(getattr(self, name)) for name in self.summary()}


class DropStreamWorld(Timeline):
    """Orders and shipments of one seed, generated lazily; see the module docstring."""

    def __init__(
        self,
        seed: int,
        n_orders: int,
        start: int,
        end: int,
        recent_days: float = 7.0,
        planted: int = 5,
        record_cache: int = 20_000,
    ) -> None:
        if n_orders < 1:
            raise ValueError("orders must be >= 1")
        self.seed = seed
        n = n_orders
        self._init_timeline(seed, 1, n, start, end)
        self._ordoff = random_bytes(seed, 2, n)
        self._store = random_bytes(seed, 3, n).translate(_spread(catalog.STORE_WEIGHTS))
        self._wh = random_bytes(seed, 4, n).translate(_spread(catalog.WAREHOUSE_WEIGHTS))
        self._carrier = random_bytes(seed, 5, n).translate(_spread([c[5] for c in catalog.CARRIERS]))
        self._nitems = random_bytes(seed, 6, n).translate(_NITEMS)
        self._rsd = random_bytes(seed, 7, n)
        self._shipb = random_bytes(seed, 8, n)
        self.customers = self._make_customers(max(12, min(250, n // 40)))
        self._cust = random_bytes(seed, 9, n).translate(
            bytes((b * len(self.customers)) >> 8 for b in range(256))
        )
        # The last `recent_days` hold most of the open orders: a live backlog, not yet late.
        self.recent_start = max(start, end - int(recent_days * DAY))
        k = self.index_at(self.recent_start)
        raw = random_bytes(seed, 10, n)
        self._state = bytearray(raw[:k].translate(_OLD_ORDER_MIX) + raw[k:].translate(_RECENT_ORDER_MIX))
        self.stores = [
            {
                "id": sid,
                "name": name,
                "platform": platform,
                "created_at": iso_z(start - 400 * DAY + j * 9 * DAY),
            }
            for j, (sid, name, platform) in enumerate(catalog.STORES)
        ]
        self.warehouses = [
            {"id": wid, "name": name, "code": code, "city": city, "region": region, "country": "US"}
            for wid, name, code, city, region in catalog.WAREHOUSES
        ]
        self.products = catalog.products(seed)
        self._key = key64(seed, 0x0D5).to_bytes(8, "little")
        self._track_off = key64(seed, 22) % TRACK_MOD
        self._idr = random_bytes(seed, 11, n).translate(bytes(b % 3 for b in range(256)))
        self._prepare_fragments()
        self._plant(planted, k)
        # Moved by the sandbox clock (clock.py): order index -> its transition time, and the
        # shipment time of the orders it shipped.
        self.now = end
        self.moved: dict[int, int] = {}
        self.clock_shipped: dict[int, int] = {}
        self._record_bytes: LRU[int, bytes] = LRU(record_cache)
        self._ship_bytes: LRU[int, bytes] = LRU(record_cache)
        self._results: LRU[tuple, Sequence[int]] = LRU(24)

    # ----------------------------------------------------------------- construction helpers

    def _make_customers(self, count: int) -> list[dict]:
        rng = record_rng(self.seed, 90, 0)
        combos = rng.sample(range(len(catalog.LAST_NAMES) * len(catalog.BUSINESS_WORDS)), count)
        out = []
        for j, c in enumerate(sorted(combos)):
            last = catalog.LAST_NAMES[c // len(catalog.BUSINESS_WORDS)]
            biz = catalog.BUSINESS_WORDS[c % len(catalog.BUSINESS_WORDS)]
            name = f"{last} {biz}"
            slug = re.sub(r"[^a-z0-9]+", "", name.lower())
            out.append(
                {
                    "id": 50_000 + 17 * j,
                    "name": name,
                    "email": f"orders@{slug}.example.com",
                    "external_id": f"cus_{key64(self.seed, 91, j) % 10**9:09d}",
                }
            )
        return out

    def _plant(self, planted: int, recent_index: int) -> None:
        """Pick the planted discrepancies among old, fully shipped orders (deterministically)."""
        rng = record_rng(self.seed, 92, 0)
        shipped = OS["shipped"]
        pool_end = max(1, recent_index - 1)
        want = 3 * planted
        picked: list[int] = []
        seen: set[int] = set()
        tries = 0
        while len(picked) < want and tries < 200 * want + 1000:
            tries += 1
            i = rng.randrange(pool_end)
            if i in seen or self._state[i] != shipped:
                continue
            # keep planted orders apart so that 'foreign' items borrowed from i+1 stay unambiguous
            if any(abs(i - j) <= 1 for j in picked):
                continue
            seen.add(i)
            picked.append(i)
        self._no_ship = frozenset(picked[0::3])
        self._orphan_src = tuple(sorted(picked[1::3]))
        self._foreign = frozenset(picked[2::3])

    # ----------------------------------------------------------------- per-order scalars

    created = Timeline.time_of

    def ordered(self, i: int) -> int:
        return self.created(i) - self._ordoff[i] * 60

    def order_id(self, i: int) -> int:
        return ORDER_ID_BASE + 3 * i + self._idr[i]

    def order_index(self, order_id: int) -> int:
        i = (order_id - ORDER_ID_BASE) // 3
        if 0 <= i < self.n and self.order_id(i) == order_id:
            return i
        return NOT_FOUND

    def external_id(self, i: int) -> str:
        return str(EXTERNAL_ID_BASE + 7 * i + self.seed % 7)

    def _external_index(self, value: str) -> int:
        try:
            d = int(value) - EXTERNAL_ID_BASE - self.seed % 7
        except ValueError:
            return NOT_FOUND
        return d // 7 if d >= 0 and d % 7 == 0 and d // 7 < self.n else NOT_FOUND

    def display_id(self, i: int) -> str:
        return f"SO{DISPLAY_ID_BASE + i}"

    def _display_index(self, value: str) -> int:
        if not value.startswith("SO") or not value[2:].isdigit():
            return NOT_FOUND
        i = int(value[2:]) - DISPLAY_ID_BASE
        return i if 0 <= i < self.n and self.display_id(i) == value else NOT_FOUND

    def state(self, i: int) -> str:
        return ORDER_STATES[self._state[i]]

    order_states = ORDER_STATES

    def set_state(self, i: int, state: str) -> None:
        """Move order ``i`` to ``state`` (live-data knobs): listings and renderings see it from now on."""
        self._state[i] = OS[state]
        self._record_bytes = LRU(self._record_bytes.maxsize)
        self._results = LRU(24)

    def nitems(self, i: int) -> int:
        n = self._nitems[i]
        return max(n, 2) if self._state[i] == OS["partially_shipped"] else n

    def item_id(self, i: int, k: int) -> int:
        return ITEM_ID_BASE + ITEMS_PER_ORDER_MAX * i + k

    def item_ids(self, i: int) -> list[int]:
        return [self.item_id(i, k) for k in range(self.nitems(i))]

    def requested_ship(self, i: int) -> int:
        return self.created(i) + DAY + (self._rsd[i] * 1013) % (3 * DAY)

    def _two_shipments(self, i: int) -> bool:
        return _SHIPCAT[self._state[i]] == 1 and self.nitems(i) >= 2 and self._shipb[i] < 26

    def shipment_count(self, i: int) -> int:
        """Shipments that reference order ``i`` (the planted orphans reference no order)."""
        cat = _SHIPCAT[self._state[i]]
        if cat == 0 or i in self._no_ship:
            return 0
        return 2 if self._two_shipments(i) else 1

    def ship_time(self, i: int, k: int) -> int:
        """``created_at`` of shipment ``k`` of order ``i`` (k=2: a planted orphan derived from it)."""
        created = self.created(i)
        b = self._shipb[i]
        delay = HOUR * (2 + b % 70)
        if k == 1:
            delay += DAY + HOUR * (b % 5)
        elif k == 2:
            delay += 1800
        avail = self.end - 1 - created
        if delay > avail:
            delay = max(0, avail * (b + 1) // 257)
        return created + delay

    def shipped_time(self, i: int, k: int) -> int:
        if k == CLOCK_SHIPMENT:
            return self.clock_shipped[i]
        t = self.ship_time(i, k)
        return max(self.created(i), t - (self._shipb[i] * 37 + k * 11) % MAX_SHIP_LAG)

    def transitioned(self, i: int) -> int:
        if i in self.moved:
            return self.moved[i]
        state = self._state[i]
        if _SHIPCAT[state]:
            t = self.ship_time(i, 1 if self._two_shipments(i) else 0)
            if ORDER_STATES[state] != "shipped" and ORDER_STATES[state] != "partially_shipped":
                t = min(self.end - 1, t + 300)
            return t
        return min(self.end - 1, self.created(i) + (self._shipb[i] * 97) % 7200)

    # ----------------------------------------------------------------- records

    def _prepare_fragments(self) -> None:
        """Pre-render the JSON text of everything that repeats (stores, carriers, customers, products,
        cities): an order is then one f-string of a few dozen per-record values, ~10x faster than
        building and encoding dicts, which keeps the sandbox out of a client benchmark's way."""
        self._f_store = []
        for store in self.stores:
            slug = re.sub(r"[^a-z]+", "", store["name"].lower())
            self._f_store.append(
                (
                    str(store["id"]),
                    store["platform"] == "amazon",
                    _j(store["platform"]),
                    _j("Net 30" if store["platform"] == "bigcommerce" else None),
                    _j(f"https://{slug}.example.com/help"),
                )
            )
        self._f_carrier = [
            (
                f'"shipping_carrier_name":{_j(c[0])},"shipping_carrier_service_level":{_j(c[1])},'
                f'"shipping_warehouse_code":{_j(c[3])}',
                _j(c[2]),
                _j("standard" if c[1] == "Ground" else "expedited"),
            )
            for c in catalog.CARRIERS
        ]
        self._f_customer = [
            f'"external_billing_customer_id":{_j(c["external_id"])},"customer_email":{_j(c["email"])},'
            f'"external_shipping_customer_id":{_j(c["external_id"])}'
            for c in self.customers
        ]
        self._f_wh = [str(w["id"]) for w in self.warehouses]
        self._f_product = []
        for p in self.products:
            price = p["unit_price"]
            self._f_product.append(
                (
                    f'"name":{_j(p["name"])},"sku":{_j(p["sku"])},"upc":{_j(p["upc"])}',
                    f',"unit_price":"{money(price)}","unit_cost":"{money(p["unit_cost"])}",'
                    f'"weight":"{money(p["weight"])}","external_order_item_id":"',
                    f'"external_product_id":{_j(p["external_product_id"])},"customer_notes":null,'
                    f'"vendor_id":{_j(p["vendor_id"])},"vendor_part_number":{_j(p["vendor_part_number"])},'
                    f'"buyer_part_number":null,"color_description":{_j(p["color_description"])},'
                    f'"size_description":{_j(p["size_description"])},"drop_ship":null,'
                    f'"product_type":{_j(p["product_type"])},"created_at":"',
                    [money(round(price * q * 0.0825, 2)) for q in range(6)],
                    money(round(price * 0.1, 2)),
                    price,
                )
            )
        self._f_first = [_j(x) for x in catalog.FIRST_NAMES]
        self._f_last = [_j(x) for x in catalog.LAST_NAMES]
        self._f_street = list(catalog.STREETS)
        self._f_city = [
            (
                f'"city":{_j(c)},"region":{_j(r)},"postal_code":"{z}',
                country == "US",
                f',"country":"{country}"',
            )
            for c, r, z, country in catalog.CITIES
        ]

        rnd = record_rng(self.seed, 93, 0).random
        self._f_addresses = [self._address_json(rnd) for _ in range(ADDRESS_POOL)]

    def _address_json(self, rnd: Callable[[], float]) -> str:
        city, us, country = self._f_city[int(rnd() * len(self._f_city))]
        first = self._f_first[int(rnd() * len(self._f_first))]
        last = self._f_last[int(rnd() * len(self._f_last))]
        number = 1 + int(rnd() * 9800)
        street = self._f_street[int(rnd() * len(self._f_street))]
        apt = f'"Apt {1 + int(rnd() * 40)}"' if rnd() < 0.2 else "null"
        postal = f"{int(rnd() * 100):02d}" if us else " 1A1"
        phone = 2000000000 + int(rnd() * 7999999999)
        return (
            f'{{"first_name":{first},"last_name":{last},"street1":"{number} {street}","street2":{apt},'
            f'{city}{postal}"{country},"telephone":"+1{phone}"}}'
        )

    def order_json(self, i: int) -> str:
        """The order object of index ``i`` as JSON text (the one source of every order's content)."""
        h = record_bytes(self._key, i)  # 64 seeded bytes: every random choice of this order
        created = self.created(i)
        created_s = iso_z(created)
        ordered = created - self._ordoff[i] * 60
        code = self._state[i]
        state = ORDER_STATES[code]
        store_id, amazon, platform, terms, cs_url = self._f_store[self._store[i]]
        carrier, carrier_desc, priority = self._f_carrier[self._carrier[i]]
        base_ext = 4403098091556 + ITEMS_PER_ORDER_MAX * i
        products = self._f_product
        n_products = len(products)
        items = []
        subtotal = 0.0
        for k in range(self.nitems(i)):
            o = 8 + 5 * k
            head, mid, tail, taxes, disc_s, price = products[((h[o] << 8) | h[o + 1]) % n_products]
            qty = 1 if h[o + 2] < 205 else 2 + h[o + 2] % 3
            disc = disc_s if h[o + 3] < 26 else "0.0"
            subtotal += price * qty
            if h[o + 4] < 8:
                gift, opts, custom = "true", '[{"gift_message":"Enjoy!"}]', '{"gift_message":"Enjoy!"}'
            else:
                gift, opts, custom = "false", "[]", "{}"
            items.append(
                f'{{{head}{mid}{base_ext + k}","discount_amount":"{disc}",'
                f'"tax_amount":"{taxes[qty]}","gift_wrap":{gift},{tail}{created_s}","options":{opts},"custom":{custom}}}'
            )
        addresses = self._f_addresses
        ship_addr = addresses[((h[34] << 8) | h[35]) % ADDRESS_POOL]
        bill_addr = ship_addr if h[36] < 192 else addresses[((h[37] << 8) | h[38]) % ADDRESS_POOL]
        shipping = 0.0 if subtotal > 75 else round(4.99 + h[39] / 25.6, 2)
        discount = round(subtotal * 0.1, 2) if h[40] < 31 else 0.0
        insured = h[41] < 26
        invoice = f'"INV-{200000 + i}"' if h[42] < 154 else "null"
        payment = _PAYMENT_TYPES[h[43] & 3]
        signature = "true" if h[44] < 13 else "false"
        po = f'"PO{15000 + i}"' if h[45] < 38 else "null"
        notes = '"Leave at back door"' if h[46] < 10 else "null"
        gift_message = '"Happy Birthday, Love Mom"' if h[47] < 5 else "null"
        tags = _TAGS[h[48] % 5]
        wms = (
            f'"WMS{(i * 7919 + self.seed * 104729) % 10**8:08d}"'
            if state not in OPEN_STATES or state in ("sent_to_warehouse", "pending_shipment")
            else "null"
        )
        transitioned = iso_z(self.transitioned(i))
        cancel = f'"{transitioned}"' if state == "canceled" else "null"
        amazon_id = f'"AMZN{500 + i % 97}"' if amazon else "null"
        total = money(round(subtotal, 2))
        return (
            f'{{"id":{self.order_id(i)},"store_id":{store_id},"external_id":"{self.external_id(i)}",'
            f'{self._f_customer[self._cust[i]]},"ordered_at":"{iso_z(ordered)}","invoice_number":{invoice},'
            f'"payment_type":{payment},"external_warehouse_order_id":{wms},{carrier},'
            f'"signature_required":{signature},"shipping_insurance":{"true" if insured else "false"},'
            f'"external_shipping_description":{carrier_desc},"external_display_id":"{self.display_id(i)}",'
            f'"external_source_display_id":{amazon_id},"purchase_order_id":{po},"notes":{notes},'
            f'"shipping_notes":null,"gift_message":{gift_message},"batch_id":"TRAN{3000 + (i // 50) % 7000}",'
            f'"shipping_amount":"{money(shipping)}","discount_amount":"{money(discount)}",'
            f'"tax_amount":"{money(round(subtotal * 0.0825, 2))}","shipping_tax_amount":"0.0",'
            f'"third_party_account_number":null,"third_party_billing_code":null,'
            f'"discount_codes":{_WELCOME if discount else "null"},"external_source_id":{platform},'
            f'"lead_source":null,"packing_slip_id":"PS-{i + 1}","requested_ship_date":"{iso_z(self.requested_ship(i))}",'
            f'"requested_cancel_date":{cancel},"payment_date":"{iso_z(ordered + 60)}","external_tags":{tags},'
            f'"retailer_id":null,"supplier_id":null,"insured_amount":{f"{_q(total)}" if insured else "null"},'
            f'"terms":{terms},"sales_rep_last_name":null,"sales_rep_first_name":null,"sales_rep_email":null,'
            f'"fulfillment_state":"{state}","fulfillment_transitioned_at":"{transitioned}","external_type":"order",'
            f'"fulfillment_warehouse_id":{self._f_wh[self._wh[i]]},"country_of_origin":"US","shipment_contents":null,'
            f'"declared_value":"{total}","currency_code":"USD","customer_service_url":{cs_url},'
            f'"customer_service_email":"help@example.com","customer_service_telephone":"(123) 456-7890",'
            f'"created_at":"{created_s}","custom":{{"channel":{platform},"priority":{priority}}},'
            f'"shipping_address":{ship_addr},"billing_address":{bill_addr},"order_items":[{",".join(items)}]}}'
        )

    def order_dict(self, i: int) -> dict[str, Any]:
        """The full order object of index ``i`` (a fresh dict, parsed from :meth:`order_json`)."""
        return json.loads(self.order_bytes(i))

    def order_bytes(self, i: int) -> bytes:
        """The order's JSON bytes, cached: pages are joined from these without re-encoding."""
        b = self._record_bytes.get(i)
        if b is None:
            b = self.order_json(i).encode()
            self._record_bytes.put(i, b)
        return b

    def order(self, order_id: int) -> dict[str, Any] | None:
        """The order with this id, or None."""
        i = self.order_index(order_id)
        return None if i == NOT_FOUND else self.order_dict(i)

    def iter_orders(self) -> Iterator[dict[str, Any]]:
        for i in range(self.n):
            yield self.order_dict(i)

    # ----------------------------------------------------------------- shipments

    @cached_property
    def _ship_keys(self) -> array:
        """Shipments sorted by created_at: key = t * 4N + 4i + k (k: 0/1 real, 2 planted orphan)."""
        mul = 4 * self.n
        cat = self._state.translate(_SHIPCAT)
        keys: list[int] = []
        append = append_k = keys.append
        no_ship = self._no_ship
        for m in re.finditer(rb"[\x01\x02]", cat):
            i = m.start()
            if i in no_ship:
                continue
            append(self.ship_time(i, 0) * mul + 4 * i)
            if cat[i] == 1 and self._nitems[i] >= 2 and self._shipb[i] < 26:
                append_k(self.ship_time(i, 1) * mul + 4 * i + 1)
        for i in self._orphan_src:
            append(self.ship_time(i, 2) * mul + 4 * i + 2)
        keys.sort()
        return array("q", keys)

    @cached_property
    def _ship_state(self) -> bytes:
        keys = self._ship_keys
        k = bisect.bisect_left(keys, (self.end - 3 * DAY) * 4 * self.n)
        raw = random_bytes(self.seed, 20, len(keys))
        return raw[:k].translate(_OLD_SHIPMENT_MIX) + raw[k:].translate(_RECENT_SHIPMENT_MIX)

    @property
    def n_shipments(self) -> int:
        return len(self._ship_keys)

    def _decode(self, p: int) -> tuple[int, int, int]:
        key = self._ship_keys[p]
        mul = 4 * self.n
        rest = key % mul
        return key // mul, rest >> 2, rest & 3

    @cached_property
    def _sidr(self) -> bytes:
        return random_bytes(self.seed, 21, len(self._ship_keys)).translate(bytes(b & 1 for b in range(256)))

    def shipment_id(self, p: int) -> int:
        return SHIPMENT_ID_BASE + 2 * p + self._sidr[p]

    def shipment_index(self, shipment_id: int) -> int:
        p = (shipment_id - SHIPMENT_ID_BASE) // 2
        if 0 <= p < self.n_shipments and self.shipment_id(p) == shipment_id:
            return p
        return NOT_FOUND

    def tracking_number(self, p: int) -> str:
        _, i, _ = self._decode(p)
        prefix = catalog.CARRIERS[self._carrier[i]][4]
        return f"{prefix}{(p * TRACK_MUL + self._track_off) % TRACK_MOD:010d}"

    def _tracking_index(self, value: str) -> int:
        tail = value[-10:]
        if len(value) < 10 or not tail.isdigit():
            return NOT_FOUND
        p = ((int(tail) - self._track_off) * TRACK_INV) % TRACK_MOD
        if p < self.n_shipments and self.tracking_number(p) == value:
            return p
        return NOT_FOUND

    def shipment_order_index(self, p: int) -> int:
        """The order index a shipment derives from (for an orphan: the order it was cloned from)."""
        return self._decode(p)[1]

    def shipment_state(self, p: int) -> str:
        return SHIPMENT_STATES[self._ship_state[p]]

    def shipment_created(self, p: int) -> int:
        return self._decode(p)[0]

    def shipment_shipped(self, p: int) -> int:
        _, i, k = self._decode(p)
        return self.shipped_time(i, k)

    def shipment_item_ids(self, p: int) -> list[int]:
        _, i, k = self._decode(p)
        ids = self.item_ids(i)
        n = len(ids)
        if k >= 2:  # a planted orphan, or a shipment the clock made: the whole order
            return ids
        if self._state[i] == OS["partially_shipped"]:
            return ids[: max(1, n // 2)]
        if self._two_shipments(i):
            half = (n + 1) // 2
            ids = ids[:half] if k == 0 else ids[half:]
        if k == 0 and i in self._foreign:
            other = i + 1 if i + 1 < self.n else i - 1
            ids = [*ids, self.item_id(other, 0)]
        return ids

    def shipment_dict(self, p: int) -> dict[str, Any]:
        t, i, k = self._decode(p)
        carrier = catalog.CARRIERS[self._carrier[i]]
        shipped = self.shipped_time(i, k)
        order_id = self.order_id(i)
        if k == 2:  # planted orphan: an id in the gaps between order ids, so no order has it
            order_id = ORDER_ID_BASE + 3 * i + (order_id - ORDER_ID_BASE - 3 * i + 1) % 3
        item_ids = self.shipment_item_ids(p)
        weight = 0.5 + ((p * 2654435761 + self.seed) >> 7) % 120 / 10
        return {
            "id": self.shipment_id(p),
            "tracking_number": self.tracking_number(p),
            "created_at": iso_z(t),
            "order_id": order_id,
            "shipped_at": iso_z(shipped),
            "weight": money(round(weight, 1)),
            "external_shipping_description": carrier[2],
            "carrier_name": carrier[0],
            "service_level": carrier[1],
            "warehouse_id": self.warehouses[self._wh[i]]["id"],
            "state": self.shipment_state(p),
            "order_items": [{"id": x} for x in item_ids],
            "expected_delivery_date": date_utc(shipped + DAY * (2 + self._shipb[i] % 5)),
        }

    def shipment_bytes(self, p: int) -> bytes:
        b = self._ship_bytes.get(p)
        if b is None:
            b = dumps(self.shipment_dict(p))
            self._ship_bytes.put(p, b)
        return b

    def shipment(self, shipment_id: int) -> dict[str, Any] | None:
        p = self.shipment_index(shipment_id)
        return None if p == NOT_FOUND else self.shipment_dict(p)

    def iter_shipments(self) -> Iterator[dict[str, Any]]:
        for p in range(self.n_shipments):
            yield self.shipment_dict(p)

    # ----------------------------------------------------------------- parameter parsing

    def _date(self, name: str, value: str, now: datetime) -> float:
        try:
            return to_epoch(parse_dropstream_date(value, now))
        except ValueError as exc:
            raise ParamError(f"invalid date for {name}: {value!r}") from exc

    def _entity(self, kind: str, rows: list[dict], value: str) -> int:
        """An id (integer) or a name, to the row's index; unknown id -> NOT_FOUND, unknown name -> 400."""
        v = value.strip()
        if v.lstrip("-").isdigit():
            for j, row in enumerate(rows):
                if row["id"] == int(v):
                    return j
            return NOT_FOUND
        for j, row in enumerate(rows):
            if row["name"].casefold() == v.casefold():
                return j
        raise ParamError(f"{kind} not found: {value!r}")

    def parse_order_query(
        self, params: Mapping[str, str], now: datetime, sort: str | None = None
    ) -> OrderQuery:
        """Filters of ``GET /orders`` (already checked for unknown names) to an :class:`OrderQuery`."""
        q: dict[str, Any] = {}
        for name in ("created_at_min", "created_at_max", "ordered_at_min", "ordered_at_max"):
            if name in params:
                q[name.replace("_at", "")] = self._date(name, params[name], now)
        if "store_id" in params:
            q["store"] = self._entity("store", self.stores, params["store_id"])
        if "external_id" in params:
            q["external"] = self._external_index(params["external_id"])
        if "external_display_id" in params:
            q["display"] = self._display_index(params["external_display_id"])
        if "state" in params:
            if params["state"] not in OS:
                raise ParamError(f"unknown state: {params['state']!r}")
            q["state"] = OS[params["state"]]
        if sort is not None:
            if sort not in ORDER_SORT_FIELDS:
                raise ParamError(f"cannot sort orders by {sort!r}")
            q["sort"] = None if sort in ("id", "created_at") else sort
        return OrderQuery(**q)

    def parse_shipment_query(
        self, params: Mapping[str, str], now: datetime, sort: str | None = None
    ) -> ShipmentQuery:
        q: dict[str, Any] = {}
        for name in ("created_at_min", "created_at_max", "shipped_at_min", "shipped_at_max"):
            if name in params:
                q[name.replace("_at", "")] = self._date(name, params[name], now)
        if "tracking_number" in params:
            q["tracking"] = self._tracking_index(params["tracking_number"])
        if "store_id" in params:
            q["store"] = self._entity("store", self.stores, params["store_id"])
        if "warehouse_id" in params:
            q["warehouse"] = self._entity("warehouse", self.warehouses, params["warehouse_id"])
        if "customer_id" in params:
            q["customer"] = self._entity("customer", self.customers, params["customer_id"])
        if "state" in params:
            if params["state"] not in SS:
                raise ParamError(f"unknown state: {params['state']!r}")
            q["state"] = SS[params["state"]]
        if sort is not None:
            if sort not in SHIPMENT_SORTS:
                raise ParamError(f"cannot sort shipments by {sort!r}; sortable: {', '.join(SHIPMENT_SORTS)}")
            q["sort"] = None if sort in ("id", "created_at") else sort
        return ShipmentQuery(**q)

    # ----------------------------------------------------------------- selection

    def select_orders(self, q: OrderQuery) -> Sequence[int]:
        """Order indices matching ``q``, in response order (cached: sessions and pages reuse it)."""
        key = q.key()
        hit = self._results.get(key)
        if hit is None:
            hit = self._sort_orders(self._filter_orders(q), q.sort)
            self._results.put(key, hit)
        return hit

    def _filter_orders(self, q: OrderQuery) -> Sequence[int]:
        lo, hi = 0, self.n
        if q.created_min is not None:
            lo = max(lo, self.index_at(q.created_min))
        if q.created_max is not None:
            hi = min(hi, self.index_at(q.created_max))
        if q.ordered_min is not None:  # created >= ordered >= min
            lo = max(lo, self.index_at(q.ordered_min))
        if q.ordered_max is not None:  # created < ordered + lag < max + lag
            hi = min(hi, self.index_at(q.ordered_max + MAX_ORDER_LAG))
        if lo >= hi or q.store == NOT_FOUND:
            return range(0)
        checks: list[Callable[[int], bool]] = []
        candidates: Sequence[int] | Iterator[int]
        exact = [x for x in (q.external, q.display) if x is not None]
        if exact:
            if any(x != exact[0] for x in exact) or exact[0] == NOT_FOUND:
                return range(0)
            candidates = [exact[0]] if lo <= exact[0] < hi else []
            if q.state is not None:
                checks.append(lambda i, s=q.state: self._state[i] == s)
            if q.store is not None:
                checks.append(lambda i, s=q.store: self._store[i] == s)
        elif q.state is not None:
            candidates = (m.start() for m in _finder(q.state).finditer(self._state, lo, hi))
            if q.store is not None:
                checks.append(lambda i, s=q.store: self._store[i] == s)
        elif q.store is not None:
            candidates = (m.start() for m in _finder(q.store).finditer(self._store, lo, hi))
        else:
            candidates = range(lo, hi)
        if q.ordered_min is not None:
            checks.append(lambda i, t=q.ordered_min: self.ordered(i) >= t)
        if q.ordered_max is not None:
            checks.append(lambda i, t=q.ordered_max: self.ordered(i) < t)
        if not checks and isinstance(candidates, range):
            return candidates
        return array("i", (i for i in candidates if all(c(i) for c in checks)))

    def _sort_orders(self, rows: Sequence[int], sort: str | None) -> Sequence[int]:
        if sort is None or len(rows) <= 1:
            return rows
        fast = self._order_sort_keys().get(sort)
        if fast is not None:
            return array("i", sorted(rows, key=lambda i: (fast(i), i)))
        values = {i: self.order_dict(i).get(sort) for i in rows}
        return array(
            "i", sorted(rows, key=lambda i: (values[i] is None, values[i] if values[i] is not None else 0, i))
        )

    def order_sort_key(self, sort: str) -> Callable[[int], Any] | None:
        """The key orders are listed by under ``sort`` (None: id order, where no two tie)."""
        if sort in ("id", "created_at"):
            return None
        return self._order_sort_keys().get(sort) or (lambda i: self.order_dict(i).get(sort))

    def _order_sort_keys(self) -> dict[str, Callable[[int], Any]]:
        return {
            "store_id": lambda i: catalog.STORES[self._store[i]][0],
            "ordered_at": self.ordered,
            "fulfillment_state": self.state,
            "fulfillment_warehouse_id": lambda i: catalog.WAREHOUSES[self._wh[i]][0],
            "requested_ship_date": self.requested_ship,
            "fulfillment_transitioned_at": self.transitioned,
            "external_id": self.external_id,
            "external_display_id": self.display_id,
            "customer_email": lambda i: self.customers[self._cust[i]]["email"],
        }

    def select_shipments(self, q: ShipmentQuery) -> Sequence[int]:
        key = q.key()
        hit = self._results.get(key)
        if hit is None:
            hit = self._sort_shipments(self._filter_shipments(q), q.sort)
            self._results.put(key, hit)
        return hit

    def _filter_shipments(self, q: ShipmentQuery) -> Sequence[int]:
        keys = self._ship_keys
        mul = 4 * self.n
        lo, hi = 0, len(keys)
        if q.created_min is not None:
            lo = max(lo, bisect.bisect_left(keys, _ceil(q.created_min) * mul))
        if q.created_max is not None:
            hi = min(hi, bisect.bisect_left(keys, _ceil(q.created_max) * mul))
        if q.shipped_min is not None:  # created >= shipped >= min
            lo = max(lo, bisect.bisect_left(keys, _ceil(q.shipped_min) * mul))
        if q.shipped_max is not None:  # created <= shipped + lag < max + lag
            hi = min(hi, bisect.bisect_left(keys, _ceil(q.shipped_max + MAX_SHIP_LAG) * mul))
        if lo >= hi:
            return range(0)
        if NOT_FOUND in (q.tracking, q.store, q.warehouse, q.customer):
            return range(0)
        checks: list[Callable[[int], bool]] = []
        candidates: Sequence[int] | Iterator[int]
        if q.tracking is not None:
            candidates = [q.tracking] if lo <= q.tracking < hi else []
            if q.state is not None:
                checks.append(lambda p, s=q.state: self._ship_state[p] == s)
        elif q.state is not None:
            candidates = (m.start() for m in _finder(q.state).finditer(self._ship_state, lo, hi))
        else:
            candidates = range(lo, hi)

        def order_of(p: int) -> int:
            return (keys[p] % mul) >> 2

        def known_order(p: int) -> bool:  # store and customer go through the order: orphans never match
            return keys[p] & 3 != 2

        if q.store is not None:
            checks.append(lambda p, s=q.store: known_order(p) and self._store[order_of(p)] == s)
        if q.warehouse is not None:  # the shipment's own warehouse_id
            checks.append(lambda p, s=q.warehouse: self._wh[order_of(p)] == s)
        if q.customer is not None:
            checks.append(lambda p, s=q.customer: known_order(p) and self._cust[order_of(p)] == s)
        if q.shipped_min is not None:
            checks.append(lambda p, t=q.shipped_min: self.shipment_shipped(p) >= t)
        if q.shipped_max is not None:
            checks.append(lambda p, t=q.shipped_max: self.shipment_shipped(p) < t)
        if not checks and isinstance(candidates, range):
            return candidates
        return array("i", (p for p in candidates if all(c(p) for c in checks)))

    def _sort_shipments(self, rows: Sequence[int], sort: str | None) -> Sequence[int]:
        if sort is None or len(rows) <= 1:
            return rows
        fast: Callable[[int], Any] | None = {
            "tracking_number": self.tracking_number,
            "shipped_at": self.shipment_shipped,
            "warehouse_id": lambda p: catalog.WAREHOUSES[self._wh[self.shipment_order_index(p)]][0],
            "state": self.shipment_state,
            "order_id": lambda p: self.shipment_dict(p)["order_id"],
            "weight": lambda p: float(self.shipment_dict(p).get("weight") or 0),  # a decimal, sent as text
        }.get(sort)
        if fast is not None:
            return array("i", sorted(rows, key=lambda p: (fast(p), p)))
        values = {p: self.shipment_dict(p).get(sort) for p in rows}
        return array(
            "i", sorted(rows, key=lambda p: (values[p] is None, values[p] if values[p] is not None else 0, p))
        )

    # ----------------------------------------------------------------- expected results for tests

    def order_ids(
        self,
        window: tuple[datetime, datetime] | None = None,
        field: str = "created_at",
        now: datetime | None = None,
        **params: str,
    ) -> list[int]:
        """Ids ``GET /orders`` returns for these API filters (strings, as sent), in response order;
        ``window=(start, end)`` adds a half-open window on ``field`` (``created_at``/``ordered_at``)."""
        p = dict(params)
        sort = p.pop("sort", None)
        if window is not None:
            p[f"{field}_min"] = window[0].isoformat()
            p[f"{field}_max"] = window[1].isoformat()
        q = self.parse_order_query(p, now or datetime.now().astimezone(), sort)
        return [self.order_id(i) for i in self.select_orders(q)]

    def shipment_ids(
        self,
        window: tuple[datetime, datetime] | None = None,
        field: str = "created_at",
        now: datetime | None = None,
        **params: str,
    ) -> list[int]:
        """Ids ``GET /shipments`` returns for these filters, in response order (see :meth:`order_ids`)."""
        p = dict(params)
        sort = p.pop("sort", None)
        if window is not None:
            p[f"{field}_min"] = window[0].isoformat()
            p[f"{field}_max"] = window[1].isoformat()
        q = self.parse_shipment_query(p, now or datetime.now().astimezone(), sort)
        return [self.shipment_id(i) for i in self.select_shipments(q)]

    @cached_property
    def truth(self) -> DropStreamTruth:
        """Ground truth (computed on first access: it scans every order once)."""
        by_state: dict[str, frozenset[int]] = {}
        for code, name in enumerate(ORDER_STATES):
            pat = re.escape(bytes([code]))
            by_state[name] = frozenset(self.order_id(m.start()) for m in re.finditer(pat, self._state))
        ship_by_state: dict[str, frozenset[int]] = {}
        for code, name in enumerate(SHIPMENT_STATES):
            pat = re.escape(bytes([code]))
            ship_by_state[name] = frozenset(
                self.shipment_id(m.start()) for m in re.finditer(pat, self._ship_state)
            )
        late: set[int] = set()
        past: set[int] = set()
        open_codes = {OS[s] for s in OPEN_STATES}
        unshipped = bytes(
            1 if ORDER_STATES[c] in OPEN_STATES | PRESHIP_ERROR_STATES else 0
            for c in range(len(ORDER_STATES))
        )
        marks = self._state.translate(unshipped + bytes(256 - len(unshipped)))
        candidates = sorted({m.start() for m in re.finditer(b"\x01", marks)} | set(self._no_ship))
        for i in candidates:
            if self.requested_ship(i) < self.end:
                oid = self.order_id(i)
                past.add(oid)
                if self._state[i] in open_codes:
                    late.add(oid)
        mul = 4 * self.n
        keys = self._ship_keys
        orphans = frozenset(
            self.shipment_id(bisect.bisect_left(keys, self.ship_time(i, 2) * mul + 4 * i + 2))
            for i in self._orphan_src
        )
        foreign = frozenset(
            self.shipment_id(bisect.bisect_left(keys, self.ship_time(i, 0) * mul + 4 * i))
            for i in self._foreign
        )
        return DropStreamTruth(
            late=frozenset(late),
            unshipped_past_deadline=frozenset(past),
            errored_orders=frozenset().union(*(by_state[s] for s in ORDER_ERROR_STATES)),
            errored_shipments=frozenset().union(*(ship_by_state[s] for s in SHIPMENT_ERROR_STATES)),
            canceled=by_state["canceled"],
            partially_shipped=by_state["partially_shipped"],
            shipped_without_shipment=frozenset(self.order_id(i) for i in self._no_ship),
            orphan_shipments=orphans,
            foreign_item_shipments=foreign,
            order_ids_by_state=by_state,
            shipment_ids_by_state=ship_by_state,
        )


def _ceil(t: float) -> int:
    i = int(t)
    return i if i == t else (i + 1 if t > 0 else i)


ORDER_SCALAR_FIELDS: tuple[str, ...] = (
    "id",
    "store_id",
    "external_id",
    "external_billing_customer_id",
    "customer_email",
    "external_shipping_customer_id",
    "ordered_at",
    "invoice_number",
    "payment_type",
    "external_warehouse_order_id",
    "shipping_carrier_name",
    "shipping_carrier_service_level",
    "shipping_warehouse_code",
    "signature_required",
    "shipping_insurance",
    "external_shipping_description",
    "external_display_id",
    "external_source_display_id",
    "purchase_order_id",
    "notes",
    "shipping_notes",
    "gift_message",
    "batch_id",
    "shipping_amount",
    "discount_amount",
    "tax_amount",
    "shipping_tax_amount",
    "third_party_account_number",
    "third_party_billing_code",
    "discount_codes",
    "external_source_id",
    "lead_source",
    "packing_slip_id",
    "requested_ship_date",
    "requested_cancel_date",
    "payment_date",
    "external_tags",
    "retailer_id",
    "supplier_id",
    "insured_amount",
    "terms",
    "sales_rep_last_name",
    "sales_rep_first_name",
    "sales_rep_email",
    "fulfillment_state",
    "fulfillment_transitioned_at",
    "external_type",
    "fulfillment_warehouse_id",
    "country_of_origin",
    "shipment_contents",
    "declared_value",
    "currency_code",
    "customer_service_url",
    "customer_service_email",
    "customer_service_telephone",
    "created_at",
)
"""Every documented top-level order field that is a scalar: what ``sort=`` accepts."""
ORDER_SORT_FIELDS = frozenset(ORDER_SCALAR_FIELDS)
