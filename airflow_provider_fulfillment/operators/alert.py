"""Alerting: `FulfillmentAlertOperator` (from the ledger, with a lifecycle) and the stateless
`FulfillmentErrorStateOperator`.

`FulfillmentAlertOperator` reads the findings reconciliation keeps in the ledger and the alerts
already sent, and notifies what is due (`rules.alerts`): `opened` once per finding episode,
`reminder` every `reminder_every` while it stays open, `resolved` once. It records each in
`fulfillment_alerts` before failing, so a retry or a rerun never notifies twice. One digest
(counts plus the oldest few) is the message, not a wall of ids. In hard mode (the default) the
task fails with the digest when anything at or above `fail_on_severity` opened or is reminded,
so the DAG's notifiers and `on_failure_callback` fire; in soft mode it returns the digest.

`FulfillmentErrorStateOperator` is the stateless variant: it asks the vendor, now, for the records
in errored states and fails listing them, every run, whether or not they were reported before.

It asks the vendor for exactly those records (one query per raw state, with the vendor's own state
filter: DropStream `state=`, Stream `status=`, DCL `filter=order_stage eq N`), so it reads a handful of
records, not the whole order book. It then fails with a message a person can act on — which records,
in which raw state, since when, a few at most and "and N more" — so the DAG's `on_failure_callback`
and Airflow notifiers fire with something useful to say. It fails with `AirflowFailException`, which
skips task retries: retrying in minutes does not fix an errored order, it only delays the alert.

A threshold tolerates a few, `stuck_for` ignores records that only just entered the state, and the
soft mode returns the list (XCom) instead of failing, for DAGs that branch on it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fulfillment.hooks import get_hook, hook_class
from airflow_provider_fulfillment.models import states as state_tables
from airflow_provider_fulfillment.models.common import STATUSES
from airflow_provider_fulfillment.operators._format import duration
from airflow_provider_fulfillment.operators.extract import parse_window
from airflow_provider_fulfillment.operators.links import FulfillmentRunLink
from airflow_provider_fulfillment.operators.reconcile import (
    DEFAULT_LEDGER_CONN_ID,
    VENDORS,
    as_of_from,
    run_ref,
)
from airflow_provider_fulfillment.rules.alerts import (
    SEVERITY_RANK,
    AlertPolicy,
    digest,
    due_notifications,
    message,
)
from airflow_provider_fulfillment.rules.types import FINDING_KINDS, Notification, record_key
from airflow_provider_fulfillment.vendors import VENDORS as DECLARED_VENDORS

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fulfillment.hooks.base import FulfillmentHook

RESOURCES = ("orders", "shipments")
VENDOR_NAMES = {conn_type: vendor.name for conn_type, vendor in DECLARED_VENDORS.items()}


def error_states(vendor: str, resource: str) -> list[str]:
    """Every raw state of a vendor resource that normalizes to `error`."""
    table = state_tables.state_table(vendor, hook_class(vendor).state_resource(resource))
    return sorted(raw for raw, status in table.states.items() if status == "error")


def resolve_states(vendor: str, resource: str, states: Iterable[str] | str | None) -> list[str]:
    """Raw states to look for: all errored ones by default; a normalized status expands to its raw states.

    A name that is a raw state of the vendor is taken as such (DropStream has a raw `error`); otherwise a
    normalized status (`error`, `pending`...) stands for every raw state mapping to it.
    """
    if states is None:
        return error_states(vendor, resource)
    if isinstance(states, str):
        states = [states]
    table = state_tables.state_table(vendor, hook_class(vendor).state_resource(resource))
    known = set(table.states)
    wanted: list[str] = []
    for state in states:
        text = str(state).strip()
        if text in known or hook_class(vendor).is_raw_state(resource, text):
            wanted.append(text)
        elif text in STATUSES:
            wanted.extend(sorted(raw for raw, status in table.states.items() if status == text))
        else:
            raise ValueError(
                f"{VENDOR_NAMES.get(vendor, vendor)} {resource}: unknown state {text!r}; raw states: "
                f"{', '.join(sorted(known))}; or a normalized status: {', '.join(STATUSES)}"
            )
    return list(dict.fromkeys(wanted))


def state_queries(
    vendor: str, resource: str, raw_states: Sequence[str], filters: Mapping[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """(raw state, filters) per request: the vendor's server-side state filter where it has one."""
    hook = hook_class(vendor)
    queries = [(raw, hook.state_query(raw, filters)) for raw in raw_states]
    return queries


def _since_of(record: Any) -> datetime | None:
    return (
        getattr(record, "status_since", None)
        or getattr(record, "modified_at", None)
        or getattr(record, "created_at", None)
    )


def _entry(resource: str, record: Any, as_of: datetime) -> dict[str, Any]:
    since = _since_of(record)
    entry: dict[str, Any] = {
        "id": record.id,
        "raw_status": record.raw_status,
        "status": record.status,
        "since": since.isoformat() if since else None,
        "age_seconds": int((as_of - since).total_seconds()) if since else None,
    }
    if resource == "orders":
        entry["number"] = record.number
    else:
        entry["order_id"] = record.order_id
        entry["tracking_numbers"] = list(record.tracking_numbers)
    return entry


def _label(resource: str, entry: Mapping[str, Any]) -> str:
    ident = record_key(entry.get("account", ""), str(entry["id"]))
    extra: list[str] = []
    if resource == "orders" and entry.get("number") and entry["number"] != entry["id"]:
        extra.append(str(entry["number"]))
    if resource == "shipments":
        if entry.get("tracking_numbers"):
            extra.append("tracking " + ", ".join(entry["tracking_numbers"]))
        if entry.get("order_id") and entry["order_id"] != entry["id"]:
            extra.append(f"order {entry['order_id']}")
    if extra:
        ident += f" ({'; '.join(extra)})"
    since = f" since {entry['since']}" if entry.get("since") else " (since unknown)"
    return f"{ident} {entry['raw_status']}{since}"


class FulfillmentErrorStateOperator(BaseOperator):
    """Find the orders or shipments in errored states and fail with a list a person can act on.

    Stateless: it reports what is errored at this moment, every run. For alerts that open once,
    remind and resolve, use `FulfillmentAlertOperator` on the ledger.

    :param conn_id: a `dropstream`, `dcl` or `stream` connection.
    :param resource: "orders" or "shipments".
    :param states: raw states to look for (e.g. `["error_sending_to_warehouse"]`, DCL `["2"]`), or
        normalized statuses standing for all their raw states; default every raw state that
        normalizes to `error`. Templated.
    :param stuck_for: only records in the state for longer than this (timedelta or seconds). "Since"
        is the vendor's state-transition time where it gives one (DropStream), else the last
        modification (DCL), else creation (Stream).
    :param threshold: fail only when more than this many records are found (default 0).
    :param soft: return the list instead of failing (a warning is logged).
    :param max_listed: records named in the failure message (the oldest first), "and N more" after.
    :param max_returned: records in the XCom list (the oldest first); the count is always exact.
    :param window: `(start, end)` limiting the search on `window_field` (default: all records). Templated.
    :param window_field: the field the window applies to (vendor default otherwise).
    :param filters: more vendor filters (e.g. DropStream `store_id`). Templated.

    Returns (XCom; also pushed under key "errored" before failing): ``{"vendor", "conn_id", "resource",
    "count", "threshold", "by_state": {raw: n}, "records": [{"id", "raw_status", "status", "since",
    "age_seconds", "number" | "order_id" + "tracking_numbers"}], "truncated", "states", "as_of"}``.
    """

    template_fields: Sequence[str] = ("states", "window", "filters")
    operator_extra_links = (FulfillmentRunLink(),)
    template_fields_renderers = {"filters": "json"}
    ui_color = "#fde2e1"

    def __init__(
        self,
        *,
        conn_id: str,
        resource: Literal["orders", "shipments"] = "orders",
        states: Iterable[str] | str | None = None,
        stuck_for: timedelta | float | None = None,
        threshold: int = 0,
        soft: bool = False,
        max_listed: int = 10,
        max_returned: int = 200,
        window: Any = None,
        window_field: str | None = None,
        filters: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if resource not in RESOURCES:
            raise ValueError(f"resource must be one of {', '.join(RESOURCES)}, got {resource!r}")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise ValueError(f"threshold must be a non-negative integer, got {threshold!r}")
        if max_listed < 1 or max_returned < 1:
            raise ValueError("max_listed and max_returned must be at least 1")
        if stuck_for is not None and not isinstance(stuck_for, timedelta):
            stuck_for = timedelta(seconds=float(stuck_for))
        if stuck_for is not None and stuck_for < timedelta(0):
            raise ValueError(f"stuck_for must not be negative, got {stuck_for}")
        self.conn_id = conn_id
        self.resource = resource
        self.states = states
        self.stuck_for = stuck_for
        self.threshold = threshold
        self.soft = soft
        self.max_listed = max_listed
        self.max_returned = max_returned
        self.window = window
        self.window_field = window_field
        self.filters = filters

    def execute(self, context: Context) -> dict[str, Any]:
        hook = get_hook(self.conn_id)
        try:
            report = self._find(hook)
        finally:
            hook.close()
        vendor_name = VENDOR_NAMES.get(report["vendor"], report["vendor"])
        if report["count"] <= self.threshold:
            self.log.info(
                "%s (conn %s): %d %s in errored states (threshold %d)",
                vendor_name,
                self.conn_id,
                report["count"],
                self.resource,
                self.threshold,
            )
            return report
        message = self.message(report)
        if self.soft:
            self.log.warning("%s", message)
            return report
        context["ti"].xcom_push(key="errored", value=report)
        raise AirflowFailException(message)

    def message(self, report: Mapping[str, Any]) -> str:
        """`DropStream (conn dropstream_default): 3 orders in errored states: 1001 error_x since ...; and N more`."""
        vendor_name = VENDOR_NAMES.get(report["vendor"], report["vendor"])
        count = report["count"]
        noun = self.resource if count != 1 else self.resource[:-1]
        stuck = f" for longer than {duration(self.stuck_for)}" if self.stuck_for else ""
        listed = [_label(self.resource, entry) for entry in report["records"][: self.max_listed]]
        text = f"{vendor_name} (conn {self.conn_id}): {count} {noun} in errored states{stuck}: " + "; ".join(
            listed
        )
        if count > len(listed):
            text += f"; and {count - len(listed)} more"
        if self.threshold:
            text += f" (threshold {self.threshold})"
        by_state = ", ".join(
            f"{raw} {n}" for raw, n in sorted(report["by_state"].items(), key=lambda kv: (-kv[1], kv[0]))
        )
        return f"{text}. By state: {by_state}"

    def _find(self, hook: FulfillmentHook) -> dict[str, Any]:
        vendor = hook.vendor
        try:
            raw_states = resolve_states(vendor, self.resource, self.states)
            filters = dict(self.filters or {})
            state_filter = hook_class(vendor).state_filter
            if state_filter is not None and state_filter in filters:
                raise ValueError(f"give the states to look for as states=, not as filter {state_filter!r}")
            window = None if self.window is None else parse_window(self.window)
        except ValueError as error:
            raise AirflowFailException(f"{self.task_id}: {error}") from None
        as_of = datetime.now(UTC)
        report: dict[str, Any] = {
            "vendor": vendor,
            "conn_id": self.conn_id,
            "resource": self.resource,
            "count": 0,
            "threshold": self.threshold,
            "by_state": {},
            "records": [],
            "truncated": False,
            "states": raw_states,
            "stuck_for_seconds": None if self.stuck_for is None else self.stuck_for.total_seconds(),
            "window": None if window is None else window.as_dict(),
            "as_of": as_of.isoformat(),
        }
        if not raw_states:
            self.log.info(
                "%s %s have no raw state that normalizes to error: nothing to check", vendor, self.resource
            )
            return report
        declaration = DECLARED_VENDORS[vendor]
        seen: set[str] = set()
        # The `max_returned` oldest, kept in a bounded heap: (-since, order) so the newest is popped first.
        oldest: list[tuple[float, int, dict[str, Any]]] = []
        by_state: dict[str, int] = {}
        sequence = 0
        for raw, query in state_queries(vendor, self.resource, raw_states, filters):
            wanted = raw.casefold()
            kwargs: dict[str, Any] = dict(query)
            if window is not None:
                kwargs.update(window=(window.start, window.end), window_field=self.window_field)
            try:
                records = hook.iter_records(self.resource, **kwargs)
            except ValueError as error:
                raise AirflowFailException(f"{self.task_id}: {error}") from None
            for vendor_record in records:
                record = hook.normalize(self.resource, vendor_record)
                account = declaration.account_of(vendor_record)
                ident = record_key(account, record.id)  # two DCL accounts may share an order number
                if (record.raw_status or "").casefold() != wanted or ident in seen:
                    continue
                since = _since_of(record)
                if self.stuck_for is not None and since is not None and as_of - since <= self.stuck_for:
                    continue
                seen.add(ident)
                by_state[record.raw_status] = by_state.get(record.raw_status, 0) + 1
                entry = _entry(self.resource, record, as_of)
                if account:
                    entry["account"] = account
                key = -(since.timestamp() if since else float("inf"))  # unknown since: listed (and kept) last
                sequence += 1
                item = (key, -sequence, entry)
                if len(oldest) < self.max_returned:
                    heapq.heappush(oldest, item)
                else:
                    heapq.heappushpop(oldest, item)
        ordered = [entry for _, _, entry in sorted(oldest, key=lambda item: (-item[0], -item[1]))]
        report.update(
            count=len(seen),
            by_state=by_state,
            records=ordered,
            truncated=len(seen) > len(ordered),
        )
        return report


def _notification_json(notification: Notification) -> dict[str, Any]:
    return {
        "vendor": notification.vendor,
        "kind": notification.kind,
        "record_id": notification.record_id,
        "event": notification.event,
        "severity": notification.severity,
        "episode": notification.episode.isoformat(),
        "message": message(notification),
    }


class FulfillmentAlertOperator(BaseOperator):
    """Notify the findings in the ledger once when they open, at an interval while open, once when resolved.

    :param ledger_conn_id: the ledger's connection.
    :param vendors: vendors alerted on (default all three).
    :param kinds: finding kinds alerted on (default all).
    :param reminder_every: interval of reminders while a finding stays open; None: never remind.
    :param min_age: `{kind or "*": timedelta}`: notify only causes older than this.
    :param min_severity: never notify below it ("info", "warning", "critical").
    :param escalate_after: `{kind or "*": timedelta}`: an open finding older than this is critical.
    :param soft: return the digest instead of failing.
    :param fail_on_severity: hard mode fails when an opened or reminded notification is at least this.
    :param oldest: records named per group in the digest.
    :param resolved_within: resolved findings looked at (for their `resolved` notice) if they
        resolved this recently.
    :param as_of: when "now" is (default: the run's data interval end, so a rerun sends nothing new).

    Returns (XCom; also pushed under key "alerts" before failing): ``{"as_of", "opened", "reminder",
    "resolved", "digest", "notifications": [first 50]}``.
    """

    template_fields: Sequence[str] = ("as_of",)
    operator_extra_links = (FulfillmentRunLink(),)
    ui_color = "#fde2e1"

    def __init__(
        self,
        *,
        ledger_conn_id: str = DEFAULT_LEDGER_CONN_ID,
        vendors: Iterable[str] = VENDORS,
        kinds: Iterable[str] = FINDING_KINDS,
        reminder_every: timedelta | None = timedelta(days=1),
        min_age: Mapping[str, timedelta] | None = None,
        min_severity: str = "info",
        escalate_after: Mapping[str, timedelta] | None = None,
        soft: bool = False,
        fail_on_severity: str = "warning",
        oldest: int = 5,
        resolved_within: timedelta = timedelta(days=7),
        as_of: datetime | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.policy = AlertPolicy(
            reminder_every=reminder_every,
            min_age=dict(min_age or {}),
            min_severity=min_severity,  # type: ignore[arg-type]
            escalate_after=dict(escalate_after or {}),
        )
        if fail_on_severity not in SEVERITY_RANK:
            raise ValueError(
                f"fail_on_severity must be one of {', '.join(SEVERITY_RANK)}, got {fail_on_severity!r}"
            )
        unknown = sorted(set(kinds) - set(FINDING_KINDS))
        if unknown:
            raise ValueError(f"kinds: unknown {', '.join(unknown)}; known: {', '.join(FINDING_KINDS)}")
        if oldest < 1:
            raise ValueError("oldest must be at least 1")
        self.ledger_conn_id = ledger_conn_id
        self.vendors = tuple(vendors)
        self.kinds = tuple(kinds)
        self.soft = soft
        self.fail_on_severity = fail_on_severity
        self.oldest = oldest
        self.resolved_within = resolved_within
        self.as_of = as_of

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_fulfillment.ledger import Ledger

        now = as_of_from(self.as_of, context, self.task_id)
        run = run_ref(context)
        with Ledger(self.ledger_conn_id) as ledger:
            rows = [
                row
                for row in ledger.findings(open_only=False, kinds=self.kinds)
                if row.vendor in self.vendors
                and (
                    row.is_open
                    or (row.resolved_at is not None and now - row.resolved_at <= self.resolved_within)
                )
            ]
            sent = ledger.alerts_for(row.key for row in rows)
            due = due_notifications(rows, sent, now=now, policy=self.policy)
            recorded = {
                (a.vendor, a.kind, a.record_id, a.event)
                for a in ledger.record_alerts(due, sent_at=now, run=run, message_of=message)
            }
        notified = [n for n in due if (*n.finding_key, n.event) in recorded]
        text = digest(notified, oldest=self.oldest)
        counts = {
            event: sum(n.event == event for n in notified) for event in ("opened", "reminder", "resolved")
        }
        summary = {
            "as_of": now.isoformat(),
            **counts,
            "digest": text,
            "notifications": [_notification_json(n) for n in notified[:50]],
        }
        self.log.info("%s", text)
        loud = [
            n
            for n in notified
            if n.event != "resolved" and SEVERITY_RANK[n.severity] >= SEVERITY_RANK[self.fail_on_severity]
        ]
        if loud and not self.soft:
            context["ti"].xcom_push(key="alerts", value=summary)
            raise AirflowFailException(text)
        return summary


__all__ = [
    "FulfillmentAlertOperator",
    "FulfillmentErrorStateOperator",
    "error_states",
    "resolve_states",
    "state_queries",
]
