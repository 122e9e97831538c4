"""Contract drift: a new field, a new state and a string where a list was documented are counted
(from raw dicts and from models alike), logged once per new kind, and fail the task when asked."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fulfillment.drift import DriftMeter, _raw_state, check_mode, strict_decoder
from airflow_provider_fulfillment.hooks import get_hook
from airflow_provider_fulfillment.hooks.dcl import DclHook
from airflow_provider_fulfillment.models.dcl import DclOrder, DclShippedItem
from airflow_provider_fulfillment.models.dropstream import DropStreamOrder
from airflow_provider_fulfillment.operators import extract as extract_module
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator, model_class
from airflow_provider_fulfillment.rawpages import PageSplitter, RawRecord
from tests.fakes import json_response, sandbox_connections

SAMPLE = json.loads((Path(__file__).parent / "samples" / "dcl_orders_page.json").read_text())
WINDOW = (datetime(2014, 11, 25, tzinfo=UTC), datetime(2014, 11, 26, tzinfo=UTC))
LOTS = "shipments[].packages[].shipped_items[].lot_numbers"
EXPECTED = {
    "unknown_fields": {"colour": 2},
    "unknown_states": {"75": 1},
    "tolerant_values": {LOTS: 1},
}


def drifted_orders() -> list[dict]:
    """The documented sample, with what a vendor might start sending without notice."""
    shipped, received = copy.deepcopy(SAMPLE["orders"])
    shipped["colour"] = "red"  # a new field
    shipped["shipments"][0]["packages"][0]["shipped_items"][0]["lot_numbers"] = "ABC123"  # string, not list
    received["colour"] = "blue"
    received["order_stage"] = 75  # a stage DCL does not document
    return [shipped, received]


def test_the_model_reads_a_lot_or_serial_string_as_the_documented_list():
    item = DclShippedItem.model_validate({"lot_numbers": "ABC123", "serial_numbers": "S1, S2"})
    assert (item.lot_numbers, item.serial_numbers) == (["ABC123"], ["S1", "S2"])
    assert DclShippedItem.model_validate({"lot_numbers": ["A", "B"]}).lot_numbers == ["A", "B"]
    assert json.loads(item.model_dump_json()) == {"lot_numbers": ["ABC123"], "serial_numbers": ["S1", "S2"]}
    order = DclOrder.model_validate(drifted_orders()[0])
    assert order.to_common_shipments()[0].items  # normalizes instead of failing the page


@pytest.mark.parametrize("as_model", [False, True], ids=["raw dict", "model"])
def test_counts_are_the_same_from_dicts_and_models(as_model):
    meter = DriftMeter("dcl", "orders", DclOrder)
    sightings = []
    for order in drifted_orders():
        sightings += meter.observe(DclOrder.model_validate(order) if as_model else order)
    assert meter.drift.as_dict() == EXPECTED
    assert sorted((s.kind, s.name) for s in sightings) == [
        ("tolerant_values", LOTS),
        ("unknown_fields", "colour"),
        ("unknown_states", "75"),
    ]


def test_documented_records_show_no_drift():
    meter = DriftMeter("dcl", "orders", DclOrder)
    for order in SAMPLE["orders"]:
        assert meter.observe(order) == []
        assert meter.observe(DclOrder.model_validate(order)) == []
    assert meter.drift.total == 0
    dropstream = DriftMeter("dropstream", "orders", DropStreamOrder)
    assert dropstream.observe({"id": 1, "fulfillment_state": "shipped"}) == []
    assert [s.name for s in dropstream.observe({"id": 2, "fulfillment_state": "teleported"})] == [
        "teleported"
    ]


def test_on_drift_is_checked():
    assert check_mode("warn") == "warn"
    with pytest.raises(ValueError, match="on_drift must be one of ignore, warn, fail, got 'loud'"):
        FulfillmentExtractOperator(task_id="x", conn_id="dcl_drift", on_drift="loud")


@pytest.fixture
def dcl_vendor(set_connection, monkeypatch):
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        page = int(request.url.params.get("page", "1"))
        return json_response(
            200, {"error_code": 0, "error_message": "", "orders": drifted_orders() if page == 1 else []}
        )

    set_connection(
        "dcl_drift", "dcl", "http://dcl.test/api/v1", "acct", "pw-drift-1", max_wait=0, max_concurrency=1
    )
    monkeypatch.setattr(
        extract_module, "get_hook", lambda conn_id: DclHook(conn_id, transport=httpx.MockTransport(handler))
    )
    return sent


def _extract(tmp_path: Path, **kwargs):
    operator = FulfillmentExtractOperator(
        task_id="extract", conn_id="dcl_drift", destination=str(tmp_path), window=WINDOW, **kwargs
    )
    return operator.execute({})


DRIFT_LINES = [
    "DCL orders drifted from the documented contract: an undocumented field: 'colour' "
    "(logged once; counted in the manifest)",
    f"DCL orders drifted from the documented contract: a value not in its documented shape (read "
    f"tolerantly): '{LOTS}' (logged once; counted in the manifest)",
    "DCL orders drifted from the documented contract: an undocumented state: '75' "
    "(logged once; counted in the manifest)",
]


def _drift_lines(capfd) -> list[str]:
    """The drift lines of the task log (Airflow's structlog writes it to stdout)."""
    out, _ = capfd.readouterr()
    lines = [line for line in out.splitlines() if "drifted from the documented contract" in line]
    return [line[line.index("DCL orders") :].split(" [airflow.task")[0].rstrip() for line in lines]


@pytest.mark.parametrize(
    "output", [{}, {"normalized": True}, {"format": "parquet"}], ids=["raw jsonl", "normalized", "parquet"]
)
def test_warn_logs_one_line_per_new_drift_and_the_manifest_counts_it(dcl_vendor, tmp_path, capfd, output):
    manifest = _extract(tmp_path, **output)
    assert manifest["records"] == 2 and manifest["drift"] == EXPECTED
    assert manifest["identity"] == ["account_number", "order_number"]
    assert sorted(_drift_lines(capfd)) == sorted(DRIFT_LINES)


def test_ignore_does_not_look(dcl_vendor, tmp_path, capfd):
    manifest = _extract(tmp_path, on_drift="ignore")
    assert manifest["records"] == 2 and manifest["drift"] is None
    assert _drift_lines(capfd) == []


def test_fail_stops_at_the_first_drift_and_writes_nothing(dcl_vendor, tmp_path):
    with pytest.raises(AirflowFailException) as caught:
        _extract(tmp_path, on_drift="fail")
    assert str(caught.value) == (
        "extract: DCL orders drifted from the documented contract: an undocumented field: 'colour' "
        "(on_drift='fail'; nothing was written)"
    )
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


# --------------------------------------------------------------------------- the strict fast path
# A record kept as bytes is proven drift-free by a strict msgspec decode, and only a refused record
# is decoded whole and walked. Both must count exactly what the walk of the decoded dict counts.


def _both_paths(meter_args: tuple, records: list, accepted: int) -> DriftMeter:
    """Observe `records` as bytes (fast path first) and as their dicts (the walk); same counts, same
    sightings in the same order, and exactly `accepted` records proven clean without the walk."""
    fast, slow = DriftMeter(*meter_args), DriftMeter(*meter_args)
    fast_seen, slow_seen = [], []
    for record in records:
        fast_seen += fast.observe(record)
        slow_seen += slow.observe(record.decode() if type(record) is RawRecord else record)
    assert fast.drift == slow.drift and fast.records == slow.records == len(records)
    assert fast_seen == slow_seen
    strict = strict_decoder(meter_args[2])
    assert sum(type(r) is RawRecord and _decodes(strict, r.raw) for r in records) == accepted
    return fast


def _decodes(decoder, raw: bytes) -> bool:
    try:
        decoder.decode(raw)
    except msgspec.ValidationError:
        return False
    return True


@pytest.fixture(scope="module")
def sandbox():
    with sandbox_connections(seed=11, orders=600) as server:
        yield server


SANDBOX_WINDOW = (datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 12, 5, tzinfo=UTC))


@pytest.mark.integration
@pytest.mark.parametrize(
    ("vendor", "resource"),
    [
        ("dropstream", "orders"),
        ("dropstream", "shipments"),
        ("dcl", "orders"),
        ("dcl", "shipments"),
        ("stream", "orders"),
    ],
)
def test_sandbox_records_count_the_same_on_both_paths(sandbox, vendor, resource):
    hook = get_hook(f"{vendor}_default")
    try:
        records = list(hook.iter_records(resource, window=SANDBOX_WINDOW, raw="bytes"))
    finally:
        hook.close()
    assert records
    as_bytes = [r for r in records if type(r) is RawRecord]
    meter = _both_paths((vendor, resource, model_class(vendor, resource, False)), records, len(as_bytes))
    assert meter.drift.total == 0
    table = meter.table
    if table is not None:  # the state the fast path reads from the splitter's fields is the vendor's
        assert [_raw_state(vendor, table, r) for r in as_bytes] == [
            _raw_state(vendor, table, r.decode()) for r in as_bytes
        ]
    if (vendor, resource) != ("dcl", "shipments"):  # DCL shipments are built from orders, not bytes
        assert len(as_bytes) == len(records)


def _as_bytes(records: list[dict], fields: tuple[str, ...]) -> list[RawRecord]:
    """Records as a page splitter keeps them: the bytes, and the identity and state fields decoded."""
    body = json.dumps({"orders": records}).encode()
    return PageSplitter("orders", (), fields).split(body)[0]


DCL_FIELDS = ("order_number", "order_stage", "is_cancelled")


def test_every_kind_of_drift_counts_the_same_from_bytes():
    clean = copy.deepcopy(SAMPLE["orders"])
    drifted = drifted_orders()
    item = {"item_number": "A", "lot_numbers": ["L1"]}
    odd = [
        {**clean[0], "new_top": 1},  # unknown top-level field
        _with(
            clean[0], lambda o: o["shipments"][0]["packages"][0]["shipped_items"][0].update(hue=1)
        ),  # in a list
        _with(clean[0], lambda o: o["shipping_address"].update(floor=3)),  # in an object
        _with(
            clean[0],
            lambda o: o["shipments"][0]["packages"][0]["shipped_items"][0].update(serial_numbers="S1"),
        ),
        {**clean[1], "order_stage": 99},  # unknown state
        {**clean[1], "is_cancelled": True, "order_stage": 99},  # cancelled: a documented state
        {**clean[0], "shipping_address": "12 Main St"},  # not an object where one is documented
        {**clean[0], "shipments": [1, "x", None]},  # not objects in a documented list of objects
        {**clean[0], "order_lines": {"line_number": 1, "surprise": True}},  # an object, not a list
        {**clean[0], "shipping_address": None, "shipments": None, "order_stage": None},  # nulls
        {"order_number": "N1"},  # almost nothing sent
        _with(
            clean[0], lambda o: o["shipments"][0]["packages"][0]["shipped_items"][0].update(lot_numbers=None)
        ),
    ]
    records = _as_bytes(clean + drifted + odd, DCL_FIELDS)
    # proven free of field drift (the state is checked apart): the two documented ones, both stage-99
    # orders, the nulls, the nearly empty one and the null list; every other is refused and walked
    meter = _both_paths(("dcl", "orders", DclOrder), records, accepted=7)
    assert meter.drift.as_dict() == {
        "unknown_fields": {
            "colour": 2,
            "new_top": 1,
            "order_lines.surprise": 1,
            "shipments[].packages[].shipped_items[].hue": 1,
            "shipping_address.floor": 1,
        },
        "unknown_states": {"75": 1, "99": 1},
        "tolerant_values": {LOTS: 1, "shipments[].packages[].shipped_items[].serial_numbers": 1},
    }
    # a top-level string where a list is documented (DCL's shipped items as the record)
    items = _as_bytes([{"line_number": 1, **item}, {"line_number": 2, "lot_numbers": "L2"}], ("line_number",))
    top = _both_paths(("dcl", "shipments", DclShippedItem), items, accepted=1)
    assert top.drift.as_dict()["tolerant_values"] == {"lot_numbers": 1}


def _with(order: dict, change) -> dict:
    order = copy.deepcopy(order)
    change(order)
    return order


def _bundle(depth: int, leaf: dict) -> dict:
    """A shipped item whose bundle lines nest `depth` levels deep, `leaf` at the bottom."""
    item = {"item_number": "B", **leaf}
    for _ in range(depth):
        item = {"item_number": "B", "bundle_lines": [item]}
    return item


@pytest.mark.parametrize("depth", [1, 3, 4, 6])
def test_bundle_lines_of_bundle_lines_count_the_same_at_any_depth(depth):
    def order_with(item: dict) -> dict:
        return _with(
            SAMPLE["orders"][0], lambda o: o["shipments"][0]["packages"][0].update(shipped_items=[item])
        )

    records = _as_bytes(
        [
            order_with(_bundle(depth, {})),
            order_with(_bundle(depth, {"tint": 1})),
            order_with(_bundle(depth, {"lot_numbers": "L"})),
        ],
        DCL_FIELDS,
    )
    # past the depth the struct follows, even a documented bundle line is walked rather than proven
    meter = _both_paths(("dcl", "orders", DclOrder), records, accepted=1 if depth <= 3 else 0)
    path = "shipments[].packages[].shipped_items[]." + "bundle_lines[]." * depth
    assert meter.drift.as_dict()["unknown_fields"] == {path + "tint": 1}
    assert meter.drift.as_dict()["tolerant_values"] == {path + "lot_numbers": 1}


def test_the_strict_decode_builds_documented_plain_values_and_skips_open_ones():
    # A null or a boolean read as a Python value is no new object; an open value (`custom`, a dict)
    # stays an unparsed slice. A value of another kind in a plain field is no drift for the walk
    # either, so the strict decode takes it too.
    order = {
        "id": 7,
        "notes": None,
        "signature_required": True,
        "store_id": {"not": "a number"},
        "custom": {"channel": "web"},
        "order_items": [{"name": "A", "gift_wrap": False, "custom": {}}],
    }
    decoded = strict_decoder(DropStreamOrder).decode(json.dumps(order).encode())
    values = {name: getattr(decoded, attribute) for attribute, name in _wire_names(decoded).items()}
    assert (values["id"], values["notes"], values["signature_required"]) == (7, None, True)
    assert values["store_id"] == {"not": "a number"}
    assert bytes(values["custom"]) == b'{"channel": "web"}'
    item = values["order_items"][0]
    item_values = {name: getattr(item, attribute) for attribute, name in _wire_names(item).items()}
    assert (item_values["name"], item_values["gift_wrap"]) == ("A", False)
    assert bytes(item_values["custom"]) == b"{}"
    records = _as_bytes([order, {**order, "colour": "red"}], ("id",))
    meter = _both_paths(("dropstream", "orders", DropStreamOrder), records, accepted=1)
    assert meter.drift.as_dict()["unknown_fields"] == {"colour": 1}


def _wire_names(struct: msgspec.Struct) -> dict[str, str]:
    return dict(zip(struct.__struct_fields__, struct.__struct_encode_fields__, strict=True))
