"""Load extraction manifests into the ledger, and capture what changed since the last run.

- `FulfillmentLedgerLoadOperator` merges the files that extract (or capture) tasks wrote: one
  manifest, a list, or the list of lists that mapped tasks return. Records stream from the files
  through the vendor models' `to_common()` into one merge per resource, all in one transaction
  with the watermarks, so reruns, overlapping windows and duplicates never double-count and a
  failed load leaves nothing half-written.
- `FulfillmentChangeCaptureOperator` reads what a window extract cannot see: DCL from its
  `modified` watermark minus a lookback; DropStream and Stream re-read the records the ledger
  still holds open (one state-filtered query per raw state), a lookback window of recent ones,
  and the open records that left every queried state (by id; DropStream shipments by creation
  time). It writes an ordinary manifest file; the load task merges it and only then advances
  the watermark, so a failed load re-reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException
from pydantic_core import to_json

from airflow_provider_fulfillment.hooks import get_hook
from airflow_provider_fulfillment.ledger import DEFAULT_CONN_ID, Ledger, LedgerRow, MergeResult
from airflow_provider_fulfillment.ledger.schema import ORDERS, SHIPMENTS
from airflow_provider_fulfillment.lineage import file_dataset, ledger_table_dataset, operator_lineage
from airflow_provider_fulfillment.models.states import known_states
from airflow_provider_fulfillment.operators._storage import (
    JsonLinesWriter,
    atomic_write,
    default_root,
    iter_documents,
    model_class,
    partition_path,
    to_path,
    uri_of,
)
from airflow_provider_fulfillment.operators.extract import RESOURCES, closed_after
from airflow_provider_fulfillment.rawpages import RawRecord
from airflow_provider_fulfillment.rules.types import RunRef
from airflow_provider_fulfillment.vendors import declaration_of
from airflow_provider_fulfillment.windows import to_aware_datetime

TABLES = {"orders": ORDERS, "shipments": SHIPMENTS}  # the ledger table each resource is merged into

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fulfillment.hooks.base import FulfillmentHook

CAPTURE_SUFFIX = ".capture.jsonl"


def flatten_manifests(value: Any) -> list[dict[str, Any]]:
    """Manifests from one dict, a list, or nested lists (mapped tasks); None entries are skipped."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [dict(value)]
    if isinstance(value, (str, bytes)):
        raise ValueError(f"manifests must be dicts (the extract task's XCom), got a string {value[:80]!r}")
    found: list[dict[str, Any]] = []
    for item in value:
        found.extend(flatten_manifests(item))
    return found


def run_ref(context: Context) -> RunRef:
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    return RunRef(
        dag_id=getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None),
        run_id=getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None),
        task_id=getattr(ti, "task_id", None),
    )


def observed_at_of(manifest: Mapping[str, Any], path: Any) -> datetime:
    """When the manifest's records were read: its `observed_at`, else the file's modification time."""
    if manifest.get("observed_at"):
        return to_aware_datetime(manifest["observed_at"], "observed_at")
    try:
        mtime = path.stat().get("mtime") if hasattr(path.stat(), "get") else path.stat().st_mtime
    except (OSError, AttributeError):
        mtime = None
    if isinstance(mtime, datetime):
        return mtime if mtime.tzinfo else mtime.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(mtime), UTC) if mtime is not None else datetime.now(UTC)


def _raw_text(document: bytes | dict[str, Any]) -> str:
    return (
        document.decode().rstrip("\n") if isinstance(document, bytes) else json.dumps(document, default=str)
    )


def manifest_rows(
    manifest: Mapping[str, Any], target: str, account: str, observed_at: datetime
) -> Iterator[LedgerRow]:
    """The ledger rows of `target` ('orders' / 'shipments') that one manifest's file holds.

    A DCL order carries its shipments and a Stream order is its own shipment: an orders file
    gives shipment rows too. A DCL shipment's version is its order's `modified_at`.
    """
    vendor, resource = manifest["vendor"], manifest["resource"]
    normalized = bool(manifest.get("normalized"))
    conn_id = manifest.get("conn_id")
    path = to_path(manifest["uri"])
    model = model_class(vendor, resource, normalized)
    declaration = declaration_of(vendor)
    for document in iter_documents(path):
        record = (
            model.model_validate(document)
            if isinstance(document, dict)
            else model.model_validate_json(document)
        )
        if normalized:
            if resource == target:
                yield LedgerRow(
                    record, None, record.account or account, observed_at=observed_at, conn_id=conn_id
                )
            continue
        raw = _raw_text(document)
        record_account = declaration.account_of(record) or account
        if target == resource:
            common = (
                record.to_common_shipment()
                if vendor == "stream" and target == "shipments"
                else record.to_common()
            )
            yield LedgerRow(common, raw, record_account, observed_at=observed_at, conn_id=conn_id)
        elif target == "shipments" and vendor == "stream":
            yield LedgerRow(
                record.to_common_shipment(), raw, record_account, observed_at=observed_at, conn_id=conn_id
            )
        elif target == "shipments" and vendor == "dcl":
            for shipment in record.shipment_records():
                yield LedgerRow(
                    shipment.to_common(),
                    shipment.model_dump_json(),
                    record_account,
                    version_at=record.modified_at,
                    observed_at=observed_at,
                    conn_id=conn_id,
                )


def _targets(manifest: Mapping[str, Any]) -> tuple[str, ...]:
    if (
        manifest["resource"] == "orders"
        and manifest["vendor"] in ("dcl", "stream")
        and not manifest.get("normalized")
    ):
        return ("orders", "shipments")
    return (manifest["resource"],)


class FulfillmentLedgerLoadOperator(BaseOperator):
    """Merge extraction manifests into the fulfillment ledger.

    :param manifests: an extract task's manifest (XCom), a list of them, or the list of lists that
        mapped extract tasks return. Templated.
    :param ledger_conn_id: the ledger's connection (SQLite or PostgreSQL; default `fulfillment_ledger`,
        and SQLite under `$AIRFLOW_HOME` when it is not defined).
    :param account: the account of records whose vendor has none (DCL records carry `account_number`).
    :param observed_at: when the records were read, for every manifest (default: the manifest's
        `observed_at`, which capture manifests carry, else the file's modification time). It is
        the version of records that carry no vendor version. Templated.

    Returns (XCom) ``{"orders": {...}, "shipments": {...}, "manifests", "records", "watermarks", "ledger"}``
    where each resource has ``inserted, updated, unchanged, stale, state_changes``.
    """

    template_fields: Sequence[str] = ("manifests", "observed_at")
    ui_color = "#e8e0f5"

    def __init__(
        self,
        *,
        manifests: Any,
        ledger_conn_id: str = DEFAULT_CONN_ID,
        account: str = "",
        observed_at: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.manifests = manifests
        self.ledger_conn_id = ledger_conn_id
        self.account = account
        self.observed_at = observed_at

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            manifests = flatten_manifests(self.manifests)
            for manifest in manifests:
                missing = {"uri", "vendor", "resource"} - set(manifest)
                if missing:
                    raise ValueError(f"a manifest lacks {', '.join(sorted(missing))}: {manifest}")
        except (TypeError, ValueError) as error:
            raise AirflowFailException(f"{self.task_id}: {error}") from None
        run = run_ref(context)
        fallback = (
            None if self.observed_at in (None, "") else to_aware_datetime(self.observed_at, "observed_at")
        )
        observed = [fallback or observed_at_of(m, to_path(m["uri"])) for m in manifests]
        result: dict[str, Any] = {
            "manifests": len(manifests),
            "records": sum(int(m.get("records") or 0) for m in manifests),
        }
        with Ledger(self.ledger_conn_id) as ledger:
            tables = {target: ledger_table_dataset(ledger.hook, TABLES[target]) for target in RESOURCES}
            # One transaction: a failure after the orders leaves no half-loaded ledger behind.
            with ledger.transaction():
                for target in RESOURCES:
                    wanted = [
                        (m, seen)
                        for m, seen in zip(manifests, observed, strict=True)
                        if target in _targets(m)
                    ]
                    merged = MergeResult()
                    if wanted:
                        rows = (
                            row for m, seen in wanted for row in manifest_rows(m, target, self.account, seen)
                        )
                        latest = max(seen for _, seen in wanted)
                        merged = ledger.merge(
                            target, rows, conn_id=_conn_of(wanted), run=run, observed_at=latest
                        )
                    result[target] = merged.as_dict()
                result["watermarks"] = self._advance_watermarks(ledger, manifests, run)
            result["ledger"] = ledger.backend
        self.log.info("Ledger load: %s", result)
        written = {target: result[target]["inserted"] + result[target]["updated"] for target in RESOURCES}
        self._lineage = (
            [file_dataset(m["uri"]) for m in manifests],
            [
                (*tables[target], written[target], None)
                for target in RESOURCES
                if any(target in _targets(m) for m in manifests)
            ],
        )
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """For Airflow's OpenLineage listener: the extracted files in, the ledger tables out (rows written)."""
        lineage = getattr(self, "_lineage", None)
        return None if lineage is None else operator_lineage(*lineage)

    def _advance_watermarks(
        self, ledger: Ledger, manifests: list[dict[str, Any]], run: RunRef
    ) -> list[dict[str, Any]]:
        """Capture manifests move their watermark forward, now that their records are merged."""
        advanced = []
        for manifest in manifests:
            capture = manifest.get("capture")
            if not capture or not capture.get("watermark"):
                continue
            value = to_aware_datetime(capture["watermark"], "watermark")
            lookback = timedelta(seconds=int(capture.get("lookback_seconds") or 0))
            ledger.set_watermark(
                manifest["vendor"],
                manifest["resource"],
                manifest["conn_id"],
                value,
                lookback=lookback,
                run=run,
            )
            advanced.append(
                {
                    "vendor": manifest["vendor"],
                    "resource": manifest["resource"],
                    "conn_id": manifest["conn_id"],
                    "watermark": value.isoformat(),
                }
            )
        return advanced


def _conn_of(wanted: Iterable[tuple[Mapping[str, Any], Any]]) -> str | None:
    conn_ids = {m.get("conn_id") for m, _ in wanted}
    return conn_ids.pop() if len(conn_ids) == 1 else None


def vendor_line(record: Any) -> bytes:
    """A record as the vendor sent it (its bytes), as an extract writes it; a record the client
    assembled (a DCL shipment from its order) as compact JSON."""
    return record.raw if type(record) is RawRecord else to_json(record)


def _raw_id(hook: FulfillmentHook, resource: str, record: Mapping[str, Any] | RawRecord) -> str:
    """The record's identity in the vendor's JSON, as the hook declares it (DCL: account and number)."""
    fields = hook.identity_fields[resource]
    return "/".join(str(record.get(name)) for name in fields)


class FulfillmentChangeCaptureOperator(BaseOperator):
    """Read the records that changed since the last capture, into a manifest the load task merges.

    - DCL: `modified_at` in [watermark - lookback, end) (first run: [end - initial_lookback, end)).
    - DropStream, Stream: one state-filtered query per raw state the ledger holds open; records
      created in [watermark - lookback, end); and open orders seen by none of those, one lookup
      each (up to `max_lookups`): they left the open states (shipped, canceled...). DropStream
      shipments, which have no lookup by id, are found by their creation time, in short
      `created_at` windows of up to 100.

    Records are written once each (exactly-once paging, ids deduplicated across the queries) as
    the vendor's JSON lines, streamed (bounded memory). The returned manifest carries
    ``capture.watermark`` (= end); the load task stores it after a successful merge.

    :param conn_id: a `dropstream`, `dcl` or `stream` connection.
    :param resource: "orders" or "shipments".
    :param ledger_conn_id: the ledger (where the watermark and the open set come from).
    :param lookback: how far before the watermark to re-read (late writes, clock skew).
    :param initial_lookback: what the first capture reads when there is no watermark yet.
    :param end: the capture's end (templated); default the run's data interval end, else now.
    :param destination: root folder as for the extract operator (default `$AIRFLOW_HOME/fulfillment`).
    :param account: the ledger account of the records (DCL records carry theirs).
    :param max_lookups: cap on one-by-one lookups of open records seen by no query.
    """

    template_fields: Sequence[str] = ("end", "destination")
    ui_color = "#f5efe0"

    def __init__(
        self,
        *,
        conn_id: str,
        resource: Literal["orders", "shipments"] = "orders",
        ledger_conn_id: str = DEFAULT_CONN_ID,
        lookback: timedelta = timedelta(hours=6),
        initial_lookback: timedelta = timedelta(days=3),
        end: Any = None,
        destination: Any = None,
        destination_conn_id: str | None = None,
        account: str | None = None,
        max_lookups: int = 1000,
        **kwargs: Any,
    ) -> None:
        if resource not in RESOURCES:
            raise ValueError(f"resource must be one of {', '.join(RESOURCES)}, got {resource!r}")
        if lookback < timedelta(0) or initial_lookback <= timedelta(0):
            raise ValueError("lookback must be >= 0 and initial_lookback > 0")
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.resource = resource
        self.ledger_conn_id = ledger_conn_id
        self.lookback = lookback
        self.initial_lookback = initial_lookback
        self.end = end
        self.destination = destination
        self.destination_conn_id = destination_conn_id
        self.account = account
        self.max_lookups = max_lookups

    def _end(self, context: Context) -> datetime:
        value = self.end if self.end not in (None, "") else context.get("data_interval_end")
        return datetime.now(UTC) if value is None else to_aware_datetime(value, "end")

    def execute(self, context: Context) -> dict[str, Any]:
        end = self._end(context)
        hook = get_hook(self.conn_id)
        try:
            with Ledger(self.ledger_conn_id) as ledger:
                watermark = ledger.get_watermark(hook.vendor, self.resource, self.conn_id)
                start = (watermark - self.lookback) if watermark else end - self.initial_lookback
                start = min(start, end - timedelta(microseconds=1))
                open_ids = (
                    {}
                    if hook.vendor == "dcl"
                    else ledger.open_record_ids(
                        hook.vendor, self.resource, self.conn_id, account=self.account
                    )
                )
                created = (
                    ledger.open_record_created(hook.vendor, self.resource, self.conn_id, account=self.account)
                    if _found_by_creation(hook.vendor, self.resource)
                    else {}
                )
            return self._capture(context, hook, start, end, watermark, open_ids, created)
        finally:
            hook.close()

    def _queries(self, hook: FulfillmentHook, start: datetime, end: datetime, open_ids: Mapping[str, str]):
        """(label, iter_records kwargs) of each read, in order."""
        if hook.vendor == "dcl":
            yield "modified", {"window": (start, end), "window_field": "modified_at"}
            return
        yield "recent", {"window": (start, end)}
        held = set(open_ids.values())
        states = sorted(held & known_states(hook.vendor, self.resource))
        if held - set(states):
            # A raw state the vendor's filter does not document (API drift): no query can name it;
            # its orders are looked up one by one like those that left the queried states.
            self.log.warning(
                "No state filter for %s: %s", self.resource, ", ".join(sorted(held - set(states)))
            )
        for raw_state in states:
            yield f"state={raw_state}", hook.state_query(raw_state, {})

    def _capture(
        self,
        context: Context,
        hook: FulfillmentHook,
        start: datetime,
        end: datetime,
        watermark: datetime | None,
        open_ids: Mapping[str, str],
        created: Mapping[str, datetime | None],
    ) -> dict[str, Any]:
        vendor = hook.vendor
        root = default_root() if not self.destination else to_path(self.destination, self.destination_conn_id)
        final = partition_path(root, vendor, self.resource, start, end, CAPTURE_SUFFIX)
        seen: set[str] = set()
        per_query: dict[str, int] = {}
        # When the records are read (the wall clock, as an extract file's mtime is), not `end`: a
        # backfilled interval's end is long past, and would make these reads look older than they are.
        observed = datetime.now(UTC)
        self.log.info(
            "Capturing %s %s changes in [%s, %s) (watermark %s, %d open in the ledger) to %s",
            vendor,
            self.resource,
            start.isoformat(),
            end.isoformat(),
            watermark.isoformat() if watermark else "none",
            len(open_ids),
            uri_of(final),
        )
        with atomic_write(final) as sink:
            writer = JsonLinesWriter(sink)
            for label, query in self._queries(hook, start, end, open_ids):
                try:
                    records = hook.iter_records(self.resource, raw="bytes", **query)
                except ValueError as error:
                    raise AirflowFailException(f"{self.task_id}: {error}") from None
                with closed_after(records):
                    count = 0
                    for record in records:
                        ident = _raw_id(hook, self.resource, record)
                        if ident in seen:
                            continue
                        seen.add(ident)
                        writer.write_line(vendor_line(record))
                        count += 1
                per_query[label] = count
            lookups = self._look_up_missing(hook, open_ids, created, seen, writer)
            writer.close()
        per_query["lookups"] = lookups
        manifest = {
            "uri": uri_of(final),
            "records": len(seen),
            "bytes": sink.size,
            "sha256": sink.sha256,
            "window": {"start": start.isoformat(), "end": end.isoformat()},
            "window_field": "modified_at" if vendor == "dcl" else "created_at",
            "vendor": vendor,
            "resource": self.resource,
            "format": "jsonl",
            "compression": None,
            "normalized": False,
            "conn_id": self.conn_id,
            "observed_at": observed.isoformat(),
            "capture": {
                "watermark": end.isoformat(),
                "previous_watermark": watermark.isoformat() if watermark else None,
                "lookback_seconds": int(self.lookback.total_seconds()),
                "open_in_ledger": len(open_ids),
                "per_query": per_query,
            },
        }
        self.log.info("Captured %d %s: %s", len(seen), self.resource, per_query)
        return manifest

    def _look_up_missing(
        self,
        hook: FulfillmentHook,
        open_ids: Mapping[str, str],
        created: Mapping[str, datetime | None],
        seen: set[str],
        writer: JsonLinesWriter,
    ) -> int:
        """Open records no query returned have left the queried states: read each again.

        By id where the vendor has a lookup (orders; Stream shipments are its orders). DropStream
        shipments have none: they are found by their creation time, which the ledger holds, a
        few at a time in short `created_at` windows (each id written once, as by the queries).
        """
        from airflow_provider_fulfillment.hooks.base import RecordNotFound

        by_creation = _found_by_creation(hook.vendor, self.resource)
        if self.resource != "orders" and hook.vendor != "stream" and not by_creation:
            return 0
        missing = sorted(ident for ident in open_ids if ident not in seen)
        if len(missing) > self.max_lookups:
            self.log.warning(
                "%d open %s were seen by no query; looking up the first %d (max_lookups)",
                len(missing),
                self.resource,
                self.max_lookups,
            )
            missing = missing[: self.max_lookups]
        if by_creation:
            return self._find_by_creation(hook, missing, created, seen, writer)
        found = 0
        for ident in missing:
            try:
                record = hook.get_order(ident)
            except RecordNotFound:
                continue
            seen.add(ident)
            writer.write_line(record.model_dump_json())
            found += 1
        return found

    def _find_by_creation(
        self,
        hook: FulfillmentHook,
        missing: Sequence[str],
        created: Mapping[str, datetime | None],
        seen: set[str],
        writer: JsonLinesWriter,
    ) -> int:
        wanted = set(missing)
        unknown = sorted(ident for ident in missing if created.get(ident) is None)
        if unknown:
            self.log.warning(
                "%d open %s have no creation time in the ledger and cannot be looked up: %s",
                len(unknown),
                self.resource,
                ", ".join(unknown[:20]),
            )
        times = [when for ident in missing if (when := created.get(ident)) is not None]
        found = 0
        for window in creation_windows(times):
            records = hook.iter_records(self.resource, raw="bytes", window=window)
            with closed_after(records):
                for record in records:
                    ident = _raw_id(hook, self.resource, record)
                    if ident in wanted and ident not in seen:
                        seen.add(ident)
                        writer.write_line(vendor_line(record))
                        found += 1
        return found


LOOKUP_CHUNK = 100  # records found again per creation-time window, at most
LOOKUP_SPAN = timedelta(hours=1)  # the longest such window: few other records come back with them


def _found_by_creation(vendor: str, resource: str) -> bool:
    """Whether open records of this kind are found again by creation time (no lookup by id)."""
    return vendor == "dropstream" and resource == "shipments"


def creation_windows(
    times: Iterable[datetime], *, most: int = LOOKUP_CHUNK, span: timedelta = LOOKUP_SPAN
) -> list[tuple[datetime, datetime]]:
    """Disjoint [start, end) windows covering every instant, each over at most `most` of them and
    at most `span` long (plus the last instant's microsecond), in time order."""
    windows: list[tuple[datetime, datetime]] = []
    count = 0
    for when in sorted(times):
        end = when + timedelta(microseconds=1)
        if windows and count < most and when - windows[-1][0] <= span:
            windows[-1] = (windows[-1][0], max(windows[-1][1], end))
            count += 1
        else:
            windows.append((when, end))
            count = 1
    return windows


__all__ = [
    "FulfillmentChangeCaptureOperator",
    "FulfillmentLedgerLoadOperator",
    "creation_windows",
    "flatten_manifests",
]
