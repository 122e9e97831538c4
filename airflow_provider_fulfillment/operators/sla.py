"""`FulfillmentSlaOperator`: SLA figures from the ledger's state changes and open findings.

The figures are `rules.sla` rows (time to ship, time in error, open findings by age, per vendor).
They go to the task log as a table, to XCom, and into the ledger's `fulfillment_sla` table
(rewritten whole each run, in one transaction) for BI tools to read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_fulfillment.operators.reconcile import (
    DEFAULT_LEDGER_CONN_ID,
    VENDORS,
    as_of_from,
    run_ref,
)
from airflow_provider_fulfillment.rules.sla import SlaRow, sla, table
from airflow_provider_fulfillment.rules.types import RunRef, record_key

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fulfillment.ledger import Ledger

_COLUMNS = (
    "vendor",
    "metric",
    "kind",
    "bucket",
    "count",
    "open_count",
    "p50_seconds",
    "p90_seconds",
    "max_seconds",
    "computed_at",
    "dag_id",
    "run_id",
)


def compute_sla(ledger: Ledger, vendors: Iterable[str], now: datetime) -> list[SlaRow]:
    """The SLA rows of `vendors`, from what the ledger holds."""
    wanted = set(vendors)
    created = {
        (order.vendor, record_key(order.account, order.id)): order.created_at
        for vendor in sorted(wanted)
        for order in ledger.iter_records("orders", vendor=vendor)
        if order.created_at is not None
    }
    changes = (change for change in ledger.state_changes() if change.vendor in wanted)
    findings = [row for row in ledger.findings(open_only=True) if row.vendor in wanted]
    return sla(changes, findings, now=now, created_at=created)


def store_sla(ledger: Ledger, rows: Sequence[SlaRow], *, computed_at: datetime, run: RunRef) -> None:
    """Replace the `fulfillment_sla` table's rows with these (one transaction)."""
    from airflow_provider_fulfillment.ledger.schema import SLA

    dialect = ledger.dialect
    statement = dialect.sql(
        f"INSERT INTO {SLA} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    )
    with dialect.transaction() as cursor:
        cursor.execute(f"DELETE FROM {SLA}")
        cursor.executemany(
            statement,
            [
                (
                    r.vendor,
                    r.metric,
                    r.kind,
                    r.bucket,
                    r.count,
                    r.open_count,
                    r.p50_seconds,
                    r.p90_seconds,
                    r.max_seconds,
                    dialect.ts_param(computed_at),
                    run.dag_id,
                    run.run_id,
                )
                for r in rows
            ],
        )


class FulfillmentSlaOperator(BaseOperator):
    """Compute SLA figures from the ledger; log them, return them, store them for BI tools.

    :param ledger_conn_id: the ledger's connection.
    :param vendors: vendors measured (default all three).
    :param as_of: "now" for stays still going and finding ages (default: the data interval end).

    Returns (XCom): ``{"as_of", "rows": [SlaRow as dict]}``.
    """

    template_fields: Sequence[str] = ("as_of",)
    ui_color = "#e6f0ff"

    def __init__(
        self,
        *,
        ledger_conn_id: str = DEFAULT_LEDGER_CONN_ID,
        vendors: Iterable[str] = VENDORS,
        as_of: datetime | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ledger_conn_id = ledger_conn_id
        self.vendors = tuple(vendors)
        self.as_of = as_of

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_fulfillment.ledger import Ledger

        now = as_of_from(self.as_of, context, self.task_id)
        with Ledger(self.ledger_conn_id) as ledger:
            rows = compute_sla(ledger, self.vendors, now)
            store_sla(ledger, rows, computed_at=now, run=run_ref(context))
        self.log.info("SLA as of %s (also in table fulfillment_sla):\n%s", now.isoformat(), table(rows))
        return {"as_of": now.isoformat(), "rows": [row.as_dict() for row in rows]}


__all__ = ["FulfillmentSlaOperator", "compute_sla", "store_sla"]
