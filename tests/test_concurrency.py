"""The per-connection AIMD controller, as a pure state machine on a fake clock, and its blocking face."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from airflow_provider_fulfillment.concurrency import (
    RATE_DECREASE,
    AimdState,
    Controller,
    controller_for,
    forget_controllers,
)


def answer(state: AimdState, now: float, status: int | None = 200, latency: float = 0.05, **kw) -> None:
    assert state.wait_before_start(now) == 0
    started = state.start(now)
    state.finish(started, now + latency, status, **kw)


def test_starts_at_the_initial_limit_and_holds_requests_past_it():
    state = AimdState(initial=2, ceiling=8)
    state.start(0.0)
    state.start(0.0)
    assert state.wait_before_start(0.0) == float("inf")
    state.finish(0.0, 0.05, 200)
    assert state.wait_before_start(0.05) == 0


def test_additive_increase_only_while_the_limit_is_what_holds_requests_back():
    state = AimdState(initial=2, ceiling=4)
    for _ in range(20):  # one at a time: the limit of 2 is never tested
        answer(state, 0.0)
    assert state.limit == 2.5  # one at a time uses half of 2.5 at most: no further growth
    now, rounds = 0.0, 0
    while state.limit < 4 and rounds < 10:  # as many in flight as allowed: about +1 per round
        starts = [state.start(now) for _ in range(int(state.limit))]
        for started in starts:
            state.finish(started, now + 0.05, 200)
        now, rounds = now + 0.05, rounds + 1
    assert state.limit == 4.0 and state.stats.peak_limit == 4 and rounds == 4
    for _ in range(8):
        starts = [state.start(now) for _ in range(4)]
        for s in starts:
            state.finish(s, now + 0.05, 200)
    assert state.limit == 4.0  # never past the ceiling


def test_multiplicative_decrease_once_per_round_on_429_and_503():
    state = AimdState(initial=8, ceiling=8)
    starts = [state.start(1.0) for _ in range(8)]
    state.finish(starts[0], 1.05, 503)
    assert state.limit == 4.0
    for s in starts[1:4]:  # sent before the cut: the same congestion, not a new one
        state.finish(s, 1.06, 503)
    assert state.limit == 4.0
    later = state.start(1.1)
    state.finish(later, 1.15, 503)
    assert state.limit == 2.0
    assert state.stats.unavailable == 5 and state.stats.throttled == 0


def test_retry_after_pauses_the_whole_connection():
    state = AimdState(initial=4, ceiling=4)
    started = state.start(10.0)
    state.finish(started, 10.0, 429, retry_after=2.0)
    assert state.wait_before_start(10.5) == pytest.approx(1.5)
    assert state.wait_before_start(12.0) == 0
    assert state.stats.throttled == 1 and state.stats.paused_seconds == 2.0


def test_a_429_teaches_a_rate_just_under_what_was_sent_and_it_creeps_back_up():
    state = AimdState(initial=4, ceiling=4)
    now = 0.0
    for _ in range(50):  # 100 requests/s for half a second
        answer(state, now)
        now += 0.01
    s = state.start(now)
    state.finish(s, now, 429)
    assert state.rate == pytest.approx(RATE_DECREASE * 51 / 0.5)  # the rate just sent (51 in 0.5 s), less 5%
    assert state.pace() == state.rate
    first = state.rate
    # Paced: the next start waits 1/rate after the last.
    assert state.wait_before_start(now) == pytest.approx(1 / first)
    now += 1 / first
    answer(state, now)
    now += 1.0
    answer(state, now)
    # The first 429's rate is a guess taken mid-ramp-up: it grows fast (+50% a second)...
    assert first * 1.50 < state.rate < first * 1.55
    guessed = state.rate
    s = state.start(now)
    state.finish(s, now, 429)  # ...until a second 429 confirms where the limit is
    confirmed = state.rate
    assert confirmed <= guessed * RATE_DECREASE and state.limit == 2.5  # the rate cut, not the limit
    now += 1 / confirmed
    answer(state, now)
    now += 1.0
    answer(state, now)
    assert confirmed * 1.10 < state.rate < confirmed * 1.11  # then about +10% a second


def test_rising_latency_cuts_the_limit():
    state = AimdState(initial=8, ceiling=8)
    for i in range(10):
        answer(state, i * 1.0, latency=0.05)
    assert state.limit == 8.0
    answer(state, 20.0, latency=0.5)  # one slow answer is noise (the machine, a pause of ours)
    answer(state, 21.0, latency=0.05)
    answer(state, 22.0, latency=0.5)
    assert state.limit == 8.0
    answer(state, 23.0, latency=0.5)  # most of the last five ten times the usual: a queue, or a pause?
    assert state.limit == 8.0
    answer(state, 24.0, latency=0.5)  # sent after the answers turned slow, and slow too: the vendor queues us
    assert state.limit == 4.0


def test_a_pause_of_our_own_that_delays_every_answer_in_flight_does_not_cut_the_limit():
    state = AimdState(initial=8, ceiling=8)
    now = 0.0
    for _ in range(20):
        answer(state, now, latency=0.05)
        now += 0.01
    # A full garbage collection of ours stalls the process 150 ms: the six answers then in flight
    # are all read late, one after another, as soon as it ends.
    stalled = [state.start(now + 0.01 * i) for i in range(6)]
    for i, started in enumerate(stalled):
        state.finish(started, now + 0.2 + 0.002 * i, 200)
    assert state.limit == 8.0
    # Requests sent after the pause come back at the usual latency: it was ours, not the vendor's.
    resumed = now + 0.2 + 0.012
    for i in range(4):
        answer(state, resumed + 0.001 * i, latency=0.05)
    assert state.limit == 8.0
    for i in range(10):
        answer(state, resumed + 0.1 + 0.01 * i, latency=0.05)
    assert state.limit == 8.0


def test_a_budget_is_never_exceeded():
    state = AimdState(initial=16, ceiling=16, max_rps=10)
    now, starts = 0.0, []
    while len(starts) < 30:
        wait = state.wait_before_start(now)
        if wait == 0:
            starts.append(state.start(now))
            state.finish(starts[-1], now, 200)
        else:
            now += wait
    assert starts[-1] - starts[0] == pytest.approx(2.9)  # 10 a second, evenly spaced


def _taught_a_rate(state: AimdState, now: float) -> float:
    """Two 429s: the state paces to a confirmed rate; returns the time after them."""
    for _ in range(2):
        started = state.start(now)
        state.finish(started, now, 429)
        now = state.next_slot
    return now


def test_a_late_paced_start_is_made_up_by_the_next_ones_not_lost():
    state = AimdState(initial=128, ceiling=128)  # room in flight: only the pace holds starts back
    _taught_a_rate(state, 0.0)
    interval = 1 / state.rate
    # Every waiting thread wakes 40% of a slot late (a busy interpreter): the pace holds on
    # average, because each late start leaves the next slot where it was due.
    starts = []
    while len(starts) < 50:
        now = state.next_slot + 0.4 * interval
        assert state.wait_before_start(now) == 0
        starts.append(state.start(now))
    assert starts[-1] - starts[0] == pytest.approx(49 * interval)
    # A thread that comes long after its slot does not bring a burst: two slots made up, no more.
    later = now + 100 * interval
    burst = 0
    while state.wait_before_start(later) == 0:
        state.start(later)
        burst += 1
    assert burst == 3


def test_a_budget_is_not_made_up_after_a_late_start():
    state = AimdState(initial=16, ceiling=16, max_rps=10)
    state.start(0.0)
    assert state.wait_before_start(5.0) == 0
    state.start(5.0)  # late by seconds: the next start still waits a whole tenth of a second
    assert state.wait_before_start(5.0) == pytest.approx(0.1)


def test_once_confirmed_a_429_cuts_the_pace_not_a_second_that_held_a_pause_of_ours():
    state = AimdState(initial=16, ceiling=16)
    now = _taught_a_rate(state, 0.0)
    state.rate = 100.0  # grown back to 100 a second by now
    for _ in range(20):  # then our process stalls: 20 starts in the last second, not 100
        started = state.start(now)
        state.finish(started, now + 0.05, 200)
        now += 0.05
    state.rate = 100.0
    started = state.start(now)
    state.finish(started, now + 0.05, 429)
    assert state.rate == pytest.approx(100.0 * RATE_DECREASE)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="ceiling must be at least 1"):
        AimdState(ceiling=0)
    with pytest.raises(ValueError, match="max_requests_per_second must be positive"):
        AimdState(max_rps=0)


def test_the_blocking_controller_bounds_threads_in_flight():
    controller = Controller(AimdState(initial=3, ceiling=3))
    inside, peak, lock = [0], [0], threading.Lock()

    def work() -> None:
        started = controller.acquire()
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        with lock:
            inside[0] -= 1
        controller.release(started, 200)

    threads = [threading.Thread(target=work) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] <= 3 and controller.stats.requests == 20 and controller.state.in_flight == 0


def test_acquire_times_out_when_no_slot_frees():
    controller = Controller(AimdState(initial=1, ceiling=1))
    controller.acquire()
    with pytest.raises(TimeoutError):
        controller.acquire(timeout=0.01)


def test_one_controller_per_connection():
    forget_controllers()
    a = controller_for("ds", "http://x", ceiling=8)
    assert controller_for("ds", "http://x", ceiling=4) is a and a.state.ceiling == 4
    assert controller_for("ds", "http://y") is not a
    forget_controllers()
    assert controller_for("ds", "http://x") is not a


def test_read_ahead_follows_the_limit_not_the_ceiling():
    controller = Controller(AimdState(initial=4, ceiling=16))
    assert controller.read_ahead() == 5
    controller.state.limit = 16.0
    assert controller.read_ahead() == 16
    controller.state.limit = 1.0
    assert controller.read_ahead() == 2


def test_coroutines_and_threads_share_one_limit():
    """A triggerer's event loop and a worker's threads on one connection: one limit for both."""
    controller = Controller(AimdState(initial=3, ceiling=3))
    inside, peak, lock = [0], [0], threading.Lock()

    def enter() -> None:
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])

    def leave() -> None:
        with lock:
            inside[0] -= 1

    def thread_work() -> None:
        started = controller.acquire()
        enter()
        time.sleep(0.002)
        leave()
        controller.release(started, 200)

    async def coroutine_work() -> None:
        started = await controller.aacquire()
        enter()
        await asyncio.sleep(0.002)
        leave()
        controller.release(started, 200)

    async def both() -> None:
        threads = [threading.Thread(target=thread_work) for _ in range(15)]
        for t in threads:
            t.start()
        await asyncio.gather(*(coroutine_work() for _ in range(15)))
        for t in threads:
            await asyncio.to_thread(t.join)

    asyncio.run(both())
    assert peak[0] == 3 and controller.stats.requests == 30 and controller.state.in_flight == 0
    assert controller._async_waiters == []  # no waiter left behind


def test_a_thread_release_wakes_a_waiting_coroutine():
    controller = Controller(AimdState(initial=1, ceiling=1))
    held = controller.acquire()

    async def wait_for_slot() -> float:
        threading.Timer(0.05, controller.release, (held, 200)).start()
        return await controller.aacquire(timeout=5)

    asyncio.run(wait_for_slot())
    assert controller.stats.requests == 2 and controller.state.in_flight == 1


def test_retry_after_from_a_thread_pauses_coroutines_too():
    controller = Controller(AimdState(initial=4, ceiling=4))
    controller.release(controller.acquire(), 429, retry_after=0.3)
    paused_at = time.monotonic()

    async def next_start() -> float:
        await controller.aacquire()
        return time.monotonic()

    assert asyncio.run(next_start()) - paused_at >= 0.3


def test_aacquire_times_out_when_no_slot_frees():
    controller = Controller(AimdState(initial=1, ceiling=1))
    controller.acquire()
    with pytest.raises(TimeoutError):
        asyncio.run(controller.aacquire(timeout=0.01))
    assert controller._async_waiters == []


def test_the_default_ceiling_is_the_one_the_form_and_the_readme_show():
    from pathlib import Path

    from airflow_provider_fulfillment import get_provider_info
    from airflow_provider_fulfillment.concurrency import DEFAULT_CEILING
    from airflow_provider_fulfillment.http import DEFAULT_MAX_CONCURRENCY, ClientSettings

    assert DEFAULT_MAX_CONCURRENCY == DEFAULT_CEILING == ClientSettings("c", "http://x").max_concurrency == 32
    for kind in get_provider_info()["connection-types"]:
        schema = kind["conn-fields"]["max_concurrency"]["schema"]
        assert (schema["default"], schema["minimum"], schema["maximum"]) == (DEFAULT_CEILING, 1, 256)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"| `max_concurrency` | {DEFAULT_CEILING} |" in readme
    assert f"ceiling (default {DEFAULT_CEILING})" in readme
