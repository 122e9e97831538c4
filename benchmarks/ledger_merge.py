"""Merge throughput and peak memory of the ledger, on SQLite and on PostgreSQL.

`make bench-ledger` (or `python benchmarks/ledger_merge.py`) merges N generated orders into an
empty ledger (`load`), then the same N again (`reload`: every row unchanged, the idempotent
rerun), for each N and each database, each in a fresh subprocess so each peak RSS is its own.
RSS flat in N is the claim: rows stream into the database (COPY on PostgreSQL, executemany in
chunks on SQLite) and the upsert runs in SQL.

PostgreSQL: `--postgres-uri postgresql://user@host:port/db` (a database the run may fill), else a
throwaway cluster is started from the local PostgreSQL binaries (as the tests do) and stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
START = datetime(2026, 1, 1, tzinfo=UTC)


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _orders(n: int) -> Any:
    """N DropStream-like orders, streamed: normalized fields, two line items and a compact raw JSON."""
    from airflow_provider_fulfillment.ledger import LedgerRow
    from airflow_provider_fulfillment.models.common import LineItem, Order

    states = (("new", "pending"), ("processing", "processing"), ("shipped", "shipped"), ("error", "error"))
    for i in range(n):
        raw_status, status = states[i % 4]
        created = START + timedelta(seconds=i)
        items = [
            LineItem.model_construct(line_id=str(2 * i), sku=f"SKU-{i % 997}", quantity=1),
            LineItem.model_construct(line_id=str(2 * i + 1), sku=f"SKU-{i % 89}", quantity=2),
        ]
        record = Order.model_construct(
            vendor="dropstream", id=str(i), number=f"#{100000 + i}", status=status, raw_status=raw_status,
            status_since=created + timedelta(hours=1), created_at=created, ordered_at=created,
            modified_at=None, ship_by=created + timedelta(days=2), items=items,
        )  # fmt: skip
        raw = (
            f'{{"id":{i},"external_display_id":"#{100000 + i}","fulfillment_state":"{raw_status}",'
            f'"created_at":"{created.isoformat()}","store_id":{i % 7},"order_items":'
            f'[{{"id":{2 * i},"sku":"SKU-{i % 997}","quantity":1}},{{"id":{2 * i + 1},"sku":"SKU-{i % 89}","quantity":2}}]}}'
        )
        yield LedgerRow(record, raw)


def child(backend: str, n: int, conn: str) -> dict[str, Any]:
    """One measured run (in its own process): load N orders, then reload them."""
    os.environ["AIRFLOW_CONN_FULFILLMENT_LEDGER"] = conn
    from airflow_provider_fulfillment.ledger import Ledger

    ledger = Ledger()
    assert ledger.backend == backend, ledger.backend
    with ledger.dialect.transaction() as cursor:  # connect and migrate before the clock starts
        cursor.execute("DELETE FROM fulfillment_orders")  # a reused --postgres-uri database starts empty
        cursor.execute("DELETE FROM fulfillment_state_changes")
    base_rss = _rss_mb()
    results: dict[str, Any] = {"backend": backend, "orders": n, "base_rss_mb": round(base_rss)}
    for phase in ("load", "reload"):
        started = time.perf_counter()
        merged = ledger.merge("orders", _orders(n), conn_id="bench", observed_at=START + timedelta(days=3))
        seconds = time.perf_counter() - started
        expected = {"load": merged.inserted, "reload": merged.unchanged}[phase]
        if expected != n:
            raise SystemExit(f"{backend} {phase}: expected {n} rows, got {merged}")
        results[phase] = {"seconds": round(seconds, 2), "rows_per_s": round(n / seconds)}
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    results["grown_mb"] = round(results["peak_rss_mb"] - base_rss)
    if ledger.counts()["fulfillment_orders"] != n:
        raise SystemExit(f"{backend}: the ledger does not hold {n} orders")
    ledger.close()
    return results


def _run_child(backend: str, n: int, conn: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, __file__, "--child", backend, str(n), conn],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{backend} {n}: failed\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict[str, Any]], machine: str) -> str:
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}.",
        "",
        "| database | orders | load s | load rows/s | reload s | reload rows/s | peak RSS MB | RSS grown MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['orders']:,} | {r['load']['seconds']:.1f} | {r['load']['rows_per_s']:,} | "
            f"{r['reload']['seconds']:.1f} | {r['reload']['rows_per_s']:,} | {r['peak_rss_mb']} | {r['grown_mb']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--orders", default="100000,1000000", help="comma-separated N (default 100000,1000000)"
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-uri", default=None)
    parser.add_argument("--output", default=None, help="also write the table to this file")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        backend, n, conn = args.child
        print(json.dumps(child(backend, int(n), conn)))
        return
    sizes = [int(value) for value in args.orders.split(",")]
    backends = args.backends.split(",")
    server = None
    results: list[dict[str, Any]] = []
    try:
        for backend in backends:
            for n in sizes:
                if backend == "sqlite":
                    folder = tempfile.mkdtemp(prefix="ledger-bench-")
                    conn = json.dumps({"conn_type": "sqlite", "host": os.path.join(folder, "ledger.db")})
                else:
                    if args.postgres_uri:
                        conn = args.postgres_uri
                    else:
                        if server is None:
                            sys.path.insert(0, str(ROOT))
                            from tests.postgres import start_postgres

                            server = start_postgres()
                        conn = server.connection_json(server.create_database("bench"))
                result = _run_child(backend, n, conn)
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        if server is not None:
            server.stop()
    machine = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    text = table(results, machine)
    print(text)
    if args.output:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
