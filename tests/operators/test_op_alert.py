"""FulfillmentErrorStateOperator against a scripted hook: queries per state, the message, threshold, soft
mode; FulfillmentAlertOperator on a real SQLite ledger: opened, reminder, resolved, once each.

(Runs against the sandbox, through `dag.test()`, are in test_op_sandbox.py.)
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fulfillment.ledger import Ledger
from airflow_provider_fulfillment.operators import alert as alert_module
from airflow_provider_fulfillment.operators.alert import (
    FulfillmentAlertOperator,
    FulfillmentErrorStateOperator,
    error_states,
    resolve_states,
    state_queries,
)
from airflow_provider_fulfillment.rules.types import Finding
from tests.operators.helpers import BASE, FakeHook, ds_order, ds_shipment, iso


@pytest.fixture
def fake(monkeypatch):
    now = datetime.now(UTC)
    orders = [
        ds_order(
            1, state="error_sending_to_warehouse", fulfillment_transitioned_at=iso(now - timedelta(days=3))
        ),
        ds_order(2, state="error", fulfillment_transitioned_at=iso(now - timedelta(days=5))),
        ds_order(3, state="pending_shipment"),
        ds_order(4, state="error_processing", fulfillment_transitioned_at=iso(now - timedelta(hours=1))),
        ds_order(5, state="error", fulfillment_transitioned_at=iso(now - timedelta(days=1))),
    ]
    shipments = [ds_shipment(1, 1001, state="errored_processing"), ds_shipment(2, 1002)]
    hook = FakeHook(orders, shipments)
    monkeypatch.setattr(alert_module, "get_hook", lambda conn_id: hook)
    return hook


def run(op: FulfillmentErrorStateOperator) -> dict:
    class TI:
        pushed: dict = {}

        def xcom_push(self, key, value):
            self.pushed[key] = value

    ti = TI()
    try:
        return op.execute({"ti": ti})  # type: ignore[arg-type]
    finally:
        run.pushed = ti.pushed  # type: ignore[attr-defined]


def test_fails_with_an_actionable_message(fake):
    op = FulfillmentErrorStateOperator(task_id="a", conn_id="dropstream_default", max_listed=2)
    with pytest.raises(AirflowFailException) as failed:
        run(op)
    message = str(failed.value)
    report = run.pushed["errored"]  # type: ignore[attr-defined]
    first, second = report["records"][:2]
    assert message == (
        f"DropStream (conn dropstream_default): 4 orders in errored states: "
        f"1002 (SO1002) error since {first['since']}; 1001 (SO1001) error_sending_to_warehouse since "
        f"{second['since']}; and 2 more. By state: error 2, error_processing 1, error_sending_to_warehouse 1"
    )
    # one request per errored raw state, each with the vendor's own state filter
    assert sorted(call[1]["state"] for call in fake.calls) == sorted(error_states("dropstream", "orders"))
    assert [r["id"] for r in report["records"]] == ["1002", "1001", "1005", "1004"]  # oldest first
    assert report["count"] == 4 and report["truncated"] is False


def test_soft_threshold_stuck_for_and_bounded_list(fake):
    report = run(FulfillmentErrorStateOperator(task_id="a", conn_id="c", soft=True, max_returned=2))
    assert (
        report["count"] == 4
        and [r["id"] for r in report["records"]] == ["1002", "1001"]
        and report["truncated"]
    )
    assert run(FulfillmentErrorStateOperator(task_id="b", conn_id="c", threshold=4))["count"] == 4
    stuck = run(
        FulfillmentErrorStateOperator(task_id="c", conn_id="c", soft=True, stuck_for=timedelta(days=2))
    )
    assert [r["id"] for r in stuck["records"]] == ["1002", "1001"]
    assert stuck["records"][0]["age_seconds"] >= 5 * 86400 - 60
    with pytest.raises(AirflowFailException, match=r"1 order in errored states for longer than 4d: 1002"):
        run(FulfillmentErrorStateOperator(task_id="d", conn_id="c", stuck_for=timedelta(days=4)))


def test_shipments_and_explicit_states(fake):
    report = run(FulfillmentErrorStateOperator(task_id="a", conn_id="c", resource="shipments", soft=True))
    assert report["records"] == [
        {
            "id": "5001",
            "raw_status": "errored_processing",
            "status": "error",
            "since": report["records"][0]["since"],
            "age_seconds": report["records"][0]["age_seconds"],
            "order_id": "1001",
            "tracking_numbers": ["1Z00005001"],
        }
    ]
    with pytest.raises(
        AirflowFailException, match=r"1 shipment in errored states: 5001 \(tracking 1Z00005001; order 1001\)"
    ):
        run(FulfillmentErrorStateOperator(task_id="b", conn_id="c", resource="shipments"))
    only = run(FulfillmentErrorStateOperator(task_id="c", conn_id="c", states=["error"], soft=True))
    assert only["states"] == ["error"] and only["count"] == 2


def test_state_resolution_and_queries():
    assert resolve_states("dcl", "orders", None) == ["2"]
    assert resolve_states("dcl", "shipments", None) == []
    assert "lost_in_transit" in resolve_states("stream", "shipments", None)
    assert resolve_states("dropstream", "orders", ["error"]) == ["error"]  # a raw state wins
    assert resolve_states("stream", "orders", "canceled") == ["cancelled"]  # a normalized status expands
    with pytest.raises(ValueError, match="unknown state 'on_fire'"):
        resolve_states("dropstream", "orders", ["on_fire"])
    assert state_queries("dcl", "orders", ["2", "cancelled"], {"filter": 'custom_field1 eq "VIP"'}) == [
        ("2", {"filter": 'custom_field1 eq "VIP", order_stage eq 2'}),
        ("cancelled", {"filter": 'custom_field1 eq "VIP"'}),
    ]
    assert state_queries("stream", "orders", ["pickup_missed"], {}) == [
        ("pickup_missed", {"status": "pickup_missed"})
    ]


def test_bad_arguments(fake):
    with pytest.raises(AirflowFailException, match="unknown state"):
        run(FulfillmentErrorStateOperator(task_id="a", conn_id="c", states=["nope"]))
    with pytest.raises(AirflowFailException, match="as states="):
        run(FulfillmentErrorStateOperator(task_id="b", conn_id="c", filters={"state": "error"}))
    with pytest.raises(AirflowFailException, match="unknown filter"):
        run(FulfillmentErrorStateOperator(task_id="c", conn_id="c", filters={"colour": "red"}))
    with pytest.raises(ValueError, match="threshold"):
        FulfillmentErrorStateOperator(task_id="d", conn_id="c", threshold=-1)


def test_through_dag_test_the_failure_callback_fires(request, run_dag, xcom, fake, failures, task_states):
    name = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)
    with DAG(name, schedule=None, start_date=BASE, catchup=False) as dag:
        FulfillmentErrorStateOperator(
            task_id="alert", conn_id="dropstream_default", retries=3, on_failure_callback=failures
        )
        FulfillmentErrorStateOperator(task_id="soft", conn_id="dropstream_default", soft=True)
    dag_run = run_dag(dag, None)
    assert task_states(dag_run) == {"alert": "failed", "soft": "success"}  # failed at once, no retries
    assert "4 orders in errored states: 1002 (SO1002) error since" in str(failures.errors["alert"])
    assert xcom(dag_run, "soft")["count"] == 4
    assert xcom(dag_run, "alert", key="errored")["count"] == 4


# ------------------------------------------------------------------ FulfillmentAlertOperator (the ledger)


def _ledger_env(monkeypatch, tmp_path) -> str:
    body = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")})
    monkeypatch.setenv("AIRFLOW_CONN_ALERT_LEDGER", body)
    return "alert_ledger"


def _late(record_id: str, since: datetime) -> Finding:
    return Finding(
        "dropstream", "late_order", record_id, since=since, details={"summary": f"order {record_id} is late"}
    )


def _alert(conn: str, now: datetime, **kwargs: Any) -> dict[str, Any]:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(
        dag_id="d",
        task_id="alert",
        run_id=now.isoformat(),
        xcom_push=lambda key, value: pushed.update({key: value}),
    )
    op = FulfillmentAlertOperator(task_id="alert", ledger_conn_id=conn, as_of=now.isoformat(), **kwargs)
    try:
        return op.execute({"ti": ti})  # type: ignore[arg-type]
    except AirflowFailException as error:
        return {**pushed["alerts"], "failed": str(error)}


def test_alerts_open_remind_and_resolve_once_each(monkeypatch, tmp_path):
    conn = _ledger_env(monkeypatch, tmp_path)
    t0 = datetime(2026, 1, 2, tzinfo=UTC)
    day = timedelta(days=1)
    with Ledger(conn) as ledger:
        ledger.sync_findings(
            [_late("1", t0 - 2 * day), _late("2", t0 - day)],
            vendors=["dropstream"],
            kinds=["late_order"],
            now=t0,
        )
    first = _alert(conn, t0)
    assert (
        first["failed"]
        == first["digest"]
        == ("Fulfillment alerts: 2 opened\n- opened dropstream late_order: 2; oldest: 1 (2d), 2 (1d)")
    )
    assert [(n["record_id"], n["event"]) for n in first["notifications"]] == [
        ("1", "opened"),
        ("2", "opened"),
    ]
    assert _alert(conn, t0)["digest"] == "Fulfillment alerts: nothing new."  # a rerun sends nothing
    with Ledger(conn) as ledger:  # order 2 ships
        ledger.sync_findings(
            [_late("1", t0 - 2 * day)], vendors=["dropstream"], kinds=["late_order"], now=t0 + day
        )
    second = _alert(conn, t0 + day, soft=True)
    assert "failed" not in second
    assert [(n["record_id"], n["event"]) for n in second["notifications"]] == [
        ("1", "reminder"),
        ("2", "resolved"),
    ]
    assert second["notifications"][1]["message"] == "[resolved] dropstream late_order 2 after 2d"
    assert (second["opened"], second["reminder"], second["resolved"]) == (0, 1, 1)
    third = _alert(conn, t0 + day + timedelta(hours=12), soft=True)
    assert third["notifications"] == []  # before the next reminder, and 2's resolution was sent
    with Ledger(conn) as ledger:
        sent = sorted((a.sent_at, a.record_id, a.event) for a in ledger.alerts())
    assert sent == [
        (t0, "1", "opened"),
        (t0, "2", "opened"),
        (t0 + day, "1", "reminder"),
        (t0 + day, "2", "resolved"),
    ]


def test_alert_thresholds_and_resolutions_do_not_fail(monkeypatch, tmp_path):
    conn = _ledger_env(monkeypatch, tmp_path)
    t0 = datetime(2026, 1, 2, tzinfo=UTC)
    with Ledger(conn) as ledger:
        ledger.sync_findings(
            [_late("young", t0 - timedelta(hours=2))], vendors=["dropstream"], kinds=["late_order"], now=t0
        )
    quiet = _alert(conn, t0, min_age={"late_order": timedelta(hours=6)})
    assert quiet["digest"] == "Fulfillment alerts: nothing new." and "failed" not in quiet
    only_critical = _alert(
        conn, t0 + timedelta(hours=7), fail_on_severity="critical", min_age={"*": timedelta(hours=6)}
    )
    assert "failed" not in only_critical and only_critical["opened"] == 1  # a warning: sent, but no failure
    with pytest.raises(ValueError, match="fail_on_severity must be one of info, warning, critical"):
        FulfillmentAlertOperator(task_id="a", fail_on_severity="loud")
    with pytest.raises(ValueError, match="kinds: unknown late"):
        FulfillmentAlertOperator(task_id="a", kinds=["late"])


class FakeDclHook(FakeHook):
    """Enough of a DCL hook for the errored-state check: orders filtered by `order_stage eq N`."""

    vendor = "dcl"
    hook_name = "DCL"
    conn_type = "dcl"

    def iter_records(self, resource, *, window=None, window_field=None, raw=False, **filters):
        from airflow_provider_fulfillment.models.dcl import DclOrder

        self.calls.append((resource, dict(filters)))
        stage = int(filters["filter"].removeprefix("order_stage eq "))
        return iter([DclOrder.model_validate(row) for row in self.orders if row["order_stage"] == stage])

    def normalize(self, resource, record):
        return record.to_common()


def test_dcl_errored_orders_of_two_accounts_sharing_a_number_are_two(monkeypatch):
    """DCL identity is (account_number, order_number): account 10501's D1 on hold and 10502's are
    two errored orders, each listed with its account."""

    def dcl(account: str, number: str, stage: int) -> dict[str, Any]:
        return {"account_number": account, "order_number": number, "order_stage": stage}

    hook = FakeDclHook([dcl("10501", "D1", 2), dcl("10502", "D1", 2), dcl("10502", "D2", 10)])
    monkeypatch.setattr(alert_module, "get_hook", lambda conn_id: hook)
    op = FulfillmentErrorStateOperator(task_id="a", conn_id="dcl_default", max_listed=5)
    with pytest.raises(
        AirflowFailException,
        match=r"^DCL \(conn dcl_default\): 2 orders in errored states: 10501/D1 2 \(since unknown\); "
        r"10502/D1 2 \(since unknown\)\. By state: 2 2$",
    ):
        run(op)
    report = run.pushed["errored"]  # type: ignore[attr-defined]
    assert report["count"] == 2 and report["by_state"] == {"2": 2}
    assert [(r["account"], r["id"], r["raw_status"]) for r in report["records"]] == [
        ("10501", "D1", "2"),
        ("10502", "D1", "2"),
    ]
    assert hook.calls == [("orders", {"filter": "order_stage eq 2"})]
