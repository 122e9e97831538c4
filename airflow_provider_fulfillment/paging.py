"""Sans-IO paging plans: given the parameters and the last page, what to request next (or stop).

A plan never performs IO. A driver (the hooks' sync loop, a trigger's async loop, the concurrent
fetcher) sends `first()`, feeds each parsed page to `advance()`, and yields what it returns; when a
request fails it asks `recover()` whether the plan knows a way on. Keeping the rules here means the
exactly-once and never-truncated guarantees are written, and tested, once for every driver.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from airflow_provider_fulfillment.errors import (
    CapReached,
    FulfillmentAPIError,
    FulfillmentError,
    VendorRejected,
)
from airflow_provider_fulfillment.windows import MIN_SPLIT, Window

R = TypeVar("R")

DROPSTREAM_RESULT_CAP = 10_000
DROPSTREAM_MAX_LIMIT = 1000
DCL_MAX_PAGE_SIZE = 100
STREAM_PAGE_SIZE = 20
# How many DropStream sessions in a row may be reopened without bringing a new record.
MAX_SESSION_REOPENS = 20
# A reopened time-ordered session starts this much before the last record yielded (the vendor
# does not say whether `_min` bounds are inclusive); the ids yielded inside it are skipped.
RESUME_MARGIN = timedelta(seconds=1)


@dataclass(frozen=True)
class PageRequest:
    path: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Page(Generic[R]):
    """A parsed response: its records and the envelope's metadata (session id, totals, error code...)."""

    records: Sequence[R]
    meta: Mapping[str, Any]


class PagingPlan(Protocol[R]):
    def first(self) -> PageRequest: ...

    def advance(self, request: PageRequest, page: Page[R]) -> tuple[list[R], PageRequest | None]: ...

    def recover(self, request: PageRequest, error: FulfillmentAPIError) -> PageRequest | None: ...


class _Plan(Generic[R]):
    def recover(self, request: PageRequest, error: FulfillmentAPIError) -> PageRequest | None:
        return None


# --------------------------------------------------------------------------- DropStream


def is_session_expiry(request: PageRequest, error: FulfillmentAPIError) -> bool:
    """Whether a failed continuation means the session expired (the status is undocumented)."""
    if "session_id" not in request.params:
        return False
    if error.status in (404, 410):
        return True
    return error.status in (400, 422) and "session" in (error.vendor_message or "").lower()


class DropStreamSessionPlan(_Plan[R]):
    """Session-based paging: continue with only `session_id`; reopen on expiry or loss; each record once.

    How a reopened session avoids repeating what was already yielded depends on the sort:

    - `resume_field` (the hook asks for `sort=created_at` when the caller chose no sort): records
      come in time order, so a reopened session is narrowed with `<field>_min` to the last time
      yielded, less `RESUME_MARGIN`, and the few ids yielded inside that margin are skipped.
      Reopening costs about one page, so progress is made even when answers are lost often.
    - sorted by id: the original parameters again, skipping every id up to the last one yielded.
    - any other sort: the original parameters again, skipping every id yielded (memory grows
      with the result).
    """

    def __init__(
        self,
        path: str,
        params: Mapping[str, Any],
        id_of: Callable[[R], Hashable],
        *,
        limit: int,
        ordered_by_id: bool,
        resume_field: str | None = None,
        time_of: Callable[[R], datetime | None] | None = None,
        max_reopens: int = MAX_SESSION_REOPENS,
    ) -> None:
        if resume_field is not None and time_of is None:
            raise ValueError("resume_field needs time_of")
        self.path = path
        self.params = {**params, "limit": limit}
        self.params.pop("page", None)
        self.limit = limit
        self.id_of = id_of
        self.ordered_by_id = ordered_by_id
        self.resume_field = resume_field
        self.time_of = time_of
        self.max_reopens = max_reopens
        self.reopens = 0  # in all, for the log
        self.stalled_reopens = 0  # since the last page that brought something new
        self.gaps = 0
        self.expected_page = 1
        self.last_id: Any = None
        self.last_time: datetime | None = None
        self.boundary: deque[tuple[datetime, Hashable]] = deque()
        self.seen: set[Hashable] = set()

    def first(self) -> PageRequest:
        self.expected_page = 1
        params = dict(self.params)
        if self.resume_field is not None and self.last_time is not None:
            key = f"{self.resume_field}_min"
            floor = self.last_time - RESUME_MARGIN
            given = params.get(key)
            if given is None or datetime.fromisoformat(str(given).replace("Z", "+00:00")) < floor:
                params[key] = floor.isoformat(timespec="seconds")
        return PageRequest(self.path, params)

    def advance(self, request: PageRequest, page: Page[R]) -> tuple[list[R], PageRequest | None]:
        # A session is a cursor on the server: when an answer is lost in transit (a dropped
        # connection, a truncated body) the retried request gets the *next* page. The page number
        # shows the gap; the lost records are recovered by reopening, never skipped.
        number = page.meta.get("page")
        if number is not None and int(number) != self.expected_page:
            self.gaps += 1
            return [], self._reopen(f"session answered page {number} where page {self.expected_page} was due")
        self.expected_page += 1
        fresh = self._unseen(page.records)
        if fresh:
            self.stalled_reopens = 0
        if len(page.records) < self.limit:
            return fresh, None
        session_id = page.meta.get("session_id")
        if not session_id:
            raise FulfillmentError(f"GET {self.path}: session-based response carried no session_id")
        return fresh, PageRequest(self.path, {"session_id": session_id})

    def _reopen(self, why: str) -> PageRequest:
        if self.stalled_reopens >= self.max_reopens:
            raise FulfillmentError(
                f"GET {self.path}: {why}, and {self.stalled_reopens} reopened sessions in a row brought "
                "nothing new"
            )
        self.reopens += 1
        self.stalled_reopens += 1
        return self.first()

    def _unseen(self, records: Sequence[R]) -> list[R]:
        if self.resume_field is not None:
            return self._unseen_by_time(records)
        fresh: list[R] = []
        if self.ordered_by_id:
            last = self.last_id
            for record in records:
                key = self.id_of(record)
                if last is None or key > last:
                    fresh.append(record)
                    last = key
            self.last_id = last
            return fresh
        for record in records:
            key = self.id_of(record)
            if key not in self.seen:
                self.seen.add(key)
                fresh.append(record)
        return fresh

    def _unseen_by_time(self, records: Sequence[R]) -> list[R]:
        assert self.time_of is not None
        fresh: list[R] = []
        boundary, seen = self.boundary, self.seen
        for record in records:
            moment = self.time_of(record)
            key = self.id_of(record)
            if moment is None:
                raise FulfillmentError(
                    f"GET {self.path}: a record without {self.resume_field} in a session read in "
                    f"{self.resume_field} order (id {key!r})"
                )
            if self.last_time is not None and moment < self.last_time - RESUME_MARGIN:
                # Everything this old was yielded already, and the server promised time order:
                # a record here means it did not keep that promise, so exactly-once is not provable.
                raise FulfillmentError(
                    f"GET {self.path}: records did not come in {self.resume_field} order "
                    f"({key!r} at {moment.isoformat()} after {self.last_time.isoformat()}); "
                    "pass sort='id' to read in id order instead"
                )
            if key in seen:
                continue
            fresh.append(record)
            seen.add(key)
            boundary.append((moment, key))
            if self.last_time is None or moment > self.last_time:
                self.last_time = moment
            floor = self.last_time - RESUME_MARGIN
            while boundary and boundary[0][0] < floor:
                seen.discard(boundary.popleft()[1])
        return fresh

    def recover(self, request: PageRequest, error: FulfillmentAPIError) -> PageRequest | None:
        if not is_session_expiry(request, error):
            return None
        return self._reopen(f"the session expired ({error.status})")


class DropStreamPagePlan(_Plan[R]):
    """Page-based paging over a result set that must fit the 10,000 cap (else `CapReached`)."""

    def __init__(
        self, path: str, params: Mapping[str, Any], *, limit: int, cap: int = DROPSTREAM_RESULT_CAP
    ) -> None:
        self.path = path
        self.params = {**params, "limit": limit}
        self.limit = limit
        self.cap = cap
        self.total_pages: int | None = None

    def request_for(self, page_number: int) -> PageRequest:
        return PageRequest(self.path, {**self.params, "page": page_number})

    def first(self) -> PageRequest:
        return self.request_for(1)

    def check_cap(self, page: Page[R]) -> None:
        total = page.meta.get("total_count")
        if page.meta.get("max_total_reached") or (total is not None and total > self.cap):
            raise CapReached(total=total, cap=self.cap)

    def advance(self, request: PageRequest, page: Page[R]) -> tuple[list[R], PageRequest | None]:
        self.check_cap(page)
        number = int(request.params["page"])
        total_pages = page.meta.get("total_pages")
        if total_pages is not None:
            self.total_pages = int(total_pages)
        records = list(page.records)
        if not records:
            return records, None
        more = number < self.total_pages if self.total_pages is not None else len(records) >= self.limit
        return records, self.request_for(number + 1) if more else None

    def remaining(self, first_page: Page[R]) -> list[PageRequest]:
        """Every request after page 1, once page 1 has told the total (for concurrent fetching)."""
        self.check_cap(first_page)
        total_pages = first_page.meta.get("total_pages")
        if total_pages is None:
            total = first_page.meta.get("total_count")
            if total is None:
                raise FulfillmentError(f"GET {self.path}: page-based response carried no total_pages")
            total_pages = -(-int(total) // self.limit)
        return [self.request_for(n) for n in range(2, int(total_pages) + 1)]


def split_until_fits(
    window: Window, count: Callable[[Window], tuple[int, bool]], cap: int = DROPSTREAM_RESULT_CAP
) -> Iterator[tuple[Window, bool]]:
    """Halve `window` until every part holds at most `cap` results; yield the parts in time order.

    `count(part)` returns (total_count, max_total_reached) from a probe of that part. Each part is
    yielded with `True` when it fits, or `False` when it is narrower than `MIN_SPLIT` and still over
    the cap (read it through a session). Depth-first and lazy: a caller reads each part before the
    next is probed, so nothing piles up however dense the window is. Empty parts are skipped.
    """
    pending = [window]
    while pending:
        part = pending.pop()
        total, cut = count(part)
        if not cut and total <= cap:
            if total:
                yield part, True
        elif part.duration <= MIN_SPLIT:
            yield part, False
        else:
            first, second = part.halves()
            pending.extend((second, first))


# --------------------------------------------------------------------------- DCL


class DclPagePlan(_Plan[R]):
    """`page`/`page_size` with no total: stop at an empty or short page; an `error_code` is an error."""

    def __init__(self, path: str, params: Mapping[str, Any], *, page_size: int) -> None:
        self.path = path
        self.params = {**params, "page_size": page_size}
        self.page_size = page_size

    def request_for(self, page_number: int) -> PageRequest:
        return PageRequest(self.path, {**self.params, "page": page_number})

    def first(self) -> PageRequest:
        return self.request_for(1)

    @staticmethod
    def check(page: Page[R]) -> None:
        code = page.meta.get("error_code")
        if code not in (None, 0, "0"):
            raise VendorRejected(code=code, message=page.meta.get("error_message") or "")

    def advance(self, request: PageRequest, page: Page[R]) -> tuple[list[R], PageRequest | None]:
        self.check(page)
        records = list(page.records)
        if len(records) < self.page_size:
            return records, None
        return records, self.request_for(int(request.params["page"]) + 1)


# --------------------------------------------------------------------------- Stream


class StreamPagePlan(_Plan[R]):
    """20 records a page; `meta.page_count` says when to stop."""

    def __init__(self, path: str, params: Mapping[str, Any]) -> None:
        self.path = path
        self.params = dict(params)

    def request_for(self, page_number: int) -> PageRequest:
        return PageRequest(self.path, {**self.params, "page": page_number})

    def first(self) -> PageRequest:
        return self.request_for(1)

    @staticmethod
    def page_count(page: Page[R]) -> int | None:
        meta = page.meta.get("meta") or {}
        count = meta.get("page_count") if isinstance(meta, Mapping) else getattr(meta, "page_count", None)
        return None if count is None else int(count)

    def advance(self, request: PageRequest, page: Page[R]) -> tuple[list[R], PageRequest | None]:
        records = list(page.records)
        number = int(request.params["page"])
        count = self.page_count(page)
        if not records or (count is not None and number >= count):
            return records, None
        if count is None and len(records) < STREAM_PAGE_SIZE:
            return records, None
        return records, self.request_for(number + 1)

    def remaining(self, first_page: Page[R]) -> list[PageRequest]:
        count = self.page_count(first_page) or 1
        return [self.request_for(n) for n in range(2, count + 1)]
