"""The sandbox's leaky-bucket rate limit: exact admissions on a fake clock, and over HTTP."""

from __future__ import annotations

import pytest

from airflow_provider_fulfillment.sandbox.ratelimit import LeakyBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_the_bucket_size_then_429s_with_the_wait_until_one_more_fits():
    clock = Clock()
    bucket = LeakyBucket(10, size=3, clock=clock)
    assert [bucket.admit() for _ in range(3)] == [None, None, None]
    assert bucket.admit() == pytest.approx(0.1)  # one request drains in 1/10 s
    clock.now += 0.1
    assert bucket.admit() is None
    assert bucket.admit() == pytest.approx(0.1)
    clock.now += 1.0  # drained
    assert [bucket.admit() for _ in range(3)] == [None, None, None]
    assert (bucket.admitted, bucket.refused) == (7, 2)


def test_a_steady_rate_at_the_limit_is_always_admitted():
    clock = Clock()
    bucket = LeakyBucket(20, clock=clock)  # size: one second's worth
    for _ in range(200):
        assert bucket.admit() is None
        clock.now += 0.05


def test_bad_rate_is_refused():
    with pytest.raises(ValueError, match="positive rate"):
        LeakyBucket(0)


def test_the_knobs_rate_limit_over_http_and_count_429s(sb, ds):
    sb.set_faults(bucket_rate=1, bucket_size=2, prefix="/dropstream")
    statuses = [ds.get("/stores") for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 429, 429]
    assert float(statuses[2].headers["retry-after"]) > 0
    assert statuses[2].json() == {"error": "Too many requests: rate limit exceeded"}
    counters = sb.counters()
    assert counters.count(path="/dropstream/stores", status=429) == 2
    assert sb.faults.bucket_rate == 1.0
    sb.set_faults(bucket_rate=0)
    assert ds.get("/stores").status_code == 200


def test_bad_bucket_knobs_are_refused(sb):
    with pytest.raises(ValueError, match="bucket_rate must be >= 0"):
        sb.set_faults(bucket_rate=-1)
