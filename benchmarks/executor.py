"""One extract task against N mapped extract tasks, on a real Airflow with the LocalExecutor.

`make bench-executor` (or `python benchmarks/executor.py`, after `make install`) starts the sandbox
with a seeded world, then a throwaway Airflow: `db migrate`, the api-server (the task execution API
the LocalExecutor's workers talk to), the dag-processor and the scheduler with the LocalExecutor.
It writes one DAG per N into its own DAGs folder, each the backfill DAG's shape: a
`FulfillmentPartitionOperator` planning the world's interval into partitions of at most
total / N records (+10%), and `FulfillmentExtractOperator.partial(...).expand_kwargs(plan.output)`
in the pool `fulfillment_dropstream_default`, whose slots are N. Each DAG runs once without and
once under the sandbox's rate limit; under the limit, N > 1 runs again on a connection whose
`max_requests_per_second` is 95% of the limit / N. The run reports, from Airflow's own task
instances and the sandbox's counters:

  wall s        the DAG run, first task queued to last task done
  extract s     the mapped extract tasks, first start to last end
  records/s     records written / extract s (every run must write exactly the world's orders)
  served/s      answers the sandbox served (429s excluded) / extract s, and the 429s
  start s       task start overhead: mean of (start - queued) over the extract tasks
  task s        mean extract task duration
  CPU s         user + system CPU of the scheduler's process tree (its workers and their tasks)

An untimed first run warms the sandbox's record cache and Airflow. It takes minutes on a shared
2-core machine, so `make bench` does not run it: `make bench-executor BENCH_EXECUTOR_ARGS=...`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONN_ID = "dropstream_default"
# Under the rate limit, N > 1 also runs with each task's budget (`max_requests_per_second`) set to
# this share of the limit / N: the remedy for controllers that are per process, not per account.
BUDGET_SHARE = 0.95
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"

DAG_TEMPLATE = """
from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG

from airflow_provider_fulfillment.operators.extract import FulfillmentExtractOperator
from airflow_provider_fulfillment.operators.partition import FulfillmentPartitionOperator
from airflow_provider_fulfillment.partitions import pool_name

WINDOW = {window!r}

with DAG(
    dag_id="{dag_id}",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_tasks={n},
) as dag:
    plan = FulfillmentPartitionOperator(
        task_id="plan_partitions", conn_id="{conn_id}", resource="orders", window=WINDOW,
        max_records={max_records}, max_duration=None,
    )
    FulfillmentExtractOperator.partial(
        task_id="extract_orders", conn_id="{conn_id}", resource="orders",
        destination="{destination}", filters={{"limit": {limit}}},
        pool=pool_name("{conn_id}"), progress_interval=3600,
    ).expand_kwargs(plan.output)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def airflow_cli() -> list[str]:
    candidate = Path(sys.executable).with_name("airflow")
    return [str(candidate)] if candidate.exists() else [sys.executable, "-m", "airflow"]


class Airflow:
    """A throwaway Airflow: api-server, dag-processor and a LocalExecutor scheduler in one home."""

    def __init__(self, home: Path, dags: Path, conns: dict[str, Any], parallelism: int) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        (home / "passwords.json").write_text(json.dumps({"admin": self.password}))
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
        }
        self.env.update(
            {
                "AIRFLOW_HOME": str(home),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(parallelism),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            }
        )
        self.env.update(
            {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in conns.items()}
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None

    def start(self) -> Airflow:
        migrated = subprocess.run(
            [*airflow_cli(), "db", "migrate"], env=self.env, capture_output=True, text=True, timeout=600
        )
        if migrated.returncode != 0:
            raise SystemExit(f"`airflow db migrate` failed:\n{migrated.stderr[-3000:]}")
        components = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            "dag-processor": ["dag-processor"],
            "scheduler": ["scheduler"],
        }
        for name, args in components.items():
            log = (self.home / f"{name}.log").open("wb")
            self.processes[name] = subprocess.Popen(
                [*airflow_cli(), *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait(lambda: self._get("/api/v2/monitor/health", auth=False), "the api-server", 300)
        return self

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)

    def _wait(self, ready: Any, what: str, seconds: float) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    tail = (self.home / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise SystemExit(f"the {name} exited:\n{tail}")
            try:
                found = ready()
            except (OSError, urllib.error.HTTPError):
                found = None
            if found:
                return found
            time.sleep(1)
        raise SystemExit(f"{what} was not ready within {seconds:.0f} s")

    def _call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def _get(self, path: str, auth: bool = True) -> Any:
        return self._call("GET", path, auth=auth)

    def token(self) -> str:
        if self._token is None:
            body = json.dumps({"username": "admin", "password": self.password}).encode()
            request = urllib.request.Request(
                self.url + "/auth/token", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                self._token = json.loads(response.read())["access_token"]
        return self._token

    def set_pool(self, conn_id: str, slots: int) -> None:
        from airflow_provider_fulfillment.partitions import pool_name

        pool = pool_name(conn_id)
        body = {"name": pool, "slots": slots, "description": "DropStream API", "include_deferred": False}
        try:
            self._call("PATCH", f"/api/v2/pools/{pool}", body)
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
            self._call("POST", "/api/v2/pools", body)

    def run_dag(self, dag_id: str, timeout: float) -> dict[str, Any]:
        """Trigger one run and wait for it; returns the run and its task instances."""
        self._wait(lambda: self._get(f"/api/v2/dags/{dag_id}"), f"DAG {dag_id}", 300)
        self._call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
        run_id = run["dag_run_id"]
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}"

        def finished() -> Any:
            state = self._get(path)
            return state if state["state"] in ("success", "failed") else None

        run = self._wait(finished, f"run {run_id}", timeout)
        tasks = self._get(f"{path}/taskInstances?limit=100")["task_instances"]
        return {"run": run, "tasks": tasks}


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of a process and every live descendant (and the children they reaped)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        stats[pid] = fields
        children.setdefault(int(fields[1]), []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        fields = stats.get(pid)
        if fields is not None:  # utime stime cutime cstime: fields 14-17 of stat, here 11-14
            total += sum(int(value) for value in fields[11:15]) / tick
        todo.extend(children.get(pid, []))
    return total


def _when(value: str | None) -> float | None:
    from datetime import datetime

    return None if not value else datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def count_records(folder: Path) -> int:
    return sum(sum(1 for _ in path.open("rb")) for path in folder.rglob("*.jsonl"))


def dag_of(n: int, shared: bool) -> tuple[str, str]:
    """(dag id, connection id) of N tasks; `shared`: each task paced to the bucket's rate / N."""
    return (
        (f"bench_executor_n{n}_shared", f"dropstream_share_n{n}")
        if shared
        else (f"bench_executor_n{n}", CONN_ID)
    )


def measure(
    airflow: Airflow,
    sandbox: Any,
    n: int,
    rate: float,
    args: argparse.Namespace,
    out: Path,
    shared: bool = False,
) -> dict[str, Any]:
    dag_id, conn_id = dag_of(n, shared)
    sandbox.set_faults(
        latency=args.latency_ms / 1000,
        bucket_rate=rate,
        bucket_size=max(1, int(rate / 10)),
        prefix="/dropstream",
    )
    airflow.set_pool(conn_id, n)
    sandbox.reset_counters()
    cpu_before = tree_cpu_seconds(airflow.processes["scheduler"].pid)
    result = airflow.run_dag(dag_id, timeout=args.timeout)
    cpu = tree_cpu_seconds(airflow.processes["scheduler"].pid) - cpu_before
    served = sandbox.served()
    tasks = result["tasks"]
    extracts = [t for t in tasks if t["task_id"] == "extract_orders"]
    queued = [_when(t.get("queued_when")) for t in tasks]
    ends = [_when(t.get("end_date")) for t in tasks]
    starts = [_when(t.get("start_date")) for t in extracts]
    extract_ends = [_when(t.get("end_date")) for t in extracts]
    extract_s = max(e for e in extract_ends if e) - min(s for s in starts if s)
    overhead = [
        _when(t["start_date"]) - _when(t["queued_when"])
        for t in extracts
        if t.get("start_date") and t.get("queued_when")
    ]
    durations = [t["duration"] for t in extracts if t.get("duration") is not None]
    records = count_records(out / dag_id)
    shutil.rmtree(out / dag_id, ignore_errors=True)
    return {
        "n": n,
        "rate_limit": rate,
        "shared_budget": shared,
        "state": result["run"]["state"],
        "tasks": len(extracts),
        "records": records,
        "wall_s": max(e for e in ends if e) - min(q for q in queued if q),
        "extract_s": extract_s,
        "records_per_s": records / extract_s if extract_s else 0.0,
        "served_per_s": (served["answers"] - served["http_429"]) / extract_s if extract_s else 0.0,
        "answers": served["answers"],
        "http_429": served["http_429"],
        "start_overhead_s": sum(overhead) / len(overhead) if overhead else float("nan"),
        "task_s": sum(durations) / len(durations) if durations else float("nan"),
        "cpu_s": cpu,
        "load": os.getloadavg()[0],
    }


def render(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"{args.orders:,} DropStream orders, {args.latency_ms:g} ms a request, {args.limit}-record pages, "
        f"LocalExecutor (parallelism {max(args.tasks)}), pool slots = N, Python {sys.version.split()[0]}",
        "",
        "| N | rate limit | tasks | records | wall s | extract s | records/s | × 1 task | served req/s | "
        "429s | start s | task s | CPU s | load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    single = {r["rate_limit"]: r["records_per_s"] for r in rows if r["n"] == 1 and r["state"] == "success"}
    for r in rows:
        base = single.get(r["rate_limit"])
        ratio = f"{r['records_per_s'] / base:.2f}" if base else "—"
        limit = f"{r['rate_limit']:g} req/s" if r["rate_limit"] else "none"
        if r.get("shared_budget"):
            limit += f", budget {r['rate_limit'] * BUDGET_SHARE / r['n']:.2f}/task"
        lines.append(
            f"| {r['n']} | {limit} | {r['tasks']} | {r['records']:,} | {r['wall_s']:.1f} | {r['extract_s']:.1f} | "
            f"{r['records_per_s']:,.0f} | {ratio} | {r['served_per_s']:.1f} | {r['http_429']} of {r['answers']} | "
            f"{r['start_overhead_s']:.1f} | {r['task_s']:.1f} | {r['cpu_s']:.1f} | {r['load']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=40_000, help="DropStream orders in the world")
    parser.add_argument("--tasks", default="1,2,4", help="the N of mapped extract tasks to compare")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="injected latency a request")
    parser.add_argument("--limit", type=int, default=100, help="page size the extract tasks ask for")
    parser.add_argument(
        "--rate-limit", type=float, default=30.0, help="the sandbox's bucket, req/s (0: skip)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one DAG run may take")
    parser.add_argument("--output", type=Path, help="also write the markdown table here")
    args = parser.parse_args()
    args.tasks = [int(n) for n in args.tasks.split(",") if n]
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is not a package
    from run import LOGIN, PASSWORD, Sandbox  # the sandbox exactly as `make bench` starts it

    work = Path(tempfile.mkdtemp(prefix="fulfillment-bench-executor-"))
    sandbox = Sandbox(args.orders, args.seed)
    airflow = None
    rows: list[dict[str, Any]] = []
    try:
        world = sandbox.world()
        total = int(world["dropstream_orders"])
        window = {"start": world["start"], "end": world["end"]}
        dags, out = work / "dags", work / "out"
        dags.mkdir()
        conn = {
            "conn_type": "dropstream",
            "host": f"{sandbox.url}/dropstream",
            "login": LOGIN,
            "password": PASSWORD,
            "extra": {"max_attempts": 20, "timeout": 120},
        }
        conns = {CONN_ID: conn}
        shares = [n for n in args.tasks if n > 1] if args.rate_limit else []
        for n, shared in [(n, False) for n in args.tasks] + [(n, True) for n in shares]:
            dag_id, conn_id = dag_of(n, shared)
            if shared:  # the documented remedy: each task's budget is its share of the known limit
                budget = {"max_requests_per_second": round(args.rate_limit * BUDGET_SHARE / n, 2)}
                conns[conn_id] = {**conn, "extra": {**conn["extra"], **budget}}
            (dags / f"{dag_id}.py").write_text(
                DAG_TEMPLATE.format(
                    n=n,
                    dag_id=dag_id,
                    window=window,
                    conn_id=conn_id,
                    destination=out / dag_id,
                    limit=args.limit,
                    max_records=math.ceil(total / n * 1.1) if n > 1 else total,
                )
            )
        airflow = Airflow(work / "home", dags, conns, parallelism=max(args.tasks) + 1).start()
        # Untimed: fills the sandbox's record cache (as `make bench` does) and Airflow's first-run costs.
        measure(airflow, sandbox, args.tasks[-1], 0.0, args, out)
        for rate in [0.0] + ([args.rate_limit] if args.rate_limit else []):
            for n in args.tasks:
                for shared in (False, True) if rate and n in shares else (False,):
                    row = measure(airflow, sandbox, n, rate, args, out, shared)
                    row["expected"] = total
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        if airflow is not None:
            airflow.stop()
        sandbox.stop()
        shutil.rmtree(work, ignore_errors=True)
    table = render(rows, args)
    print(f"\n{table}")
    if args.output:
        args.output.write_text(table + "\n")
    wrong = [r for r in rows if r["state"] != "success" or r["records"] != r["expected"]]
    if wrong:
        raise SystemExit(f"{len(wrong)} run(s) failed or wrote a wrong record count: {wrong}")


if __name__ == "__main__":
    main()
