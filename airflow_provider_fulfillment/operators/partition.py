"""`FulfillmentPartitionOperator`: plan a large interval into partitions for mapped extract tasks.

    plan = FulfillmentPartitionOperator(task_id="plan", conn_id="dropstream_default", window=...)
    FulfillmentExtractOperator.partial(
        task_id="extract", conn_id="dropstream_default", pool=pool_name("dropstream_default"),
    ).expand_kwargs(plan.output)

Where the vendor reports totals (DropStream's `total_count`), each partition is sized by a
one-record probe so it holds at most `max_records`; elsewhere partitions are time slices. The pool
(`pool_name(conn_id)`, create it with `airflow pools set fulfillment_<conn_id> <slots> ...`)
bounds how many extract tasks hit one vendor connection at once, against its rate limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fulfillment.hooks import get_hook
from airflow_provider_fulfillment.operators.extract import RESOURCES, interval_window
from airflow_provider_fulfillment.partitions import (
    DEFAULT_MAX_PARTITIONS,
    DEFAULT_MAX_RECORDS,
    as_expand_kwargs,
    plan_partitions,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fulfillment.windows import Window


class FulfillmentPartitionOperator(BaseOperator):
    """Cut the run's interval (or `window`) into partitions; returns `[{"window": {...}}, ...]`.

    :param conn_id: the vendor connection the extract tasks will read.
    :param resource: "orders" or "shipments".
    :param filters: the vendor filters the extract tasks will use (they change the counts).
    :param window_field: the field the windows apply to (the vendor's default if None).
    :param window: `(start, end)` or `{"start", "end"}` instead of the data interval. Templated.
    :param max_records: most records one partition should hold (one task's share).
    :param max_duration: longest partition (default one day: files then match daily layouts).
    :param max_partitions: refuse plans with more mapped tasks than this.
    """

    template_fields: Sequence[str] = ("filters", "window")
    ui_color = "#e8eefc"

    def __init__(
        self,
        *,
        conn_id: str,
        resource: Literal["orders", "shipments"] = "orders",
        filters: dict[str, Any] | None = None,
        window_field: str | None = None,
        window: Any = None,
        max_records: int = DEFAULT_MAX_RECORDS,
        max_duration: timedelta | None = timedelta(days=1),
        max_partitions: int = DEFAULT_MAX_PARTITIONS,
        **kwargs: Any,
    ) -> None:
        if resource not in RESOURCES:
            raise ValueError(f"resource must be one of {', '.join(RESOURCES)}, got {resource!r}")
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.resource = resource
        self.filters = filters
        self.window_field = window_field
        self.window = window
        self.max_records = max_records
        self.max_duration = max_duration
        self.max_partitions = max_partitions

    def execute(self, context: Context) -> list[dict[str, Any]]:
        window = interval_window(context, self.window, self.task_id)
        hook = get_hook(self.conn_id)
        filters = dict(self.filters or {})
        counter = getattr(hook, "count_records", None)

        def count(part: Window) -> int | None:
            if counter is None:
                return None
            return counter(self.resource, part, window_field=self.window_field, **filters)

        try:
            parts = plan_partitions(
                window,
                count,
                max_records=self.max_records,
                max_duration=self.max_duration,
                max_partitions=self.max_partitions,
            )
        except ValueError as error:
            raise AirflowFailException(f"{self.task_id}: {error}") from None
        finally:
            hook.close()
        known = [records for _, records in parts if records is not None]
        self.log.info(
            "Planned %s %s %s into %d partition(s)%s",
            hook.hook_name,
            self.resource,
            window.as_dict(),
            len(parts),
            f" holding {sum(known):,} records (largest {max(known):,})" if known else " (time slices)",
        )
        return as_expand_kwargs(parts)


__all__ = ["FulfillmentPartitionOperator"]
