"""Stream: extract the week's orders and deliveries; alert on orders in errored statuses.

What it shows:

- Stream's API filters by `status` only: it has no date filter. `FulfillmentExtractOperator` still
  extracts exactly the data interval: the hook pages through the orders (20 a page) and keeps those
  whose window field lies in the interval, on the client. Every run therefore reads every order, which
  is why this DAG runs weekly; a `status` filter (`filters={"status": "in_transit"}`) narrows what is
  read on the server.
- Two windows on the same records: orders created in the interval (`window_field="created_at"`, the
  default), and orders delivered in it (`window_field="date_delivered"`; a Stream order is its own
  shipment, so `resource="shipments"` reads the same records).
- `FulfillmentErrorStateOperator` with Stream's server-side `status` filter, one query per errored
  status (`additional_document_required`, `incomplete`, `lost_in_transit`, `pickup_missed`), in soft
  mode with `FulfillmentAlertNotifier` on success and failure. `states=["lost_in_transit"]` narrows it.

Schedule: weekly, Monday 00:00 UTC, each run the previous week (`CronDataIntervalTimetable`). Against
the sandbox (`make demo`): `airflow dags test example_stream_orders 2026-01-01` reads the week that
ended on Monday 2025-12-29. Connection: `stream_default` (host = base URL including
`/client_api/v2`; login = API user email).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable
from fulfillment_alerts import FulfillmentAlertNotifier

from airflow_provider_fulfillment.operators.alert import FulfillmentErrorStateOperator
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator

CONN_ID = "stream_default"
alert = FulfillmentAlertNotifier(channel="stream-ops")

with DAG(
    dag_id="example_stream_orders",
    description="Stream: extract the week's orders and deliveries, alert on errored statuses",
    schedule=CronDataIntervalTimetable("0 0 * * 1", timezone="UTC"),
    start_date=datetime(2025, 10, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "fulfillment", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["example", "fulfillment", "stream"],
    doc_md=__doc__,
) as dag:
    extract_orders = FulfillmentExtractOperator(
        task_id="extract_orders",
        conn_id=CONN_ID,
        vendor="stream",
        resource="orders",
    )
    extract_deliveries = FulfillmentExtractOperator(
        task_id="extract_deliveries",
        conn_id=CONN_ID,
        vendor="stream",
        resource="shipments",
        window_field="date_delivered",
    )
    alert_errored_orders = FulfillmentErrorStateOperator(
        task_id="alert_errored_orders",
        conn_id=CONN_ID,
        resource="orders",
        soft=True,
        on_success_callback=alert,
        on_failure_callback=alert,
        trigger_rule="all_done",
    )

    [extract_orders, extract_deliveries] >> alert_errored_orders
