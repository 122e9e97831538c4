"""DropStream orders to shipments: extract both, reconcile them, alert on errored records.

What it shows:

- `FulfillmentExtractOperator` extracting exactly the run's data interval of DropStream orders and of
  shipments (newline-delimited JSON under `$AIRFLOW_HOME/fulfillment/vendor=dropstream/...`, written
  atomically, overwritten on a rerun), each returning a small manifest as XCom and updating an
  Airflow Asset (`fulfillment://dropstream/orders`, `.../shipments`) other DAGs can schedule on.
- `FulfillmentReconcileOperator` in its file mode, over the two extracts: late orders with no
  shipment, orders marked shipped with no shipment, shipments of orders not in the files, items
  shipped that were not ordered, errored records. It writes one JSON line per finding next to the
  extracts and returns counts by kind. (Without a ledger there is no lifecycle: see
  `example_fulfillment_daily_ledger.py` for findings that open once and resolve.)
- `FulfillmentErrorStateOperator` asking DropStream for orders and shipments in errored states, in soft
  mode with a notifier (`fulfillment_alerts.FulfillmentAlertNotifier`) on success and on failure: the
  alert leaves Airflow while the run stays green. With `soft=False` the task fails instead (retries
  skipped) and the same notifier fires as `on_failure_callback`.

Schedule: daily at 00:00 UTC over the trailing three days (`CronTriggerTimetable` with an `interval`):
a reconciliation needs orders that have had time to ship, so each run reads the last three days of
orders and of shipments and judges them as of the interval's end. A one-day window could not tell a
late order from one that ships tomorrow. The price is overlapping extracts (each interval has its
own file); for high volumes, extract non-overlapping hours in one DAG and reconcile lists of
manifests (`orders=[...]`, `shipments=[...]`) in another, scheduled on the Assets.

Against the sandbox (`make demo` runs this): its world ends at 2026-01-01T00:00Z and records' states
are as of then, so run it for that date: `airflow dags test example_fulfillment_orders_to_shipments
2026-01-01`. Connection: `dropstream_default` (host = the whole base URL).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, CronTriggerTimetable
from fulfillment_alerts import FulfillmentAlertNotifier

from airflow_provider_fulfillment.operators.alert import FulfillmentErrorStateOperator
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from airflow_provider_fulfillment.operators.reconcile import FulfillmentReconcileOperator

CONN_ID = "dropstream_default"
alert = FulfillmentAlertNotifier(channel="dropstream-ops")

with DAG(
    dag_id="example_fulfillment_orders_to_shipments",
    description="DropStream: extract orders and shipments, reconcile them, alert on errored records",
    schedule=CronTriggerTimetable("0 0 * * *", timezone="UTC", interval=timedelta(days=3)),
    start_date=datetime(2025, 10, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "fulfillment", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["example", "fulfillment", "dropstream"],
    doc_md=__doc__,
) as dag:
    extract_orders = FulfillmentExtractOperator(
        task_id="extract_orders",
        conn_id=CONN_ID,
        vendor="dropstream",  # the outlet is then the concrete Asset fulfillment://dropstream/orders
        resource="orders",
        # filters={"store_id": 1234},  # any documented DropStream filter; templated
    )
    extract_shipments = FulfillmentExtractOperator(
        task_id="extract_shipments",
        conn_id=CONN_ID,
        vendor="dropstream",
        resource="shipments",
    )
    reconcile = FulfillmentReconcileOperator(
        task_id="reconcile",
        orders=extract_orders.output,
        shipments=extract_shipments.output,
        ship_deadline=timedelta(days=2),  # for orders without a requested ship date
        # fail_on={"item_mismatch": 0, "orphan_shipment": 0},  # turn counts into a failed task
    )
    alert_errored_orders = FulfillmentErrorStateOperator(
        task_id="alert_errored_orders",
        conn_id=CONN_ID,
        resource="orders",  # every raw state that normalizes to `error`, whatever its age
        soft=True,
        on_success_callback=alert,
        on_failure_callback=alert,
        trigger_rule="all_done",  # alert even when the reconciliation failed
    )
    alert_errored_shipments = FulfillmentErrorStateOperator(
        task_id="alert_errored_shipments",
        conn_id=CONN_ID,
        resource="shipments",
        stuck_for=timedelta(hours=1),  # a shipment that just errored often recovers on its own
        soft=True,
        on_success_callback=alert,
        on_failure_callback=alert,
        trigger_rule="all_done",
    )

    [extract_orders, extract_shipments] >> reconcile >> [alert_errored_orders, alert_errored_shipments]
