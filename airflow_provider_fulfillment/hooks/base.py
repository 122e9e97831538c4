"""`FulfillmentHook`: what every vendor hook shares — connection, HTTP core, paging driver, windows.

Vendor hooks declare what differs (endpoints, filters, plans, parsers, state lookups); the loop that
sends a plan's requests, recovers from expired sessions and trims records to the window lives here.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar, Literal

import httpx
from airflow.sdk import BaseHook
from pydantic_core import ValidationError, from_json

from airflow_provider_fulfillment.allocator import cap_malloc_arenas
from airflow_provider_fulfillment.drift import state_fields
from airflow_provider_fulfillment.errors import (
    FulfillmentAPIError,
    FulfillmentError,
    InvalidBody,
    MissingRecords,
    RecordNotFound,
    VendorRejected,
)
from airflow_provider_fulfillment.http import ClientSettings, HttpCore, invalid_body
from airflow_provider_fulfillment.paging import Evidence, Page, PageRequest, Plan, is_error_code
from airflow_provider_fulfillment.rawpages import PageSplitter, RawRecord
from airflow_provider_fulfillment.readahead import ReadAheadBudget
from airflow_provider_fulfillment.vendors import VendorDeclaration
from airflow_provider_fulfillment.windows import Window, partial_iso_date

log = logging.getLogger(__name__)

# Pages a concurrent read may hold (done, waiting behind a slower head, or running) per request
# the controller lets run.
HELD_PER_RUNNING = 3

# What a vendor hook supplies beside its declaration: the abstract methods below, and `filters`.
VENDOR_CONTRACT = ("filters",)
# The hook class attributes taken from its `VendorDeclaration` (see vendors.py), read-only copies.
DECLARED = (
    "conn_type",
    "vendor",
    "default_conn_name",
    "default_base_url",
    "login_label",
    "accepts_token",
    "default_window_field",
    "identity_fields",
    "state_filter",
    "orders_are_shipments",
)

Resource = Literal["orders", "shipments"]
RESOURCES: tuple[Resource, ...] = ("orders", "shipments")


@dataclass(frozen=True)
class Query:
    """A validated request for records: server-side params, the exact window, and vendor options."""

    resource: Resource
    params: dict[str, Any]
    window: Window | None = None
    window_field: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # Yield the vendor's JSON objects as dicts instead of models; "bytes": as `RawRecord`s, the
    # vendor's exact bytes with only identity, window and state fields decoded (extraction to files).
    raw: bool | Literal["bytes"] = False


@dataclass(frozen=True)
class RecordModels:
    """Records read as bytes, each validated into `model` as the consumer takes it.

    One `model_validate_json` a record in the consumer's thread, not one a page in the paging
    thread: a page of models held until consumed outlives the collector's young generations and
    drives full collections over the whole heap (2.5x `json.loads` a record, against 1.3x one at a
    time; benchmarks/README.md, "Models"). `key` is the page's records key, where an error points.
    """

    model: Any
    key: str


@dataclass(frozen=True)
class RecordState:
    """Where one record stands; plain values only, so it can travel in a trigger event."""

    vendor: str
    resource: str
    ident: str
    found: bool
    raw_status: str | None = None
    status: str | None = None
    since: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FulfillmentHook(BaseHook):
    """Base of the DropStream, DCL and Stream hooks.

    :param conn_id: the Airflow connection (its host is the whole base URL).
    :param max_concurrency: requests in flight when paging concurrently (default: connection extra, 4).
    :param transport: an httpx transport to use instead of the network (tests).
    """

    conn_name_attr = "conn_id"
    # Pages a concurrent read holds (issued, waiting, being consumed) fit this many bytes (readahead.py).
    read_ahead_bytes: ClassVar[int | None] = 48 << 20
    # Whether a read's first answer carries the vendor's count of the whole read (DropStream's
    # `total_count` of the session or sizing request): `read_total` then holds it, for progress.
    reports_read_total: ClassVar[bool] = False
    read_total: int | None = None
    # The vendor's declaration (vendors.py): each vendor hook binds one, once, and get_provider_info(),
    # get_hook, the operators and the sandbox read the same object. The attributes below are copied
    # from it when the class is defined.
    declaration: ClassVar[VendorDeclaration]
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    vendor: ClassVar[str]
    default_base_url: ClassVar[str]
    login_label: ClassVar[str]
    accepts_token: ClassVar[bool]
    default_window_field: ClassVar[Mapping[str, str]]
    identity_fields: ClassVar[Mapping[str, tuple[str, ...]]]
    state_filter: ClassVar[str | None]
    orders_are_shipments: ClassVar[bool]
    # Filter names accepted per resource, mapped to a validator returning the value to send.
    filters: ClassVar[Mapping[str, Mapping[str, Callable[[str, Any], Any]]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declaration = getattr(cls, "declaration", None)
        if not isinstance(declaration, VendorDeclaration):
            raise TypeError(f"{cls.__name__} binds no VendorDeclaration (declaration = vendors.X)")
        if "declaration" in vars(cls) and declaration.hook_class != f"{cls.__module__}.{cls.__name__}":
            raise TypeError(
                f"{cls.__name__} binds the declaration of {declaration.hook_class}; each vendor is declared once"
            )
        for name in DECLARED:
            setattr(cls, name, getattr(declaration, name))
        cls.hook_name = declaration.name
        missing = [name for name in VENDOR_CONTRACT if not hasattr(cls, name)]
        missing += [
            name
            for name, member in vars(FulfillmentHook).items()
            if getattr(member, "__isabstractmethod__", False)
            and getattr(getattr(cls, name), "__isabstractmethod__", False)
        ]
        if missing:
            raise TypeError(f"{cls.__name__} does not declare {', '.join(missing)}")

    # what operators ask the vendor, instead of spelling its filter syntax --------------
    @classmethod
    def state_resource(cls, resource: str) -> str:
        """The resource whose state table applies (a Stream shipment is its order)."""
        return "orders" if cls.orders_are_shipments else resource

    @classmethod
    def is_raw_state(cls, resource: str, text: str) -> bool:
        """Whether `text` is a raw state the vendor knows beyond its state table (DCL stage codes)."""
        return False

    @classmethod
    def state_query(cls, raw_state: str, filters: Mapping[str, Any]) -> dict[str, Any]:
        """`filters` narrowed on the server to one raw state where the vendor can (else as given:
        the caller matches on the client)."""
        query = dict(filters)
        if cls.state_filter is not None:
            query[cls.state_filter] = raw_state
        return query

    @classmethod
    def common_of(cls, resource: str) -> Callable[[Any], Any]:
        """The vendor model of `resource` to its normalized `common` record."""
        if cls.orders_are_shipments and resource == "shipments":
            return lambda record: record.to_common_shipment()
        return lambda record: record.to_common()

    @classmethod
    def provider_connection_type(cls) -> dict[str, Any]:
        """This vendor's entry of get_provider_info()["connection-types"], from its declaration."""
        from airflow_provider_fulfillment import connection_type

        return connection_type(cls.declaration)

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        max_concurrency: int | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name
        self._max_concurrency = max_concurrency
        self._transport = transport
        self._async_transport = async_transport
        self._settings: ClientSettings | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The form's behaviour as declared once, in `get_provider_info()` (what Airflow 3.2+ reads)."""
        from airflow_provider_fulfillment import get_provider_info

        kinds = get_provider_info()["connection-types"]
        return next(k["ui-field-behaviour"] for k in kinds if k["connection-type"] == cls.conn_type)

    # connection ----------------------------------------------------------------------
    @property
    def settings(self) -> ClientSettings:
        if self._settings is None:
            self._settings = self._settings_from(self.get_connection(self.conn_id))
        return self._settings

    async def aload_settings(self) -> ClientSettings:
        """Read the connection without blocking the triggerer's event loop."""
        if self._settings is None:
            self._settings = self._settings_from(await BaseHook.aget_connection(self.conn_id))
        return self._settings

    def _settings_from(self, conn: Any) -> ClientSettings:
        conn_type = getattr(conn, "conn_type", None)
        if conn_type and conn_type != self.conn_type:
            raise ValueError(
                f"connection '{self.conn_id}' has type '{conn_type}', but {type(self).__name__} "
                f"needs a '{self.conn_type}' connection"
            )
        settings = ClientSettings.from_connection(conn, self.default_base_url, vendor=self.hook_name)
        if self._max_concurrency is not None:
            if self._max_concurrency < 1:
                raise ValueError(f"max_concurrency must be at least 1, got {self._max_concurrency}")
            settings = ClientSettings(**{**asdict(settings), "max_concurrency": self._max_concurrency})
        return settings

    @cached_property
    def http(self) -> HttpCore:
        return HttpCore(
            self.settings,
            self.build_auth(self.settings),
            transport=self._transport,
            async_transport=self._async_transport,
        )

    @abstractmethod
    def build_auth(self, settings: ClientSettings) -> httpx.Auth | None:
        raise NotImplementedError

    def close(self) -> None:
        if "http" in self.__dict__:
            self.http.close()

    def __enter__(self) -> FulfillmentHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # records -------------------------------------------------------------------------
    def iter_orders(
        self, *, window: Any = None, window_field: str | None = None, raw: bool = False, **filters: Any
    ) -> Iterator[Any]:
        """Every matching order exactly once, lazily, page after page. Bad input raises before any request.

        `raw=True` yields the vendor's JSON objects as dicts (same guarantees, no model validation):
        several times faster when the records only go to a file.
        """
        return self._read(self.prepare("orders", filters, window, window_field, raw=raw))

    def iter_shipments(
        self, *, window: Any = None, window_field: str | None = None, raw: bool = False, **filters: Any
    ) -> Iterator[Any]:
        """Every matching shipment exactly once, lazily. Bad input raises before any request."""
        return self._read(self.prepare("shipments", filters, window, window_field, raw=raw))

    def iter_records(self, resource: str, **kwargs: Any) -> Iterator[Any]:
        if resource not in RESOURCES:
            raise ValueError(f"resource must be one of {', '.join(RESOURCES)}, got {resource!r}")
        return self.iter_orders(**kwargs) if resource == "orders" else self.iter_shipments(**kwargs)

    def prepare(
        self,
        resource: Resource,
        filters: Mapping[str, Any],
        window: Any,
        window_field: str | None,
        raw: bool = False,
    ) -> Query:
        """Validate everything the caller gave, eagerly: a generator would only complain on first use."""
        accepted = self.filters[resource]
        unknown = sorted(set(filters) - set(accepted) - set(self.options_for(resource)))
        if unknown:
            raise ValueError(
                f"{self.vendor} {resource}: unknown filter(s) {', '.join(map(repr, unknown))}; "
                f"accepted: {', '.join(sorted({*accepted, *self.options_for(resource)}))}"
            )
        params: dict[str, Any] = {}
        options: dict[str, Any] = {}
        for name, value in filters.items():
            if value is None:
                continue
            if name in accepted:
                params[name] = accepted[name](name, value)
            else:
                options[name] = self.options_for(resource)[name](name, value)
        exact_window = None if window is None else Window.coerce(window)
        field_name = window_field or self.default_window_field[resource]
        if exact_window is not None or window_field is not None:
            self.check_window_field(resource, field_name)
        if exact_window is not None:
            params.update(self.window_params(resource, exact_window, field_name))
        return Query(
            resource, params, exact_window, field_name, options, raw="bytes" if raw == "bytes" else bool(raw)
        )

    def options_for(self, resource: Resource) -> Mapping[str, Callable[[str, Any], Any]]:
        """Arguments that steer paging rather than filter records (e.g. `paging`, `limit`)."""
        return {}

    def check_window_field(self, resource: Resource, field_name: str) -> None:
        allowed = self.window_fields(resource)
        if field_name not in allowed:
            raise ValueError(
                f"{self.vendor} {resource}: window_field must be one of {', '.join(allowed)}, "
                f"got {field_name!r}"
            )

    @abstractmethod
    def window_fields(self, resource: Resource) -> tuple[str, ...]:
        raise NotImplementedError

    def window_params(self, resource: Resource, window: Window, field_name: str) -> dict[str, Any]:
        """Server-side bounds for the window (possibly none: the client trims anyway)."""
        return {}

    def record_time(self, record: Any, field_name: str) -> datetime | None:
        kind = type(record)
        if kind is RawRecord:
            return record.moment(field_name, self.parse_time)
        if kind is dict:
            return self.parse_time(record.get(field_name))
        return getattr(record, field_name, None)

    @staticmethod
    @abstractmethod
    def parse_time(value: Any) -> datetime | None:
        """The vendor's date format to an aware datetime (for trimming raw records)."""
        raise NotImplementedError

    @staticmethod
    def record_id(record: Any) -> Any:
        return record["id"] if type(record) is dict or type(record) is RawRecord else record.id

    def record_label(self, record: Any) -> Any:
        """A record's identity for messages, whatever its resource: the identity fields it carries
        most of (a DCL order has no `id`, only `account_number` and `order_number`)."""
        keys = [self.record_key(resource, record) for resource in self.identity_fields]
        key = max(keys, key=lambda values: sum(value is not None for value in values))
        return key[0] if len(key) == 1 else key

    def record_key(self, resource: Resource, record: Any) -> tuple[Any, ...]:
        """A record's identity (see `identity_fields`), from a model or the vendor's JSON alike."""
        fields = self.identity_fields[resource]
        if isinstance(record, Mapping) or type(record) is RawRecord:
            return tuple(record.get(name) for name in fields)
        return tuple(getattr(record, name, None) for name in fields)

    @abstractmethod
    def model_for(self, resource: Resource) -> Any:
        """The pydantic model of one record of `resource`."""
        raise NotImplementedError

    def _read(self, query: Query) -> Iterator[Any]:
        """`_records`, with dicts read as bytes and built only as the caller takes each one.

        Dicts built in the paging threads and held by the read-ahead live long enough to reach
        the collector's oldest generation, so every full collection scans them all and stops each
        thread (120-210 ms a second under a rate limit, measured). Kept as untracked `RawRecord`s
        in flight and decoded one at a time, they die young.
        """
        if query.raw is not True:
            return self._records(query)
        return _as_dicts(self._records(replace(query, raw="bytes")))

    def _records(self, query: Query) -> Iterator[Any]:
        records = self.fetch(query)
        return records if query.window is None else self.trim(records, query.window, query.window_field)

    def trim(self, records: Iterable[Any], window: Window | None, field_name: str | None) -> Iterator[Any]:
        """Keep exactly the records whose `field_name` lies in [start, end): vendor bounds are coarser."""
        if window is None:
            yield from records
            return
        inside = self.in_window(field_name or "")
        for record in records:
            if inside(record, window):
                yield record

    def in_window(self, field_name: str) -> Callable[[Any, Window], bool]:
        """Whether a record's `field_name` lies in a window; a record without the field is an error."""
        moment_of = self.record_time

        def inside(record: Any, window: Window) -> bool:
            moment = moment_of(record, field_name)
            if moment is None and _absent(record, field_name):
                raise FulfillmentError(
                    f"connection '{self.conn_id}': {self.vendor} record {self.record_label(record)!r} has no "
                    f"'{field_name}', so it cannot be placed in the window; has the API's schema changed?"
                )
            return moment is not None and window.start <= moment < window.end

        return inside

    @abstractmethod
    def fetch(self, query: Query) -> Iterator[Any]:
        """Every record the server returns for the query (the window is trimmed afterwards)."""
        raise NotImplementedError

    def count_records(
        self, resource: Resource, window: Any, *, window_field: str | None = None, **filters: Any
    ) -> int | None:
        """The vendor's own count of the records a window holds, from one cheap request; None when
        the vendor reports no totals (progress then shows no percentage, plans cut by time only)."""
        return None

    # the paging driver ---------------------------------------------------------------
    def send_page(self, request: PageRequest, parse: Callable[[httpx.Response], Page[Any]]) -> Page[Any]:
        """The one place a plan's request goes out (retries, auth and errors live in the HTTP core)."""
        return self.http.request(
            "GET", request.path, params=request.params, parse=parse, wait_out_429=not request.speculative
        )

    def run_plan(
        self,
        plan: Plan[Any],
        parse: Callable[[httpx.Response], Page[Any]],
        models: RecordModels | None = None,
    ) -> Iterator[Any]:
        """Run a paging plan with up to `max_concurrency` requests in flight; yield what it accepts
        (with `models`, each accepted `RawRecord` validated as it is taken).

        Answers are fed to the plan in the order the requests were issued, so records keep the
        plan's order. With one request in flight the request is sent inline, after the consumer
        has taken the previous page (a slow consumer then meets an expired session, as it should).
        On an error, or when the consumer stops early, queued requests are cancelled and the ones
        in flight are waited for, so nothing is left running behind the caller's back.
        """
        width = max(1, self.settings.max_concurrency)
        if width > 1:
            cap_malloc_arenas()  # an arena per paging thread grows the peak with N (allocator.py)
        pool = (
            ThreadPoolExecutor(max_workers=width, thread_name_prefix=f"fulfillment-{self.vendor}")
            if width > 1
            else None
        )
        in_flight: deque[tuple[PageRequest, Future[Page[Any]]]] = deque()
        read_ahead = self.http.controller.read_ahead
        budget = ReadAheadBudget(self.read_ahead_bytes)  # bytes held, however far the limit grows
        parse = budget.sized(parse)

        def submit(request: PageRequest) -> Future[Page[Any]]:
            if pool is not None:
                return pool.submit(self.send_page, request, parse)
            future: Future[Page[Any]] = Future()
            try:
                future.set_result(self.send_page(request, parse))
            except Exception as error:  # noqa: BLE001 - handed to the plan, as from a worker thread
                future.set_exception(error)
            return future

        pages = 0
        self.read_total = None
        try:
            while not plan.done:
                # The controller's limit + 1 running, not the ceiling: pages issued past it would
                # only wait, finished, in memory. A head that waits (a 429's retry waits at least
                # 0.25 s) must not stop the others: up to 3x that many are held, done or not (at
                # 2x, a 30 req/s read stalled ~0.25 s after each 429, measured), and never more
                # than the byte budget holds.
                ahead = min(width, read_ahead())
                running = sum(1 for _, pending in in_flight if not pending.done())
                held = min(HELD_PER_RUNNING * ahead, budget.pages())
                for request in plan.issue(min(ahead - running, held - len(in_flight))):
                    in_flight.append((request, submit(request)))
                if not in_flight:
                    if plan.done:
                        break
                    raise FulfillmentError(f"connection '{self.conn_id}': the paging plan stalled")
                request, future = in_flight[0]
                if not future.done():
                    futures_wait(
                        [pending for _, pending in in_flight if not pending.done()],
                        return_when=FIRST_COMPLETED,
                    )
                    if not future.done():
                        continue  # another one finished: room to issue, in order of the plan
                in_flight.popleft()
                try:
                    page = future.result()
                except FulfillmentAPIError as error:
                    if not plan.fail(request, error):
                        raise
                    log.warning("%s; the plan goes on (%s)", error, type(plan).__name__)
                    continue
                try:
                    records = plan.feed(request, page)
                except VendorRejected as rejected:
                    raise self.vendor_error(request, rejected) from None
                if not pages and self.reports_read_total:
                    self.read_total = Evidence.of(page).total
                pages += 1
                if models is None:
                    yield from records
                else:
                    yield from self._validated(records, models, request, page)
        finally:
            for _, future in in_flight:
                future.cancel()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        log.debug("connection '%s': %d page(s) read", self.conn_id, pages)

    def _validated(
        self, records: Iterable[RawRecord], models: RecordModels, request: PageRequest, page: Page[Any]
    ) -> Iterator[Any]:
        validate = models.model.model_validate_json
        for record in records:
            try:
                built = validate(record.raw)
            except ValidationError as error:
                # Where the page-at-a-time parse put it: the record's place in the page it came in.
                position = next(n for n, held in enumerate(page.records) if held is record)
                raise self.vendor_error(request, invalid_body(200, error, (models.key, position))) from None
            yield built

    def vendor_error(self, request: PageRequest, rejected: BaseException) -> BaseException:
        """The error for a rejection found by a plan after the request returned (same table as the core's)."""
        return self.http.error_for(rejected, "GET", request.path, request.params)

    # single records and states -------------------------------------------------------
    def get_order(self, order_id: str | int) -> Any:
        """One order by the vendor's id (DCL: order number; Stream: id or reference number)."""
        ident = self._check_ident("order", order_id)
        request = self.order_request(ident)
        try:
            found = self.http.request(
                "GET", request.path, params=request.params, parse=lambda r: self.parse_order(ident, r)
            )
        except FulfillmentAPIError as error:
            if not self.means_not_found(error):
                raise
            found = None
        if found is None:
            raise RecordNotFound(conn_id=self.conn_id, vendor=self.hook_name, resource="order", ident=ident)
        return found

    def means_not_found(self, error: FulfillmentAPIError) -> bool:
        """Whether a failed lookup says "no such record" (a 404 that no Base URL problem explains)."""
        return error.status == 404 and not error.hint

    @abstractmethod
    def order_request(self, ident: str) -> PageRequest:
        raise NotImplementedError

    @abstractmethod
    def parse_order(self, ident: str, response: httpx.Response) -> Any:
        raise NotImplementedError

    def normalize(self, resource: Resource, record: Any) -> Any:
        """The vendor record (model or raw dict) as a `common.Order` or `common.Shipment`."""
        if type(record) is RawRecord:
            record = self.model_for(resource).model_validate_json(record.raw)
        elif type(record) is dict:
            record = self.model_for(resource).model_validate(record)
        return record.to_common()

    @abstractmethod
    def state_request(self, resource: str, ident: str) -> PageRequest:
        raise NotImplementedError

    @abstractmethod
    def state_from_response(self, resource: str, ident: str, response: httpx.Response) -> RecordState:
        raise NotImplementedError

    def state_of(self, resource: str, ident: str, common: Any) -> RecordState:
        """A found record's state from its normalized form; since when: the vendor's transition time
        if it gives one, else the last modification, else creation."""
        since = common.status_since or getattr(common, "modified_at", None) or common.created_at
        return RecordState(
            self.vendor,
            resource,
            ident,
            True,
            common.raw_status,
            common.status,
            since.isoformat() if since else None,
        )

    def get_state(self, resource: str, ident: str | int) -> RecordState:
        """Where one order or shipment stands now (sensors poke with this)."""
        ident = self._check_ident(resource, ident)
        request = self.state_request(resource, ident)
        try:
            return self.http.request(
                "GET",
                request.path,
                params=request.params,
                parse=lambda response: self.state_from_response(resource, ident, response),
            )
        except FulfillmentAPIError as error:
            if self.means_not_found(error):
                return RecordState(self.vendor, resource, ident, found=False)
            raise

    async def aget_state(self, resource: str, ident: str | int) -> RecordState:
        """The async twin of `get_state`, through the same HTTP core (triggers use it)."""
        ident = self._check_ident(resource, ident)
        await self.aload_settings()
        request = self.state_request(resource, ident)
        try:
            return await self.http.arequest(
                "GET",
                request.path,
                params=request.params,
                parse=lambda response: self.state_from_response(resource, ident, response),
            )
        except FulfillmentAPIError as error:
            if self.means_not_found(error):
                return RecordState(self.vendor, resource, ident, found=False)
            raise

    @staticmethod
    def _check_ident(resource: str, ident: str | int) -> str:
        if resource not in ("order", "shipment"):
            raise ValueError(f"resource must be 'order' or 'shipment', got {resource!r}")
        text = str(ident).strip()
        if not text:
            raise ValueError(f"an empty {resource} identifier was given")
        return text

    def test_connection(self) -> tuple[bool, str]:
        """Used by the Airflow UI's Test button: one cheap authenticated request."""
        try:
            detail = self.probe()
        except Exception as error:  # noqa: BLE001 - the UI wants a message, not a traceback
            return False, self._as_the_user_named_it(str(error))
        finally:
            self.close()
        return True, f"Connected to {self.hook_name} at {self.settings.base_url}: {detail}"

    def _as_the_user_named_it(self, message: str) -> str:
        """The Test button's message with the user's connection id, not the one Airflow made up.

        Airflow's API server tests a form under a random 8-character id exported as
        `AIRFLOW_CONN_<ID>`; the user's own id is found by matching the stored connections, or the
        message says "(being tested)" instead of naming an id the user never chose.
        """
        if not _is_transient_conn_id(self.conn_id):
            return message
        user_id = _stored_conn_id_like(self.conn_type, self._settings)
        shown = f"connection '{user_id}'" if user_id else "connection (being tested)"
        return message.replace(f"connection '{self.conn_id}'", shown)

    @abstractmethod
    def probe(self) -> str:
        raise NotImplementedError


def _is_transient_conn_id(conn_id: str) -> bool:
    """Whether `conn_id` looks like the throwaway id Airflow's Test button makes (8 letters/digits)."""
    import os

    return len(conn_id) == 8 and conn_id.isalnum() and f"AIRFLOW_CONN_{conn_id.upper()}" in os.environ


def _stored_conn_id_like(conn_type: str, settings: ClientSettings | None) -> str | None:
    """The one stored connection with the tested connection's type, host and login (None if not one)."""
    if settings is None:
        return None
    try:
        from airflow.models.connection import Connection as StoredConnection
        from airflow.utils.session import create_session

        with create_session() as session:
            rows = session.query(StoredConnection.conn_id, StoredConnection.host).filter(
                StoredConnection.conn_type == conn_type, StoredConnection.login == settings.login
            )
            matches = {
                conn_id
                for conn_id, host in rows
                if conn_id != settings.conn_id
                and (host or "").strip().rstrip("/") in settings.base_url
                and (host or "").strip()
            }
    except Exception:  # noqa: BLE001 - no metadata database here (a worker): say "being tested"
        return None
    return matches.pop() if len(matches) == 1 else None


def _as_dicts(records: Iterator[Any]) -> Iterator[Any]:
    """Each `RawRecord` as the dict `raw_page` would have built from it (pydantic-core's parser)."""
    try:
        for record in records:
            yield from_json(record.raw) if type(record) is RawRecord else record
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()  # stopping early stops the read (its threads), as the generator itself would


def _absent(record: Any, field_name: str) -> bool:
    """Whether the vendor did not send the field at all (an explicit null is a value)."""
    if type(record) is dict or type(record) is RawRecord:
        return field_name not in record
    return field_name not in (record.model_fields_set | set(record.model_extra or ()))


def missing_records(key: str, body: Any) -> MissingRecords:
    """The error for a 200 whose records key is absent, quoting the vendor's words if it gave any."""
    said = ""
    if isinstance(body, Mapping):
        said = next((str(body[k]) for k in ("error", "error_message", "message") if body.get(k)), "")
    return MissingRecords(f"the answer has no '{key}'" + (f": {said}" if said else ""))


def raw_page(
    key: str, meta_keys: tuple[str, ...], id_key: str = "id"
) -> Callable[[httpx.Response], Page[dict[str, Any]]]:
    """A parser that keeps records as the vendor's JSON objects (json.loads only, no validation)."""

    def parse(response: httpx.Response) -> Page[dict[str, Any]]:
        # pydantic-core's Rust parser: the same objects as json.loads, about 1.6x faster on pages.
        body = from_json(response.content)
        if not isinstance(body, dict):
            raise InvalidBody(f"expected a JSON object, got {type(body).__name__}")
        records = body.get(key)
        if records is None:
            if is_error_code(body.get("error_code")):
                return Page([], {name: body.get(name) for name in meta_keys})  # the plan says why
            raise missing_records(key, body)
        if not isinstance(records, list):
            raise InvalidBody(f"expected '{key}' to be a list, got {type(records).__name__}")
        for number, record in enumerate(records):
            if type(record) is not dict or id_key not in record:
                raise InvalidBody(f"{key}.{number}.{id_key}: Field required")
        return Page(records, {name: body.get(name) for name in meta_keys})

    return parse


def record_of(response: httpx.Response, key: str) -> dict[str, Any]:
    """The one record of a single-record answer (`{"order": {...}}`); any other shape is an invalid body."""
    body = from_json(response.content)
    record = body.get(key) if isinstance(body, dict) else None
    if not isinstance(record, dict):
        raise InvalidBody(f"expected an object with '{key}', got {_shape(body)}")
    return record


def _shape(body: Any) -> str:
    if isinstance(body, dict):
        return f"keys {', '.join(sorted(map(str, body))[:8]) or '(none)'}"
    return type(body).__name__


def raw_bytes_page(
    key: str,
    meta_keys: tuple[str, ...],
    fields: tuple[str, ...],
    *,
    declaration: VendorDeclaration,
    resource: str,
) -> Callable[[httpx.Response], Page[RawRecord]]:
    """A parser that keeps records as the vendor's bytes, decoding only `fields` (identity first).

    Refused when it is declared (a vendor hook builds its parsers with its class), not on the
    first read: `fields` must hold what identifies a record (else exactly-once dedupes nothing)
    and what the drift check reads its state from (else an unknown state passes unseen)."""
    needed = (*declaration.identity_fields[resource], *state_fields(declaration.vendor, resource))
    missing = [name for name in dict.fromkeys(needed) if name not in fields]
    if missing:
        raise TypeError(
            f"{declaration.name} {resource}: a bytes page parser must decode {', '.join(missing)} "
            "(identity and state fields), or records kept as bytes lose their identity or state"
        )
    splitter = PageSplitter(key, meta_keys, fields)

    def parse(response: httpx.Response) -> Page[RawRecord]:
        try:
            records, meta = splitter.split(response.content)
        except MissingRecords:
            body = from_json(response.content)
            if is_error_code(body.get("error_code")):  # as `raw_page`: the plan says why
                return Page([], {name: body.get(name) for name in meta_keys})
            raise missing_records(key, body) from None  # with the vendor's words
        return Page(records, meta)

    return parse


# --------------------------------------------------------------------------- validators


def text_value(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"filter {name!r} must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise ValueError(f"filter {name!r} must not be empty")
    return text


def id_or_name(name: str, value: Any) -> int | str:
    if isinstance(value, bool):
        raise ValueError(f"filter {name!r} must be an id (integer) or a name (string), got a boolean")
    if isinstance(value, int):
        return value
    return text_value(name, value)


def date_value(name: str, value: Any) -> str:
    """Dates go out as ISO 8601 with an explicit offset; natural language is refused on purpose.

    Partial ISO 8601 dates (`2022-12-01`, `2022-12`, `2022`) are the first instant of that day,
    month or year in UTC, sent in full so the vendor has nothing to guess.
    """
    return partial_iso_date(value, f"filter {name!r}").isoformat(timespec="seconds")


def bounded_int(low: int, high: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                value = int(str(value))
            except ValueError:
                raise ValueError(f"{name!r} must be an integer from {low} to {high}, got {value!r}") from None
        if not low <= value <= high:
            raise ValueError(f"{name!r} must be from {low} to {high}, got {value}")
        return value

    return check


def one_of(choices: Iterable[str], what: str) -> Callable[[str, Any], str]:
    allowed = frozenset(choices)

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"{name!r}: unknown {what} {value!r}; known: {', '.join(sorted(allowed))}")
        return value

    return check


def boolean(name: str, value: Any) -> str:
    """True/False, or "true"/"false" as a templated value renders (any case)."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower()
    if not isinstance(value, bool):
        raise ValueError(f"{name!r} must be true or false, got {value!r}")
    return "true" if value else "false"
