"""OrderStateSensor / ShipmentStateSensor through `dag.test()` (poke and deferrable), and the trigger alone."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import httpx
import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_provider_fulfillment import hooks as hooks_module
from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from airflow_provider_fulfillment.sensors.state import OrderStateSensor, ShipmentStateSensor
from airflow_provider_fulfillment.triggers.state import FulfillmentStateTrigger, match_state
from tests.operators.helpers import BASE, FakeHook, ds_order, state


def dag_id(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:200]


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch):
    """Install a FakeHook whose get_state/aget_state answer the given states in order (the last repeats)."""

    def install(*states):
        hook = FakeHook(states=list(states))

        async def aget_hook(conn_id, **kwargs):
            return hook

        monkeypatch.setattr(hooks_module, "get_hook", lambda conn_id, **kwargs: hook)
        monkeypatch.setattr(hooks_module, "aget_hook", aget_hook)
        return hook

    return install


def sensor_dag(name: str, sensor_cls=OrderStateSensor, **kwargs) -> DAG:
    with DAG(name, schedule=None, start_date=BASE, catchup=False) as dag:
        ident = {"order_id": "1001"} if sensor_cls is OrderStateSensor else {"tracking_number": "1Z0001"}
        sensor_cls(
            task_id="wait", conn_id="dropstream_default", poke_interval=0.05, timeout=30, **ident, **kwargs
        )
    return dag


# ------------------------------------------------------------------------------- matching


def test_match_state_raw_or_normalized_and_failure_first():
    shipped = state("sent_completion_acknowledgement", "shipped")
    assert match_state(shipped, ["shipped"], ["error"]) == "ok"
    assert match_state(shipped, ["SENT_completion_acknowledgement"], []) == "ok"
    assert match_state(state("error_processing", "error"), ["shipped"], ["error"]) == "failed"
    assert match_state(state("error_processing", "error"), ["error"], ["error_processing"]) == "failed"
    assert match_state(state("pending_shipment", "processing"), ["shipped"], ["error"]) is None
    assert match_state(state(None, None, found=False), ["shipped"], ["error"]) is None


# ------------------------------------------------------------------------------- poke mode


def test_poke_mode_waits_through_not_found_then_succeeds(request, run_dag, xcom, scripted):
    hook = scripted(
        state(None, None, found=False),
        state("pending_shipment", "processing"),
        state("shipped", "shipped", since="2025-10-02T00:00:00+00:00"),
    )
    run = run_dag(sensor_dag(dag_id(request), deferrable=False), None)
    assert run.state == "success"
    assert xcom(run, "wait") == {
        "vendor": "dropstream",
        "resource": "order",
        "ident": "1001",
        "found": True,
        "raw_status": "shipped",
        "status": "shipped",
        "since": "2025-10-02T00:00:00+00:00",
    }
    assert [call[1]["ident"] for call in hook.calls] == ["1001"] * 3
    assert hook.closed == 1  # one hook (one client, one token) for all the pokes


def test_poke_mode_fails_at_once_on_a_failure_state(request, run_dag, scripted, failures, task_states):
    hook = scripted(state("error_sending_to_warehouse", "error"))
    run = run_dag(
        sensor_dag(dag_id(request), deferrable=False, retries=3, on_failure_callback=failures), None
    )
    assert task_states(run) == {"wait": "failed"}  # no retry
    error = failures.errors["wait"]
    assert isinstance(error, AirflowFailException)
    assert str(error) == (
        "connection 'dropstream_default': dropstream order 1001 is in error_sending_to_warehouse (error) "
        "since 2025-10-01T00:05:00+00:00: a failure state"
    )
    assert len(hook.calls) == 1


def test_soft_fail_skips_on_a_failure_state(request, run_dag, scripted, task_states):
    scripted(state("error", "error"))
    run = run_dag(sensor_dag(dag_id(request), deferrable=False, soft_fail=True), None)
    assert task_states(run) == {"wait": "skipped"}


# ------------------------------------------------------------------------------- deferrable


def test_deferrable_defers_and_resumes_through_the_trigger(request, run_dag, xcom, scripted):
    hook = scripted(
        state(
            "pending_shipment", "processing", resource="shipment", ident="1Z0001"
        ),  # the sensor's own check
        state(None, None, found=False, resource="shipment", ident="1Z0001"),  # the trigger's polls...
        state("new", "shipped", resource="shipment", ident="1Z0001"),
    )
    dag = sensor_dag(dag_id(request), sensor_cls=ShipmentStateSensor, deferrable=True)
    run = run_dag(dag, None)
    assert run.state == "success"
    assert xcom(run, "wait")["raw_status"] == "new"
    # one synchronous check by the sensor, then the trigger's async polls in the (inline) triggerer
    assert [(kind, call["resource"]) for kind, call in hook.calls] == [
        ("state", "shipment"),
        ("astate", "shipment"),
        ("astate", "shipment"),
    ]


def test_deferrable_fails_from_the_trigger_event(request, run_dag, scripted, failures):
    scripted(state("pending_shipment", "processing"), state("error_processing", "error"))
    run = run_dag(sensor_dag(dag_id(request), deferrable=True, on_failure_callback=failures), None)
    assert run.state == "failed"
    assert isinstance(failures.errors["wait"], AirflowFailException)
    assert "error_processing (error)" in str(failures.errors["wait"])


def test_deferrable_succeeds_without_deferring_when_already_there(scripted):
    scripted(state("shipped", "shipped"))
    sensor = OrderStateSensor(task_id="w", conn_id="c", order_id=1001, deferrable=True)
    assert sensor.execute({})["status"] == "shipped"  # type: ignore[arg-type]


def test_deferral_carries_the_timeout_and_plain_kwargs(scripted):
    scripted(state("pending_shipment", "processing"))
    sensor = OrderStateSensor(
        task_id="w",
        conn_id="c",
        order_id=" 1001 ",
        deferrable=True,
        timeout=timedelta(hours=2),
        target_states="delivered",
        failure_states=["error", "canceled"],
        poke_interval=15,
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})  # type: ignore[arg-type]
    assert deferred.value.timeout == timedelta(hours=2)
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "airflow_provider_fulfillment.triggers.state.FulfillmentStateTrigger"
    assert kwargs == {
        "conn_id": "c",
        "resource": "order",
        "ident": "1001",
        "target_states": ["delivered"],
        "failure_states": ["error", "canceled"],
        "poke_interval": 15.0,
        "not_found_deadline": None,
    }
    assert json.loads(json.dumps(kwargs)) == kwargs


def test_execute_complete_validates_the_event():
    sensor = OrderStateSensor(task_id="w", conn_id="c", order_id=7)
    good = {"status": "ok", "message": "m", "state": state("shipped", "shipped").to_dict()}
    assert sensor.execute_complete({}, good)["raw_status"] == "shipped"  # type: ignore[arg-type]
    with pytest.raises(AirflowFailException, match="connection 'c': boom"):
        sensor.execute_complete({}, {"status": "failed", "message": "boom"})  # type: ignore[arg-type]
    from airflow.sdk.exceptions import AirflowException

    with pytest.raises(AirflowException, match="waiting for order 7 failed: HTTP 500"):
        sensor.execute_complete({}, {"status": "error", "message": "HTTP 500"})  # type: ignore[arg-type]
    for bad in (None, {}, {"status": "maybe"}, "ok", {"status": "ok", "state": None}):
        with pytest.raises(AirflowException):
            sensor.execute_complete({}, bad)  # type: ignore[arg-type]


def test_sensor_arguments_are_checked():
    with pytest.raises(ValueError, match="exactly one of tracking_number or ident"):
        ShipmentStateSensor(task_id="a", conn_id="c")
    with pytest.raises(ValueError, match="target_states"):
        OrderStateSensor(task_id="b", conn_id="c", order_id=1, target_states=[])


def test_deferrable_default_follows_airflow_config(monkeypatch):
    import importlib

    import airflow_provider_fulfillment.sensors.state as sensors_module

    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    try:
        reloaded = importlib.reload(sensors_module)
        assert reloaded.OrderStateSensor(task_id="d", conn_id="c", order_id=1).deferrable is True
    finally:
        monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE")
        importlib.reload(sensors_module)
    assert sensors_module.OrderStateSensor(task_id="e", conn_id="c", order_id=1).deferrable is False


# ------------------------------------------------------------------------------- the trigger


def test_trigger_serialize_round_trip():
    trigger = FulfillmentStateTrigger(
        conn_id="dropstream_default",
        resource="shipment",
        ident="1Z9",
        target_states=("delivered",),
        failure_states=["error"],
        poke_interval=0.5,
    )
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    import importlib

    again = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert again.serialize() == (classpath, kwargs)
    with pytest.raises(ValueError, match="resource"):
        FulfillmentStateTrigger(conn_id="c", resource="parcel", ident="1", target_states=["x"])


class FakeDropStreamStates:
    """`POST /auth/token` and `GET /orders/{id}` answering a scripted list of states (None = 404)."""

    def __init__(self, states: list[str | None]) -> None:
        self.states = states
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("/auth/token"):
            return httpx.Response(200, json={"access_token": "jwt-1", "token_type": "Bearer"})
        if request.headers.get("Authorization") != "Bearer jwt-1":
            return httpx.Response(401, json={"error": "bad token"})
        current = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if current is None:
            return httpx.Response(404, json={"error": "not found"})
        return httpx.Response(200, json={"order": ds_order(1, state=current)})


@pytest.fixture
def mock_dropstream(monkeypatch, dropstream_conn):
    def install(handler):
        async def aget_hook(conn_id, **kwargs):
            hook = DropStreamHook(conn_id, async_transport=httpx.MockTransport(handler))
            await hook.aload_settings()
            return hook

        monkeypatch.setattr(hooks_module, "aget_hook", aget_hook)

    return install


async def _events(trigger: FulfillmentStateTrigger) -> list:
    return [event async for event in trigger.run()]


def test_trigger_run_polls_until_a_target_state(mock_dropstream):
    server = FakeDropStreamStates([None, "pending_shipment", "shipped"])
    mock_dropstream(server)
    trigger = FulfillmentStateTrigger("dropstream_default", "order", "1001", ["shipped"], ["error"], 0.01)
    events = asyncio.run(_events(trigger))
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "ok"
    assert payload["state"]["raw_status"] == "shipped" and payload["state"]["status"] == "shipped"
    assert payload["message"].startswith("dropstream order 1001 is in shipped")
    assert server.requests.count("GET /dropstream/orders/1001") == 3
    assert json.loads(json.dumps(payload)) == payload


def test_trigger_run_fails_on_a_failure_state(mock_dropstream):
    mock_dropstream(FakeDropStreamStates(["pending_shipment", "error_processing"]))
    trigger = FulfillmentStateTrigger("dropstream_default", "order", "1001", ["shipped"], ["error"], 0.01)
    (event,) = asyncio.run(_events(trigger))
    assert event.payload["status"] == "failed"
    assert event.payload["state"]["raw_status"] == "error_processing"


def test_trigger_run_reports_errors_as_an_event_without_secrets(mock_dropstream, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DROPSTREAM_DEFAULT",
        json.dumps(
            {
                "conn_type": "dropstream",
                "host": "http://127.0.0.1:9/dropstream",
                "login": "api-user",
                "password": "S3cret-Passw0rd",
            }
        ),
    )

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid credentials"})

    mock_dropstream(refuse)
    trigger = FulfillmentStateTrigger("dropstream_default", "order", "1001", ["shipped"], ["error"], 0.01)
    (event,) = asyncio.run(_events(trigger))
    assert event.payload["status"] == "error"
    assert "dropstream_default" in event.payload["message"] and "401" in event.payload["message"]
    assert "S3cret-Passw0rd" not in json.dumps(event.payload)
    assert event.payload["state"] is None


def test_trigger_run_reports_an_unknown_connection(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_NOPE", raising=False)
    trigger = FulfillmentStateTrigger("nope", "order", "1", ["shipped"], [], 0.01)
    (event,) = asyncio.run(_events(trigger))
    assert event.payload["status"] == "error" and "nope" in event.payload["message"]


# ------------------------------------------------------------------------------- not_found_timeout


def test_poke_mode_fails_when_the_record_never_appears_within_not_found_timeout(
    request, run_dag, scripted, failures, task_states
):
    scripted(state(None, None, found=False))
    dag = sensor_dag(
        dag_id(request), ShipmentStateSensor, not_found_timeout=0.2, on_failure_callback=failures
    )
    run = run_dag(dag)
    assert task_states(run) == {"wait": "failed"}
    message = str(failures.errors["wait"])
    assert isinstance(failures.errors["wait"], AirflowFailException)
    assert "was not found, and the sensor's not_found_timeout ran out at" in message
    assert message.endswith("check the identifier (waiting longer would not make a mistyped one appear)")


def test_a_record_that_appears_in_time_is_waited_for(request, run_dag, xcom, scripted):
    hook = scripted(
        state(None, None, found=False), state(None, None, found=False), state("shipped", "shipped")
    )
    dag = sensor_dag(dag_id(request), ShipmentStateSensor, not_found_timeout=timedelta(seconds=30))
    run = run_dag(dag)
    assert run.state == "success" and len(hook.calls) == 3
    assert xcom(run, "wait")["raw_status"] == "shipped"


def test_deferrable_fails_from_the_trigger_when_the_record_never_appears(
    request, run_dag, scripted, failures
):
    scripted(state(None, None, found=False))
    dag = sensor_dag(
        dag_id(request),
        OrderStateSensor,
        deferrable=True,
        not_found_timeout=0.2,
        on_failure_callback=failures,
    )
    run = run_dag(dag)
    assert run.state == "failed"
    message = str(failures.errors["wait"])
    assert message.startswith("connection 'dropstream_default': ")
    assert "was not found, and the sensor's not_found_timeout ran out at" in message


def test_the_deadline_travels_to_the_trigger_serialized():
    trigger = FulfillmentStateTrigger(
        "c", "order", "1", ["shipped"], not_found_deadline="2026-01-01T00:00:00+00:00"
    )
    path, kwargs = trigger.serialize()
    assert kwargs["not_found_deadline"] == "2026-01-01T00:00:00+00:00"
    assert FulfillmentStateTrigger(**kwargs).serialize() == (path, kwargs)
    with pytest.raises(ValueError, match="not_found_timeout must not be negative"):
        OrderStateSensor(task_id="t", conn_id="c", order_id="1", not_found_timeout=-1)
