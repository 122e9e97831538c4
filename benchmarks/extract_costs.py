"""Client CPU per record of each step of a JSON-lines extraction of DropStream orders, each timed alone.

    python benchmarks/extract_costs.py [ORDERS]

Reads the orders of an in-process sandbox as vendor bytes once, then times (best of 5, CPU
seconds) the page split, the drift check (the strict decode alone, the walk it replaces, and
`DriftMeter.observe` as the extract calls it), sha256 and the line writes. Results are discarded
as they are made, as the extract does: keeping 30,000 decoded records alive would time the
garbage collector instead.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from pydantic_core import from_json

from airflow_provider_fulfillment.drift import DriftMeter, field_drift, schema_of, strict_decoder
from airflow_provider_fulfillment.hooks import get_hook
from airflow_provider_fulfillment.models.dropstream import DropStreamOrder
from airflow_provider_fulfillment.rawpages import PageSplitter, RawRecord
from airflow_provider_fulfillment.sandbox.testing import run_sandbox

# What DropStreamHook's bytes parser decodes of an orders page (hooks/dropstream.py).
PAGE_META = ("session_id", "page", "limit", "total_count", "total_pages", "max_total_reached")
RAW_FIELDS = ("id", "created_at", "ordered_at", "fulfillment_state")
EVERYTHING = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


def read_records(orders: int) -> list[RawRecord]:
    with run_sandbox(seed=42, orders=orders) as sandbox:
        os.environ.update(sandbox.conn_env())
        hook = get_hook("dropstream_default")
        try:
            return list(hook.iter_orders(window=EVERYTHING, raw="bytes"))
        finally:
            hook.close()


def drain(values: Iterable[object]) -> None:
    for _ in values:
        pass


def best_cpu(step: Callable[[], None], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        step()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    records = read_records(int(sys.argv[1]) if len(sys.argv) > 1 else 30_000)
    pages = [
        b'{"orders":[' + b",".join(r.raw for r in records[i : i + 1000]) + b'],"page":1}'
        for i in range(0, len(records), 1000)
    ]
    splitter = PageSplitter("orders", PAGE_META, RAW_FIELDS)
    strict = strict_decoder(DropStreamOrder)
    schema = schema_of(DropStreamOrder)
    dicts = [from_json(r.raw) for r in records]
    lines = b"".join(r.raw + b"\n" for r in records)

    def observe_all() -> None:
        observe = DriftMeter("dropstream", "orders", DropStreamOrder).observe
        drain(observe(r) for r in records)

    def buffer_lines() -> None:
        buffer = bytearray()
        for record in records:
            buffer += record.raw
            buffer += b"\n"
            if len(buffer) >= 1 << 20:
                buffer = bytearray()

    def write_file() -> None:
        with tempfile.TemporaryFile() as out:
            for start in range(0, len(lines), 1 << 20):
                out.write(lines[start : start + (1 << 20)])

    steps: dict[str, Callable[[], None]] = {
        "split": lambda: drain(splitter.split(page) for page in pages),
        "drift: strict decode": lambda: drain(strict.decode(r.raw) for r in records),
        "drift: from_json (slow path)": lambda: drain(from_json(r.raw) for r in records),
        "drift: field_drift (slow path)": lambda: drain(field_drift(d, schema) for d in dicts),
        "drift: observe": observe_all,
        "sha256": lambda: hashlib.sha256(lines).digest(),
        "line buffer": buffer_lines,
        "file write": write_file,
    }
    print(f"{len(records):,} records, {len(lines) / len(records):,.0f} bytes a record, {len(pages)} pages")
    for name, step in steps.items():
        print(f"{name:>30}: {best_cpu(step) / len(records) * 1e6:6.2f} µs a record")


if __name__ == "__main__":
    main()
