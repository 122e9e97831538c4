"""Daily fulfillment ledger: extract the day, capture what changed, load the ledger, reconcile, alert.

What it shows, for DropStream, DCL and Stream at once:

- `FulfillmentExtractOperator` extracting the run's data interval (orders; DropStream shipments).
- `FulfillmentChangeCaptureOperator` reading what a window cannot see: DCL from its `modified`
  watermark, DropStream and Stream by re-reading the records the ledger still holds open (one
  state-filtered query per state) plus recent ones. The first run, on an empty ledger, reads the
  last `INITIAL_LOOKBACK`.
- `FulfillmentLedgerLoadOperator` merging each vendor's manifests into the ledger (`fulfillment_ledger`;
  SQLite under `$AIRFLOW_HOME` unless the connection points elsewhere, e.g. PostgreSQL): idempotent,
  a version only replaces an older one, each observed status change written once.
- `FulfillmentReconcileOperator` reconciling the whole ledger as of the interval's end and keeping
  the findings' lifecycle: a late order opens once, stays open until it ships, then resolves.
- `FulfillmentAlertOperator` notifying each finding once when it opens, daily while it stays open,
  once when it resolves, as one digest; soft mode here, with `FulfillmentAlertNotifier` on success
  (with `soft=False` the task fails with the digest and the notifier fires on failure).
- `FulfillmentSlaOperator` writing time to ship, time in error and open findings by age to the log,
  XCom and the `fulfillment_sla` table.

`make demo` runs it for three consecutive days against a sandbox whose clock moves a day between
runs (`POST /_control/clock`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, CronTriggerTimetable
from fulfillment_alerts import FulfillmentAlertNotifier

from airflow_provider_fulfillment.operators.alert import FulfillmentAlertOperator
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from airflow_provider_fulfillment.operators.ledger import (
    FulfillmentChangeCaptureOperator,
    FulfillmentLedgerLoadOperator,
)
from airflow_provider_fulfillment.operators.reconcile import FulfillmentReconcileOperator
from airflow_provider_fulfillment.operators.sla import FulfillmentSlaOperator

LEDGER_CONN_ID = "fulfillment_ledger"
INITIAL_LOOKBACK = timedelta(days=100)  # the sandbox world spans 90 days: take it all in
# (vendor connection, resources extracted and captured). DCL shipments come nested in their orders
# (and DCL's modified watermark sees every change). A Stream order is its own shipment: its orders
# load both tables, and capturing its shipments too re-reads those in transit until delivered.
SOURCES = (
    ("dropstream_default", ("orders", "shipments")),
    ("dcl_default", ("orders",)),
    ("stream_default", ("orders", "shipments")),
)

with DAG(
    dag_id="example_fulfillment_daily_ledger",
    # daily at 00:00 UTC over the day before: the data interval the extracts read
    schedule=CronTriggerTimetable("0 0 * * *", timezone="UTC", interval=timedelta(days=1)),
    start_date=datetime(2025, 12, 1),
    catchup=False,
    max_active_runs=1,  # each day builds on the ledger the previous one left
    description="Extract, capture changes, load the ledger, reconcile, alert (once each), SLA",
    default_args={"owner": "fulfillment", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["fulfillment", "ledger", "example"],
    doc_md=__doc__,
) as dag:
    reconcile = FulfillmentReconcileOperator(
        task_id="reconcile", ledger_conn_id=LEDGER_CONN_ID, ship_deadline=timedelta(days=2)
    )
    for conn_id, resources in SOURCES:
        vendor = conn_id.removesuffix("_default")
        manifests = []
        for resource in resources:
            extract = FulfillmentExtractOperator(
                task_id=f"extract_{vendor}_{resource}", conn_id=conn_id, resource=resource
            )
            capture = FulfillmentChangeCaptureOperator(
                task_id=f"capture_{vendor}_{resource}",
                conn_id=conn_id,
                resource=resource,
                ledger_conn_id=LEDGER_CONN_ID,
                initial_lookback=INITIAL_LOOKBACK,
            )
            manifests += [extract.output, capture.output]
        # one load per vendor connection: the ledger records which connection read each record,
        # and change capture re-reads the open records of its own connection
        # observed at the interval's end: a rerun records the same times, and times without a
        # vendor timestamp (DropStream shipment states, Stream) stay on the data's own clock
        load = FulfillmentLedgerLoadOperator(
            task_id=f"load_{vendor}",
            manifests=manifests,
            ledger_conn_id=LEDGER_CONN_ID,
            observed_at="{{ data_interval_end }}",
        )
        load >> reconcile
    alert = FulfillmentAlertOperator(
        task_id="alert",
        ledger_conn_id=LEDGER_CONN_ID,
        reminder_every=timedelta(days=1),
        escalate_after={"*": timedelta(days=7)},
        soft=True,
        trigger_rule="all_done",  # alert on what the ledger holds even when reconciliation failed
        on_success_callback=FulfillmentAlertNotifier(),
        on_failure_callback=FulfillmentAlertNotifier(),
    )
    sla = FulfillmentSlaOperator(task_id="sla", ledger_conn_id=LEDGER_CONN_ID)
    reconcile >> [alert, sla]
