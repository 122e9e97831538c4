"""The adaptive controller against the sandbox's leaky bucket: every record once, 429s counted exactly."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_provider_fulfillment.concurrency import controller_for
from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from airflow_provider_fulfillment.sandbox.testing import run_sandbox

pytestmark = pytest.mark.integration

CONN_ID = "dropstream_default"


@pytest.fixture(scope="module")
def sandbox():
    with run_sandbox(seed=11, orders=1500) as server:
        yield server


def connect(sandbox, monkeypatch, **extra) -> str:
    body = json.loads(sandbox.conn_env()["AIRFLOW_CONN_DROPSTREAM_DEFAULT"])
    body["extra"] = {"max_attempts": 30, **extra}
    monkeypatch.setenv("AIRFLOW_CONN_DROPSTREAM_DEFAULT", json.dumps(body))
    return body["host"]


def test_over_the_limit_every_429_is_seen_retried_and_counted(sandbox, monkeypatch):
    sandbox.reset()
    host = connect(sandbox, monkeypatch)
    sandbox.set_faults(bucket_rate=40, bucket_size=2, prefix="/dropstream", latency=0.01)
    hook = DropStreamHook(max_concurrency=8)
    ids = [
        order["id"]
        for order in hook.iter_orders(window=(sandbox.world.start, sandbox.world.end), limit=100, raw=True)
    ]
    assert sorted(ids) == sorted(sandbox.world.dropstream.order_ids()) and len(set(ids)) == len(ids)
    served = sandbox.counters()
    refused = served.count(prefix="/dropstream/orders", status=429)
    stats = controller_for(CONN_ID, host).stats
    assert refused > 0, "the bucket never refused: the test would prove nothing"
    # Every refusal was met by this connection's controller, and each one cost one retry.
    assert stats.throttled == refused
    assert stats.retries == refused
    # (the token request travels inside the first page request's slot)
    assert stats.requests == served.count(prefix="/dropstream/orders")
    assert controller_for(CONN_ID, host).state.rate is not None  # it learnt to pace


def test_a_budget_under_the_limit_meets_no_429_at_all(sandbox, monkeypatch):
    sandbox.reset()
    host = connect(sandbox, monkeypatch, max_requests_per_second=15)
    # A burst of 3: the token request travels inside the first request's slot, unpaced.
    sandbox.set_faults(bucket_rate=30, bucket_size=3, prefix="/dropstream")
    hook = DropStreamHook(max_concurrency=8)
    ids = [
        order["id"]
        for order in hook.iter_orders(window=(sandbox.world.start, sandbox.world.end), limit=100, raw=True)
    ]
    assert len(ids) == len(set(ids)) == len(sandbox.world.dropstream.order_ids())
    assert sandbox.counters().count(prefix="/dropstream", status=429) == 0
    assert controller_for(CONN_ID, host).stats.throttled == 0


def _poll_states(sandbox, host: str, threads: int, coroutines: int, **faults) -> tuple[list, list, dict]:
    """`threads` sensor pokes (sync `get_state` in worker threads) and `coroutines` trigger polls
    (`aget_state` on one event loop) of distinct orders, all at once on one connection, under the
    sandbox `faults`; returns their states and what the connection's controller met meanwhile."""
    ids = sorted(sandbox.world.dropstream.order_ids())[: threads + coroutines]
    sync_hook, async_hook = DropStreamHook(), DropStreamHook()
    controller = controller_for(CONN_ID, host)

    async def polls() -> tuple[list, list, dict]:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(threads) as pool:
            # Sign in first (each hook once), so what is counted below is the polls alone.
            await loop.run_in_executor(pool, sync_hook.get_state, "order", ids[0])
            await async_hook.aget_state("order", ids[0])
            sandbox.set_faults(**faults)
            sandbox.reset_counters()
            baseline = controller.begin()
            poked = [loop.run_in_executor(pool, sync_hook.get_state, "order", i) for i in ids[:threads]]
            polled = [async_hook.aget_state("order", i) for i in ids[threads:]]
            states = await asyncio.gather(asyncio.gather(*poked), asyncio.gather(*polled))
        await async_hook.http.aclose()
        return states[0], states[1], controller.since(baseline)

    return asyncio.run(polls())


def test_trigger_polls_share_the_budget_with_threads_and_meet_no_429(sandbox, monkeypatch):
    sandbox.reset()
    host = connect(sandbox, monkeypatch, max_requests_per_second=8)
    # 20 a second with bursts of 2: the budget holds only if the loop's polls are paced with the
    # threads' (24 requests at once would meet ~20 refusals).
    poked, polled, met = _poll_states(
        sandbox, host, threads=12, coroutines=12, bucket_rate=20, bucket_size=2, prefix="/dropstream"
    )
    assert all(state.found for state in poked + polled) and len(poked) == len(polled) == 12
    served = sandbox.counters()
    assert served.count(prefix="/dropstream", status=429) == 0
    assert served.count(prefix="/dropstream") == 24  # one GET per poll, nothing retried
    assert met["requests"] == 24 and met["http_429"] == 0 and met["retries"] == 0


def test_trigger_polls_over_the_limit_every_429_is_met_by_the_controller(sandbox, monkeypatch):
    sandbox.reset()
    host = connect(sandbox, monkeypatch)
    poked, polled, met = _poll_states(
        sandbox, host, threads=8, coroutines=16, bucket_rate=15, bucket_size=1, prefix="/dropstream"
    )
    assert all(state.found for state in poked + polled)
    served = sandbox.counters()
    refused = served.count(prefix="/dropstream", status=429)
    assert refused > 0, "the bucket never refused: the test would prove nothing"
    # Every refusal, the loop's and the threads', reached the one controller and cost one retry;
    # every request it admitted is one the sandbox saw.
    assert met["http_429"] == refused and met["retries"] == refused
    assert met["requests"] == served.count(prefix="/dropstream") == 24 + refused
    assert met["paused_seconds"] > 0 and controller_for(CONN_ID, host).state.rate is not None
