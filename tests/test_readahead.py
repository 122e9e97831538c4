"""The byte budget on read-ahead: how many pages a driver may have issued, and the driver obeying it."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from airflow_provider_fulfillment.readahead import UNBOUNDED, ReadAheadBudget
from tests.fakes import BASE, FakeDropStream, Recorder, dropstream_order


def test_pages_fit_the_budget_with_the_page_being_consumed_counted():
    budget = ReadAheadBudget(48 << 20)
    assert budget.pages() == UNBOUNDED  # no answer yet: the controller's start bounds the first round
    budget.observe(3_400_000)
    assert budget.pages() == 7  # 7 pages of 2 x 3.4 MB fit 48 MB: the one being read and 6 ahead
    budget.observe(1_000)  # a smaller page does not loosen it
    assert budget.pages() == 7
    budget.observe(30_000_000)
    assert budget.pages() == 1  # never below one: a serial read is unchanged
    assert ReadAheadBudget(None).pages() == UNBOUNDED


def test_sized_parse_notes_each_body():
    budget = ReadAheadBudget(1 << 20)
    parse = budget.sized(lambda response: len(response.content))
    assert parse(httpx.Response(200, content=b"x" * 1234)) == 1234
    assert budget.largest_body == 1234


def ahead_of_the_consumer(set_connection, read_ahead_bytes: int | None) -> tuple[list[int], int]:
    """(ids read, most page requests sent beyond the pages the consumer has reached), 8 allowed in flight."""
    orders = [dropstream_order(i) for i in range(200)]
    recorder = Recorder(FakeDropStream(orders))
    set_connection("ds", "dropstream", "http://ds.test/dropstream", "u", "p", max_wait=0)
    hook = DropStreamHook("ds", transport=httpx.MockTransport(recorder), max_concurrency=8)
    hook.read_ahead_bytes = read_ahead_bytes
    ids, most = [], 0
    for number, order in enumerate(hook.iter_orders(window=(BASE, BASE + timedelta(minutes=200)), limit=10)):
        ids.append(order.id)
        if number % 10 == 0:
            time.sleep(0.02)  # a page's worth of writing: idle threads send whatever was issued
            sent = sum(
                1 for params in recorder.data_requests("/dropstream/orders") if params["limit"] == "10"
            )
            if number >= 50:  # past the first round, which goes out before any page's size is known
                most = max(most, sent - (number // 10 + 1))
    return ids, most


@pytest.mark.parametrize(("budget", "at_most"), [(1, 0), (None, 14)])
def test_the_driver_issues_no_more_than_the_budget_holds(set_connection, budget, at_most):
    ids, most = ahead_of_the_consumer(set_connection, budget)
    assert ids == list(range(200))
    assert most <= at_most
    if budget is None:
        assert most >= 2  # without the budget 5 run and up to 15 are held (HELD_PER_RUNNING)
