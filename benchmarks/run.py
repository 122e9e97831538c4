"""Throughput and peak memory of DropStream extraction, against a plain httpx loop, in one run.

`make bench` (or `python benchmarks/run.py`) starts the sandbox with a seeded world, then for each
scenario (no injected latency: CPU-bound; 50 ms a request: latency-bound) runs every variant in
its own subprocess (so each peak RSS is its own) and prints a table of records/s, peak RSS and
the ratio to the plain loop. Variants:

  plain        httpx + json.loads over the session pages (the floor)
  hook-seq     DropStreamHook, session paging, one request at a time (models)
  hook-seq-raw DropStreamHook, session paging, raw=True (the vendor's JSON as dicts)
  hook-conc    DropStreamHook, windowed page paging, max_concurrency in flight (raw=True)
  hook-conc8   the same with 8 requests in flight (round-trip-bound scenarios only)
  extract      FulfillmentExtractOperator end to end to a local JSONL file
  httpoperator the http provider's HttpOperator with a pagination_function (session pages)

Every variant must return exactly the world's order count, or the run fails: a fast wrong
answer is not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
VARIANTS = ("plain", "hook-seq", "hook-seq-raw", "hook-conc", "hook-conc8", "extract", "httpoperator")
LOGIN, PASSWORD = "bench-user", "bench-password"


# --------------------------------------------------------------------------- workers


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _token(base: str) -> str:
    answer = httpx.post(
        f"{base}/auth/token", auth=(LOGIN, PASSWORD), json={"grant_type": "client_credentials"}
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def worker_plain(base: str, args: argparse.Namespace) -> int:
    """What a careful engineer writes by hand: one client, session pages, json.loads, count."""
    headers = {"Authorization": f"Bearer {_token(base)}"}
    count = 0
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        # The same pages the hook's session asks for (it reads sessions in created_at order).
        params: dict[str, Any] = {"limit": args.limit, "sort": "created_at"}
        while True:
            body = json.loads(client.get("/orders", params=params).content)
            orders = body["orders"]
            for _record in orders:  # a consumer visits every record, as with the hook
                count += 1
            if len(orders) < args.limit:
                return count
            params = {"session_id": body["session_id"]}


def _hook(args: argparse.Namespace, concurrency: int):
    from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook

    return DropStreamHook("dropstream_default", max_concurrency=concurrency)


def worker_hook_seq(base: str, args: argparse.Namespace, raw: bool = False) -> int:
    hook = _hook(args, 1)
    return sum(1 for _ in hook.iter_orders(paging="session", limit=args.limit, raw=raw))


def worker_hook_conc(base: str, args: argparse.Namespace, concurrency: int | None = None) -> int:
    hook = _hook(args, concurrency or args.concurrency)
    window = (datetime.fromisoformat(args.window_start), datetime.fromisoformat(args.window_end))
    return sum(1 for _ in hook.iter_orders(window=window, limit=args.limit, raw=True))


def worker_extract(base: str, args: argparse.Namespace) -> int:
    from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator

    out = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        operator = FulfillmentExtractOperator(
            task_id="bench_extract",
            conn_id="dropstream_default",
            resource="orders",
            destination=str(out),
            window=(args.window_start, args.window_end),
        )
        manifest = operator.execute(context={})
        return int(manifest["records"])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def worker_httpoperator(base: str, args: argparse.Namespace) -> int:
    from airflow.providers.http.operators.http import HttpOperator

    token = _token(base)

    def next_page(response: Any) -> dict[str, Any] | None:
        body = response.json()
        if len(body["orders"]) < args.limit:
            return None
        # A query string, not a dict: HttpOperator merges dicts, and a DropStream continuation
        # must carry only session_id.
        return {"data": f"session_id={body['session_id']}"}

    operator = HttpOperator(
        task_id="bench_http",
        http_conn_id="bench_http",
        method="GET",
        endpoint="/orders",
        data=f"limit={args.limit}",
        headers={"Authorization": f"Bearer {token}"},
        pagination_function=next_page,
        response_filter=lambda responses: sum(len(r.json()["orders"]) for r in responses),
    )
    return int(operator.execute(context={}))


_IMPORTS = {
    "hook-seq": ["airflow_provider_fulfillment.hooks.dropstream"],
    "hook-seq-raw": ["airflow_provider_fulfillment.hooks.dropstream"],
    "hook-conc": ["airflow_provider_fulfillment.hooks.dropstream"],
    "hook-conc8": ["airflow_provider_fulfillment.hooks.dropstream"],
    "extract": [
        "airflow_provider_fulfillment.operators.extract",
        "airflow_provider_fulfillment.hooks.dropstream",
    ],
    "httpoperator": ["airflow.providers.http.operators.http"],
}


def run_worker(args: argparse.Namespace) -> None:
    """One variant in this process. Imports come first and are not timed: an Airflow worker has
    them loaded already. The RSS they cost is reported apart from what the extraction adds."""
    import importlib

    for module in _IMPORTS.get(args.worker, []):
        importlib.import_module(module)
    baseline_rss = _peak_rss_mb()
    base = args.base_url
    started = time.perf_counter()
    if args.worker == "plain":
        records = worker_plain(base, args)
    elif args.worker == "hook-seq":
        records = worker_hook_seq(base, args)
    elif args.worker == "hook-seq-raw":
        records = worker_hook_seq(base, args, raw=True)
    elif args.worker == "hook-conc":
        records = worker_hook_conc(base, args)
    elif args.worker == "hook-conc8":
        records = worker_hook_conc(base, args, concurrency=8)
    elif args.worker == "extract":
        records = worker_extract(base, args)
    elif args.worker == "httpoperator":
        records = worker_httpoperator(base, args)
    else:
        raise SystemExit(f"unknown variant {args.worker}")
    seconds = time.perf_counter() - started
    peak = _peak_rss_mb()
    print(
        json.dumps(
            {"records": records, "seconds": seconds, "peak_rss_mb": peak, "grown_rss_mb": peak - baseline_rss}
        )
    )


# --------------------------------------------------------------------------- orchestration


# On a machine with two cores or more, the sandbox gets one and the measured client another, so
# neither steals the other's CPU and runs compare fairly.
SANDBOX_CPU, CLIENT_CPU = 1, 0


def _pin(cpu: int):
    def pin() -> None:
        if (os.cpu_count() or 1) > cpu and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu})

    return pin


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sandbox:
    """The sandbox in its own process, so its CPU is not charged to the variant being measured."""

    def __init__(self, orders: int, seed: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow_provider_fulfillment.sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--seed",
                str(seed),
                "--orders",
                str(orders),
                "--dropstream-user",
                LOGIN,
                "--dropstream-password",
                PASSWORD,
                "--session-ttl",
                "600",
                "--token-ttl",
                "3600",
                # Every rendered record stays cached (the warm-up renders them), so serving a page is
                # a join of cached bytes and the sandbox is not what is measured. The 1M world would
                # need ~3.4 GB for that; it measures the client's memory, not speed.
                "--record-cache",
                str(orders if orders <= 200_000 else 20_000),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_pin(SANDBOX_CPU),
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"sandbox exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                httpx.get(f"{self.url}/_control/health", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("sandbox did not start within 120 s")

    def set_latency(self, milliseconds: float) -> None:
        httpx.patch(f"{self.url}/_control/faults", json={"latency": milliseconds / 1000}).raise_for_status()

    def world(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_control/world").json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def measure(
    variant: str, sandbox: Sandbox, args: argparse.Namespace, window: tuple[str, str], limit: int
) -> dict[str, Any]:
    base = f"{sandbox.url}/dropstream"
    env = {
        **os.environ,
        "AIRFLOW_CONN_DROPSTREAM_DEFAULT": json.dumps({
            "conn_type": "dropstream", "host": base, "login": LOGIN, "password": PASSWORD,
            "extra": {"max_attempts": 3, "timeout": 120},
        }),
        "AIRFLOW_CONN_BENCH_HTTP": json.dumps({"conn_type": "http", "host": base}),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }  # fmt: skip
    command = [
        sys.executable, __file__, "--worker", variant, "--base-url", base, "--limit", str(limit),
        "--concurrency", str(args.concurrency), "--window-start", window[0], "--window-end", window[1],
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=3600, preexec_fn=_pin(CLIENT_CPU)
    )
    if done.returncode != 0:
        return {
            "variant": variant,
            "error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed",
        }
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["variant"] = variant
    result["records_per_s"] = result["records"] / result["seconds"] if result["seconds"] else 0.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=100_000, help="DropStream orders in the world")
    parser.add_argument("--million", action="store_true", help="also run the 1,000,000-order memory check")
    parser.add_argument(
        "--latency-ms", type=float, default=50.0, help="injected latency of the second scenario"
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--limit", type=int, default=1000, help="page size (our default: the API's maximum)")
    parser.add_argument(
        "--small-limit", type=int, default=100, help="page size of the round-trip-bound scenario"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--output", type=Path, help="also write the markdown table here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--window-start", help=argparse.SUPPRESS)
    parser.add_argument("--window-end", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variant(s): {', '.join(sorted(unknown))}")
    sizes = [args.orders] + ([1_000_000] if args.million else [])
    rows: list[dict[str, Any]] = []
    for size in sizes:
        sandbox = Sandbox(size, args.seed)
        try:
            world = sandbox.world()
            expected = int(world["dropstream_orders"])
            # The whole world: every order was created in [start, end).
            window = (world["start"], world["end"])
            measure("plain", sandbox, args, window, args.limit)  # untimed: warms the sandbox's record cache
            latency = f"{args.latency_ms:g} ms latency"
            scenarios = [
                ("cpu-bound", 0.0, args.limit, [v for v in variants if v != "hook-conc8"]),
                (latency, args.latency_ms, args.limit, variants),
                # The API's default page size: round trips, not parsing, bound the time.
                (f"{latency}, {args.small_limit}-record pages", args.latency_ms, args.small_limit,
                 [v for v in variants if v in ("plain", "hook-seq-raw", "hook-conc", "hook-conc8", "httpoperator")]),
            ]  # fmt: skip
            if size >= 1_000_000:  # the 1M run measures memory, not latency
                scenarios = [
                    (
                        "cpu-bound",
                        0.0,
                        args.limit,
                        [v for v in variants if v in ("plain", "hook-conc", "extract")],
                    )
                ]
            for scenario, latency_ms, limit, chosen in scenarios:
                sandbox.set_latency(latency_ms)
                for variant in chosen:
                    result = measure(variant, sandbox, args, window, limit)
                    result.update(scenario=scenario, orders=size, expected=expected, limit=limit)
                    rows.append(result)
                    print(_line(result), flush=True)
        finally:
            sandbox.stop()
    table = render(rows, args)
    print()
    print(table)
    if args.output:
        args.output.write_text(table + "\n")
    wrong = [r for r in rows if "error" in r or r["records"] != r["expected"]]
    if wrong:
        raise SystemExit(f"{len(wrong)} variant(s) failed or returned a wrong count")


def _line(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"{result['scenario']:>18} {result['variant']:>13}: FAILED {result['error']}"
    return (
        f"{result['scenario']:>18} {result['variant']:>13}: {result['records']:>9,} records in "
        f"{result['seconds']:7.2f} s = {result['records_per_s']:>9,.0f}/s, peak RSS {result['peak_rss_mb']:6.0f} MB "
        f"(+{result['grown_rss_mb']:.0f} MB over imports)"
    )


def render(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    header = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores (sandbox and client "
        f"pinned to one each), Python {sys.version.split()[0]}, page size {args.limit} unless the scenario "
        f"says otherwise, max_concurrency {args.concurrency}.",
        "",
        "| orders | scenario | variant | records | seconds | records/s | × plain | peak RSS MB | RSS grown by the run MB |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    floor = {
        (r["orders"], r["scenario"]): r["records_per_s"]
        for r in rows
        if r["variant"] == "plain" and "error" not in r
    }
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['orders']:,} | {r['scenario']} | {r['variant']} | failed | | | | | |")
            continue
        base = floor.get((r["orders"], r["scenario"]))
        ratio = f"{r['records_per_s'] / base:.2f}" if base else "—"
        lines.append(
            f"| {r['orders']:,} | {r['scenario']} | {r['variant']} | {r['records']:,} | {r['seconds']:.2f} | "
            f"{r['records_per_s']:,.0f} | {ratio} | {r['peak_rss_mb']:.0f} | {r['grown_rss_mb']:.0f} |"
        )
    return "\n".join(header + lines)


if __name__ == "__main__":
    main()
