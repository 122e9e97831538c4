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


def _cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process, or of another one (the PostgreSQL backend) by pid."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _orders(n: int) -> Any:
    """N DropStream-like orders, streamed: normalized fields, two line items and a compact raw JSON."""
    from airflow_provider_fulfillment.ledger import LedgerRow
    from airflow_provider_fulfillment.models.common import LineItem, Order

    states = (("new", "pending"), ("processing", "processing"), ("shipped", "shipped"), ("error", "error"))
    # Frozen line items shared across records: generating the input is not what is measured.
    pool = [
        [
            LineItem(line_id=str(2 * k), sku=f"SKU-{k}", quantity=1),
            LineItem(line_id=str(2 * k + 1), sku=f"SKU-{k % 89}", quantity=2),
        ]
        for k in range(997)
    ]
    for i in range(n):
        raw_status, status = states[i % 4]
        created = START + timedelta(seconds=i)
        record = Order(
            vendor="dropstream",
            id=str(i),
            number=f"#{100000 + i}",
            status=status,
            raw_status=raw_status,
            status_since=created + timedelta(hours=1),
            created_at=created,
            ordered_at=created,
            ship_by=created + timedelta(days=2),
            items=pool[i % 997],
        )
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
    backend_pid = None
    if backend == "postgresql":
        with ledger.dialect.transaction() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pid = cursor.fetchone()[0]
    base_rss = _rss_mb()
    results: dict[str, Any] = {"backend": backend, "orders": n, "base_rss_mb": round(base_rss)}
    # What generating the input costs (measured on up to 100,000 rows, scaled): subtracted below.
    sample = min(n, 100_000)
    generation = _cpu_seconds()
    for _ in _orders(sample):
        pass
    generation = (_cpu_seconds() - generation) * n / sample
    results["generation_cpu_s"] = round(generation, 1)
    for phase in ("load", "reload"):
        started, client_cpu = time.perf_counter(), _cpu_seconds()
        server_cpu = _cpu_seconds(backend_pid) if backend_pid else 0.0
        merged = ledger.merge("orders", _orders(n), conn_id="bench", observed_at=START + timedelta(days=3))
        seconds = time.perf_counter() - started
        client_cpu = _cpu_seconds() - client_cpu
        server_cpu = (_cpu_seconds(backend_pid) - server_cpu) if backend_pid else 0.0
        expected = {"load": merged.inserted, "reload": merged.unchanged}[phase]
        if expected != n:
            raise SystemExit(f"{backend} {phase}: expected {n} rows, got {merged}")
        results[phase] = {
            "seconds": round(seconds, 2),
            "rows_per_s": round(n / seconds),
            # Load-independent: what the merge cost in CPU, here (generation included) and in the server;
            # rows per CPU second leaves the generation out.
            "client_cpu_s": round(client_cpu, 1),
            "server_cpu_s": round(server_cpu, 1),
            "rows_per_cpu_s": round(n / max(client_cpu - generation + server_cpu, 1e-9)),
        }
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
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{backend} {n}: failed\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict[str, Any]], machine: str) -> str:
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}.",
        "",
        "| database | orders | phase | seconds | rows/s | client CPU s | server CPU s | rows per CPU s "
        "| peak RSS MB | RSS grown MB |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for phase in ("load", "reload"):
            p = r[phase]
            lines.append(
                f"| {r['backend']} | {r['orders']:,} | {phase} | {p['seconds']:.1f} | {p['rows_per_s']:,} | "
                f"{p['client_cpu_s']} | {p['server_cpu_s'] or '-'} | {p['rows_per_cpu_s']:,} | "
                f"{r['peak_rss_mb']} | {r['grown_mb']} |"
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
    load = os.getloadavg()
    machine = (
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, load average at the end {load[0]:.1f}"
    )
    text = table(results, machine)
    print(text)
    if args.output:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
