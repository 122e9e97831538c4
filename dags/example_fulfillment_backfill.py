"""DropStream backfill at scale: plan an interval into partitions, extract them as mapped tasks.

What it shows:

- `FulfillmentPartitionOperator` cutting the run's interval (a week) into partitions that each fit
  one task's share: cut at UTC midnights, halved where DropStream's `total_count` says a part holds
  more than `max_records`, neighbours merged back while they fit. It returns one
  `{"window": {...}}` per partition.
- `FulfillmentExtractOperator.partial(...).expand_kwargs(plan.output)`: one mapped extract task per
  partition (each its own file, manifest and retries), which the Celery or Kubernetes executor
  spreads over workers. Every task of the connection runs in the Airflow pool
  `fulfillment_dropstream_default` (`pool_name(conn_id)`), whose slots bound how many tasks hit the
  vendor at once; inside each task one adaptive controller per connection paces its requests.
  Create the pool once: `airflow pools set fulfillment_dropstream_default 4 "DropStream API"`.
- `FulfillmentLedgerLoadOperator(manifests=extract.output)`: the list of every partition's manifest,
  merged into the ledger in one task.
- `FulfillmentErrorStateOperator` in soft mode with the notifier, after the load.

Schedule: weekly (Monday 00:00 UTC) over the previous week, so `airflow backfill create
--dag-id example_fulfillment_backfill --from-date 2025-10-06 --to-date 2026-01-01` backfills the
sandbox's world week by week. Against the sandbox: `airflow dags test example_fulfillment_backfill
2025-12-29`. Connection: `dropstream_default`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable
from fulfillment_alerts import FulfillmentAlertNotifier

from airflow_provider_fulfillment.operators.alert import FulfillmentErrorStateOperator
from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from airflow_provider_fulfillment.operators.ledger import FulfillmentLedgerLoadOperator
from airflow_provider_fulfillment.operators.partition import FulfillmentPartitionOperator
from airflow_provider_fulfillment.partitions import pool_name

CONN_ID = "dropstream_default"
alert = FulfillmentAlertNotifier(channel="dropstream-backfill")

with DAG(
    dag_id="example_fulfillment_backfill",
    description="DropStream: a week planned into partitions, extracted by mapped tasks, loaded as one",
    schedule=CronDataIntervalTimetable("0 0 * * 1", timezone="UTC"),
    start_date=datetime(2025, 10, 6, tzinfo=UTC),
    catchup=False,
    max_active_runs=2,
    default_args={"owner": "fulfillment", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["example", "fulfillment", "dropstream", "backfill"],
    doc_md=__doc__,
) as dag:
    plan = FulfillmentPartitionOperator(
        task_id="plan_partitions",
        conn_id=CONN_ID,
        resource="orders",
        max_records=500,  # small, so the sandbox's week makes several tasks; ~50,000 in production
    )
    extract_orders = FulfillmentExtractOperator.partial(
        task_id="extract_orders",
        conn_id=CONN_ID,
        vendor="dropstream",
        resource="orders",
        pool=pool_name(CONN_ID),
    ).expand_kwargs(plan.output)
    load = FulfillmentLedgerLoadOperator(task_id="load_ledger", manifests=extract_orders.output)
    alert_errored_orders = FulfillmentErrorStateOperator(
        task_id="alert_errored_orders",
        conn_id=CONN_ID,
        resource="orders",
        soft=True,
        on_success_callback=alert,
        on_failure_callback=alert,
        trigger_rule="all_done",
    )

    load >> alert_errored_orders
