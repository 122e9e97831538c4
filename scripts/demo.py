"""`make demo`: run every example DAG end to end against the local sandbox and summarize what happened,
then three days of the daily ledger DAG against a sandbox whose clock moves a day between runs.

    python scripts/demo.py               # what `make demo` runs

Steps: wipe and recreate `.demo/` in the repository (gitignored); start the sandbox as a subprocess on a
free loopback port (seeded, so every run sees the same world) and wait until it answers; point Airflow
at a throwaway home under `.demo/airflow` (SQLite, the repository's `dags/`, no Airflow examples) and
the `*_default` connections at the sandbox through `AIRFLOW_CONN_*`; `airflow db migrate`; then run
each example DAG with `airflow dags test <dag_id> <logical date>` (the sensor defers and resumes
in-process) and print a summary read back through Airflow's REST API and from the files the DAGs wrote;
then run `example_fulfillment_daily_ledger` for 2026-01-01, -02 and -03, advancing the sandbox's
clock a day before the second and third (`POST /_control/clock`), print what opened, resolved and
was notified each day, and end with the SLA table.
The sandbox is stopped in every case (errors, Ctrl-C). Exit status 0 only if every run ended as
expected. Each run's full log is under `.demo/logs/`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_fulfillment.sandbox.testing import SandboxProcess as Sandbox

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / ".demo"
AIRFLOW_HOME = DEMO_DIR / "airflow"
LOG_DIR = DEMO_DIR / "logs"
DAGS_FOLDER = REPO / "dags"

SEED = 42
ORDERS = 5000  # the default world: the DAGs' defaults (e.g. the sensor's tracking number) live in it
WORLD_END = "2026-01-01"  # the sandbox's default world ends then; records' states are as of then
ALERTS_FILE = AIRFLOW_HOME / "fulfillment-alerts.jsonl"  # FulfillmentAlertNotifier's default
SANDBOX_START_TIMEOUT = 60.0
RUN_TIMEOUT = 600.0
LEDGER_DAG = "example_fulfillment_daily_ledger"
LEDGER_DAYS = ("2026-01-01", "2026-01-02", "2026-01-03")  # the world's end, then a day, then another


@dataclass(frozen=True)
class Step:
    """One `airflow dags test` invocation and the outcome it should have."""

    dag_id: str
    logical_date: str | None
    expect: str = "success"  # or "failed": a run that demonstrates failing fast
    conf: Mapping[str, Any] | None = None
    label: str = ""
    hold_shipment_lookup: bool = False  # hide the tracking number for one lookup, so the sensor defers


@dataclass
class Outcome:
    step: Step
    state: str
    seconds: float
    run_id: str | None = None
    tasks: dict[str, str] = field(default_factory=dict)
    xcoms: dict[str, Any] = field(default_factory=dict)
    deferrals: int = 0
    log: Path | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.state == self.step.expect


# --------------------------------------------------------------------------- output


def say(text: str = "") -> None:
    print(text, flush=True)


def rel(path: str | Path) -> str:
    """A path for humans: relative to the repository when inside it."""
    text = str(path)
    if text.startswith("file://"):
        text = text[len("file://") :]
    with contextlib.suppress(ValueError):
        return str(Path(text).resolve().relative_to(REPO))
    return text


def short_time(value: str | None) -> str:
    if not value:
        return "?"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    if moment.hour == moment.minute == moment.second == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%MZ")


# --------------------------------------------------------------------------- the sandbox


def start_sandbox(log_path: Path, env_path: Path, extra_args: list[str] | None = None) -> Sandbox:
    """The sandbox CLI as a subprocess in its own session (so Ctrl-C reaches us, and we stop it)."""
    from airflow_provider_fulfillment.sandbox.testing import SandboxProcess

    args = ["--seed", str(SEED), "--orders", str(ORDERS), *(extra_args or [])]
    return SandboxProcess(args, env_file=env_path, log_file=log_path, timeout=SANDBOX_START_TIMEOUT, cwd=REPO)


@contextlib.contextmanager
def shipment_lookup_held(sandbox: Sandbox) -> Iterator[dict[str, Any]]:
    """Make DropStream answer 404 to the next shipment lookup only: the tracking number is "not visible
    yet", so the sensor's first check finds nothing and it defers; the trigger's next poll finds it.

    Uses the sandbox's fault knobs (a 404 on every `/dropstream/shipments` request, lifted as soon as
    one was served). Yields a dict whose "held" says whether the sandbox took the knobs.
    """
    status: dict[str, Any] = {"held": False}
    knobs = {"error_every": 1, "error_status": 404, "error_prefix": "/dropstream/shipments"}
    try:
        sandbox.control("DELETE", "/counters")
        sandbox.control("PATCH", "/faults", knobs)
        status["held"] = True
    except urllib.error.HTTPError as error:
        status["reason"] = error.read().decode(errors="replace").strip() or str(error)
    if not status["held"]:
        yield status
        return
    done = threading.Event()

    def lift_after_first_404() -> None:
        while not done.wait(0.1):
            with contextlib.suppress(OSError, ValueError):
                counters = sandbox.control("GET", "/counters")
                if any(
                    entry.get("path") == "/dropstream/shipments" and entry.get("status") == 404
                    for entry in counters.get("by_key", [])
                ):
                    sandbox.control("DELETE", "/faults")
                    return

    watcher = threading.Thread(target=lift_after_first_404, name="lift-404", daemon=True)
    watcher.start()
    try:
        yield status
    finally:
        done.set()
        watcher.join(timeout=5)
        with contextlib.suppress(OSError, ValueError):
            sandbox.control("DELETE", "/faults")


# --------------------------------------------------------------------------- Airflow


def airflow_command() -> list[str]:
    candidate = Path(sys.executable).with_name("airflow")
    return [str(candidate)] if candidate.exists() else [sys.executable, "-m", "airflow"]


def airflow_env(conn_env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment minus any Airflow settings, plus the demo's own."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) and name != "AIRFLOW_HOME"
    }
    env.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "PYTHONUNBUFFERED": "1",
            # `airflow standalone` starts its components as `airflow ...`: this interpreter's first.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            **conn_env,
        }
    )
    return env


def run_logged(command: list[str], env: Mapping[str, str], log_path: Path, timeout: float) -> int:
    with log_path.open("wb") as log:
        try:
            return subprocess.run(
                command,
                cwd=REPO,
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            return -1


_REST_API: Any = None


def rest_api() -> Any:
    """Airflow's public REST API (v2) served in this process by FastAPI's test client: no port, no SQL on
    Airflow's own tables (which change between versions). The demo's throwaway home lets everyone in."""
    global _REST_API
    if _REST_API is None:
        os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
        os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = secrets.token_urlsafe(64)
        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"  # no request log lines in the demo's output
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        client = TestClient(create_app())
        token = client.get("/auth/token").json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        _REST_API = client
    return _REST_API


def latest_run(dag_id: str) -> tuple[str | None, str, dict[str, str], dict[str, Any]]:
    """(run_id, state, {task: state}, {task: return value}) of the DAG's newest run, from the REST API."""
    api = rest_api()
    runs = api.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "-id", "limit": 1}).json()
    if not runs.get("dag_runs"):
        return None, "missing", {}, {}
    run = runs["dag_runs"][0]
    run_id, base = run["dag_run_id"], f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances"
    instances = api.get(base, params={"limit": 1000}).json()["task_instances"]
    tasks = {ti["task_id"]: str(ti["state"]) for ti in instances}
    xcoms: dict[str, Any] = {}
    for entry in api.get(f"{base}/~/xcomEntries", params={"limit": 1000}).json()["xcom_entries"]:
        task_id, key = entry["task_id"], entry["key"]
        value = api.get(f"{base}/{task_id}/xcomEntries/{key}").json().get("value")
        with contextlib.suppress(TypeError, ValueError):
            xcoms[task_id if key == "return_value" else f"{task_id}:{key}"] = (
                json.loads(value) if isinstance(value, str) else value
            )
    return run_id, str(run["state"]), tasks, xcoms


def run_step(step: Step, env: Mapping[str, str], sandbox: Sandbox, index: int) -> Outcome:
    command = [*airflow_command(), "dags", "test", step.dag_id]
    if step.logical_date:
        command.append(step.logical_date)
    if step.conf:
        command += ["--conf", json.dumps(step.conf)]
    log_path = LOG_DIR / f"{index:02d}-{step.dag_id}.log"
    title = f"{step.dag_id} {step.logical_date or ''}".strip() + (f" ({step.label})" if step.label else "")
    say(f"  running {title} ...")
    started = time.monotonic()
    note = ""
    hold = shipment_lookup_held(sandbox) if step.hold_shipment_lookup else contextlib.nullcontext({})
    with hold as held:
        returncode = run_logged(command, env, log_path, RUN_TIMEOUT)
    if step.hold_shipment_lookup and not held.get("held"):
        note = f"the sandbox refused the 404 knob ({held.get('reason', '?')}): no deferral to show"
    seconds = time.monotonic() - started
    run_id, state, tasks, xcoms = latest_run(step.dag_id)
    if returncode == -1:
        state, note = "timed out", f"no result after {RUN_TIMEOUT:.0f} s"
    elif returncode != 0 and state == "success":
        state = "failed"  # the CLI failed after the run (should not happen): do not call it a success
    log_text = log_path.read_text(errors="replace")
    outcome = Outcome(
        step,
        state,
        seconds,
        run_id,
        tasks,
        xcoms,
        log_text.count("[DAG TEST] running trigger in line"),
        log_path,
        note,
    )
    mark = "ok" if outcome.ok else "UNEXPECTED"
    expected = "" if step.expect == "success" else f", expected {step.expect}"
    say(f"    {mark}: {state}{expected} in {seconds:.1f} s (log: {rel(log_path)})")
    return outcome


# --------------------------------------------------------------------------- the summary


def is_manifest(value: Any) -> bool:
    return isinstance(value, dict) and {"uri", "records", "vendor", "resource", "window", "sha256"} <= set(
        value
    )


def read_alerts() -> list[dict[str, Any]]:
    if not ALERTS_FILE.exists():
        return []
    alerts = []
    for line in ALERTS_FILE.read_text().splitlines():
        with contextlib.suppress(ValueError):
            alerts.append(json.loads(line))
    return alerts


def errored_tracking_number(outcomes: list[Outcome]) -> str | None:
    """A tracking number in an errored state, from the DropStream shipments the first DAG extracted."""
    for outcome in outcomes:
        for value in outcome.xcoms.values():
            if is_manifest(value) and value["vendor"] == "dropstream" and value["resource"] == "shipments":
                uri = str(value["uri"])
                if not uri.startswith("file://"):
                    continue
                with Path(uri[len("file://") :]).open() as records:
                    for line in records:
                        record = json.loads(line)
                        if str(record.get("state", "")).startswith("errored") and record.get(
                            "tracking_number"
                        ):
                            return str(record["tracking_number"])
    return None


def print_summary(outcomes: list[Outcome], sandbox: Sandbox, elapsed: float) -> None:
    world = sandbox.summary
    say()
    say("=" * 100)
    say(
        f"Fulfillment demo: sandbox seed {world.get('seed', SEED)}, {world.get('dropstream_orders', '?')} DropStream, "
        f"{world.get('dcl_orders', '?')} DCL and {world.get('stream_orders', '?')} Stream orders, "
        f"world {short_time(world.get('start'))} to {short_time(world.get('end'))}"
    )
    say()
    say("DAG runs")
    for outcome in outcomes:
        step = outcome.step
        mark = "ok " if outcome.ok else "!! "
        when = step.logical_date or "(now)"
        extra = f" [{step.label}]" if step.label else ""
        say(f"  {mark}{step.dag_id:<42} {when:<11} {outcome.state:<8} {outcome.seconds:5.1f} s{extra}")
        if outcome.note:
            say(f"     note: {outcome.note}")
        if not outcome.ok:
            bad = ", ".join(
                f"{task} {state}" for task, state in sorted(outcome.tasks.items()) if state != "success"
            )
            say(f"     tasks: {bad or '-'}; see {rel(outcome.log) if outcome.log else '?'}")

    vendors = ("dropstream", "dcl", "stream")
    manifests = sorted(
        (value for outcome in outcomes for value in outcome.xcoms.values() if is_manifest(value)),
        key=lambda m: (vendors.index(m["vendor"]) if m["vendor"] in vendors else 9, m["resource"], m["uri"]),
    )
    say()
    say("Records extracted")
    say(f"  {'vendor':<11}{'resource':<11}{'window':<28}{'on':<16}{'records':>8}  file")
    for manifest in manifests:
        window = manifest.get("window") or {}
        span = f"{short_time(window.get('start'))} -> {short_time(window.get('end'))}"
        say(
            f"  {manifest['vendor']:<11}{manifest['resource']:<11}{span:<28}{manifest.get('window_field', ''):<16}"
            f"{manifest['records']:>8}  {rel(manifest['uri'])}"
        )

    say()
    say("Reconciliation")
    summaries = [
        (outcome.step.dag_id, value)
        for outcome in outcomes
        for value in outcome.xcoms.values()
        if isinstance(value, dict) and "counts" in value and "orders_read" in value and "uri" in value
    ]
    if not summaries:
        say("  (no reconciliation ran)")
    for dag_id, summary in summaries:
        say(
            f"  {dag_id}: {summary['orders_read']} orders and {summary['shipments_read']} shipments, "
            f"as of {short_time(summary.get('as_of'))}: {summary['open']} findings"
        )
        for kind, count in summary["counts"].items():
            say(f"    {kind:<26}{count:>6}")
        say(f"    -> {rel(summary['uri'])}")

    alerts = read_alerts()
    say()
    say(f"Alerts raised: {len(alerts)} (FulfillmentAlertNotifier -> {rel(ALERTS_FILE)})")
    for alert in alerts:
        message = alert.get("message", "")
        message = message if len(message) <= 150 else message[:147] + "..."
        say(f"  [{alert.get('kind')}] {alert.get('source')}: {message}")

    sensors = [
        (outcome, value)
        for outcome in outcomes
        for value in outcome.xcoms.values()
        if isinstance(value, dict) and {"ident", "found", "raw_status"} <= set(value)
    ]
    if sensors or any(o.step.dag_id == "example_wait_for_shipment" for o in outcomes):
        say()
        say("Shipment sensor")
        for outcome in outcomes:
            if outcome.step.dag_id != "example_wait_for_shipment":
                continue
            state = next((value for o, value in sensors if o is outcome), None)
            deferred = (
                f"deferred {outcome.deferrals}x to the trigger, resumed"
                if outcome.deferrals
                else "no deferral"
            )
            if state:
                say(
                    f"  {state['ident']}: {deferred}; {state['status']} ({state['raw_status']}) "
                    f"since {short_time(state.get('since'))}"
                )
            else:
                tracking = (outcome.step.conf or {}).get("tracking_number", "?")
                failure = next(
                    (a for a in alerts if a.get("run_id") == outcome.run_id and a.get("kind") == "failure"),
                    None,
                )
                reason = failure["message"] if failure else f"task states {outcome.tasks}"
                say(f"  {tracking}: {outcome.state} ({deferred}): {reason}")

    say()
    say("Files")
    say(f"  extracts and discrepancies: {rel(AIRFLOW_HOME / 'fulfillment')}/vendor=*/resource=*/date=*/")
    say(f"  alerts: {rel(ALERTS_FILE)}    run logs: {rel(LOG_DIR)}/    Airflow home: {rel(AIRFLOW_HOME)}")
    failed = [outcome for outcome in outcomes if not outcome.ok]
    say()
    verdict = "every run ended as expected" if not failed else f"{len(failed)} run(s) did not end as expected"
    say(f"{verdict}; took {elapsed:.0f} s")
    say("=" * 100)


# --------------------------------------------------------------------------- the ledger, day by day


def run_ledger_days(env: Mapping[str, str], sandbox: Sandbox, first_index: int) -> list[Outcome]:
    say(f"Running {LEDGER_DAG} for three days; the sandbox's clock moves a day between runs:")
    outcomes: list[Outcome] = []
    for day, logical_date in enumerate(LEDGER_DAYS):
        if day:
            clock = sandbox.control("POST", "/clock", {"advance": "1d"})
            moved = ", ".join(f"{name} {n}" for name, n in clock["applied"].items()) or "nothing"
            say(f"  sandbox clock now {clock['now']}; changes applied: {moved}")
        step = Step(LEDGER_DAG, logical_date, label=f"day {day + 1}")
        outcomes.append(run_step(step, env, sandbox, first_index + day))
    return outcomes


def _keys(keys: list[list[str]], total: int, shown: int = 6) -> str:
    listed = ", ".join(f"{vendor} {kind} {record}" for vendor, kind, record in keys[:shown])
    return listed + (f" and {total - min(total, shown)} more" if total > shown else "")


def print_ledger_story(outcomes: list[Outcome]) -> None:
    """What each day's run loaded, opened, resolved and notified; then the SLA table."""
    say()
    say("=" * 100)
    say("The ledger, day by day (findings open once, stay open while true, resolve; alerts once each)")
    for outcome in outcomes:
        xcoms = outcome.xcoms
        say()
        say(f"  {outcome.step.label}: interval ending {outcome.step.logical_date} ({outcome.state})")
        for task_id, value in sorted(xcoms.items()):
            if task_id.startswith("load_") and isinstance(value, dict):
                merged = {r: value.get(r) or {} for r in ("orders", "shipments")}
                say(
                    f"    {task_id:<16} "
                    + "; ".join(
                        f"{r}: {m.get('inserted', 0)} new, {m.get('updated', 0)} updated, "
                        f"{m.get('state_changes', 0)} state changes"
                        for r, m in merged.items()
                    )
                )
        reconcile = xcoms.get("reconcile") or {}
        if reconcile:
            counts = ", ".join(f"{kind} {n}" for kind, n in reconcile["counts"].items() if n) or "none"
            say(f"    findings open: {reconcile['open']} ({counts})")
            say(f"    opened {reconcile['opened']}: {_keys(reconcile['opened_keys'], reconcile['opened'])}")
            say(
                f"    resolved {reconcile['resolved']}: {_keys(reconcile['resolved_keys'], reconcile['resolved'])}"
            )
            say(f"    still open {reconcile['still_open']}")
        alert = xcoms.get("alert") or {}
        if alert:
            say("    notified:")
            for line in str(alert.get("digest", "")).splitlines():
                say(f"      {line}")
    last = outcomes[-1].xcoms.get("sla") if outcomes else None
    if last:
        from airflow_provider_fulfillment.rules.sla import SlaRow, table

        say()
        say(f"  SLA as of {last['as_of']} (also in the ledger's fulfillment_sla table):")
        for line in table([SlaRow(**row) for row in last["rows"]]).splitlines():
            say(f"    {line}")
    say(
        f"  ledger: {rel(AIRFLOW_HOME / 'fulfillment_ledger.db')} (SQLite; point `fulfillment_ledger` elsewhere for PostgreSQL)"
    )
    say("=" * 100)


# --------------------------------------------------------------------------- main


def prepare_dirs() -> None:
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    for path in (AIRFLOW_HOME, LOG_DIR):
        path.mkdir(parents=True)


def migrate(env: Mapping[str, str]) -> None:
    say("Preparing the Airflow metadata database (SQLite) ...")
    log_path = LOG_DIR / "00-db-migrate.log"
    if run_logged([*airflow_command(), "db", "migrate"], env, log_path, RUN_TIMEOUT) != 0:
        raise RuntimeError(f"`airflow db migrate` failed; see {rel(log_path)}")


def demo() -> int:
    started = time.monotonic()
    prepare_dirs()
    sandbox = start_sandbox(LOG_DIR / "sandbox.log", DEMO_DIR / "sandbox.env")
    outcomes: list[Outcome] = []
    try:
        say(f"Starting the sandbox (seed {SEED}, {ORDERS} orders) ...")
        sandbox.start()
        say(f"  sandbox at {sandbox.url}")
        env = airflow_env(sandbox.conn_env)
        os.environ.update(env)  # this process reads the runs back through Airflow's REST API (latest_run)
        migrate(env)
        say("Running the example DAGs with `airflow dags test`:")
        steps = [
            Step("example_fulfillment_orders_to_shipments", WORLD_END),
            Step("example_dcl_orders", WORLD_END),
            Step("example_stream_orders", WORLD_END),
            Step("example_wait_for_shipment", None, hold_shipment_lookup=True),
        ]
        for index, step in enumerate(steps, start=1):
            outcomes.append(run_step(step, env, sandbox, index))
        errored = errored_tracking_number(outcomes)
        if errored:
            step = Step(
                "example_wait_for_shipment",
                None,
                expect="failed",
                conf={"tracking_number": errored},
                label="an errored shipment: fails fast",
            )
            outcomes.append(run_step(step, env, sandbox, len(outcomes) + 1))
        ledger_outcomes = run_ledger_days(env, sandbox, len(outcomes) + 1)
        outcomes += ledger_outcomes
        print_summary(outcomes, sandbox, time.monotonic() - started)
        print_ledger_story(ledger_outcomes)
    finally:
        sandbox.stop()
    return 0 if outcomes and all(outcome.ok for outcome in outcomes) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)

    def stop_on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    # Ctrl-C stops the demo even when started with SIGINT ignored (e.g. in the background of a script);
    # the commands it starts then get the default disposition back too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return demo()
    except KeyboardInterrupt:
        say("\ninterrupted; the sandbox is stopped")
        return 130
    except RuntimeError as error:
        say(f"\ndemo failed: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
