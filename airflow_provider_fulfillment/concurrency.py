"""One adaptive request controller per connection, shared by all its threads and pages.

No vendor publishes its rate limits, so the client finds them: the controller keeps a concurrency
limit (additive increase while answers come back fast and full, multiplicative decrease on 429/503
and on latency rising well above the usual) and, once a vendor has said "too many", a request
rate it paces to (lowered multiplicatively on each 429, raised additively while none comes). A
`Retry-After` pauses the whole connection, not the one thread that got it; an optional budget
(`max_requests_per_second` on the connection) is never exceeded.

`AimdState` is the pure decision logic (every method takes `now`), unit-tested with a fake clock;
`Controller` adds the blocking and locking (`acquire` for threads, `aacquire` for coroutines, one
state for both), and `controller_for` gives every hook, thread and trigger of a process the same
controller for one connection: a triggerer's event loop and a worker's threads share one budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# Defaults: start where the old fixed setting was, and let evidence raise it up to the ceiling.
# At 16 the controller sat at the ceiling with 100-record pages at 50 ms (5.07x sequential); the
# ceiling is only a bound: 429s, 503s and queueing latency keep the limit under it.
DEFAULT_INITIAL = 4
DEFAULT_CEILING = 32
# A latency this many times a low one of the recent answers (their first quartile, robust to a
# noisy machine where the very best is luck) means the vendor queues our requests: when the
# median of the last few answers shows it, not one answer (a lone slow answer is the machine's
# noise, a pause of our own process, not the vendor's queue: measured at load 4, one answer in
# ~100 took 4-6x the usual, and cutting on each halved the concurrency every few seconds).
LATENCY_TOLERANCE = 3.0
LATENCY_WINDOW = 5
# ...and when requests sent after the slow ones began to come back are slow too. A pause of our
# own process (a full garbage collection: 120-210 ms every ~1.1 s on the hook's dict path, measured)
# delays every answer then in flight at once, so five in a row looked like a queue and halved the
# limit every second; the requests started after the pause come back at the usual latency.
# How much a congestion signal cuts the limit, and the rate.
DECREASE = 0.5
RATE_DECREASE = 0.9
# Rate increase per second without a 429, as a fraction of the current rate. Until a second 429
# confirms it, the rate learnt from the first is a guess taken mid-ramp-up (measured: 56-75% of
# the vendor's limit, the first refusal being of a burst, not of the rate), so it grows fast.
RATE_INCREASE = 0.10
RATE_PROBE_INCREASE = 0.5
LATENCY_SAMPLES = 64
# A paced start that comes late (its thread woke late: a busy interpreter hands the GIL over every
# 5 ms) may be made up by the next ones, up to this many slots: a pace that drops every late slot
# sent 73-91 req/s paced at 90-134 (measured, the hook under a 100 req/s bucket). Kept under a
# strict gateway's burst (a tenth of a second's allowance: 3 at 30 req/s). Never for the budget.
PACE_CATCH_UP = 2


@dataclass
class Stats:
    """What a connection's requests met: goes into the extract manifest."""

    requests: int = 0
    answered: int = 0  # 2xx/3xx answers: the pages (and probes) read
    retries: int = 0
    throttled: int = 0  # 429 answers
    unavailable: int = 0  # 503 answers
    peak_in_flight: int = 0
    peak_limit: int = 0
    paused_seconds: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "requests": self.requests,
            "pages": self.answered,
            "retries": self.retries,
            "http_429": self.throttled,
            "http_503": self.unavailable,
            "peak_in_flight": self.peak_in_flight,
            "peak_concurrency_limit": self.peak_limit,
            "paused_seconds": round(self.paused_seconds, 3),
        }


@dataclass
class AimdState:
    """The controller's decisions, free of threads and clocks.

    :param initial: the concurrency limit to start with.
    :param ceiling: the most requests in flight ever (the hook's `max_concurrency`).
    :param max_rps: a hard request budget per second (None: none).
    """

    initial: int = DEFAULT_INITIAL
    ceiling: int = DEFAULT_CEILING
    max_rps: float | None = None
    floor: int = 1
    limit: float = field(init=False)
    rate: float | None = field(init=False, default=None)  # learnt from 429s; None until the first
    in_flight: int = field(init=False, default=0)
    paused_until: float = field(init=False, default=0.0)
    next_slot: float = field(init=False, default=0.0)
    stats: Stats = field(init=False, default_factory=Stats)
    _latencies: deque[float] = field(init=False, default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    _calm_since: float = field(init=False, default=0.0)
    _last_cut: float = field(init=False, default=float("-inf"))
    _recent_starts: deque[float] = field(init=False, default_factory=deque)
    _rate_confirmed: bool = field(init=False, default=False)  # a second 429 found the learnt rate
    _slow_since: float | None = field(init=False, default=None)  # when the answers turned slow

    def __post_init__(self) -> None:
        if self.ceiling < 1:
            raise ValueError(f"the concurrency ceiling must be at least 1, got {self.ceiling}")
        if self.max_rps is not None and self.max_rps <= 0:
            raise ValueError(f"max_requests_per_second must be positive, got {self.max_rps}")
        self.floor = max(1, min(self.floor, self.ceiling))
        self.limit = float(max(self.floor, min(self.initial, self.ceiling)))
        self.stats.peak_limit = int(self.limit)

    # admission -------------------------------------------------------------------------
    def pace(self) -> float | None:
        """The request rate to pace to: the budget, or what 429s taught, whichever is lower."""
        rates = [r for r in (self.max_rps, self.rate) if r is not None]
        return min(rates) if rates else None

    def wait_before_start(self, now: float) -> float:
        """Seconds until one more request may start (0: now)."""
        if now < self.paused_until:
            return self.paused_until - now
        if self.in_flight >= int(self.limit):
            return float("inf")  # until a request in flight ends
        if self.pace() is not None and now < self.next_slot:
            return self.next_slot - now
        return 0.0

    def start(self, now: float) -> float:
        """Admit one request (the caller checked `wait_before_start` is 0); returns its start time."""
        self.in_flight += 1
        self.stats.requests += 1
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.in_flight)
        pace = self.pace()
        if pace is not None:
            interval = 1.0 / pace
            catch_up = 0 if pace == self.max_rps else PACE_CATCH_UP  # the budget is a promise
            self.next_slot = max(now - catch_up * interval, self.next_slot) + interval
        self._recent_starts.append(now)
        while self._recent_starts and self._recent_starts[0] < now - 1.0:
            self._recent_starts.popleft()
        return now

    # outcomes --------------------------------------------------------------------------
    def finish(
        self, started: float, now: float, status: int | None, retry_after: float | None = None
    ) -> None:
        """A request that started at `started` ended now with `status` (None: no answer)."""
        self.in_flight = max(0, self.in_flight - 1)
        if status == 429 or status == 503:
            if status == 429:
                self.stats.throttled += 1
            else:
                self.stats.unavailable += 1
            self._congested(started, now, throttled=status == 429, retry_after=retry_after)
            return
        if status is None or status >= 500:
            self._congested(started, now, throttled=False, retry_after=None)
            return
        self.stats.answered += 1
        latency = now - started
        self._latencies.append(latency)
        if len(self._latencies) >= 8 and self._queued():
            if self._slow_since is None:
                self._slow_since = now  # a pause of ours, or the vendor's queue: the next round says
            elif started >= self._slow_since and self._slow(latency):
                if started >= self._last_cut:  # one cut per round of requests, not one per answer
                    self._cut(now)
                self._slow_since = None
            return
        self._slow_since = None
        self._grow(now)

    def retried(self) -> None:
        self.stats.retries += 1

    def _congested(self, started: float, now: float, *, throttled: bool, retry_after: float | None) -> None:
        if retry_after is not None and retry_after > 0:
            until = now + retry_after
            if until > self.paused_until:
                self.stats.paused_seconds += until - max(now, self.paused_until)
                self.paused_until = until
        if started < self._last_cut:
            return  # sent before the last cut: already accounted for
        if throttled:
            # The vendor has a rate limit: pace just under the rate that has just been too much.
            first = self.rate is None
            observed = self._sending_rate(now)
            current = observed if first else self.rate
            # Once a second 429 has confirmed the pace, a later one says the pace is a little too
            # high: cut the pace, not what we happened to send. Over a second that held a pause of
            # ours the count is low (85 req/s paced at 108, measured), and that rate took 2 s to regrow.
            base = current if self._rate_confirmed else min(current, observed)
            self.rate = max(0.5, base * RATE_DECREASE)
            self.next_slot = max(self.next_slot, self.paused_until, now + 1.0 / self.rate)
            if not first:  # paced already: the rate was the problem, not the requests in flight
                self._rate_confirmed = True
                self._last_cut = now
                return
        self._cut(now)

    def _queued(self) -> bool:
        """Whether the recent answers, not just the last, took far longer than the usual."""
        recent = sorted(list(self._latencies)[-LATENCY_WINDOW:])
        return self._slow(recent[len(recent) // 2])

    def _slow(self, latency: float) -> bool:
        return latency > LATENCY_TOLERANCE * self._low_latency() + 0.01

    def _low_latency(self) -> float:
        ordered = sorted(self._latencies)
        return ordered[len(ordered) // 4]

    def _sending_rate(self, now: float) -> float:
        """Requests started per second over the last second (or since the first, if sooner)."""
        starts = self._recent_starts
        counted = max(1.0, self.limit)
        if len(starts) >= 2:
            span = max(now - starts[0], 0.05)
            counted = len(starts) / span if span < 1.0 else float(len(starts))
        if not self._latencies:
            return counted
        # Early on, a second's count is still ramping up: what is in flight over the usual latency
        # is the rate being sent now. Too high an estimate costs a few 429s; too low, a long crawl.
        return max(counted, (self.in_flight + 1) / max(self._low_latency(), 0.001))

    def _cut(self, now: float) -> None:
        self.limit = max(float(self.floor), self.limit * DECREASE)
        self._last_cut = now
        self._calm_since = now

    def _grow(self, now: float) -> None:
        # Additive increase: about one more request in flight per `limit` good answers, and only
        # while requests use at least half the limit (no growth on evidence never tested).
        if 2 * (self.in_flight + 1) >= self.limit and self.limit < self.ceiling:
            self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)
            self.stats.peak_limit = max(self.stats.peak_limit, int(self.limit))
        if self.rate is not None:
            calm = now - self._calm_since
            if calm > 0:
                step = RATE_INCREASE if self._rate_confirmed else RATE_PROBE_INCREASE
                self.rate += self.rate * step * min(calm, 1.0)
                self._calm_since = now


class Controller:
    """`AimdState` behind a lock, with blocking admission for threads and awaitable admission for
    coroutines: `started = acquire()` / `await aacquire()`, then `release(started, status)`."""

    def __init__(
        self,
        state: AimdState,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self._clock = clock
        self._changed = threading.Condition()
        # Coroutines waiting for a slot, each with its loop: a release from any thread wakes them.
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def stats(self) -> Stats:
        return self.state.stats

    def _admit(self, deadline: float | None) -> tuple[float | None, float | None]:
        """Under the lock: (start time, None) if a request may start now, else (None, how long to
        wait at most: None until a release)."""
        now = self._clock()
        wait = self.state.wait_before_start(now)
        if wait <= 0:
            return self.state.start(now), None
        if deadline is not None and now >= deadline:
            raise TimeoutError("no request slot within the timeout")
        bound = None if wait == float("inf") else wait
        if deadline is not None:
            bound = min(bound if bound is not None else deadline - now, deadline - now)
        return None, bound

    def acquire(self, timeout: float | None = None) -> float:
        """Block until a request may start; returns its start time (pass it to `release`)."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._changed:
            while True:
                started, bound = self._admit(deadline)
                if started is not None:
                    return started
                self._changed.wait(bound)

    async def aacquire(self, timeout: float | None = None) -> float:
        """`acquire` for a coroutine: waits without blocking its event loop (the lock is only held
        for a decision, never across a wait), woken by any thread's or coroutine's release."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            with self._changed:
                started, bound = self._admit(deadline)
                if started is not None:
                    return started
                woken: asyncio.Future[None] = loop.create_future()
                self._async_waiters.append((loop, woken))
            try:
                await asyncio.wait((woken,), timeout=bound)
            finally:
                with self._changed, contextlib.suppress(ValueError):
                    self._async_waiters.remove((loop, woken))

    def release(self, started: float, status: int | None, retry_after: float | None = None) -> None:
        """A request admitted at `started` ended with `status`; safe from threads and coroutines."""
        with self._changed:
            self.state.finish(started, self._clock(), status, retry_after)
            self._changed.notify_all()
            waiters, self._async_waiters = self._async_waiters, []
        for loop, woken in waiters:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits there
                loop.call_soon_threadsafe(_wake, woken)

    def retried(self) -> None:
        with self._changed:
            self.state.retried()

    def read_ahead(self) -> int:
        """How many requests a driver should have issued at once: the current limit and one more
        queued behind it. More would only hold finished pages in memory while they wait."""
        with self._changed:
            return max(1, min(self.state.ceiling, int(self.state.limit) + 1))

    def begin(self) -> Stats:
        """Start measuring one extraction: peaks restart from now; returns the counts so far."""
        with self._changed:
            stats = self.state.stats
            stats.peak_in_flight = self.state.in_flight
            stats.peak_limit = int(self.state.limit)
            return dataclasses.replace(stats)

    def since(self, baseline: Stats) -> dict[str, float | int]:
        """What this connection's requests met since `begin()` (peaks: the highest since then)."""
        with self._changed:
            now = self.state.stats
            return {
                "requests": now.requests - baseline.requests,
                "pages": now.answered - baseline.answered,
                "retries": now.retries - baseline.retries,
                "http_429": now.throttled - baseline.throttled,
                "http_503": now.unavailable - baseline.unavailable,
                "peak_in_flight": now.peak_in_flight,
                "peak_concurrency_limit": now.peak_limit,
                "paused_seconds": round(now.paused_seconds - baseline.paused_seconds, 3),
            }


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


_registry: dict[tuple[str, str], Controller] = {}
_registry_lock = threading.Lock()


def controller_for(
    conn_id: str,
    base_url: str,
    *,
    ceiling: int = DEFAULT_CEILING,
    max_rps: float | None = None,
    initial: int = DEFAULT_INITIAL,
) -> Controller:
    """The process-wide controller of one connection: every hook, thread and page of it share one.

    Settings given later (a hook with another `max_concurrency`) update the ceiling and budget.
    """
    key = (conn_id, base_url)
    with _registry_lock:
        controller = _registry.get(key)
        if controller is None:
            controller = Controller(AimdState(initial=initial, ceiling=ceiling, max_rps=max_rps))
            _registry[key] = controller
        else:
            with controller._changed:
                state = controller.state
                state.ceiling = ceiling
                state.max_rps = max_rps
                state.limit = min(state.limit, float(ceiling))
        return controller


def forget_controllers() -> None:
    """Drop every connection's controller (tests; a new run learns afresh)."""
    with _registry_lock:
        _registry.clear()
