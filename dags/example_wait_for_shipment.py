"""Wait for a DropStream shipment to ship, in the triggerer, and fail fast if it errors.

What it shows:

- `ShipmentStateSensor` in deferrable mode: it checks the tracking number once, and unless the
  shipment is already there, hands the wait to `FulfillmentStateTrigger` in the triggerer (async
  HTTP through the provider's HTTP core: auth, retries, `Retry-After`), so a wait of hours holds no
  worker slot. A tracking number DropStream does not know yet is waited for, not failed.
- It succeeds on a target state (raw or normalized: the normalized `shipped`/`delivered` here) and
  fails at once, without retries, on an errored state (the normalized `error`, i.e.
  `errored_processing` or `errored_notifying_of_shipment`): waiting longer will not un-error it.
  `FulfillmentAlertNotifier` is its `on_failure_callback`, so the failure leaves Airflow as an alert.
- The sensor returns the shipment's state (raw, normalized, since when) as XCom; `report` logs it.

Unscheduled: trigger it with the tracking number to watch as a param, e.g.
`airflow dags test example_wait_for_shipment --conf '{"tracking_number": "1Z..."}'`. The default
tracking number is a shipment of the sandbox's default world (seed 42, 5000 orders), so the DAG runs
as it stands against `make sandbox` / `make demo`. Connection: `dropstream_default`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task
from fulfillment_alerts import FulfillmentAlertNotifier

from airflow_provider_fulfillment.sensors.state import ShipmentStateSensor

# A `notified_shipped` shipment of the sandbox's default world (seed 42, 5000 orders).
SANDBOX_TRACKING_NUMBER = "940011189921630071589"

with DAG(
    dag_id="example_wait_for_shipment",
    description="Deferrable wait for a DropStream shipment to ship; fails fast on an errored state",
    schedule=None,
    start_date=datetime(2025, 10, 1, tzinfo=UTC),
    catchup=False,
    default_args={"owner": "fulfillment"},
    params={
        "tracking_number": Param(
            SANDBOX_TRACKING_NUMBER,
            type="string",
            minLength=1,
            title="Tracking number",
            description="The DropStream shipment to wait for.",
        ),
    },
    tags=["example", "fulfillment", "dropstream", "sensor"],
    doc_md=__doc__,
) as dag:
    wait_for_shipment = ShipmentStateSensor(
        task_id="wait_for_shipment",
        conn_id="dropstream_default",
        tracking_number="{{ params.tracking_number }}",
        target_states=["shipped", "delivered"],  # raw states work too, e.g. ["notified_shipped"]
        failure_states=["error"],
        deferrable=True,
        poke_interval=5,  # seconds, so the demo is quick; minutes are plenty for real shipments
        timeout=timedelta(days=3),
        on_failure_callback=FulfillmentAlertNotifier(channel="dropstream-ops"),
    )

    @task
    def report(state: dict[str, Any]) -> str:
        """Log where the shipment stands (what a downstream task would act on)."""
        since = f" since {state['since']}" if state.get("since") else ""
        line = f"shipment {state['ident']} is {state['status']} ({state['raw_status']}){since}"
        print(line)
        return line

    report(wait_for_shipment.output)
