"""The sandbox clock: advancing it moves records through their lifecycles, deterministically."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from airflow_provider_fulfillment.models.dcl import DclOrder
from airflow_provider_fulfillment.models.dropstream import DropStreamOrder, DropStreamShipment
from airflow_provider_fulfillment.sandbox.clock import SandboxClock, parse_duration
from airflow_provider_fulfillment.sandbox.testing import run_sandbox
from airflow_provider_fulfillment.sandbox.world import World

END = datetime(2026, 1, 1, tzinfo=UTC)


def snapshot(world: World) -> dict[str, list[bytes]]:
    ds, dcl, stream = world.dropstream, world.dcl, world.stream
    return {
        "orders": [ds.order_bytes(i) for i in range(ds.n)],
        "shipments": [ds.shipment_bytes(p) for p in range(ds.n_shipments)],
        "dcl": [dcl.order_bytes(j) for j in range(dcl.n)],
        "stream": [stream.status(s).encode() for s in range(stream.n)],
    }


def test_the_same_seed_and_time_give_the_same_bytes_whatever_the_steps():
    one, two = World(seed=7, orders=1500), World(seed=7, orders=1500)
    clock_one, clock_two = SandboxClock(one), SandboxClock(two)
    clock_one.advance("2d")
    for _ in range(4):
        clock_two.advance("12h")
    assert clock_one.state() == clock_two.state()
    assert snapshot(one) == snapshot(two)
    changes = clock_one.state()["changes"]
    assert set(changes) == {"dcl_orders", "dropstream_orders", "dropstream_shipments", "stream_orders"}
    assert all(count > 0 for count in changes.values())


def test_dropstream_orders_ship_cancel_error_and_recover():
    world = World(seed=42, orders=2000)
    ds = world.dropstream
    before = {i: DropStreamOrder.model_validate_json(ds.order_bytes(i)) for i in range(ds.n)}
    shipments_before = ds.n_shipments
    clock = SandboxClock(world)
    reached: set[str] = set()
    for _ in range(6):  # half a day at a time, to see the states passed through
        clock.advance("12h")
        reached |= {ds.state(i) for i in ds.moved}
    assert {
        "shipped",
        "canceled",
        "error_sending_to_warehouse",
        "pending_shipment",
        "sent_to_warehouse",
    } <= reached
    now = END.timestamp() + 3 * 86400
    after = {i: DropStreamOrder.model_validate_json(ds.order_bytes(i)) for i in range(ds.n)}
    moved = {i for i in after if after[i].fulfillment_state != before[i].fulfillment_state}
    assert moved == set(ds.moved)  # every change is recorded, and only changes
    for i in moved:  # each change carries its own time, after the end and not after now
        assert END.timestamp() < after[i].fulfillment_transitioned_at.timestamp() <= now
    new = [
        DropStreamShipment.model_validate_json(ds.shipment_bytes(p))
        for p in range(shipments_before, ds.n_shipments)
    ]
    assert new and all(s.created_at.timestamp() > END.timestamp() for s in new)
    ids = [s.id for s in new]
    assert ids == sorted(ids) and min(ids) > ds.shipment_id(shipments_before - 1)  # ids ascend with time
    by_order = {s.order_id: s for s in new}
    assert len(by_order) == len(new)  # one shipment per order the clock shipped
    for order_id, shipment in by_order.items():
        i = ds.order_index(order_id)
        assert after[i].fulfillment_state == "shipped"
        assert shipment.created_at == after[i].fulfillment_transitioned_at
        assert [item.id for item in shipment.order_items] == ds.item_ids(i)
    assert {s.state for s in new} >= {"notified_shipped"}
    # the vendors' state filters see the new states, and the new shipments by their dates
    assert set(ds.order_ids(state="canceled")) >= {
        after[i].id for i in moved if after[i].fulfillment_state == "canceled"
    }
    window = (END, datetime.fromtimestamp(now, UTC))
    assert ds.shipment_ids(window=window) == ids


def test_dropstream_shipments_end_notified_or_stay_errored_and_never_leave_a_terminal_state():
    """notified_shipped and archived end a DropStream shipment (models.states): within two days
    the clock notifies every shipment in flight at the end, and every one it made itself within
    36 hours of shipping; an errored one is retried or, drawn from the seed, stays errored."""
    from airflow_provider_fulfillment.models.states import DROPSTREAM_SHIPMENT_TERMINAL

    def shipment_states(world: World) -> list[str]:
        return [world.dropstream.shipment_state(p) for p in range(world.dropstream.n_shipments)]

    world, twin = World(seed=42, orders=2000), World(seed=42, orders=2000)
    at_end = shipment_states(world)
    in_flight = [p for p, state in enumerate(at_end) if state not in DROPSTREAM_SHIPMENT_TERMINAL]
    assert in_flight and {at_end[p] for p in in_flight} >= {"new", "errored_processing"}
    SandboxClock(world).advance("4d")
    clock_twin = SandboxClock(twin)
    for _ in range(8):
        clock_twin.advance("12h")
    after = shipment_states(world)
    assert after == shipment_states(twin)  # drawn from the seed, whatever the steps
    for p, state in enumerate(at_end):
        if state in DROPSTREAM_SHIPMENT_TERMINAL:
            assert after[p] == state  # nothing leaves a terminal state
        elif state.startswith("errored"):
            assert after[p] in ("notified_shipped", state)
        else:
            assert after[p] == "notified_shipped"
    errored = [p for p in in_flight if at_end[p].startswith("errored")]
    stuck = [p for p in errored if after[p] == at_end[p]]
    assert 0 < len(stuck) < len(errored)  # some errored ones are retried and notified, some stay
    now = END.timestamp() + 4 * 86400
    made = range(len(at_end), world.dropstream.n_shipments)
    assert made and all(
        after[p] == "notified_shipped"
        for p in made
        if world.dropstream.shipment_created(p) <= now - 36 * 3600
    )


def test_dcl_modified_at_moves_with_each_change_and_never_back():
    world = World(seed=42, orders=2000)
    dcl = world.dcl
    before = {j: DclOrder.model_validate_json(dcl.order_bytes(j)) for j in range(dcl.n)}
    clock = SandboxClock(world)
    seen_stages: set[int] = set()
    for _ in range(3):
        clock.advance("1d")
        for j in dcl.moved:
            order = DclOrder.model_validate_json(dcl.order_bytes(j))
            seen_stages.add(order.order_stage)
            assert order.modified_at >= before[j].modified_at
            if order.order_stage != before[j].order_stage or order.is_cancelled != before[j].is_cancelled:
                assert order.modified_at > max(before[j].modified_at, END)
            before[j] = order
    assert {60, 70} <= seen_stages
    # a modified_from read finds exactly the orders changed since
    since = END.isoformat()
    changed = sorted(dcl.order_number(j) for j in dcl.moved)
    assert set(changed) <= set(dcl.order_numbers(modified_from=since))


def test_stream_orders_travel_and_are_delivered():
    world = World(seed=42, orders=2000)
    stream = world.stream
    before = [stream.status(s) for s in range(stream.n)]
    clock = SandboxClock(world)
    reached: set[str] = set()
    for _ in range(6):
        clock.advance("1d")
        reached |= {stream.status(s) for s in range(stream.n) if stream.status(s) != before[s]}
    assert {"delivered", "in_transit", "pickup_missed", "cancelled"} <= reached
    after = [stream.status(s) for s in range(stream.n)]
    delivered = [s for s in stream.moved if after[s] == "delivered"]
    assert delivered
    assert set(stream.order_ids(status="delivered")) >= {stream.order_id(s) for s in delivered}


def test_durations():
    assert [parse_duration(v) for v in (90, 1.5, "90", "90s", "2m", "36h", "1.5d")] == [
        90,
        1,
        90,
        90,
        120,
        36 * 3600,
        36 * 3600,
    ]
    with pytest.raises(ValueError, match="only moves forward"):
        parse_duration(-1)
    with pytest.raises(ValueError, match="expected a duration like 3600, '90m', '36h' or '1d', got 'soon'"):
        parse_duration("soon")


def test_control_call_and_start_up_flag_agree():
    with (
        run_sandbox(seed=3, orders=800) as moved_later,
        run_sandbox(seed=3, orders=800, advance="1d") as moved_at_start,
    ):
        control = f"{moved_later.url}/_control/clock"
        assert httpx.get(control).json()["advanced_seconds"] == 0
        answer = httpx.post(control, json={"advance": "1d"})
        assert answer.status_code == 200
        assert answer.json()["now"] == "2026-01-02T00:00:00+00:00"
        assert httpx.get(f"{moved_at_start.url}/_control/clock").json() == httpx.get(control).json()
        assert snapshot(moved_later.world) == snapshot(moved_at_start.world)
        bad = httpx.post(control, json={"advance": "-1d"})
        assert (bad.status_code, bad.json()) == (
            400,
            {"error": "expected a duration like 3600, '90m', '36h' or '1d', got '-1d'"},
        )
        assert httpx.post(control, json={"when": 1}).status_code == 400
        assert moved_later.advance(3600)["advanced_seconds"] == 86400 + 3600
