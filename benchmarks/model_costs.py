"""Client CPU per record of building DropStream order models: a page at a time, or a record at a time.

    python benchmarks/model_costs.py [PAGES]

Fetches PAGES session pages of 1,000 orders from an in-process sandbox once, then times (CPU
seconds, best of 5, the variants interleaved so load hits them alike) `json.loads` of each page,
the page model (`DropStreamOrderPage.model_validate_json`) and the hook's way since #13 target 2:
the page split into `RawRecord`s, then one `DropStreamOrder.model_validate_json` a record, each
dropped as the next is built. Each with the collector on and off: the difference is its work.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable

from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from airflow_provider_fulfillment.models.dropstream import DropStreamOrder, DropStreamOrderPage
from airflow_provider_fulfillment.rawpages import PageSplitter
from airflow_provider_fulfillment.sandbox.testing import run_sandbox

PAGE = 1000
RAW_FIELDS = ("id", "created_at", "ordered_at", "fulfillment_state")  # as hooks/dropstream.py


def fetch_pages(count: int) -> list[bytes]:
    with run_sandbox(seed=42, orders=count * PAGE) as sandbox:
        os.environ.update(sandbox.conn_env())
        hook = DropStreamHook("dropstream_default", max_concurrency=1)
        try:

            def content(response):
                return response.content

            first = hook.http.request(
                "GET", "/orders", params={"limit": PAGE, "sort": "created_at"}, parse=content
            )
            session = {"session_id": json.loads(first)["session_id"]}
            return [
                first,
                *(
                    hook.http.request("GET", "/orders", params=session, parse=content)
                    for _ in range(count - 1)
                ),
            ]
        finally:
            hook.close()


def main() -> None:
    pages = fetch_pages(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    records = sum(len(json.loads(page)["orders"]) for page in pages)
    splitter = PageSplitter("orders", ("session_id",), RAW_FIELDS)

    def loads() -> None:
        for page in pages:
            for _ in json.loads(page)["orders"]:
                pass

    def page_model() -> None:
        for page in pages:
            for _ in DropStreamOrderPage.model_validate_json(page).orders:
                pass

    def record_models() -> None:
        validate = DropStreamOrder.model_validate_json
        for page in pages:
            for record in splitter.split(page)[0]:
                validate(record.raw)

    variants: dict[str, Callable[[], None]] = {
        "json.loads of the page": loads,
        "page model": page_model,
        "split, then a model a record": record_models,
    }
    print(f"{records:,} orders in {len(pages)} pages, {sum(map(len, pages)) / 1e6:.1f} MB")
    print("| parse | collector | CPU µs a record | × json.loads |\n|---|---|---:|---:|")
    for collector in ("on", "off"):
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(5):
            for name, step in variants.items():
                gc.collect()
                if collector == "off":
                    gc.disable()
                start = time.process_time()
                step()
                best[name] = min(best[name], time.process_time() - start)
                gc.enable()
        floor = best["json.loads of the page"]
        for name, seconds in best.items():
            print(f"| {name} | {collector} | {seconds / records * 1e6:.1f} | {seconds / floor:.2f} |")


if __name__ == "__main__":
    main()
