"""`FulfillmentReconcileOperator`: reconcile orders and shipments, and keep the findings' lifecycle.

The rules are `rules.reconcile` (pure); this operator only feeds them and stores what they find.

- **From the ledger** (the default): every order and shipment the ledger holds for `vendors`,
  streamed from `ledger_conn_id`, are reconciled as of the run's data interval end. The findings
  are synced into `fulfillment_findings`: new ones open, those still true stay open (their
  `last_seen_at` moves), and open ones no longer found resolve. So a late order stays late across
  any number of runs until it ships, whatever window the extractions read.
- **From extracted files** (`orders=` and `shipments=`: manifests of `FulfillmentExtractOperator`
  or URIs): the same rules over one window's files, written as JSON lines next to the inputs. No
  lifecycle: a window does not say a finding outside it went away. Kept for pipelines without
  a ledger.

Returns a small summary (XCom): counts per kind, and what opened and resolved (the first few keys).
`fail_on` thresholds turn open counts into a failed task.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fulfillment.hooks import hook_class
from airflow_provider_fulfillment.operators._storage import (
    JsonLinesWriter,
    atomic_write,
    detect_format,
    hive_root,
    hive_values,
    iter_documents,
    model_class,
    partition_path,
    to_path,
    uri_of,
)
from airflow_provider_fulfillment.operators.links import FulfillmentRunLink, ReconcileReportLink
from airflow_provider_fulfillment.operators.report import report_for_run
from airflow_provider_fulfillment.rules.reconcile import CLOSED_STATES, ReconcilePolicy, reconcile
from airflow_provider_fulfillment.rules.types import FINDING_KINDS, Finding, FindingRow, RunRef
from airflow_provider_fulfillment.vendors import VENDORS as DECLARED_VENDORS
from airflow_provider_fulfillment.windows import to_aware_datetime

if TYPE_CHECKING:
    from airflow.sdk import Context

KINDS: tuple[str, ...] = FINDING_KINDS
VENDORS: tuple[str, ...] = tuple(DECLARED_VENDORS)
DEFAULT_LEDGER_CONN_ID = "fulfillment_ledger"
SHOWN = 20  # keys listed per delta in the XCom summary


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Source:
    """One extracted file to read: where, and what is known about it before reading."""

    path: ObjectStoragePath
    resource: str
    vendor: str | None = None
    normalized: bool | None = None
    format: str | None = None
    window: tuple[datetime, datetime] | None = None

    @property
    def uri(self) -> str:
        return uri_of(self.path)


_STAMPED = re.compile(r"^(\d{8}T\d{6}(?:\.\d{6})?Z)_(\d{8}T\d{6}(?:\.\d{6})?Z)")


def _parse_stamp(text: str) -> datetime:
    layout = "%Y%m%dT%H%M%S.%fZ" if "." in text else "%Y%m%dT%H%M%SZ"
    return datetime.strptime(text, layout).replace(tzinfo=UTC)


def _window_from_name(name: str) -> tuple[datetime, datetime] | None:
    """`20251001T000000Z_20251002T000000Z.jsonl` → the two datetimes (None when not so named)."""
    match = _STAMPED.match(name)
    return (_parse_stamp(match.group(1)), _parse_stamp(match.group(2))) if match else None


def sources(value: Any, resource: str, destination_conn_id: str | None = None) -> list[Source]:
    """Manifests (dicts), URIs, paths, or lists of them → the files to read, checked for their resource."""
    if value is None:
        raise ValueError(f"{resource}: no input given")
    items: list[Any] = []

    def flatten(node: Any) -> None:  # lists of lists come from mapped extracts
        if isinstance(node, (str, Mapping, ObjectStoragePath)):
            items.append(node)
        elif isinstance(node, Iterable):
            for child in node:
                flatten(child)
        else:
            raise ValueError(
                f"{resource}: expected a manifest, a URI or a list of them, got {type(node).__name__}"
            )

    flatten(value)
    found: list[Source] = []
    for item in items:
        if isinstance(item, Mapping):
            if "uri" not in item:
                raise ValueError(f"{resource}: a manifest without 'uri': {sorted(item)}")
            if item.get("resource") not in (None, resource):
                raise ValueError(
                    f"{resource}: {item['uri']} holds {item['resource']}, not {resource}; "
                    "pass orders as orders= and shipments as shipments="
                )
            window = item.get("window") or None
            found.append(
                Source(
                    path=to_path(item["uri"], destination_conn_id),
                    resource=resource,
                    vendor=item.get("vendor"),
                    normalized=item.get("normalized"),
                    format=item.get("format"),
                    window=None
                    if not window
                    else (
                        to_aware_datetime(window["start"], "start"),
                        to_aware_datetime(window["end"], "end"),
                    ),
                )
            )
            continue
        path = to_path(item, destination_conn_id)
        hive = hive_values(path)
        if hive.get("resource") not in (None, resource):
            raise ValueError(
                f"{resource}: {uri_of(path)} is under resource={hive['resource']}, not {resource}"
            )
        found.append(
            Source(
                path=path,
                resource=resource,
                vendor=hive.get("vendor"),
                normalized=True if ".common." in path.name else None,
                window=_window_from_name(path.name),
            )
        )
    if not found:
        raise ValueError(f"{resource}: the input list is empty")
    return found


def resolve(source: Source) -> Source:
    """The source with `normalized` known (read from its first record if need be), checked readable.

    Done before anything is written, so a wrong input fails the task at once with a clear message.
    """
    detect_format(source.path)
    normalized = source.normalized
    if normalized is None:  # not said: normalized records carry these keys, vendor records do not
        first = next(iter_documents(source.path, source.format), None)
        if first is None:
            return replace(source, normalized=source.vendor is None)
        probe = first if isinstance(first, dict) else json.loads(first)
        normalized = isinstance(probe, dict) and {"vendor", "status", "raw_status"} <= set(probe)
    if not normalized and source.vendor is None:
        raise ValueError(
            f"{source.uri}: vendor records of an unknown vendor; pass the extract's manifest, "
            "or a path under vendor=<vendor>/"
        )
    return replace(source, normalized=normalized)


def read_common(source: Source) -> Iterator[Any]:
    """The source's records as `common.Order` / `common.Shipment`, lazily (`source` resolved).

    A vendor record that names its account (DCL) keeps it, as the ledger's records do: two DCL
    accounts may share an order number, and the rules key records by account and id."""
    from airflow_provider_fulfillment.models.common import Order, Shipment

    if source.normalized:
        model: Any = Order if source.resource == "orders" else Shipment
        to_common: Any = None
    else:
        model = model_class(source.vendor or "", source.resource, normalized=False)
        to_common = _to_common(source.vendor or "", source.resource)
    for number, document in enumerate(iter_documents(source.path, source.format), start=1):
        try:
            record = (
                model.model_validate(document)
                if isinstance(document, dict)
                else model.model_validate_json(document)
            )
            yield record if to_common is None else to_common(record)
        except ValueError as error:
            raise ValueError(f"{source.uri}, record {number}: {error}") from None


def _to_common(vendor: str, resource: str) -> Any:
    from airflow_provider_fulfillment.ledger import LedgerOrder, LedgerShipment

    common_of = hook_class(vendor).common_of(resource)
    declaration = DECLARED_VENDORS[vendor]
    if declaration.account_field is None:
        return common_of
    with_account: Any = LedgerOrder if resource == "orders" else LedgerShipment

    def to_common(record: Any) -> Any:
        common = common_of(record)
        account = declaration.account_of(record)
        if not account:
            return common
        return with_account.model_construct(
            common.model_fields_set | {"account"}, **{**common.__dict__, "account": account}
        )

    return to_common


def finding_json(finding: Finding) -> dict[str, Any]:
    """A finding as one JSON object (files, XCom)."""
    data = asdict(finding)
    data["since"] = None if finding.since is None else finding.since.isoformat()
    return data


def run_ref(context: Context | Mapping[str, Any]) -> RunRef:
    """Which run and task did this, for the ledger's *_by columns."""
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    return RunRef(
        dag_id=getattr(ti, "dag_id", None),
        run_id=getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None),
        task_id=getattr(ti, "task_id", None),
    )


def as_of_from(value: datetime | str | None, context: Context | Mapping[str, Any], task_id: str) -> datetime:
    """The moment rules measure at: `value` if given, else the data interval end (reruns agree), else now."""
    try:
        if value not in (None, ""):
            return to_aware_datetime(value, "as_of")
        end = context.get("data_interval_end")
        return to_aware_datetime(end, "data_interval_end") if end is not None else datetime.now(UTC)
    except ValueError as error:
        raise AirflowFailException(f"{task_id}: {error}") from None


def _keys(rows: Sequence[FindingRow]) -> list[list[str]]:
    return [list(row.key) for row in rows[:SHOWN]]


class FulfillmentReconcileOperator(BaseOperator):
    """Reconcile orders with shipments (from the ledger, or from extracted files) and store the findings.

    :param ledger_conn_id: the ledger's connection (SQLite or PostgreSQL through common.sql).
    :param vendors: the vendors reconciled from the ledger (default: all three). Findings of these
        vendors that no longer hold are resolved.
    :param orders: extracted order files (manifests or URIs, or lists of them) to reconcile instead
        of the ledger; needs `shipments` too. Templated.
    :param shipments: extracted shipment files, with `orders`. Templated.
    :param destination: file mode: root folder of the findings file (default: next to the inputs).
    :param destination_conn_id: file mode: the connection for object-store inputs and output.
    :param ship_deadline: for orders without a ship-by date, how long after creation they must ship.
    :param as_of: when deadlines are measured (datetime or ISO string; templated). Default: the
        run's data interval end, else now.
    :param fail_on: `{kind: n}` (and/or `"total"`): fail when more than n are open. Default: never.
    :param closed_states: per vendor, raw order states that close an order without shipping.
    """

    template_fields: Sequence[str] = ("orders", "shipments", "destination", "as_of")
    operator_extra_links = (FulfillmentRunLink(), ReconcileReportLink())
    ui_color = "#fff4d6"

    def __init__(
        self,
        *,
        ledger_conn_id: str = DEFAULT_LEDGER_CONN_ID,
        vendors: Iterable[str] = VENDORS,
        orders: Any = None,
        shipments: Any = None,
        destination: ObjectStoragePath | str | None = None,
        destination_conn_id: str | None = None,
        ship_deadline: timedelta = timedelta(days=2),
        as_of: datetime | str | None = None,
        fail_on: Mapping[str, int] | None = None,
        closed_states: Mapping[str, Iterable[str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(ship_deadline, timedelta) or ship_deadline < timedelta(0):
            raise ValueError(f"ship_deadline must be a non-negative timedelta, got {ship_deadline!r}")
        if (orders is None) != (shipments is None):
            raise ValueError("give both orders= and shipments= (extracted files), or neither (the ledger)")
        self.vendors = tuple(vendors)
        unknown_vendors = sorted(set(self.vendors) - set(VENDORS))
        if not self.vendors or unknown_vendors:
            raise ValueError(f"vendors must be among {', '.join(VENDORS)}, got {list(self.vendors)!r}")
        unknown = sorted(set(fail_on or {}) - {*KINDS, "total"})
        if unknown:
            raise ValueError(
                f"fail_on: unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}, total"
            )
        for kind, threshold in (fail_on or {}).items():
            if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
                raise ValueError(f"fail_on[{kind!r}] must be a non-negative integer, got {threshold!r}")
        self.ledger_conn_id = ledger_conn_id
        self.orders = orders
        self.shipments = shipments
        self.destination = destination
        self.destination_conn_id = destination_conn_id
        self.ship_deadline = ship_deadline
        self.as_of = as_of
        self.fail_on = dict(fail_on or {})
        states = CLOSED_STATES if closed_states is None else closed_states
        self.closed_states = {vendor: frozenset(raws) for vendor, raws in states.items()}

    @property
    def policy(self) -> ReconcilePolicy:
        return ReconcilePolicy(ship_deadline=self.ship_deadline, closed_states=self.closed_states)

    def execute(self, context: Context) -> dict[str, Any]:
        as_of = as_of_from(self.as_of, context, self.task_id)
        if self.orders is not None:
            summary = self._from_files(as_of)
        else:
            run = run_ref(context)
            summary = self._from_ledger(as_of, run)
            # The run's HTML report (summary, charts, the oldest open findings); its URI in the summary.
            summary["report_uri"] = report_for_run(
                self.ledger_conn_id,
                run=run,
                summary=summary,
                as_of=as_of,
                destination=self.destination,
                destination_conn_id=self.destination_conn_id,
            )
        exceeded = []
        for kind, limit in self.fail_on.items():
            count = summary["open"] if kind == "total" else summary["counts"][kind]
            if count > limit:
                exceeded.append(f"{kind} {count} > {limit}")
        if exceeded:
            context["ti"].xcom_push(key="summary", value=summary)
            raise AirflowFailException(
                f"reconciliation found more than allowed: {', '.join(exceeded)} "
                f"(open: {', '.join(f'{k} {n}' for k, n in summary['counts'].items() if n)})"
            )
        return summary

    # ------------------------------------------------------------------------ the ledger
    def _from_ledger(self, as_of: datetime, run: RunRef) -> dict[str, Any]:
        from airflow_provider_fulfillment.ledger import Ledger

        read = {"orders": 0, "shipments": 0}

        def stream(resource: str) -> Iterator[Any]:
            for vendor in self.vendors:
                for record in ledger.iter_records(resource, vendor=vendor):
                    read[resource] += 1
                    yield record

        with Ledger(self.ledger_conn_id) as ledger:
            self.log.info(
                "Reconciling %s from the ledger (%s, %s) as of %s",
                ", ".join(self.vendors),
                self.ledger_conn_id,
                ledger.backend,
                as_of.isoformat(),
            )
            findings = reconcile(stream("orders"), stream("shipments"), as_of=as_of, policy=self.policy)
            delta = ledger.sync_findings(findings, vendors=self.vendors, kinds=KINDS, now=as_of, run=run)
        counts = dict.fromkeys(KINDS, 0)
        for finding in findings:
            counts[finding.kind] += 1
        summary = {
            "source": "ledger",
            "as_of": as_of.isoformat(),
            "vendors": list(self.vendors),
            "orders_read": read["orders"],
            "shipments_read": read["shipments"],
            "open": len(findings),
            "counts": counts,
            "opened": len(delta.opened),
            "still_open": len(delta.still_open),
            "resolved": len(delta.resolved),
            "opened_keys": _keys(delta.opened),
            "resolved_keys": _keys(delta.resolved),
        }
        self.log.info(
            "Read %d orders and %d shipments: %d findings open (%s); %d opened, %d still open, %d resolved",
            read["orders"],
            read["shipments"],
            len(findings),
            ", ".join(f"{kind} {n}" for kind, n in counts.items() if n) or "none",
            len(delta.opened),
            len(delta.still_open),
            len(delta.resolved),
        )
        for label, rows in (("Opened", delta.opened), ("Resolved", delta.resolved)):
            for row in rows[:SHOWN]:
                self.log.info(
                    "%s: %s %s %s: %s", label, row.vendor, row.kind, row.record_id, row.details.get("summary")
                )
        return summary

    # ------------------------------------------------------------------------ files
    def _from_files(self, as_of: datetime) -> dict[str, Any]:
        try:
            order_sources = [resolve(s) for s in sources(self.orders, "orders", self.destination_conn_id)]
            shipment_sources = [
                resolve(s) for s in sources(self.shipments, "shipments", self.destination_conn_id)
            ]
        except (ValueError, FileNotFoundError) as error:
            raise AirflowFailException(f"{self.task_id}: {error}") from None
        read = {"orders": 0, "shipments": 0}
        vendors: set[str] = set()

        def stream(found: list[Source], resource: str) -> Iterator[Any]:
            for source in found:
                for record in read_common(source):
                    read[resource] += 1
                    vendors.add(record.vendor)
                    yield record

        final = self._output_path(order_sources, shipment_sources, as_of)
        try:
            findings = reconcile(
                stream(order_sources, "orders"),
                stream(shipment_sources, "shipments"),
                as_of=as_of,
                policy=self.policy,
            )
        except ValueError as error:
            raise AirflowFailException(f"{self.task_id}: {error}") from None
        with atomic_write(final) as sink:
            writer = JsonLinesWriter(sink)
            for finding in findings:
                writer.write_line(
                    json.dumps(finding_json(finding), separators=(",", ":"), ensure_ascii=False, default=str)
                )
            writer.close()
        counts = dict.fromkeys(KINDS, 0)
        for finding in findings:
            counts[finding.kind] += 1
        self.log.info(
            "Read %d orders and %d shipments from files; %d findings (%s) in %s",
            read["orders"],
            read["shipments"],
            len(findings),
            ", ".join(f"{kind} {n}" for kind, n in counts.items() if n) or "none",
            uri_of(final),
        )
        return {
            "source": "files",
            "uri": uri_of(final),
            "as_of": as_of.isoformat(),
            "vendors": sorted(vendors),
            "orders_read": read["orders"],
            "shipments_read": read["shipments"],
            "open": len(findings),
            "counts": counts,
            "bytes": sink.size,
            "sha256": sink.sha256,
            "inputs": {
                "orders": [source.uri for source in order_sources],
                "shipments": [source.uri for source in shipment_sources],
            },
        }

    def _output_path(
        self, order_sources: list[Source], shipment_sources: list[Source], as_of: datetime
    ) -> ObjectStoragePath:
        if self.destination not in (None, ""):
            root = to_path(self.destination, self.destination_conn_id)
        else:
            first = order_sources[0].path
            root = hive_root(first) or first.parent
        vendors = {source.vendor for source in (*order_sources, *shipment_sources)}
        vendor = vendors.pop() if len(vendors) == 1 and None not in vendors else "multi"
        windows = [source.window for source in order_sources]
        if all(windows):
            start = min(window[0] for window in windows)  # type: ignore[index]
            end = max(window[1] for window in windows)  # type: ignore[index]
        else:
            start = end = as_of
        return partition_path(root, vendor, "findings", start, end, ".jsonl")


__all__ = ["KINDS", "VENDORS", "FulfillmentReconcileOperator", "as_of_from", "finding_json", "run_ref"]
