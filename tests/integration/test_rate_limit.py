"""The adaptive controller against the sandbox's leaky bucket: every record once, 429s counted exactly."""

from __future__ import annotations

import json

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
