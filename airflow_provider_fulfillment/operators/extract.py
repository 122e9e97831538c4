"""`FulfillmentExtractOperator`: one run's data interval of orders or shipments, to a file, exactly.

Why it is built this way:

- Exactly the interval `[data_interval_start, data_interval_end)`, filtered on the vendor's
  window field by the hook (server-side where possible, trimmed on the client always), so adjacent
  runs neither overlap nor leave gaps. A run without an interval must say which window it wants.
- Streaming: records go from the hook's lazy iterator straight to storage (JSON lines, or Parquet
  in bounded row groups); memory does not grow with the record count.
- Idempotent and atomic: the path is a pure function of (destination, vendor, resource, window), so a
  rerun overwrites the same file; bytes go to a hidden temporary object that is moved into place only
  when complete, so readers never see a partial file and a failed run leaves nothing behind.
- XCom gets a small manifest (uri, count, bytes, sha256, window...), never records; the same manifest
  is the extra of the Airflow Asset event, so asset-scheduled DAGs know exactly what landed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.sdk import Asset, AssetAlias, BaseOperator, ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException
from pydantic_core import to_json

from airflow_provider_fulfillment.drift import DriftMeter, DriftMode, Sighting, check_mode
from airflow_provider_fulfillment.hooks import get_hook
from airflow_provider_fulfillment.operators._storage import (
    COMPRESSIONS,
    FORMATS,
    PARQUET_HINT,
    JsonLinesWriter,
    ParquetWriter,
    atomic_write,
    default_root,
    extension,
    model_class,
    partition_path,
    to_path,
    uri_of,
)
from airflow_provider_fulfillment.operators.links import ExtractOutputLink
from airflow_provider_fulfillment.rawpages import RawRecord
from airflow_provider_fulfillment.vendors import VENDORS as DECLARED_VENDORS
from airflow_provider_fulfillment.windows import Window, to_aware_datetime

if TYPE_CHECKING:
    import logging

    from airflow.sdk import Context

    from airflow_provider_fulfillment.hooks.base import FulfillmentHook

VENDORS = tuple(DECLARED_VENDORS)
RESOURCES = ("orders", "shipments")
ASSET_SCHEME = "fulfillment"


def asset_uri(vendor: str, resource: str) -> str:
    """`fulfillment://<vendor>/<resource>`: the Airflow Asset an extract of that resource updates."""
    return f"{ASSET_SCHEME}://{vendor}/{resource}"


def fulfillment_asset(vendor: str, resource: str) -> Asset:
    """The Asset of a (vendor, resource), for `outlets=` and for `schedule=` of consuming DAGs."""
    if vendor not in VENDORS:
        raise ValueError(f"vendor must be one of {', '.join(VENDORS)}, got {vendor!r}")
    if resource not in RESOURCES:
        raise ValueError(f"resource must be one of {', '.join(RESOURCES)}, got {resource!r}")
    return Asset(uri=asset_uri(vendor, resource), name=asset_uri(vendor, resource), group="fulfillment")


def alias_name(conn_id: str, resource: str) -> str:
    return f"fulfillment/{conn_id}/{resource}"


def parse_window(value: Any) -> Window:
    """A Window from `(start, end)`, `[start, end]` or `{"start": ..., "end": ...}` (datetimes or ISO strings)."""
    if isinstance(value, Window):
        return Window.coerce(value)
    if isinstance(value, Mapping):
        try:
            value = (value["start"], value["end"])
        except KeyError:
            raise ValueError(f"window needs 'start' and 'end', got keys {sorted(value)}") from None
    return Window.coerce(value)


def interval_window(context: Context, window: Any, task: str) -> Window:
    """The explicit `window` if given, else the run's data interval; refuses a missing or empty interval."""
    try:
        if window is not None:
            return parse_window(window)
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None or to_aware_datetime(start, "start") >= to_aware_datetime(end, "end"):
            raise AirflowFailException(
                f"{task}: this run has no data interval (start={start}, end={end}), e.g. a manual run "
                "of an unscheduled DAG; give the operator window=(start, end) (templated), or run it "
                "from a DAG with a schedule"
            )
        return Window.coerce((start, end))
    except ValueError as error:
        raise AirflowFailException(f"{task}: {error}") from None


@contextmanager
def closed_after(records: Any) -> Iterator[None]:
    """Close a record generator when the block ends, however it ends (a plain iterator needs nothing)."""
    try:
        yield
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()


class Progress:
    """Logs records, percentage, records/s and an ETA every `interval` seconds, never per record.

    `total` is the vendor's own count for the window (DropStream's `total_count`), when it gives one;
    it counts the window widened by the send margin, so the percentage is capped at 100. It may be
    a callable, asked until it knows: the count comes with the read's first answer, not before.
    """

    def __init__(
        self,
        log: logging.Logger | Any,
        what: str,
        interval: float = 30.0,
        total: int | None | Callable[[], int | None] = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.log = log
        self.what = what
        self.interval = interval
        self._total = total
        self.count = 0
        self._clock = clock
        self.started = clock()
        self._next = self.started + interval

    def tick(self, n: int = 1) -> None:
        self.count += n
        if self.count & 0xFF and n == 1:  # look at the clock every 256 records, not every record
            return
        now = self._clock()
        if now >= self._next:
            self._next = now + self.interval
            self.log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """`12,000 of 40,000 records (30%), 4,000 records/s, ETA 7 s` (no total: the first and rate)."""
        now = self._clock() if now is None else now
        rate = self.rate(now)
        if not self.total:
            return f"{self.what}: {self.count:,} records so far ({rate:,.0f} records/s)"
        share = min(1.0, self.count / self.total)
        left = max(0, self.total - self.count)
        eta = f"ETA {left / rate:,.0f} s" if rate > 0 else "ETA unknown"
        return (
            f"{self.what}: {self.count:,} of {self.total:,} records ({share:.0%}), "
            f"{rate:,.0f} records/s, {eta}"
        )

    @property
    def total(self) -> int | None:
        if callable(self._total):
            known = self._total()
            if known is None:
                return None
            self._total = known
        return self._total

    def rate(self, now: float | None = None) -> float:
        elapsed = (self._clock() if now is None else now) - self.started
        return self.count / elapsed if elapsed > 0 else 0.0

    @property
    def elapsed(self) -> float:
        return self._clock() - self.started


class FulfillmentExtractOperator(BaseOperator):
    """Extract one interval of orders or shipments from DropStream, DCL or Stream to a file.

    :param conn_id: a `dropstream`, `dcl` or `stream` connection; its type picks the vendor.
    :param resource: "orders" or "shipments".
    :param filters: vendor filters as in the docs (DropStream `store_id`, `state`...; DCL `status`,
        `filter`...; Stream `status`), plus hook options (`paging`, `limit`, `page_size`). Templated.
        Bad names or values fail the task before any request.
    :param window_field: the record field the interval applies to (default per vendor: DropStream
        and Stream `created_at`, DCL `modified_at`).
    :param destination: root folder, an `ObjectStoragePath` or URL (`s3://bucket/x`, `/data/x`).
        Templated. Default `$AIRFLOW_HOME/fulfillment`. The file goes to
        `<destination>/vendor=<v>/resource=<r>/date=<YYYY-MM-DD of start>/<start>_<end>.<ext>`
        (`.common` before the extension when `normalized`).
    :param destination_conn_id: Airflow connection for the object store (when the URL names none).
    :param format: "jsonl" (one record a line) or "parquet" (needs pyarrow: `pip install
        'airflow-provider-fulfillment[parquet]'`).
    :param compression: None or "gzip" (JSON lines: a gzip stream, `.jsonl.gz`; Parquet: the codec
        inside the file, default snappy).
    :param window: `(start, end)` or `{"start", "end"}` to extract instead of the data interval;
        required when the run has none. Templated.
    :param normalized: write `common.Order` / `common.Shipment` records instead of the vendor's.
    :param vendor: the connection's vendor, if known when the DAG is written: the outlet is then the
        concrete `Asset("fulfillment://<vendor>/<resource>")` (consumers can schedule on it) and the
        connection is checked against it. Without it, the outlet is an `AssetAlias`
        ("fulfillment/<conn_id>/<resource>") resolved to that same Asset at run time.
    :param row_group_size: Parquet rows buffered per row group (bounds memory).
    :param progress_interval: seconds between progress log lines.
    :param on_drift: what to do when records differ from the vendor's documented contract (an
        undocumented field or state, a value in another shape than documented): "warn" (default, one
        log line per new kind of drift), "fail" (the task fails, nothing is written), or "ignore"
        (not looked for: no cost per record, and the manifest's `drift` is null). With "warn" and
        "fail" the manifest's `drift` counts each kind by name.

    Returns (XCom) the manifest: ``{"uri", "records", "bytes", "sha256", "window": {"start", "end"},
    "window_field", "vendor", "resource", "format", "compression", "normalized", "conn_id", "drift":
    {"unknown_fields", "unknown_states", "tolerant_values"}, "identity"}`` (drift: counts by name;
    identity: the fields that identify a record, DCL orders `account_number, order_number`).
    """

    template_fields: Sequence[str] = ("filters", "destination", "window")
    progress_class: ClassVar[type[Progress]] = Progress  # the `fulfillment` CLI draws a terminal bar instead
    operator_extra_links = (ExtractOutputLink(),)
    template_fields_renderers = {"filters": "json"}
    ui_color = "#dff3e4"

    def __init__(
        self,
        *,
        conn_id: str,
        resource: Literal["orders", "shipments"] = "orders",
        filters: dict[str, Any] | None = None,
        window_field: str | None = None,
        destination: ObjectStoragePath | str | None = None,
        destination_conn_id: str | None = None,
        format: Literal["jsonl", "parquet"] = "jsonl",
        compression: Literal["gzip"] | None = None,
        window: Any = None,
        normalized: bool = False,
        vendor: str | None = None,
        row_group_size: int = 10_000,
        progress_interval: float = 30.0,
        on_drift: DriftMode = "warn",
        **kwargs: Any,
    ) -> None:
        if resource not in RESOURCES:
            raise ValueError(f"resource must be one of {', '.join(RESOURCES)}, got {resource!r}")
        if format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be None or 'gzip', got {compression!r}")
        if vendor is not None and vendor not in VENDORS:
            raise ValueError(f"vendor must be one of {', '.join(VENDORS)}, got {vendor!r}")
        if row_group_size < 1:
            raise ValueError(f"row_group_size must be at least 1, got {row_group_size}")
        if "outlets" not in kwargs:
            kwargs["outlets"] = [
                fulfillment_asset(vendor, resource)
                if vendor
                else AssetAlias(name=alias_name(conn_id, resource))
            ]
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.resource = resource
        self.filters = filters
        self.window_field = window_field
        self.destination = destination
        self.destination_conn_id = destination_conn_id
        self.format = format
        self.compression = compression
        self.window = window
        self.normalized = normalized
        self.vendor = vendor
        self.row_group_size = row_group_size
        self.progress_interval = progress_interval
        self.on_drift = check_mode(on_drift)

    # -------------------------------------------------------------------------------------
    def _filters(self) -> dict[str, Any]:
        if self.filters is None:
            return {}
        if not isinstance(self.filters, Mapping):
            raise AirflowFailException(
                f"{self.task_id}: filters must be a dict, got {type(self.filters).__name__}"
            )
        reserved = {"window", "window_field"} & set(self.filters)
        if reserved:
            raise AirflowFailException(
                f"{self.task_id}: give {', '.join(sorted(reserved))} as operator arguments, not as filters"
            )
        return dict(self.filters)

    def _root(self) -> ObjectStoragePath:
        if self.destination is None or self.destination == "":
            return default_root()
        try:
            return to_path(self.destination, self.destination_conn_id)
        except ValueError as error:
            raise AirflowFailException(f"{self.task_id}: destination: {error}") from None

    def execute(self, context: Context) -> dict[str, Any]:
        window = interval_window(context, self.window, self.task_id)
        filters = self._filters()
        if self.format == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise AirflowFailException(
                    f"{self.task_id}: format='parquet' needs pyarrow, which is not installed: {PARQUET_HINT}"
                ) from None
        hook = get_hook(self.conn_id)
        try:
            return self._extract(context, hook, window, filters)
        finally:
            hook.close()

    def _extract(
        self, context: Context, hook: FulfillmentHook, window: Window, filters: dict[str, Any]
    ) -> dict[str, Any]:
        vendor = hook.vendor
        if self.vendor is not None and self.vendor != vendor:
            raise AirflowFailException(
                f"{self.task_id}: vendor={self.vendor!r} was given, but connection '{self.conn_id}' "
                f"is a {vendor} connection"
            )
        # Vendor records need no model and no dicts: the hook's "bytes" mode yields each record as
        # the vendor's exact bytes with only identity, window and state decoded (same exactly-once
        # and window guarantees). JSON lines write them unchanged; Parquet types them a row group
        # at a time with pyarrow's JSON reader. DCL shipments, which the client assembles from
        # their orders, come as dicts.
        raw: bool | str = False if self.normalized else "bytes"
        try:
            records = hook.iter_records(
                self.resource,
                window=(window.start, window.end),
                window_field=self.window_field,
                raw=raw,
                **filters,
            )
        except ValueError as error:  # bad filter or window: fails before any request, retrying won't help
            raise AirflowFailException(f"{self.task_id}: {error}") from None
        window_field = self.window_field or hook.default_window_field[self.resource]
        suffix = (".common" if self.normalized else "") + "." + extension(self.format, self.compression)
        final = partition_path(self._root(), vendor, self.resource, window.start, window.end, suffix)
        model = model_class(vendor, self.resource, self.normalized)
        what = f"{hook.hook_name} {self.resource} {window.start.isoformat()} → {window.end.isoformat()}"
        self.log.info("Extracting %s (on %s) to %s", what, window_field, uri_of(final))
        # The vendor's count for the window comes with the read's first answer (DropStream's
        # `total_count`): no request of its own.
        progress = self.progress_class(
            self.log, what, self.progress_interval, total=lambda: getattr(hook, "read_total", None)
        )
        controller = getattr(getattr(hook, "http", None), "controller", None)
        baseline = controller.begin() if controller is not None else None
        normalize = hook.normalize
        resource = self.resource
        # "ignore" does not look at all; counting decodes each raw record strictly (and wholly the
        # records that drift), a small cost per record.
        meter = (
            None
            if self.on_drift == "ignore"
            else DriftMeter(vendor, resource, model_class(vendor, resource, False))
        )
        observe = None if meter is None else meter.observe
        report = self._drift_report(hook.hook_name)
        tick = progress.tick
        # On a failure mid-write the hook's generator is closed at once (its in-flight
        # page requests are waited for and its thread pool shut down), before the hook itself.
        with atomic_write(final) as sink, closed_after(records):
            if self.format == "parquet":
                writer: Any = ParquetWriter(sink, model, self.compression, self.row_group_size)
                for record in records:
                    if observe is not None and (sightings := observe(record)):
                        report(sightings)
                    if type(record) is RawRecord:
                        writer.write_raw(record.raw)
                    else:
                        writer.write(normalize(resource, record) if self.normalized else record)
                    tick()
            else:
                writer = JsonLinesWriter(sink, self.compression)
                write_line = writer.write_line
                encode = to_json  # pydantic-core's serializer: compact UTF-8, ~2.7x json.dumps
                # Runs once a record: no call or lookup here that need not be (the per-record costs
                # are in benchmarks/README.md, "Against the targets").
                for record in records:
                    if observe is not None and (sightings := observe(record)):
                        report(sightings)
                    if self.normalized:
                        record = normalize(resource, record)
                    kind = type(record)
                    if kind is RawRecord:
                        write_line(record.raw)
                    else:
                        write_line(encode(record) if kind is dict else record.model_dump_json())
                    tick()
            writer.close()
        manifest = {
            "uri": uri_of(final),
            "records": progress.count,
            "bytes": sink.size,
            "sha256": sink.sha256,
            "window": window.as_dict(),
            "window_field": window_field,
            "vendor": vendor,
            "resource": self.resource,
            "format": self.format,
            "compression": self.compression,
            "normalized": self.normalized,
            "conn_id": self.conn_id,
            "expected_records": progress.total,
            "requests": controller.since(baseline) if controller is not None and baseline else {},
            "drift": None if meter is None else meter.drift.as_dict(),
            "identity": list(getattr(hook, "identity_fields", {}).get(self.resource, ("id",))),
        }
        if manifest["requests"]:
            self.log.info(
                "%s: %s", what, ", ".join(f"{key} {value}" for key, value in manifest["requests"].items())
            )
        self.log.info(
            "Wrote %d %s (%d bytes) in %.1f s (%.0f records/s) to %s",
            progress.count,
            self.resource,
            sink.size,
            progress.elapsed,
            progress.rate(),
            manifest["uri"],
        )
        self._emit_asset_events(context, vendor, manifest)
        settings = getattr(hook, "settings", None)  # test doubles of the hook may have none
        self._lineage = (getattr(settings, "base_url", ""), vendor, manifest)
        return manifest

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """For Airflow's OpenLineage listener: the vendor endpoint read, the file written (rows, bytes)."""
        from airflow_provider_fulfillment.lineage import endpoint_dataset, file_dataset, operator_lineage

        lineage = getattr(self, "_lineage", None)
        if lineage is None:
            return None
        base_url, vendor, manifest = lineage
        inputs = [endpoint_dataset(base_url, vendor, self.resource)] if base_url else []
        output = (*file_dataset(manifest["uri"]), manifest["records"], manifest["bytes"])
        return operator_lineage(inputs, [output])

    def _drift_report(self, vendor_name: str) -> Callable[[list[Sighting]], None]:
        """What to do with the kinds of drift a record shows for the first time: log each once, or fail."""
        what = f"{vendor_name} {self.resource}"

        def report(sightings: list[Sighting]) -> None:
            for sighting in sightings:
                if self.on_drift == "fail":
                    raise AirflowFailException(
                        f"{self.task_id}: {what} drifted from the documented contract: {sighting.describe()} "
                        "(on_drift='fail'; nothing was written)"
                    )
                if self.on_drift == "warn":
                    self.log.warning(
                        "%s drifted from the documented contract: %s (logged once; counted in the manifest)",
                        what,
                        sighting.describe(),
                    )

        return report

    def _emit_asset_events(self, context: Context, vendor: str, manifest: dict[str, Any]) -> None:
        """The manifest becomes the extra of the asset event (through the alias when the vendor was unknown)."""
        events = context.get("outlet_events")
        if events is None:
            return
        target = fulfillment_asset(vendor, self.resource)
        for outlet in self.outlets:
            if isinstance(outlet, AssetAlias):
                events[outlet].add(target, extra=dict(manifest))
            elif isinstance(outlet, Asset):
                events[outlet].extra = dict(manifest)


__all__ = ["FulfillmentExtractOperator", "asset_uri", "fulfillment_asset"]
