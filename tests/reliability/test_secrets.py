"""No secret ever reaches a log line, an exception, an XCom, a trigger event or a rendered field.

Everything runs with DEBUG logging on, httpx's and httpcore's own loggers included, while the
sandbox produces errors: refused sign-ins and wrong Basic credentials (401), tokens revoked
mid-run (401, then renewal), ready tokens that stop working, and 5xx/429 past the retry budget.
Secrets are the three passwords, the wrong passwords tried, the Basic credentials as sent, and every
bearer token the sandbox issued (DropStream JWTs, Stream tokens — intercepted at the sandbox, so
renewed ones count too). The haystack is every log record (caplog, raw: before any masking), the
process's stdout/stderr (capfd: Airflow's task logs), the text and traceback of every exception,
`test_connection()` messages, every XCom of the DAG run, every trigger event, and the rendered
template fields Airflow stored.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import traceback
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_fulfillment.hooks import get_hook
from airflow_provider_fulfillment.http import FulfillmentAPIError, FulfillmentAuthError
from airflow_provider_fulfillment.operators.alert import FulfillmentErrorStateOperator
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from airflow_provider_fulfillment.operators.reconcile import FulfillmentReconcileOperator
from airflow_provider_fulfillment.sandbox.testing import SandboxServer, run_sandbox
from airflow_provider_fulfillment.sensors.state import OrderStateSensor, ShipmentStateSensor
from airflow_provider_fulfillment.triggers.state import FulfillmentStateTrigger
from tests.reliability._support import conn_body, env_name

pytestmark = pytest.mark.integration

PASSWORDS = {vendor: f"{vendor}-Pw-{uuid.uuid4().hex}" for vendor in ("dropstream", "dcl", "stream")}
WRONG = {vendor: f"wrong-{vendor}-{uuid.uuid4().hex}" for vendor in ("dropstream", "dcl", "stream")}
VENDORS = ("dropstream", "dcl", "stream")
BEARER = ("dropstream", "stream")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with run_sandbox(
        seed=3,
        orders=800,
        dcl_orders=200,
        stream_orders=100,
        days=20,
        dropstream_password=PASSWORDS["dropstream"],
        dcl_password=PASSWORDS["dcl"],
        stream_password=PASSWORDS["stream"],
    ) as server:
        yield server


class Haystack:
    """Everything that left the code under test as text, to search for secrets."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, value: Any) -> None:
        self.texts.append((where, value if isinstance(value, str) else json.dumps(value, default=repr)))

    def error(self, where: str, error: BaseException | None) -> None:
        if error is None:
            return
        self.add(where, str(error))
        self.add(where + " (repr)", repr(error))
        self.add(where + " (traceback)", "".join(traceback.format_exception(error)))

    def leaks(self, secrets: set[str]) -> list[str]:
        return [
            f"{where}: …{text[max(0, text.find(s) - 80) : text.find(s) + 20]}…"
            for where, text in self.texts
            for s in secrets
            if s in text
        ]


@pytest.fixture
def issued(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every bearer token the sandbox issues while the test runs."""
    tokens: list[str] = []
    original = sandbox.app.issue_token

    def issue(vendor: str, subject: str) -> tuple[str, float]:
        token, ttl = original(vendor, subject)
        tokens.append(token)
        return token, ttl

    monkeypatch.setattr(sandbox.app, "issue_token", issue)
    return tokens


def _connections(sb: SandboxServer, monkeypatch: pytest.MonkeyPatch, ready: dict[str, str]) -> None:
    for vendor in VENDORS:
        fast = {"max_attempts": 2, "max_wait": 0.01}
        monkeypatch.setenv(env_name(f"{vendor}_good"), json.dumps(conn_body(sb, vendor, **fast)))
        flaky = conn_body(sb, vendor, max_attempts=1, max_wait=0.01)
        monkeypatch.setenv(env_name(f"{vendor}_flaky"), json.dumps(flaky))
        bad = {**conn_body(sb, vendor, **fast), "password": WRONG[vendor]}
        monkeypatch.setenv(env_name(f"{vendor}_badpw"), json.dumps(bad))
        if vendor in ready:  # a ready token in the extra, no password
            body = conn_body(sb, vendor, token=ready[vendor], **fast)
            body["password"] = None
            monkeypatch.setenv(env_name(f"{vendor}_token"), json.dumps(body))


def _secrets(sb: SandboxServer, issued: list[str]) -> set[str]:
    config = sb.config
    basic = {
        base64.b64encode(f"{login}:{password}".encode()).decode()
        for login, password in (
            (config.dropstream_user, PASSWORDS["dropstream"]),
            (config.dropstream_user, WRONG["dropstream"]),
            (config.dcl_login, PASSWORDS["dcl"]),
            (config.dcl_login, WRONG["dcl"]),
        )
    }
    return {*PASSWORDS.values(), *WRONG.values(), *basic, *issued}


def _ids(sb: SandboxServer) -> dict[str, Any]:
    world = sb.world
    by_state = world.truth.order_ids_by_state
    dcl_shipped = sorted(
        n for n in world.dcl.numbers_by_stage()[60] if not world.dcl.cancelled(world.dcl.order_index(n))
    )
    return {
        "dropstream_shipped": sorted(by_state["shipped"])[0],
        "dropstream_pending": sorted(by_state["pending_shipment"])[0],
        "dropstream_errored": sorted(by_state["error_sending_to_warehouse"])[0],
        "dcl_shipped": dcl_shipped[0],
        "stream_delivered": sorted(world.stream.ids_by_status()["delivered"])[0],
        "stream_in_transit": sorted(world.stream.ids_by_status()["in_transit"])[0],
        "tracking": world.dropstream.shipment(
            sorted(world.truth.shipment_ids_by_state["notified_shipped"])[0]
        )["tracking_number"],
    }


def _exercise_hooks(
    sb: SandboxServer, found: Haystack, ids: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every hook: iterate, get_state, test_connection — fine, refused, past the budget, token revoked."""
    window = (sb.world.end - timedelta(days=5), sb.world.end)
    state_of = {
        "dropstream": ids["dropstream_shipped"],
        "dcl": ids["dcl_shipped"],
        "stream": ids["stream_delivered"],
    }
    for vendor in VENDORS:
        hook = get_hook(f"{vendor}_good")
        records = hook.iter_orders(window=window)
        first = next(records)
        sb.revoke_tokens()  # the next request meets a 401 and signs in again
        rest = list(records)
        assert first and rest
        found.add(f"{vendor} state", hook.get_state("order", state_of[vendor]).to_dict())
        ok, message = hook.test_connection()
        assert ok, message
        found.add(f"{vendor} test_connection", message)

        for conn_id, faults in (
            (f"{vendor}_badpw", {}),
            (f"{vendor}_good", {"error_every": 1, "prefix": f"/{vendor}"}),
        ):
            sb.set_faults(**faults)
            hook = get_hook(conn_id)
            with pytest.raises(FulfillmentAPIError) as caught:
                list(hook.iter_orders(window=window))
            found.error(f"{conn_id} iterate", caught.value)
            with pytest.raises(FulfillmentAPIError) as caught:
                hook.get_state("order", state_of[vendor])
            found.error(f"{conn_id} get_state", caught.value)
            ok, message = get_hook(conn_id).test_connection()
            assert not ok
            found.add(f"{conn_id} test_connection", message)
            sb.reset_faults()

        if vendor in BEARER:  # a ready token works, then is revoked: one clear 401, no renewal
            _connections(sb, monkeypatch, {vendor: sb.app.issue_token(vendor, "ready")[0]})
            hook = get_hook(f"{vendor}_token")
            assert next(hook.iter_orders(window=window))
            sb.revoke_tokens()
            with pytest.raises(FulfillmentAuthError) as caught:
                hook.get_state("order", state_of[vendor])
            found.error(f"{vendor}_token get_state", caught.value)


def _dag(sb: SandboxServer, tmp: str, ids: dict[str, Any], failures: dict[str, BaseException | None]) -> DAG:
    def record(context: Any) -> None:
        failures[context["ti"].task_id] = context.get("exception")

    world = sb.world
    window = ((world.end - timedelta(days=5)).isoformat(), world.end.isoformat())
    fail = {"on_failure_callback": record}
    with DAG("secrets_everywhere", schedule=None, start_date=world.start, catchup=False) as dag:
        orders = FulfillmentExtractOperator(
            task_id="orders",
            conn_id="dropstream_good",
            window=window,
            destination=tmp,
            filters={"limit": "{{ 100 }}"},
        )
        shipments = FulfillmentExtractOperator(
            task_id="shipments",
            conn_id="dropstream_good",
            window=window,
            resource="shipments",
            destination=tmp,
        )
        FulfillmentReconcileOperator(
            task_id="reconcile",
            orders=orders.output,
            shipments=shipments.output,
            destination=tmp,
            as_of=world.end.isoformat(),
        )
        FulfillmentExtractOperator(task_id="dcl", conn_id="dcl_good", window=window, destination=tmp)
        FulfillmentExtractOperator(task_id="stream", conn_id="stream_good", window=window, destination=tmp)
        FulfillmentExtractOperator(
            task_id="extract_refused", conn_id="dropstream_badpw", window=window, destination=tmp, **fail
        )
        FulfillmentErrorStateOperator(task_id="alert_soft", conn_id="dropstream_good", soft=True)
        FulfillmentErrorStateOperator(task_id="alert_fails", conn_id="stream_good", **fail)
        FulfillmentErrorStateOperator(task_id="alert_refused", conn_id="dcl_badpw", **fail)
        OrderStateSensor(
            task_id="poke_ok", conn_id="stream_good", order_id=ids["stream_delivered"], poke_interval=0.05
        )
        ShipmentStateSensor(
            task_id="poke_tracking",
            conn_id="dropstream_good",
            tracking_number=ids["tracking"],
            poke_interval=0.05,
        )
        OrderStateSensor(
            task_id="poke_refused",
            conn_id="stream_badpw",
            order_id=ids["stream_delivered"],
            poke_interval=0.05,
            **fail,
        )
        OrderStateSensor(
            task_id="poke_429",
            conn_id="stream_good",
            order_id=ids["stream_in_transit"],
            target_states=["delivered"],
            poke_interval=0.05,
            **fail,
        )
        # Deferrable: the first (sync) check finds the order pending, the trigger's poll meets a 5xx.
        OrderStateSensor(
            task_id="deferred_5xx",
            conn_id="dropstream_flaky",
            order_id=ids["dropstream_pending"],
            poke_interval=0.05,
            deferrable=True,
            timeout=60,
            **fail,
        )
        OrderStateSensor(
            task_id="deferred_failed",
            conn_id="dropstream_good",
            order_id=ids["dropstream_errored"],
            poke_interval=0.05,
            deferrable=True,
            **fail,
        )
    return dag


def _run_triggers(sb: SandboxServer, found: Haystack, ids: dict[str, Any]) -> list[dict[str, Any]]:
    async def events(trigger: FulfillmentStateTrigger) -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    payloads: list[dict[str, Any]] = []
    cases = [
        ("dropstream_good", ids["dropstream_shipped"], {}),
        ("stream_good", ids["stream_delivered"], {}),
        ("dcl_good", ids["dcl_shipped"], {}),
        ("dropstream_badpw", ids["dropstream_shipped"], {}),
        ("stream_badpw", ids["stream_delivered"], {}),
        ("dcl_badpw", ids["dcl_shipped"], {}),
        (
            "stream_good",
            ids["stream_delivered"],
            {"error_every": 1, "prefix": "/stream/client_api/v2/orders"},
        ),
        ("dcl_good", ids["dcl_shipped"], {"error_every": 1, "prefix": "/dcl"}),
        ("stream_token", ids["stream_delivered"], {}),
    ]
    for conn_id, ident, faults in cases:
        sb.set_faults(**faults)
        trigger = FulfillmentStateTrigger(
            conn_id, "order", str(ident), ["shipped", "delivered", "60"], ["error"], 0.05
        )
        found.add(f"trigger {conn_id} serialized", trigger.serialize())
        (payload,) = asyncio.run(events(trigger))
        payloads.append(payload)
        found.add(f"trigger {conn_id} event", payload)
        sb.reset_faults()
        # The deferred sensor resumes with that event (what the triggerer hands back).
        sensor = OrderStateSensor(
            task_id=f"resume_{len(payloads)}",
            conn_id=conn_id,
            order_id=ident,
            target_states=["shipped", "delivered", "60"],
            deferrable=True,
        )
        try:
            found.add(f"resumed {conn_id}", sensor.execute_complete({}, payload))  # type: ignore[arg-type]
        except Exception as error:  # noqa: BLE001 - error events raise; their text is what we check
            found.error(f"resumed {conn_id}", error)
    return payloads


def test_no_secret_anywhere(
    sandbox: SandboxServer,
    issued: list[str],
    monkeypatch: pytest.MonkeyPatch,
    run_dag: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    sb = sandbox
    sb.reset_faults()
    sb.reset_counters()
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "airflow_provider_fulfillment"):
        caplog.set_level(logging.DEBUG, logger=name)
    _connections(sb, monkeypatch, {})
    found = Haystack()
    ids = _ids(sb)

    _exercise_hooks(sb, found, ids, monkeypatch)

    # Ready tokens (issued through the wrapper, so they count as secrets) for the DAG and the triggers.
    _connections(sb, monkeypatch, {vendor: sb.app.issue_token(vendor, "ready")[0] for vendor in BEARER})
    failures: dict[str, BaseException | None] = {}
    sb.set_faults(
        error_every=2,
        error_prefix=f"/dropstream/orders/{ids['dropstream_pending']}",
        rate_limit_every=1,
        retry_after=0,
        rate_limit_prefix=f"/stream/client_api/v2/orders/{ids['stream_in_transit']}",
    )
    run = run_dag(_dag(sb, str(tmp_path), ids, failures))
    sb.reset_faults()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    failed = {
        "extract_refused",
        "alert_fails",
        "alert_refused",
        "poke_refused",
        "poke_429",
        "deferred_5xx",
        "deferred_failed",
    }
    assert {task for task, state in states.items() if state == "failed"} == failed, states
    assert set(failures) == failed
    for task, error in failures.items():
        found.error(f"task {task}", error)
    assert "Injected server error" in str(failures["deferred_5xx"])  # the trigger's error event reached it
    for name, value in _run_artifacts(run).items():
        found.add(name, value)

    payloads = _run_triggers(sb, found, ids)
    assert [p["status"] for p in payloads] == ["ok"] * 3 + ["error"] * 5 + ["ok"]

    out, err = capfd.readouterr()
    found.add("stdout", out)
    found.add("stderr", err)
    for record in caplog.records:
        found.add(f"log {record.name}", record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            found.error(f"log {record.name} exc_info", record.exc_info[1])
    found.add("caplog text", caplog.text)

    # The test saw what it claims to: DEBUG lines from httpcore, 401s of every vendor, renewed tokens.
    assert any(r.name.startswith("httpcore") and r.levelno == logging.DEBUG for r in caplog.records)
    assert any(r.name == "httpx" for r in caplog.records)
    counters = sb.counters()
    for prefix in ("/dropstream", "/dcl", "/stream"):
        assert counters.count(prefix=prefix, status=401) > 0, prefix
    assert len(issued) >= 8
    secrets = _secrets(sb, issued)
    leaks = found.leaks(secrets)
    assert not leaks, "\n".join(leaks[:20])
    assert sum(len(text) for _, text in found.texts) > 100_000  # a real haystack


def _run_artifacts(run: Any) -> dict[str, Any]:
    """Every XCom and rendered-template-field row Airflow stored for the run."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    artifacts: dict[str, Any] = {}
    with create_session() as session:
        for row in session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id):
            artifacts[f"xcom {row.task_id}/{row.key}"] = XComModel.deserialize_value(row)
        rendered = (
            session.query(RenderedTaskInstanceFields).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        )
        for row in rendered:
            artifacts[f"rendered {row.task_id}"] = row.rendered_fields
    assert any(key.startswith("xcom orders/") for key in artifacts)
    assert any(key.startswith("xcom reconcile/") for key in artifacts)
    assert any(key.startswith("rendered ") for key in artifacts), sorted(artifacts)
    return artifacts
