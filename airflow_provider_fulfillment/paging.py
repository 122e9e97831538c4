"""Sans-IO paging plans: every paging decision for the three vendors, and no IO.

A plan says which requests to send next (`issue(room)`: at most `room` more, `room` being how many
more the driver may have in flight), takes each answer in the order the requests were issued
(`feed`: the records to yield), hears about failed requests (`fail`: True if it found a way on)
and says when the read is over (`done`). One driver (`FulfillmentHook.run_plan`) runs any plan
with 1 or N requests in flight; serial is N = 1.

What lives here, and only here: window sizing and splitting, the 10,000-result cap, the session
fallback and resume, read-ahead width, drift detection and re-reads, and the evidence that ends a
read. The rules that make reads exactly once while the vendor's data moves:

- A read ends only on evidence: the totals or page count the server sends, the `limit` it echoes,
  or an empty page; never because a page is shorter than the size asked for (a server may serve
  fewer). Missing totals mean "keep reading until an empty page", never "stop".
- Offsets past page 1 over a moving set shift. A plan that can see the set move (a changed total,
  record count or page count, an id twice in one pass, an empty page before the last) reads the
  part again; ids already yielded are skipped (dedupe by the vendor's identity).
- DCL has no totals: a window (on any field) is read as `modified_at` time slices that each fit
  one page; a slice that fills its page is split, so no page past page 1 is read over a moving set.
- Read-ahead costs nothing: a plan with no known end keeps one request in flight until a page
  comes back full, then at most one ahead; a plan with a known end never asks past it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
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
# Before any DCL order: where an unwindowed read's slices start (the first is open below anyway).
DCL_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
STREAM_PAGE_SIZE = 20
# How many DropStream sessions in a row may be reopened without bringing a new record.
MAX_SESSION_REOPENS = 20
# A reopened time-ordered session starts this much before the last record yielded (the vendor
# does not say whether `_min` bounds are inclusive); the ids yielded inside it are skipped.
RESUME_MARGIN = timedelta(seconds=1)
# How many times one part is read again because it moved while it was read, before giving up.
MAX_PASSES = 8
# A DropStream window part is sized for this share of the cap, so uneven density rarely needs a
# second cut; a full DCL slice is cut into this many slices.
PART_FILL = 0.75
SLICE_FANOUT = 4
# How many DropStream window parts may be probed (a page each, held until its turn) ahead of the
# part being read: enough that the next part is sized before the current one's pages run out.
PROBES_AHEAD = 3
# A page whose times follow its order this closely (Spearman) is taken as read oldest (or newest) first.
ORDERED_TREND = 0.5
# Sorts under which DropStream's LIMIT/OFFSET pages are stable: the key is unique.
UNIQUE_SORTS = frozenset({"id"})


@dataclass(frozen=True)
class PageRequest:
    """One GET: path and query; `tag` is the plan's own note of what the request is for."""

    path: str
    params: dict[str, Any] = field(default_factory=dict)
    tag: Any = field(default=None, compare=False, repr=False)
    # Read-ahead past what is known to exist: an answer 429 is given up at once, not waited out
    # (the plan asks again, plainly, if the page turns out to be needed).
    speculative: bool = field(default=False, compare=False)

    def retagged(self, tag: Any) -> PageRequest:
        """The same request under a wrapping plan's tag: nothing else about it may be lost."""
        return replace(self, tag=tag)


@dataclass(frozen=True)
class Page(Generic[R]):
    """A parsed response: its records and the envelope's metadata (session id, totals, error code...)."""

    records: Sequence[R]
    meta: Mapping[str, Any]


class Plan(Protocol[R]):
    """What the driver runs. Answers are fed in the order their requests were issued."""

    @property
    def done(self) -> bool: ...

    def issue(self, room: int) -> list[PageRequest]: ...

    def feed(self, request: PageRequest, page: Page[R]) -> list[R]: ...

    def fail(self, request: PageRequest, error: FulfillmentAPIError) -> bool: ...


IdOf = Callable[[Any], Hashable]
Admit = Callable[[Any, Window], bool]
BoundsOf = Callable[[Window], dict[str, Any]]


def _int(value: Any) -> int | None:
    return None if value is None or isinstance(value, bool) else int(value)


@dataclass(frozen=True)
class Evidence:
    """What one answer says about the whole result: totals, page count, the page size served."""

    total: int | None = None
    pages: int | None = None
    served_limit: int | None = None
    cut: bool = False

    @classmethod
    def of(cls, page: Page[Any]) -> Evidence:
        meta = page.meta
        nested = meta.get("meta")  # Stream: {"meta": {"page_count", "record_count"}}
        if isinstance(nested, Mapping):
            return cls(_int(nested.get("record_count")), _int(nested.get("page_count")))
        return cls(
            _int(meta.get("total_count")),
            _int(meta.get("total_pages")),
            _int(meta.get("limit")),
            bool(meta.get("max_total_reached")),
        )


def gave_up_on_rate_limit(request: PageRequest, error: FulfillmentAPIError) -> bool:
    """Whether a speculative request failed only because it was not waited out (429)."""
    return request.speculative and error.status == 429


# --------------------------------------------------------------------------- pages of one part


class PagedRead(Generic[R]):
    """Numbered pages of one result set, in passes until one pass saw the set hold still.

    `known_size` is the page size the vendor always serves (Stream: 20). Otherwise the size the
    server serves is learnt: the `limit` it echoes, or the size asked once a page came back that
    full; until then only an empty page or a total ends the read.
    """

    def __init__(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        asked: int,
        id_of: IdOf,
        admit: Callable[[Any], bool] | None = None,
        known_size: int | None = None,
        page_param: str = "page",
        seen: set[Hashable] | None = None,
        on_cap: Callable[[], None] | None = None,
        max_passes: int = MAX_PASSES,
        first: Page[R] | None = None,
        expected_total: int | None = None,
    ) -> None:
        self.expected_total = expected_total
        self._repeated = False
        self.path = path
        self.params = dict(params)
        self.asked = asked
        self.id_of = id_of
        self.admit = admit
        self.server_size = known_size
        self.page_param = page_param
        self.seen = seen if seen is not None else set()
        self.on_cap = on_cap
        # Called with this reader (not a closure over it: a reader in its own callback's cell is a
        # reference cycle, freed only by a full collection, and a finished part's id sets with it).
        self.on_drift: Callable[[PagedRead[R]], bool] | None = None
        self.max_passes = max_passes
        self.passes = 0
        self.outstanding = 0
        self.stopped = False
        self._ready: deque[tuple[PageRequest, Page[R]]] = deque()
        self._new_pass()
        if first is not None:  # page 1 is already here (a probe): take it as if just answered
            request = self._request(1)
            self.next_page = 2
            self._ready.append((request, first))

    def _new_pass(self) -> None:
        self.passes += 1
        if self.passes > self.max_passes:
            raise FulfillmentError(
                f"GET {self.path}: the result set kept changing while it was read "
                f"({self.max_passes} passes); try again when it is quieter, or narrow the window"
            )
        self.generation = self.passes
        self.next_page = 1
        self.pass_shape: tuple[int | None, int | None] | None = None  # (total, page count) on page 1
        # The pass's last page, once evidence says which (a sized part knows it before page 1).
        self.last_page: int | None = None
        if self.expected_total is not None and self.passes == 1:
            self.last_page = -(-self.expected_total // self.asked)
        self.answered: set[int] = set()
        self.again: deque[int] = deque()
        self.pass_ids: set[Hashable] = set()
        self.confirmed_full = False

    def _request(self, number: int, speculative: bool = False) -> PageRequest:
        return PageRequest(
            self.path, {**self.params, self.page_param: number}, (self.generation, number), speculative
        )

    @property
    def done(self) -> bool:
        return self.stopped and self.outstanding == 0 and not self._ready

    def issue(self, room: int) -> list[PageRequest]:
        requests: list[PageRequest] = []
        if self.stopped:
            return requests
        while self.again and len(requests) < room:  # read-ahead given up on a 429, still needed
            number = self.again.popleft()
            if self.last_page is None or number <= self.last_page:
                requests.append(self._request(number))
        while len(requests) < room:
            number = self.next_page
            if self.last_page is not None:
                if number > self.last_page:
                    break
            else:
                # No known end: one in flight until a page came back full, then one ahead at most;
                # the one ahead may be past the end, so it is speculative.
                ahead = 2 if self.confirmed_full else 1
                if self.outstanding + len(requests) >= ahead:
                    break
            speculative = self.last_page is None and self.outstanding + len(requests) > 0
            requests.append(self._request(number, speculative))
            self.next_page += 1
        self.outstanding += len(requests)
        return requests

    @property
    def holding(self) -> bool:
        """Whether page 1 is here but not yet fed (its records wait for their turn)."""
        return bool(self._ready)

    def take_ready(self) -> list[tuple[PageRequest, Page[R]]]:
        """Answers the plan already holds (a probe's page 1), to be fed before anything is sent."""
        ready = list(self._ready)
        self._ready.clear()
        self.outstanding += len(ready)
        return ready

    def fail(self, request: PageRequest, error: FulfillmentAPIError) -> bool:
        """A read-ahead page answered 429 is dropped; asked again (and waited for) only if needed."""
        self.outstanding -= 1
        if not gave_up_on_rate_limit(request, error):
            return False
        generation, number = request.tag
        if generation == self.generation and not self.stopped:
            self.again.append(number)
        return True

    def feed(self, request: PageRequest, page: Page[R]) -> list[R]:
        self.outstanding -= 1
        generation, number = request.tag
        fresh = self._fresh(page.records, generation == self.generation)
        if generation != self.generation or self.stopped:
            return fresh  # an answer from a pass already given up: its unseen records still count
        evidence = Evidence.of(page)
        if evidence.cut or (evidence.total is not None and evidence.total > DROPSTREAM_RESULT_CAP):
            if self.on_cap is None:
                raise CapReached(total=evidence.total)
            self.on_cap()
            self.stopped = True
            return fresh
        self.answered.add(number)
        count = len(page.records)
        if evidence.served_limit is not None:
            self.server_size = evidence.served_limit
        elif count and count >= self.asked:
            self.server_size = self.server_size or self.asked
        if self.server_size is not None and count >= self.server_size:
            self.confirmed_full = True
        if self._drifted(number, count, evidence):
            if self.on_drift is not None and self.on_drift(self):
                self.stopped = True  # the plan reads this part again its own way (in halves)
            else:
                self._new_pass()
            return fresh
        if self.last_page is None:
            if count == 0:
                self.last_page = number - 1
            elif self.server_size is not None and count < self.server_size:
                self.last_page = number
        if self.last_page is not None and all(n in self.answered for n in range(1, self.last_page + 1)):
            self.stopped = True
        return fresh

    def _drifted(self, number: int, count: int, evidence: Evidence) -> bool:
        """Whether this answer shows the set moved since the pass began (then read it again)."""
        shape = (evidence.total, evidence.pages)
        if shape != (None, None):
            if self.pass_shape is None:
                self.pass_shape = shape
                if evidence.pages is not None:
                    self.last_page = evidence.pages
                elif evidence.total is not None:
                    self.last_page = -(-evidence.total // (self.server_size or self.asked))
            elif shape != self.pass_shape:
                return True  # a changed total or page count: records came or went
        if self.pass_shape is not None and self.last_page is not None:
            if count == 0 and number <= self.last_page:
                return True  # an empty page where the totals promised records
            if self.server_size is not None and number < self.last_page and count < self.server_size:
                return True  # a short page before the last: records left the set mid-pass
        return self._repeated

    def _fresh(self, records: Sequence[R], current: bool) -> list[R]:
        self._repeated = False
        fresh: list[R] = []
        id_of, seen, admit = self.id_of, self.seen, self.admit
        for record in records:
            key = id_of(record)
            if current:
                if key in self.pass_ids:
                    self._repeated = True  # one record on two pages of a pass: the pages shifted
                self.pass_ids.add(key)
            if key in seen or (admit is not None and not admit(record)):
                continue
            seen.add(key)
            fresh.append(record)
        return fresh


# --------------------------------------------------------------------------- DropStream sessions


def is_session_expiry(request: PageRequest, error: FulfillmentAPIError) -> bool:
    """Whether a failed continuation means the session expired (the status is undocumented)."""
    if "session_id" not in request.params:
        return False
    if error.status in (404, 410):
        return True
    return error.status in (400, 422) and "session" in (error.vendor_message or "").lower()


class DropStreamSessionPlan(Generic[R]):
    """Session-based paging: continue with only `session_id`; reopen on expiry or loss; each record once.

    How a reopened session avoids repeating what was already yielded depends on the sort:

    - `resume_field` (asked for `sort=created_at` when the caller chose no sort): records come in
      time order, so a reopened session is narrowed with `<field>_min` to the last time yielded,
      less `RESUME_MARGIN`, and the few ids yielded inside that margin are skipped. Reopening
      costs about one page, so progress is made even when answers are lost often.
    - sorted by id: the original parameters again, skipping every id up to the last one yielded.
    - any other sort: the original parameters again, skipping every id yielded.

    A session ends on evidence: an empty page, a page shorter than the `limit` the server echoes,
    or as many records as the opening answer's `total_count`.
    """

    def __init__(
        self,
        path: str,
        params: Mapping[str, Any],
        id_of: IdOf,
        *,
        limit: int,
        ordered_by_id: bool,
        resume_field: str | None = None,
        time_of: Callable[[Any], datetime | None] | None = None,
        admit: Callable[[Any], bool] | None = None,
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
        self.admit = admit
        self.max_reopens = max_reopens
        self.reopens = 0  # in all, for the log
        self.stalled_reopens = 0  # since the last page that brought something new
        self.gaps = 0
        self.last_id: Any = None
        self.last_time: datetime | None = None
        self.boundary: deque[tuple[datetime, Hashable]] = deque()
        self.seen: set[Hashable] = set()
        self.outstanding = 0
        self.finished = False
        self._next: PageRequest | None = self.first()

    @property
    def done(self) -> bool:
        return self.finished and self.outstanding == 0

    def first(self) -> PageRequest:
        self.expected_page = 1
        self.served = 0
        self.session_total: int | None = None
        params = dict(self.params)
        if self.resume_field is not None and self.last_time is not None:
            key = f"{self.resume_field}_min"
            floor = self.last_time - RESUME_MARGIN
            given = params.get(key)
            if given is None or datetime.fromisoformat(str(given).replace("Z", "+00:00")) < floor:
                params[key] = floor.isoformat(timespec="seconds")
        return PageRequest(self.path, params)

    def issue(self, room: int) -> list[PageRequest]:
        # A session is a cursor: one request at a time, whatever the room.
        if self.finished or self.outstanding or self._next is None or room < 1:
            return []
        request, self._next = self._next, None
        self.outstanding = 1
        return [request]

    def feed(self, request: PageRequest, page: Page[R]) -> list[R]:
        self.outstanding = 0
        # A session is a cursor on the server: when an answer is lost in transit (a dropped
        # connection, a truncated body) the retried request gets the *next* page. The page number
        # shows the gap; the lost records are recovered by reopening, never skipped.
        number = page.meta.get("page")
        if number is not None and int(number) != self.expected_page:
            self.gaps += 1
            self._next = self._reopen(
                f"session answered page {number} where page {self.expected_page} was due"
            )
            return []
        self.expected_page += 1
        evidence = Evidence.of(page)
        if self.session_total is None and evidence.total is not None:
            self.session_total = evidence.total
        self.served += len(page.records)
        fresh = self._unseen(page.records)
        if fresh:
            self.stalled_reopens = 0
        if self.admit is not None:
            fresh = [record for record in fresh if self.admit(record)]
        served_limit = evidence.served_limit or None
        if (
            not page.records
            or (served_limit is not None and len(page.records) < served_limit)
            or (self.session_total is not None and self.served >= self.session_total)
        ):
            self.finished = True
            return fresh
        session_id = page.meta.get("session_id")
        if not session_id:
            raise FulfillmentError(f"GET {self.path}: session-based response carried no session_id")
        self._next = PageRequest(self.path, {"session_id": session_id})
        return fresh

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

    def fail(self, request: PageRequest, error: FulfillmentAPIError) -> bool:
        self.outstanding = 0
        if not is_session_expiry(request, error):
            return False
        self._next = self._reopen(f"the session expired ({error.status})")
        return True


def dropstream_session(
    path: str,
    params: Mapping[str, Any],
    *,
    limit: int,
    id_of: IdOf,
    time_of: Callable[[Any], datetime | None],
    admit: Callable[[Any], bool] | None = None,
) -> DropStreamSessionPlan[Any]:
    """A session read. With no sort asked for, read in `created_at` order: a session reopened after
    an expiry or a lost answer then resumes where it stopped."""
    sort = params.get("sort")
    if sort is None:
        params = {**params, "sort": "created_at"}
    return DropStreamSessionPlan(
        path,
        params,
        id_of,
        limit=limit,
        ordered_by_id=sort == "id",
        resume_field="created_at" if sort in (None, "created_at") else None,
        time_of=time_of,
        admit=admit,
    )


# --------------------------------------------------------------------------- plans of plans


class Sequential(Generic[R]):
    """Child plans read one after another, in order; the next may start while the current one
    has nothing more to send (read-ahead across parts), unless the current one is a session (a
    cursor whose later pages must not be overtaken, so records keep their order)."""

    def __init__(self, children: Iterable[Any] = ()) -> None:
        self.children: deque[Any] = deque(children)

    @property
    def done(self) -> bool:
        while self.children and self.children[0].done:
            self.children.popleft()
        return not self.children

    def issue(self, room: int) -> list[PageRequest]:
        requests: list[PageRequest] = []
        for child in list(self.children):
            if room - len(requests) <= 0:
                break
            if child.done:
                continue
            for request in child.issue(room - len(requests)):
                requests.append(request.retagged((child, request.tag)))
            if isinstance(child, DropStreamSessionPlan):
                break
            if not getattr(child, "last_page", None) and not child.done:
                break  # its end is not known yet: do not run ahead of it
        return requests

    def feed(self, request: PageRequest, page: Page[R]) -> list[R]:
        child, tag = request.tag
        return child.feed(request.retagged(tag), page)

    def fail(self, request: PageRequest, error: FulfillmentAPIError) -> bool:
        child, tag = request.tag
        return child.fail(request.retagged(tag), error)


# --------------------------------------------------------------------------- DropStream windows


class _Unsized:
    """A window part not sized yet: its probe is page 1 at the read's page size, which becomes
    the part's page 1 when the part fits the cap. Until it is answered the parts after it send
    only probes (`last_page` None stops `Sequential`), so pages still go out in time order."""

    done = False
    last_page = None

    def __init__(self, part: Window) -> None:
        self.part = part
        self.sent = False

    def issue(self, room: int) -> list[PageRequest]:
        return []  # its probe is sent by the plan, ahead of the pages


class DropStreamPlan(Generic[R]):
    """Page-based DropStream reads that never truncate and survive a moving set.

    With a window: one session-opening request at the read's page size tells the true total;
    when the window fits the cap its answer is the window's page 1. Otherwise the window is cut
    into equal-time parts sized for `PART_FILL` of the cap, and each part is sized by a probe that
    asks its page 1 at the read's page size: a part that fits keeps that answer as its page 1, a
    part still over the cap is halved again (its page is the price of the probe), and a part
    narrower than `MIN_SPLIT` and still over it is read through a session. Probes go out at most
    `PROBES_AHEAD` before the part being read (each may be a page held until its turn, so
    records keep time order in bounded memory). Every part's pages are read, in time order, as
    `PagedRead`s: a part whose total changes mid-read is read again. Without a window: pages of
    the whole set, or a session once the cap shows.
    """

    def __init__(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        limit: int,
        window: Window | None,
        bounds_of: BoundsOf,
        id_of: IdOf,
        admit: Admit,
        session_for: Callable[[Mapping[str, Any], Callable[[Any], bool] | None], Any],
        cap: int = DROPSTREAM_RESULT_CAP,
    ) -> None:
        self.path = path
        self.params = dict(params)
        self.limit = limit
        self.window = window
        self.bounds_of = bounds_of
        self.id_of = id_of
        self.admit = admit
        self.session_for = session_for
        self.cap = cap
        self.reading = Sequential()
        self.parts = 0
        self.phase = "open"

    # the parts ----------------------------------------------------------------------
    def _part_params(self, part: Window | None) -> dict[str, Any]:
        return dict(self.params) if part is None else {**self.params, **self.bounds_of(part)}

    def _admit_for(self, part: Window | None) -> Callable[[Any], bool] | None:
        if part is None:
            return None
        admit = self.admit
        return lambda record: admit(record, part)

    def _pages(
        self,
        part: Window | None,
        first: Page[R] | None = None,
        expected: int | None = None,
        seen: set[Hashable] | None = None,
    ) -> PagedRead[R]:
        reader: PagedRead[R] = PagedRead(
            self.path,
            {**self._part_params(part), "limit": self.limit},
            asked=self.limit,
            id_of=self.id_of,
            admit=self._admit_for(part),
            first=first,
            expected_total=expected,
            seen=seen,
        )

        def over_cap() -> None:  # the part grew past the cap since it was sized: never truncate
            self.reading.children.append(self._session(part))

        def drifted(moved: PagedRead[R]) -> bool:
            """A part that moved while it was read is read again as two halves: under steady churn
            smaller parts finish between changes, where a whole part read again might never."""
            if part is None or part.duration <= MIN_SPLIT:
                return False
            halves = [self._pages(half, seen=moved.seen) for half in part.halves()]
            children = self.reading.children
            at = children.index(moved) + 1 if moved in children else len(children)
            for offset, half in enumerate(halves):
                children.insert(at + offset, half)
            self.parts += 1
            return True

        reader.on_cap = over_cap
        reader.on_drift = drifted
        return reader

    def _session(self, part: Window | None) -> Any:
        self.parts += 1
        return self.session_for(self._part_params(part), self._admit_for(part))

    def _sized(self, part: Window, page: Page[R]) -> list[Any]:
        """What reads a part, given its page 1 at the read's page size (a probe's or the opening's)."""
        evidence = Evidence.of(page)
        total = evidence.total
        if total is None:
            return [self._session(part)]  # cannot size it: a session reads any size
        if not evidence.cut and total <= self.cap:
            if total == 0:
                return []
            self.parts += 1
            return [self._pages(part, first=page, expected=total)]
        if part.duration <= MIN_SPLIT:
            return [self._session(part)]
        return [_Unsized(half) for half in part.halves()]

    # the plan -----------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.phase == "read" and self.reading.done

    def issue(self, room: int) -> list[PageRequest]:
        if self.phase == "open":
            self.phase = "opening"
            if self.window is None:
                return [PageRequest(self.path, {**self.params, "limit": self.limit, "page": 1}, ("whole",))]
            return [PageRequest(self.path, {**self.params, "limit": self.limit}, ("open",))]
        if self.phase == "read":
            probes = self._probes(room)
            return probes + self.reading.issue(room - len(probes))
        return []

    def _probes(self, room: int) -> list[PageRequest]:
        """Probes first, so a part's page 1 is back before the pages of the part before it end."""
        requests: list[PageRequest] = []
        ahead = 0
        for child in self.reading.children:
            if ahead >= PROBES_AHEAD or len(requests) >= room:
                break
            if isinstance(child, _Unsized):
                if not child.sent:
                    child.sent = True
                    params = {**self._part_params(child.part), "limit": self.limit, "page": 1}
                    requests.append(PageRequest(self.path, params, ("probe", child)))
                ahead += 1
            elif isinstance(child, PagedRead) and child.holding:
                ahead += 1
        return requests

    def feed(self, request: PageRequest, page: Page[R]) -> list[R]:
        kind = request.tag[0] if isinstance(request.tag, tuple) and isinstance(request.tag[0], str) else None
        if kind == "whole":
            evidence = Evidence.of(page)
            if evidence.cut or (evidence.total is not None and evidence.total > self.cap):
                self.reading.children.append(self._session(None))
            else:
                self.parts = 1
                self.reading.children.append(self._pages(None, first=page))
            self.phase = "read"
            return self._drain_ready()
        if kind == "open":
            total = Evidence.of(page).total
            assert self.window is not None
            if total is None:  # no total to size by: a session reads any size
                self.reading.children.append(self._session(self.window))
            elif total <= self.cap:
                # A session and pages list the same query in the same order, so the session's
                # page 1 is the pages' page 1. Were they ever to differ, the pages would bring a
                # record of this page again (one the pages' own page 1 holds instead): that is
                # drift, and the part is read again page-based, skipping the ids yielded.
                self.reading.children.extend(self._sized(self.window, page))
            else:
                parts = self.window.split(-(-total // max(1, int(self.cap * PART_FILL))))
                self.reading.children.extend(_Unsized(part) for part in parts)
            self.phase = "read"
            return self._drain_ready()
        if kind == "probe":
            probe: _Unsized = request.tag[1]
            children = self.reading.children
            at = children.index(probe)
            del children[at]
            for offset, child in enumerate(self._sized(probe.part, page)):
                children.insert(at + offset, child)
            return self._drain_ready()
        child = request.tag[0]
        records = self._take_ready(child) if isinstance(child, PagedRead) else []
        records.extend(self.reading.feed(request, page))
        records.extend(self._drain_ready())
        return records

    def _take_ready(self, child: PagedRead[R]) -> list[R]:
        records: list[R] = []
        for request, page in child.take_ready():
            records.extend(child.feed(request, page))
        return records

    def _drain_ready(self) -> list[R]:
        """The held pages 1 whose turn has come: the head part's, and each next one's once the
        parts before it are done."""
        records: list[R] = []
        for child in list(self.reading.children):  # a fed page may cut its part (drift): a copy
            if isinstance(child, PagedRead):
                records.extend(self._take_ready(child))
            if not child.done:
                break
        return records

    def fail(self, request: PageRequest, error: FulfillmentAPIError) -> bool:
        if isinstance(request.tag, tuple) and isinstance(request.tag[0], str):
            return False
        return self.reading.fail(request, error)


def dropstream_plan(
    path: str,
    params: Mapping[str, Any],
    *,
    mode: str,
    limit: int,
    window: Window | None,
    width: int,
    bounds_of: BoundsOf,
    id_of: IdOf,
    time_of: Callable[[Any], datetime | None],
    admit: Admit,
    cap: int = DROPSTREAM_RESULT_CAP,
) -> Any:
    """Which DropStream read serves the query: a session, or pages that split around the cap.

    `auto` reads a window page-based when more than one request may be in flight (the parts'
    pages are fetched concurrently) and through a session otherwise. A sort on a key that is not
    unique is read through a session: ties come back in a different order on each page request,
    so LIMIT/OFFSET pages would repeat some records and skip others.
    """
    sort = params.get("sort")
    stable = sort is None or sort in UNIQUE_SORTS
    if mode == "page" and not stable:
        raise ValueError(
            f"paging='page' with sort={sort!r} cannot read each record exactly once: {sort!r} is not "
            "unique, and DropStream returns ties in a different order on each page request; use "
            "paging='auto' or 'session' (a session keeps one order), or sort='id'"
        )

    def session_for(part_params: Mapping[str, Any], part_admit: Callable[[Any], bool] | None) -> Any:
        return dropstream_session(
            path, part_params, limit=limit, id_of=id_of, time_of=time_of, admit=part_admit
        )

    if mode == "session" or not stable or (mode == "auto" and (window is None or width <= 1)):
        return session_for(params, None)
    return DropStreamPlan(
        path,
        params,
        limit=limit,
        window=window,
        bounds_of=bounds_of,
        id_of=id_of,
        admit=admit,
        session_for=session_for,
        cap=cap,
    )


# --------------------------------------------------------------------------- DCL


def is_error_code(code: Any) -> bool:
    """Whether an `error_code` in an answer reports an error (absent, 0 and "0" say none)."""
    return code not in (None, 0, "0")


def check_dcl(page: Page[Any]) -> None:
    """DCL reports errors inside HTTP 200 answers too: `error_code != 0` is an error, never a page."""
    code = page.meta.get("error_code")
    if is_error_code(code):
        raise VendorRejected(code=code, message=page.meta.get("error_message") or "")


class _DclChecked(PagedRead[R]):
    def feed(self, request: PageRequest, page: Page[R]) -> list[R]:
        check_dcl(page)
        return super().feed(request, page)


class DclSlicePlan(Generic[R]):
    """A DCL window on a field the server filters exactly (`modified_*`), read as time slices that
    each fit one page, so no page past page 1 is read over a moving set.

    Page 1 of the whole window goes first, alone (slow start); a slice that fills its page is cut
    into `SLICE_FANOUT` slices, read concurrently. Until the server's page size is known (a page as
    full as asked), a page shorter than asked is checked with that slice's page 2: empty, the slice
    is whole; not empty, the server serves that many and the slice was full. A slice narrower than
    `MIN_SPLIT` that still fills its page is paged through.

    Given `modified_of`, a full slice is cut at the quartiles of the modification times its page
    showed (not by halving its span: an unwindowed read spans decades, its orders a few days), and
    a slice's record outside the `modified_*` bounds sent is an error: a server that ignores the
    filter would answer every slice in full and the cutting would never end.
    """

    def __init__(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        page_size: int,
        window: Window,
        bounds_of: BoundsOf,
        id_of: IdOf,
        admit: Admit,
        modified_of: Callable[[R], datetime | None] | None = None,
    ) -> None:
        self.path = path
        self.params = {**params, "page_size": page_size}
        self.modified_of = modified_of
        self.asked = page_size
        self.bounds_of = bounds_of
        self.id_of = id_of
        self.admit = admit
        self.server_size: int | None = None
        self.seen: set[Hashable] = set()
        self.todo: deque[Window] = deque([window])
        self.checks: deque[Window] = deque()  # slices whose page 2 tells whether page 1 was full
        self.first_counts: dict[Window, int] = {}
        self.paged: deque[PagedRead[R]] = deque()
        self.outstanding = 0
        self.answered = 0

    @property
    def done(self) -> bool:
        while self.paged and self.paged[0].done:
            self.paged.popleft()
        return not self.todo and not self.checks and not self.outstanding and not self.paged

    def _request(self, part: Window, number: int) -> PageRequest:
        return PageRequest(self.path, {**self.params, **self.bounds_of(part), "page": number}, (part, number))

    def issue(self, room: int) -> list[PageRequest]:
        if self.answered == 0:
            room = min(room, 1 - self.outstanding)  # slow start: the whole window, alone
        requests: list[PageRequest] = []
        while self.checks and len(requests) < room:
            requests.append(self._request(self.checks.popleft(), 2))
        while self.todo and len(requests) < room:
            requests.append(self._request(self.todo.popleft(), 1))
        self.outstanding += len(requests)
        for reader in self.paged:
            if len(requests) >= room:
                break
            for request in reader.issue(room - len(requests)):
                requests.append(request.retagged((reader, request.tag)))
        return requests

    def feed(self, request: PageRequest, page: Page[R]) -> list[R]:
        owner, number = request.tag
        if isinstance(owner, PagedRead):
            return owner.feed(request.retagged(number), page)
        self.outstanding -= 1
        self.answered += 1
        check_dcl(page)
        part: Window = owner
        self._check_filtered(request, page.records)
        count = len(page.records)
        fresh = self._fresh(page.records, part)
        if number == 2:
            first_count = self.first_counts.pop(part)
            if count:  # page 1 was as full as the server serves: cut the slice
                self.server_size = self.server_size or first_count
                self._split(part, page.records)
            return fresh
        if count >= self.asked:
            self.server_size = self.asked
        if count == 0:
            return fresh
        if self.server_size is not None:
            if count >= self.server_size:
                self._split(part, page.records)
            return fresh
        self.first_counts[part] = count
        self.checks.append(part)
        return fresh

    def _check_filtered(self, request: PageRequest, records: Sequence[R]) -> None:
        if self.modified_of is None:
            return
        sent = {name: request.params.get(name) for name in ("modified_from", "modified_to")}
        low, high = (datetime.fromisoformat(value) if value else None for value in sent.values())
        for record in records:
            moment = self.modified_of(record)
            if moment is not None and ((low and moment < low) or (high and moment > high)):
                asked = " ".join(f"{name}={value}" for name, value in sent.items() if value)
                raise FulfillmentError(
                    f"DCL ignored the modified_from/modified_to filter: {self.path} with {asked} "
                    f"answered a record modified at {moment.isoformat()}; a read cannot be cut into "
                    "slices that fit a page on such a server, so it stops rather than cut forever"
                )

    def _cuts(self, part: Window, records: Sequence[R]) -> list[Window]:
        """`part` cut where the modification times its full page showed say the rest lies.

        A page whose times rise with its order (the sandbox's and DCL's follow the order's age)
        holds the oldest; the rest lie mostly above it: one cut at its 80th percentile leaves a
        lower slice that fits a page and an upper one that holds the rest (falling times: the
        mirror, at the 20th). Otherwise the times are a sample of the slice: cut at their
        quartiles. Which rule fits changes only the request count: every slice that comes back
        full is cut again the same way.
        """
        if self.modified_of is None:
            return []
        moments = [moment for record in records if (moment := self.modified_of(record)) is not None]
        trend = _rank_correlation(moments)
        if trend > ORDERED_TREND:
            cuts = [_quantile(moments, 0.8)]
        elif trend < -ORDERED_TREND:
            cuts = [_quantile(moments, 0.2)]
        else:
            cuts = [_quantile(moments, i / SLICE_FANOUT) for i in range(1, SLICE_FANOUT)]
        bounds = [part.start, *sorted({cut for cut in cuts if part.start < cut < part.end}), part.end]
        return [Window(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]

    def _split(self, part: Window, records: Sequence[R] = ()) -> None:
        if part.duration <= MIN_SPLIT:
            self.paged.append(
                _DclChecked(
                    self.path,
                    {**self.params, **self.bounds_of(part)},
                    asked=self.asked,
                    known_size=self.server_size,
                    id_of=self.id_of,
                    admit=lambda record: self.admit(record, part),
                    seen=self.seen,
                )
            )
            return
        cuts = self._cuts(part, records)
        if len(cuts) > 1:
            self.todo.extend(cuts)
            return
        fanout = SLICE_FANOUT if part.duration >= MIN_SPLIT * SLICE_FANOUT else 2
        self.todo.extend(part.split(fanout))

    def _fresh(self, records: Sequence[R], part: Window) -> list[R]:
        fresh: list[R] = []
        for record in records:
            if not self.admit(record, part):
                continue
            key = self.id_of(record)
            if key not in self.seen:
                self.seen.add(key)
                fresh.append(record)
        return fresh

    def fail(self, request: PageRequest, error: FulfillmentAPIError) -> bool:
        owner, tag = request.tag
        if isinstance(owner, PagedRead):
            return owner.fail(request.retagged(tag), error)
        self.outstanding -= 1
        return False


def _quantile(moments: Sequence[datetime], fraction: float) -> datetime:
    ordered = sorted(moments)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _rank_correlation(moments: Sequence[datetime]) -> float:
    """Spearman's rank correlation of the times with their place on the page (0 for under 3)."""
    n = len(moments)
    if n < 3:
        return 0.0
    ranks = {place: rank for rank, place in enumerate(sorted(range(n), key=moments.__getitem__))}
    spread = sum((place - rank) ** 2 for place, rank in ranks.items())
    return 1 - 6 * spread / (n * (n * n - 1))


def dcl_plan(
    path: str,
    params: Mapping[str, Any],
    *,
    page_size: int,
    window: Window | None,
    sliceable: bool,
    bounds_of: BoundsOf,
    id_of: IdOf,
    admit: Admit,
    modified: Window,
    modified_of: Callable[[Any], datetime | None] | None = None,
) -> DclSlicePlan[Any]:
    """Every read is `modified_*` slices that each fit one page (DCL sends no totals, so numbered
    pages past page 1 over a moving set cannot be checked):

    - a window on `modified_at` (filtered exactly, both ends): its own slices;
    - otherwise (no window, or one on `received_*`/`shipped_*`, which take only a day as their
      end, or on `ordered_date`, which has no filter): the request's filters as sent, and slices
      of `modified`, the first open below and the last open above, so together they cover every
      modification time (a `modified_*` bound the caller gave stays on the outer slices). Records
      are deduped by identity; the hook trims them to a window on another field (`ship_date` is a
      nested shipment's, so only the hook can).
    """
    if window is not None and sliceable:
        slices, slice_bounds, keep = window, bounds_of, admit
    else:
        # the hook trims on the window's own field (a shipment's): every record of a slice is kept
        slices, slice_bounds, keep = modified, _open_ended(bounds_of, modified), _keep_all
    return DclSlicePlan(
        path,
        params,
        page_size=page_size,
        window=slices,
        bounds_of=slice_bounds,
        id_of=id_of,
        admit=keep,
        modified_of=modified_of,
    )


def _open_ended(bounds_of: BoundsOf, modified: Window) -> BoundsOf:
    """`bounds_of` with no lower bound on the first slice and no upper one on the last."""

    def open_ended(part: Window) -> dict[str, Any]:
        bounds = bounds_of(part)
        if part.start <= modified.start:
            bounds.pop("modified_from", None)
        if part.end >= modified.end:
            bounds.pop("modified_to", None)
        return bounds

    return open_ended


def _keep_all(_record: Any, _part: Window) -> bool:
    return True


# --------------------------------------------------------------------------- Stream


def stream_plan(path: str, params: Mapping[str, Any], *, id_of: IdOf) -> PagedRead[Any]:
    """Stream has no date filter and documents no order: passes over every page (of the `status`
    asked for) until one pass saw the same `record_count`/`page_count` throughout and no id twice."""
    return PagedRead(path, params, asked=STREAM_PAGE_SIZE, known_size=STREAM_PAGE_SIZE, id_of=id_of)
