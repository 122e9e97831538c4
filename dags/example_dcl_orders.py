"""DCL: extract the day's changed orders and their shipments; alert on orders on hold.

What it shows:

- `FulfillmentExtractOperator` on a DCL connection: the run's data interval on `modified_at` (DCL's
  default window field: an order changes as it moves through its stages, so "modified in the interval"
  catches new orders and progress alike). The hook sends DCL's `modified_from`/`modified_to` with
  explicit offsets (DCL reads times without one as US Pacific) and trims the records to the exact
  half-open interval on the client, so consecutive runs neither overlap nor leave gaps.
- DCL shipments come from the orders' nested `shipments` (`resource="shipments"`), here written
  normalized (`normalized=True`: the provider's vendor-neutral `Shipment` records, with a normalized
  status beside the raw one) and gzip-compressed (`.jsonl.gz`).
- `FulfillmentErrorStateOperator` asking DCL for orders in its error stage (stage 2, on hold /
  exception; DCL's `filter=order_stage eq 2`), in soft mode with `FulfillmentAlertNotifier` as the
  success and failure callback. Add `stuck_for=timedelta(days=1)` to alert only on orders that have
  been on hold for a day, or `threshold=` to tolerate a few.

Schedule: daily, each run the previous day (`CronDataIntervalTimetable`: the data interval ends when
the run starts). Against the sandbox (`make demo`): `airflow dags test example_dcl_orders 2026-01-01`
(the sandbox world ends then). Connection: `dcl_default` (host = base URL including `/api/v1`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable
from fulfillment_alerts import FulfillmentAlertNotifier

from airflow_provider_fulfillment.operators.alert import FulfillmentErrorStateOperator
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator

CONN_ID = "dcl_default"
alert = FulfillmentAlertNotifier(channel="dcl-ops")

with DAG(
    dag_id="example_dcl_orders",
    description="DCL: extract changed orders and their shipments, alert on orders on hold",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 10, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "fulfillment", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["example", "fulfillment", "dcl"],
    doc_md=__doc__,
) as dag:
    extract_orders = FulfillmentExtractOperator(
        task_id="extract_orders",
        conn_id=CONN_ID,
        vendor="dcl",
        resource="orders",
        # filters={"filter": 'order_stage ge 10, custom_field1 eq "wholesale"'},  # DCL filter language
    )
    extract_shipments = FulfillmentExtractOperator(
        task_id="extract_shipments",
        conn_id=CONN_ID,
        vendor="dcl",
        resource="shipments",
        normalized=True,
        compression="gzip",
    )
    alert_orders_on_hold = FulfillmentErrorStateOperator(
        task_id="alert_orders_on_hold",
        conn_id=CONN_ID,
        resource="orders",
        soft=True,
        on_success_callback=alert,
        on_failure_callback=alert,
        trigger_rule="all_done",  # alert even when an extract failed
    )

    [extract_orders, extract_shipments] >> alert_orders_on_hold
