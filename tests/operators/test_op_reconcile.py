"""FulfillmentReconcileOperator: findings from the ledger open, stay open and resolve across runs;
the file mode over extracted files; thresholds and arguments.

(The run over the sandbox's whole world and its planted discrepancies is in test_op_sandbox.py.)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fulfillment.ledger import Ledger, LedgerRow
from airflow_provider_fulfillment.models.common import LineItem, Order, Shipment
from airflow_provider_fulfillment.operators.reconcile import KINDS, FulfillmentReconcileOperator
from airflow_provider_fulfillment.rules.types import RunRef

DAY1 = datetime(2026, 1, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
OLD = datetime(2025, 12, 20, tzinfo=UTC)  # long past the 2-day deadline on DAY1
FRESH = DAY1 - timedelta(hours=6)  # due on DAY1 + 42h: not late on DAY2, late on DAY3


@pytest.fixture
def ledger_conn(monkeypatch, tmp_path) -> str:
    body = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")})
    monkeypatch.setenv("AIRFLOW_CONN_TEST_LEDGER", body)
    return "test_ledger"


def order(ident, status, raw, *, created=OLD, vendor="dropstream", items=0, since=None):
    return Order(
        vendor=vendor,
        id=ident,
        number=f"N{ident}",
        status=status,
        raw_status=raw,
        created_at=created,
        status_since=since or created,
        items=[LineItem(line_id=f"x{n}", sku=f"S{n}") for n in range(items)],
    )


def shipment(ident, order_id, status="shipped", raw="notified_shipped", *, items=1, when=OLD):
    return Shipment(
        vendor="dropstream",
        id=ident,
        order_id=order_id,
        status=status,
        raw_status=raw,
        created_at=when,
        items=[LineItem(line_id=str(700 + n)) for n in range(items)],
    )


def context(run_id: str) -> dict:
    ti = SimpleNamespace(dag_id="daily", task_id="reconcile", run_id=run_id, xcom_push=lambda **kw: None)
    return {"ti": ti, "dag_run": SimpleNamespace(run_id=run_id)}


def reconcile(conn: str, as_of: datetime, run_id: str, **kwargs) -> dict:
    op = FulfillmentReconcileOperator(
        task_id="reconcile", ledger_conn_id=conn, as_of=as_of.isoformat(), vendors=["dropstream"], **kwargs
    )
    return op.execute(context(run_id))  # type: ignore[arg-type]


def merge(conn: str, observed: datetime, orders=(), shipments=()) -> None:
    with Ledger(conn) as ledger:
        ledger.merge("orders", orders, observed_at=observed, run=RunRef("daily", "load"))
        ledger.merge("shipments", shipments, observed_at=observed, run=RunRef("daily", "load"))


def test_findings_open_stay_open_and_resolve_across_runs(ledger_conn):
    merge(
        ledger_conn,
        DAY1,
        orders=[
            order("1", "processing", "sent_to_warehouse"),  # late
            order("2", "processing", "sent_to_warehouse", created=FRESH),  # not yet due
            order("3", "error", "error_processing"),  # errored and late
            order("4", "shipped", "shipped", items=1),  # fine
        ],
        shipments=[shipment("S4", "4"), shipment("S9", "9")],  # S9: orphan
    )
    first = reconcile(ledger_conn, DAY1, "day1")
    assert first["source"] == "ledger"
    assert (first["orders_read"], first["shipments_read"]) == (4, 2)
    assert first["opened_keys"] == [
        ["dropstream", "errored_order", "3"],
        ["dropstream", "late_order", "1"],
        ["dropstream", "late_order", "3"],
        ["dropstream", "orphan_shipment", "S9"],
    ]
    assert (first["opened"], first["still_open"], first["resolved"]) == (4, 0, 0)
    assert reconcile(ledger_conn, DAY1, "day1-rerun")["opened"] == 0  # a rerun opens nothing

    # day 2: order 1 ships, order 3 recovers (still unshipped: still late), S9's order appears
    merge(
        ledger_conn,
        DAY2,
        orders=[
            order("3", "processing", "pending_shipment", since=DAY2 - timedelta(hours=1)),
            order("9", "shipped", "shipped"),
        ],
        shipments=[shipment("S1", "1", when=DAY1 + timedelta(hours=3))],
    )
    second = reconcile(ledger_conn, DAY2, "day2")
    assert second["opened_keys"] == []
    assert second["resolved_keys"] == [
        ["dropstream", "errored_order", "3"],
        ["dropstream", "late_order", "1"],
        ["dropstream", "orphan_shipment", "S9"],
    ]
    assert second["counts"] == {**dict.fromkeys(KINDS, 0), "late_order": 1}

    # day 3: order 2's deadline has passed
    third = reconcile(ledger_conn, DAY2 + timedelta(days=1), "day3")
    assert third["opened_keys"] == [["dropstream", "late_order", "2"]]
    with Ledger(ledger_conn) as ledger:
        rows = {row.key: row for row in ledger.findings(open_only=False)}
    assert {key: (row.opened_at, row.last_seen_at, row.resolved_at) for key, row in rows.items()} == {
        ("dropstream", "errored_order", "3"): (DAY1, DAY1, DAY2),
        ("dropstream", "late_order", "1"): (DAY1, DAY1, DAY2),
        ("dropstream", "late_order", "2"): (DAY2 + timedelta(days=1),) * 2 + (None,),
        ("dropstream", "late_order", "3"): (DAY1, DAY2 + timedelta(days=1), None),
        ("dropstream", "orphan_shipment", "S9"): (DAY1, DAY1, DAY2),
    }
    late = rows[("dropstream", "late_order", "3")]
    assert (late.opened_by, late.since) == (RunRef("daily", "day1", "reconcile"), OLD + timedelta(days=2))
    assert rows[("dropstream", "late_order", "1")].resolved_by == RunRef("daily", "day2", "reconcile")


def test_only_the_vendors_evaluated_are_resolved(ledger_conn):
    merge(
        ledger_conn,
        DAY1,
        orders=[order("1", "processing", "new"), order("D", "processing", "20", vendor="dcl")],
    )
    FulfillmentReconcileOperator(
        task_id="reconcile", ledger_conn_id=ledger_conn, as_of=DAY1.isoformat()
    ).execute(context("all"))  # type: ignore[arg-type]
    # a DropStream-only run leaves the DCL finding open
    merge(ledger_conn, DAY2, shipments=[shipment("S1", "1")])
    summary = reconcile(ledger_conn, DAY2, "ds-only")
    assert summary["resolved_keys"] == [["dropstream", "late_order", "1"]]
    with Ledger(ledger_conn) as ledger:
        assert [row.key for row in ledger.findings()] == [("dcl", "late_order", "D")]


def test_dcl_findings_carry_the_account_of_their_records(ledger_conn):
    """Records read back from the ledger keep their account: findings name it in their record_id
    ("10501/D1": two accounts may share an order number), matching uses it."""

    def dcl(record, account):
        return LedgerRow(record.model_copy(update={"vendor": "dcl"}), account=account)

    with Ledger(ledger_conn) as ledger:
        ledger.merge(
            "orders",
            [
                dcl(order("D1", "processing", "20"), "10501"),  # late
                dcl(order("D1", "processing", "20"), "10502"),  # late too: another account's D1
                dcl(order("D2", "error", "E", since=DAY1 - timedelta(hours=1)), "10502"),  # errored, late
                dcl(order("D3", "processing", "20"), "10501"),  # shipped in its own account: not late
            ],
            observed_at=DAY1,
        )
        ledger.merge(
            "shipments",
            [dcl(shipment("S3", "D3"), "10501"), dcl(shipment("S7", "D3"), "10502")],  # S7: D3 of 10502
            observed_at=DAY1,
        )
    FulfillmentReconcileOperator(
        task_id="reconcile", ledger_conn_id=ledger_conn, as_of=DAY1.isoformat(), vendors=["dcl"]
    ).execute(context("dcl"))  # type: ignore[arg-type]
    with Ledger(ledger_conn) as ledger:
        rows = ledger._all(
            "SELECT vendor, kind, record_id, account, resource, severity, since, opened_at, resolved_at "
            "FROM fulfillment_findings ORDER BY vendor, kind, record_id"
        )
        ts = ledger.dialect.ts_value
    assert [(*row[:6], ts(row[6]), ts(row[7]), row[8]) for row in rows] == [
        (
            "dcl",
            "errored_order",
            "10502/D2",
            "10502",
            "order",
            "critical",
            DAY1 - timedelta(hours=1),
            DAY1,
            None,
        ),
        ("dcl", "late_order", "10501/D1", "10501", "order", "warning", OLD + timedelta(days=2), DAY1, None),
        ("dcl", "late_order", "10502/D1", "10502", "order", "warning", OLD + timedelta(days=2), DAY1, None),
        ("dcl", "late_order", "10502/D2", "10502", "order", "warning", OLD + timedelta(days=2), DAY1, None),
        ("dcl", "orphan_shipment", "10502/S7", "10502", "shipment", "warning", OLD, DAY1, None),
    ]
    with Ledger(ledger_conn) as ledger:
        summaries = {
            row.record_id: row.details["summary"] for row in ledger.findings(kinds=["orphan_shipment"])
        }
    assert summaries == {"10502/S7": "shipment 10502/S7 refers to order 10502/D3, which is unknown"}


def test_thresholds_fail_after_syncing(ledger_conn):
    merge(ledger_conn, DAY1, orders=[order("1", "processing", "new"), order("2", "processing", "new")])
    with pytest.raises(
        AirflowFailException,
        match=r"^reconciliation found more than allowed: late_order 2 > 1 \(open: late_order 2\)$",
    ):
        reconcile(ledger_conn, DAY1, "t", fail_on={"late_order": 1, "total": 5})
    with Ledger(ledger_conn) as ledger:
        assert len(ledger.findings()) == 2


def write(path: Path, records) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(record.model_dump_json() + "\n" for record in records))
    return f"file://{path}"


def test_file_mode_writes_the_findings_next_to_the_inputs(tmp_path):
    base = tmp_path / "vendor=dropstream"
    orders = write(
        base / "resource=orders/date=2026-01-01/20260101T000000Z_20260102T000000Z.common.jsonl",
        [order("1", "processing", "new"), order("4", "shipped", "shipped", items=1)],
    )
    shipments = write(
        base / "resource=shipments/date=2026-01-01/20260101T000000Z_20260102T000000Z.common.jsonl",
        [shipment("S4", "4", items=2)],
    )
    op = FulfillmentReconcileOperator(task_id="r", orders=orders, shipments=shipments, as_of=DAY1.isoformat())
    summary = op.execute({})  # type: ignore[arg-type]
    assert summary["uri"] == (
        f"file://{tmp_path}/vendor=dropstream/resource=findings/date=2026-01-01/"
        "20260101T000000Z_20260102T000000Z.jsonl"
    )
    lines = [json.loads(line) for line in Path(summary["uri"][7:]).read_text().splitlines()]
    assert [(f["kind"], f["record_id"]) for f in lines] == [("item_mismatch", "4"), ("late_order", "1")]
    assert lines[1]["since"] == "2025-12-22T00:00:00+00:00"
    assert summary["counts"] == {**dict.fromkeys(KINDS, 0), "late_order": 1, "item_mismatch": 1}


def test_bad_arguments():
    with pytest.raises(ValueError, match="give both orders= and shipments="):
        FulfillmentReconcileOperator(task_id="r", orders="file:///x")
    with pytest.raises(ValueError, match=r"vendors must be among dropstream, dcl, stream, got \['ups'\]"):
        FulfillmentReconcileOperator(task_id="r", vendors=["ups"])
    with pytest.raises(ValueError, match="fail_on: unknown kind"):
        FulfillmentReconcileOperator(task_id="r", fail_on={"late_unshipped": 1})
    with pytest.raises(ValueError, match="ship_deadline must be a non-negative timedelta"):
        FulfillmentReconcileOperator(task_id="r", ship_deadline=timedelta(hours=-1))


def test_file_mode_keeps_each_dcl_record_s_account(tmp_path):
    """Two DCL accounts share order number ORD1: account 10502's shipment does not ship 10501's order."""
    from airflow_provider_fulfillment.hooks.dcl import DclHook

    def dcl_order(account: str, stage: int, shipments: list) -> dict:
        return {
            "order_number": "ORD1",
            "account_number": account,
            "order_stage": stage,
            "is_cancelled": False,
            "received_date": "2025-12-20",
            "modified_at": "2025-12-21T10:00:00",
            "order_lines": [{"line_number": 1, "item_number": "SKU1", "quantity": 1}],
            "shipments": shipments,
        }

    shipped = {
        "ship_id": 9001,
        "ship_date": "2025-12-21",
        "packages": [
            {
                "tracking_number": "1Z1",
                "shipped_items": [{"item_number": "SKU1", "line_number": 1, "quantity": 1}],
            }
        ],
    }
    records = [dcl_order("10501", 20, []), dcl_order("10502", 60, [shipped])]
    base = tmp_path / "vendor=dcl"
    stamp = "date=2025-12-20/20251220T000000Z_20251221T000000Z.jsonl"
    for resource, lines in (("orders", records), ("shipments", DclHook._shipments_of(iter(records)))):
        path = base / f"resource={resource}" / stamp
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    op = FulfillmentReconcileOperator(
        task_id="r",
        orders=f"file://{base}/resource=orders/{stamp}",
        shipments=f"file://{base}/resource=shipments/{stamp}",
        as_of=DAY1.isoformat(),
    )
    summary = op.execute({})  # type: ignore[arg-type]
    lines = [json.loads(line) for line in Path(summary["uri"][7:]).read_text().splitlines()]
    assert [(f["kind"], f["record_id"], f["account"]) for f in lines] == [
        ("late_order", "10501/ORD1", "10501")
    ]
