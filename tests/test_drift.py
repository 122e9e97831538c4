"""Contract drift: a new field, a new state and a string where a list was documented are counted
(from raw dicts and from models alike), logged once per new kind, and fail the task when asked."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fulfillment.drift import DriftMeter, check_mode
from airflow_provider_fulfillment.hooks.dcl import DclHook
from airflow_provider_fulfillment.models.dcl import DclOrder, DclShippedItem
from airflow_provider_fulfillment.models.dropstream import DropStreamOrder
from airflow_provider_fulfillment.operators import extract as extract_module
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from tests.fakes import json_response

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
