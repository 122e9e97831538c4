"""The concurrent paging driver (`FulfillmentHook.run_plan`) around a head request that waits."""

from __future__ import annotations

from datetime import timedelta

import httpx

from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from tests.fakes import BASE, FakeDropStream, Recorder, dropstream_order

HOST = "http://ds.test/dropstream"


def test_a_head_waiting_for_its_retry_does_not_stop_the_pages_behind_it(set_connection):
    fake = FakeDropStream([dropstream_order(i) for i in range(250)])
    answered_503 = []

    def first_page_once_unavailable(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        if params.get("page") == "1" and params.get("limit") == "10" and not answered_503:
            answered_503.append(True)
            return httpx.Response(503, json={"error": "busy"})
        return fake(request)

    recorder = Recorder(first_page_once_unavailable)
    # The retry waits 0.25-0.3 s; every other answer is instant.
    set_connection("ds", "dropstream", HOST, "api-user", "secret", max_wait=0.3, max_concurrency=8)
    hook = DropStreamHook("ds", transport=httpx.MockTransport(recorder))
    ids = [o.id for o in hook.iter_orders(window=(BASE, BASE + timedelta(minutes=250)), limit=10)]

    assert ids == list(range(250))  # in order, each once
    pages = [int(p["page"]) for p in recorder.data_requests("/dropstream/orders") if p.get("limit") == "10"]
    retry_at = pages.index(1, 1)  # page 1's second attempt
    # Before it, more pages went out than the controller's read-ahead (limit + 1 = 5 at the start,
    # 3 after the 503's cut): the others did not wait behind the head.
    assert pages[0] == 1 and len(set(pages[1:retry_at])) > 5
    assert sorted(pages) == [1, *range(1, 26)]  # nothing read twice but the retried page
