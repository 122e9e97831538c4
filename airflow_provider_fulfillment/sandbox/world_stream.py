"""The Stream part of the world: cross-border shipments ("orders") across every documented status.

Orders are listed by ascending id (= ascending ``created_at``). Addresses carry the nested ``country``
object. ``invoice_data`` is null until the order is invoiced. Document ``*_link`` fields point back at
the sandbox (``/stream/documents/<id>/<doc>?signature=...``): the signature is deterministic (so the
same seed gives the same bytes), and the expiry is kept server-side: a link works for ``link_ttl``
seconds after the last response that carried it, as "all links expire within a short period after
the GET request" says; after that it answers 403.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from . import catalog
from ._util import (
    DAY,
    HOUR,
    Timeline,
    date_utc,
    mixed_codes,
    random_bytes,
    record_rng,
    stream_time,
    weighted_table,
)
from .world_dropstream import ParamError

STATUSES: tuple[str, ...] = (
    "order_received",
    "additional_document_required",
    "awaiting_waybill_generation",
    "awaiting_prepayment",
    "prepayment_received",
    "client_to_schedule_pickup",
    "admin_to_schedule_pickup",
    "system_to_schedule_pickup",
    "awaiting_pickup",
    "awaiting_swap_out",
    "pickup_missed",
    "in_transit",
    "partially_delivered",
    "delivered",
    "invoice_paid",
    "incomplete",
    "cancelled",
    "lost_in_transit",
)
"""Every documented order status, in the docs' order (the index is the status code)."""
ST = {name: code for code, name in enumerate(STATUSES)}
# How far an order has progressed: which documents and dates exist.
LEVEL = {
    "order_received": 0,
    "additional_document_required": 0,
    "incomplete": 0,
    "cancelled": 0,
    "awaiting_waybill_generation": 1,
    "awaiting_prepayment": 1,
    "prepayment_received": 1,
    "client_to_schedule_pickup": 2,
    "admin_to_schedule_pickup": 2,
    "system_to_schedule_pickup": 2,
    "awaiting_pickup": 3,
    "awaiting_swap_out": 3,
    "pickup_missed": 3,
    "in_transit": 4,
    "lost_in_transit": 4,
    "partially_delivered": 5,
    "delivered": 5,
    "invoice_paid": 6,
}
DOCUMENTS: tuple[str, ...] = (
    "battery_declaration",
    "commercial_invoice",
    "customs_clearance_document",
    "draft_bill_of_lading",
    "eei_request_document",
    "export_permit",
    "final_bill_of_lading",
    "materials_safety_data_sheet",
    "packaging_list",
    "proof_of_delivery",
    "shippers_letter_of_instruction",
    "stream_packing_list",
    "waybill_document",
)
"""Document kinds; each is served as the order's ``<kind>_link`` field."""

_OLD_MIX = weighted_table(
    [
        (ST["delivered"], 120),
        (ST["invoice_paid"], 80),
        (ST["cancelled"], 14),
        (ST["lost_in_transit"], 4),
        (ST["incomplete"], 6),
        (ST["partially_delivered"], 8),
        (ST["in_transit"], 10),
        (ST["pickup_missed"], 4),
        (ST["awaiting_pickup"], 10),
    ]
)
_RECENT_MIX = weighted_table(
    [
        (ST["order_received"], 30),
        (ST["additional_document_required"], 12),
        (ST["awaiting_waybill_generation"], 14),
        (ST["awaiting_prepayment"], 10),
        (ST["prepayment_received"], 8),
        (ST["client_to_schedule_pickup"], 12),
        (ST["admin_to_schedule_pickup"], 8),
        (ST["system_to_schedule_pickup"], 8),
        (ST["awaiting_pickup"], 20),
        (ST["awaiting_swap_out"], 4),
        (ST["pickup_missed"], 4),
        (ST["in_transit"], 50),
        (ST["partially_delivered"], 6),
        (ST["delivered"], 40),
        (ST["invoice_paid"], 10),
        (ST["incomplete"], 6),
        (ST["cancelled"], 10),
        (ST["lost_in_transit"], 4),
    ]
)
ID_BASE = 10_001
PAGE_SIZE = 20


class StreamWorld(Timeline):
    """Stream orders of one seed, generated lazily; see the module docstring."""

    def __init__(self, seed: int, n_orders: int, start: int, end: int, recent_days: float = 14.0) -> None:
        self.seed = seed
        n = max(1, n_orders)
        self._init_timeline(seed, 201, n, start, end)
        self.recent_start = max(start, end - int(recent_days * DAY))
        k = self.index_at(self.recent_start)
        # every documented status appears, whatever the size: one of each opens the recent zone
        self._status = bytes(mixed_codes(random_bytes(seed, 202, n), k, _OLD_MIX, _RECENT_MIX, len(STATUSES)))
        self._flags = random_bytes(seed, 203, n)
        self._key = hashlib.sha256(f"stream-links-{seed}".encode()).digest()
        # Moved by the sandbox clock (clock.py): order index -> when it was delivered.
        self.now = end
        self.moved: dict[int, int] = {}

    created = Timeline.time_of

    def order_id(self, s: int) -> int:
        return ID_BASE + s

    def status(self, s: int) -> str:
        return STATUSES[self._status[s]]

    statuses = STATUSES

    def set_status(self, s: int, status: str) -> None:
        """Order ``s`` now has ``status`` (live-data knobs)."""
        codes = bytearray(self._status)
        codes[s] = ST[status]
        self._status = bytes(codes)

    def reference_number(self, s: int) -> str:
        return f"SHIP-{_year(self.created(s))}-{s + 1:06d}"

    def index_of(self, key: str) -> int:
        """An order's index by id or ``reference_number``; -1 if none."""
        key = key.strip()
        if key.isdigit():
            s = int(key) - ID_BASE
            return s if 0 <= s < self.n else -1
        m = re.fullmatch(r"SHIP-\d{4}-(\d{6,})", key)
        if m:
            s = int(m.group(1)) - 1
            if 0 <= s < self.n and self.reference_number(s) == key:
                return s
        return -1

    def signature(self, order_id: int, doc: str) -> str:
        return hmac.new(self._key, f"{order_id}/{doc}".encode(), hashlib.sha256).hexdigest()[:32]

    def documents(self, s: int) -> dict[str, bool]:
        """Which documents order ``s`` has (the others' links are null)."""
        status = self.status(s)
        level = LEVEL[status]
        f = self._flags[s]
        sea = f % 7 == 0
        ccd = f % 3 == 0
        return {
            "battery_declaration": f % 5 == 0,
            "commercial_invoice": True,
            "customs_clearance_document": ccd and level >= 4,
            "draft_bill_of_lading": sea and level >= 1,
            "eei_request_document": f % 11 == 0 and level >= 1,
            "export_permit": f % 13 == 0 and level >= 2,
            "final_bill_of_lading": sea and level >= 4,
            "materials_safety_data_sheet": f % 5 == 0,
            "packaging_list": True,
            "proof_of_delivery": level >= 5,
            "shippers_letter_of_instruction": level >= 2 and f % 2 == 0,
            "stream_packing_list": True,
            "waybill_document": level >= 3,
        }

    def order_dict(self, s: int, link_base: str) -> dict[str, Any]:
        """The full Stream order of index ``s``; document links start with ``link_base`` (the
        sandbox's URL, no trailing slash)."""
        r = record_rng(self.seed, 210, s)
        rnd = r.random
        oid = self.order_id(s)
        created = self.created(s)
        status = self.status(s)
        level = LEVEL[status]
        f = self._flags[s]
        docs = self.documents(s)

        def link(doc: str) -> str | None:
            if not docs[doc]:
                return None
            return f"{link_base}/stream/documents/{oid}/{doc}?signature={self.signature(oid, doc)}"

        origin = _address(rnd, "ZA", 22_000 + 4 * s)
        destination = _address(rnd, ("US", "GB", "DE", "AU", "KE")[f % 5], 22_001 + 4 * s)
        importer = _address(rnd, destination["country"]["iso_code_2"], 22_002 + 4 * s)
        broker = _address(rnd, "ZA", 22_003 + 4 * s) if f % 4 == 0 else None
        pickup = created + DAY + (f * 331) % (2 * DAY)
        delivered = None
        if status in ("delivered", "invoice_paid"):
            delivered = self.moved.get(s) or min(self.end - 1, pickup + 3 * DAY + (f * 97) % DAY)
        invoiced = status == "invoice_paid" or (status == "delivered" and f < 128)
        weight = round(1 + rnd() * 60, 1)
        value = round(100 + rnd() * 9900, 2)
        waybill = f"WB{(oid * 7919) % 10**9:09d}" if level >= 3 else None
        invoice = None
        if invoiced:
            base = round(80 + weight * 12.5, 2)
            invoice = {
                "billable_weights": {
                    "metric": {
                        "packages": 1 + f % 4,
                        "mass_unit": "kg",
                        "distance_unit": "cm",
                        "volumetric_weight": round(weight * 0.62, 2),
                        "weight": weight,
                        "billable_weight": weight,
                        "volume": round(weight * 0.0032, 3),
                    },
                    "imperial": {
                        "packages": 1 + f % 4,
                        "mass_unit": "lb",
                        "distance_unit": "inches",
                        "volumetric_weight": round(weight * 0.62 * 2.20462, 2),
                        "weight": round(weight * 2.20462, 2),
                        "billable_weight": round(weight * 2.20462, 2),
                        "volume": round(weight * 0.113, 2),
                    },
                },
                "estimate_id": 555_000 + s,
                "line_items": [
                    {"cost": base, "currency_id": "USD", "description": "Base Shipping Cost"},
                    {"cost": round(base * 0.15, 2), "currency_id": "USD", "description": "Fuel Surcharge"},
                    {"cost": round(value * 0.19, 2), "currency_id": "USD", "description": "VAT & Duties"},
                ],
                "quote_expired": False,
                "shipping_company": "Example Express Shipping",
                "shipping_service": "Priority International",
            }
        return {
            "id": oid,
            "assigned_admin": ("admin@example.com", "ops@example.com", None)[f % 3],
            "battery_declaration_link": link("battery_declaration"),
            "broker_address": broker,
            "ccd_status": "ccd_required" if f % 3 == 0 else "ccd_not_required",
            "commercial_invoice_link": link("commercial_invoice"),
            "company_id": 789,
            "created_at": stream_time(created),
            "customer_reference": f"CUST-REF-{s + 1:05d}",
            "customs_clearance_document_link": link("customs_clearance_document"),
            "date_delivered": stream_time(delivered) if delivered else None,
            "description_of_contents": ("Electronic Components", "Textiles", "Machine Parts", "Documents")[
                f % 4
            ],
            "destination_address": destination,
            "draft_bill_of_lading_link": link("draft_bill_of_lading"),
            "eei_eligible": f % 11 == 0,
            "eei_request_document_link": link("eei_request_document"),
            "export_permit_link": link("export_permit"),
            "final_bill_of_lading_link": link("final_bill_of_lading"),
            "importer_of_record_address": importer,
            "internal_transaction_number": f"TXN{(oid * 104729) % 10**9:09d}",
            "invoice_data": invoice,
            "invoice_number": f"INV-{_year(created)}-{s + 1:05d}" if invoiced else None,
            "materials_safety_data_sheet_link": link("materials_safety_data_sheet"),
            "measured_weight": weight if level >= 4 else None,
            "origin_address": origin,
            "packaging_list_link": link("packaging_list"),
            "pickup_date": date_utc(pickup) if level >= 2 else None,
            "pickup_instructions": "Please call upon arrival" if f % 2 else None,
            "proof_of_delivery_link": link("proof_of_delivery"),
            "purpose_of_shipment_id": 1 + f % 8,
            "quote_id": 999_000 + s,
            "reference_number": self.reference_number(s),
            "scheduled_pickup": _pickup_time(pickup) if level >= 3 else None,
            "send_consignee_tracking_details": bool(f & 1),
            "shippers_letter_of_instruction_link": link("shippers_letter_of_instruction"),
            "status": status,
            "stream_packing_list_link": link("stream_packing_list"),
            "tracking_link": f"https://tracking.example.com/track/{waybill}" if waybill else None,
            "value_of_goods": value,
            "value_of_goods_currency": "USD",
            "waybill": waybill,
            "waybill_document_link": link("waybill_document"),
        }

    def order(self, key: int | str, link_base: str = "http://127.0.0.1") -> dict[str, Any] | None:
        s = self.index_of(str(key))
        return None if s < 0 else self.order_dict(s, link_base)

    def iter_orders(self, link_base: str = "http://127.0.0.1") -> Iterator[dict[str, Any]]:
        for s in range(self.n):
            yield self.order_dict(s, link_base)

    def select(self, status: str | None) -> Sequence[int]:
        """Order indices for ``GET /orders?status=...`` in listing order."""
        if status is None:
            return range(self.n)
        if status not in ST:
            raise ParamError(f"unknown status {status!r}")
        pat = re.compile(re.escape(bytes([ST[status]])))
        return [m.start() for m in pat.finditer(self._status)]

    def order_ids(
        self,
        status: str | None = None,
        window: tuple[datetime, datetime] | None = None,
    ) -> list[int]:
        """Ids ``GET /orders`` lists (all pages) for ``status``; ``window`` keeps created_at in [start, end)."""
        rows: Sequence[int] = self.select(status)
        if window is not None:
            a, b = window[0].timestamp(), window[1].timestamp()
            rows = [s for s in rows if a <= self.created(s) < b]
        return [self.order_id(s) for s in rows]

    def ids_by_status(self) -> dict[str, frozenset[int]]:
        return {name: frozenset(self.order_id(s) for s in self.select(name)) for name in STATUSES}


def _year(t: int) -> int:
    return int(stream_time(t)[:4])


def _pickup_time(t: int) -> str:
    day = date_utc(t)
    hour = 8 + (t // HOUR) % 9
    return f"{day} {hour:02d}:00:00"


def _address(rnd: Callable[[], float], iso2: str, address_id: int) -> dict[str, Any]:
    places = [p for p in catalog.STREAM_PLACES if p[3] == iso2]
    city, province, postal, _, lat, lon, tz = places[int(rnd() * len(places))]
    cid, default_postal, iso3, name, export_label, tax_label, tdc_id, min_goods, vat = catalog.COUNTRIES[iso2]
    first = catalog.FIRST_NAMES[int(rnd() * len(catalog.FIRST_NAMES))]
    last = catalog.LAST_NAMES[int(rnd() * len(catalog.LAST_NAMES))]
    return {
        "id": address_id,
        "address_1": f"{1 + int(rnd() * 900)} {catalog.STREETS[int(rnd() * len(catalog.STREETS))]}",
        "address_2": f"Suite {100 + int(rnd() * 400)}" if rnd() < 0.4 else None,
        "address_3": None,
        "city": city,
        "classification": "business" if rnd() < 0.8 else "residential",
        "company": f"{last} {catalog.BUSINESS_WORDS[int(rnd() * len(catalog.BUSINESS_WORDS))]}",
        "country": {
            "id": cid,
            "default_postal_code": default_postal,
            "dhl_export_code": iso2,
            "dhl_import_code": iso2,
            "dhl_tax_code": iso2,
            "export_code_label": export_label,
            "import_code_label": "Import Code",
            "iso_code_2": iso2,
            "iso_code_3": iso3,
            "name": name,
            "postal_code_required": True,
            "tax_number_label": tax_label,
            "taxes_and_duties_config": {
                "id": tdc_id,
                "minimum_value_of_goods": min_goods,
                "minimum_value_of_goods_currency_id": "USD",
            },
            "vat_rate": vat,
        },
        "country_id": cid,
        "email": f"{first.lower()}.{last.lower()}@example.com",
        "import_code": f"{iso2}{int(rnd() * 10**9):09d}" if rnd() < 0.5 else None,
        "latitude": lat,
        "longitude": lon,
        "name": f"{first} {last}",
        "phone": f"+{cid}{int(rnd() * 10**9):09d}",
        "postal_code": postal,
        "province": province,
        "summary": name,
        "tax_number": f"VAT{int(rnd() * 10**9):09d}",
        "time_zone_id": tz,
    }
