"""`make airflow`: Airflow standalone on this machine, with the sandbox behind the example DAGs.

    python scripts/airflow_local.py                       # UI on http://127.0.0.1:8080, login required
    python scripts/airflow_local.py --host 0.0.0.0 --port 8081   # or: make airflow UI_HOST=... UI_PORT=...

Safe by default: the API server listens on loopback only, and the UI asks for a login (user `admin`,
a password generated the first time and printed once, kept in the Airflow home). Every `AIRFLOW__*`
variable you set is passed through and wins over this script's defaults (e.g.
`AIRFLOW__CORE__PARALLELISM=4 make airflow`). The Airflow home (`.airflow/` in the repository, or
`--home`) is kept between runs, so connections, variables and runs you make in the UI stay.

Connections are never shadowed: no `AIRFLOW_CONN_*` is set. `dropstream_default`, `dcl_default` and
`stream_default` are created in the metadata database pointing at the sandbox only where absent;
one that you made or edited is left as it is (DAGs then call your vendor, not the sandbox), and the
output says which is which. One that an earlier run made and you did not touch follows the sandbox
to its new port.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from demo import (
    DAGS_FOLDER,
    REPO,
    SEED,
    airflow_command,
    run_logged,
    start_sandbox,
)  # scripts/ is on sys.path

DEFAULT_HOME = REPO / ".airflow"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
ADMIN = "admin"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
# Marks the connections this script made; one whose description or credentials you changed is yours.
MANAGED = "The local sandbox, made by `make airflow`. Edit or delete it and `make airflow` leaves it alone."
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def say(text: str = "") -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"


def listen_address(args_host: str | None, args_port: int | None, user_env: Mapping[str, str]) -> Listen:
    """--host/--port, else the user's AIRFLOW__API__HOST/PORT, else loopback:8080."""
    host = args_host or user_env.get("AIRFLOW__API__HOST") or DEFAULT_HOST
    port = args_port or int(user_env.get("AIRFLOW__API__PORT") or DEFAULT_PORT)
    return Listen(host, port)


def airflow_env(user_env: Mapping[str, str], home: Path, listen: Listen) -> dict[str, str]:
    """The user's environment (every AIRFLOW__* they set wins) over this script's defaults."""
    defaults = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the connection form's Test button
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{listen.url}/execution/",
    }
    env = {**defaults, **user_env}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            # Flags beat variables: what the user asked this script for, explicitly.
            "AIRFLOW__API__HOST": listen.host,
            "AIRFLOW__API__PORT": str(listen.port),
            "AIRFLOW__API__BASE_URL": env.get("AIRFLOW__API__BASE_URL") or listen.url,
            "PYTHONUNBUFFERED": "1",
            # `airflow standalone` starts its components as `airflow ...`: this interpreter's first.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), user_env.get("PATH", "")]),
        }
    )
    return env


def ensure_password(env: Mapping[str, str], home: Path) -> tuple[str | None, Path | None]:
    """The admin's password: (new password, file) the first time, (None, file) after; (None, None) when
    the user configured their own users or turned the login off."""
    if env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true":
        return None, None
    if env.get("AIRFLOW__CORE__AUTH_MANAGER") != SIMPLE_AUTH_MANAGER:
        return None, None
    if env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS") != f"{ADMIN}:admin":
        return None, None
    path = Path(
        env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        or home / "simple_auth_manager_passwords.json.generated"
    )
    with contextlib.suppress(OSError, ValueError):
        if ADMIN in json.loads(path.read_text() or "{}"):
            return None, path
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(json.dumps({ADMIN: password}) + "\n")
    return password, path


# --------------------------------------------------------------------------- connections


def sandbox_connections(conn_env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """conn_id -> fields of the sandbox's default connections (from the env file the sandbox wrote)."""
    prefix = "AIRFLOW_CONN_"
    return {name[len(prefix) :].lower(): json.loads(value) for name, value in conn_env.items()}


def is_unchanged_sandbox_connection(stored: Any, wanted: Mapping[str, Any]) -> bool:
    """Made by this script for an earlier sandbox, and not touched since: safe to follow the sandbox."""
    if (stored.description or "") != MANAGED or stored.conn_type != wanted["conn_type"]:
        return False
    if stored.login != wanted["login"] or stored.password != wanted["password"]:
        return False
    old, new = urlsplit(stored.host or ""), urlsplit(wanted["host"])
    return old.hostname in LOOPBACK_HOSTS and old.path == new.path


def sync_connections(wanted: Mapping[str, Mapping[str, Any]], user_env: Mapping[str, str]) -> list[str]:
    """Create each sandbox connection in the metadata DB where absent; never replace a user's. One line
    per connection saying what was done. Airflow must be configured (AIRFLOW_HOME etc.) before this."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    lines = []
    with create_session() as session:
        for conn_id, fields in wanted.items():
            variable = f"AIRFLOW_CONN_{conn_id.upper()}"
            stored = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
            if stored is None:
                session.add(Connection(conn_id=conn_id, description=MANAGED, **fields))
                lines.append(f"{conn_id}: created in the metadata DB -> the sandbox at {fields['host']}")
            elif is_unchanged_sandbox_connection(stored, fields):
                if stored.host != fields["host"]:
                    stored.host = fields["host"]
                    lines.append(
                        f"{conn_id}: made by an earlier run, moved to the sandbox at {fields['host']}"
                    )
                else:
                    lines.append(f"{conn_id}: made by an earlier run -> the sandbox at {fields['host']}")
            else:
                lines.append(
                    f"{conn_id}: yours, kept as it is ({stored.conn_type} at {stored.host or '?'}); "
                    "DAGs using it do not call the sandbox"
                )
            if variable in user_env:
                lines[-1] += f" -- but your {variable} is set and takes precedence over the metadata DB"
    return lines


# --------------------------------------------------------------------------- running


def run_standalone(command: list[str], env: Mapping[str, str], on_line: Callable[[str], None]) -> int:
    """Run `airflow standalone` in its own process group, relaying its output line by line. Ctrl-C (or
    SIGTERM) hands it one SIGINT, which it answers by stopping its components; should it not stop in
    time, its whole process group is terminated."""
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
        errors="replace",
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            on_line(line)
        return process.wait()
    except KeyboardInterrupt:
        say("\nstopping Airflow ...")
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
                    break
        raise


def login_banner(
    listen: Listen, password: str | None, password_file: Path | None, env: Mapping[str, str]
) -> str:
    lines = ["", "=" * 78, f"Airflow UI: {listen.url}  (listening on {listen.host}:{listen.port})"]
    if password is not None:
        lines.append(f"Log in as {ADMIN!r} with password {password!r} (shown once; kept in {password_file})")
    elif password_file is not None:
        lines.append(
            f"Log in as {ADMIN!r}; the password was generated on the first run and is in {password_file}"
        )
    elif env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true":
        lines.append(
            "WARNING: no login (your AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True): anyone who reaches it is admin"
        )
    else:
        lines.append("Log in with the users your AIRFLOW__CORE__* auth settings define")
    if listen.host not in LOOPBACK_HOSTS:
        lines.append(f"WARNING: listening on {listen.host}, not loopback: other machines can reach this UI")
    lines += [
        "The example DAGs are paused: unpause one to run its latest interval, or trigger it.",
        "=" * 78,
        "",
    ]
    return "\n".join(lines)


def load_demo_days(env: Mapping[str, str], user_env: Mapping[str, str], logs: Path) -> None:
    """On a first run (an empty ledger of this home, no ledger connection of yours), load `make demo`'s
    three ledger days, so the Fulfillment page opens onto data. They run against a sandbox of their
    own (the demo's world, ending 2026-01-01, its clock moved a day between runs), stopped after."""
    import demo

    from airflow_provider_fulfillment.ledger import Ledger

    if "AIRFLOW_CONN_FULFILLMENT_LEDGER" in user_env:
        return  # your ledger: never filled with demo data
    with Ledger() as ledger:  # $AIRFLOW_HOME/fulfillment_ledger.db, the file the Fulfillment page reads
        if ledger.counts()["fulfillment_findings"]:
            return
    say(
        "Loading three demo days into the ledger, for the Fulfillment page (first run only, a few minutes) ..."
    )
    demo.LOG_DIR = logs
    days_sandbox = start_sandbox(logs / "demo-days-sandbox.log", logs / "demo-days-sandbox.env")
    days_sandbox.start()
    try:
        outcomes = demo.run_ledger_days({**env, **days_sandbox.conn_env}, days_sandbox, 1)
    finally:
        days_sandbox.stop()
    if not all(outcome.ok for outcome in outcomes):
        say(f"  some demo days did not succeed (logs in {logs}); the page shows what was loaded")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", help=f"address the UI listens on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, help=f"the UI's port (default {DEFAULT_PORT})")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="the Airflow home, kept between runs")
    args = parser.parse_args(argv)

    def stop_on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    user_env = dict(os.environ)
    home = args.home.resolve()
    logs = home / "make-airflow-logs"
    logs.mkdir(parents=True, exist_ok=True)
    listen = listen_address(args.host, args.port, user_env)
    env = airflow_env(user_env, home, listen)
    # The world ends at today's midnight (UTC), so scheduled runs and manual triggers find data.
    end = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    sandbox = start_sandbox(logs / "sandbox.log", logs / "sandbox.env", ["--end", end])
    try:
        say(f"Starting the sandbox (seed {SEED}, world ending {end}) ...")
        sandbox.start()
        say(f"  sandbox at {sandbox.url}")
        say(f"Preparing the Airflow home {home} ...")
        if run_logged([*airflow_command(), "db", "migrate"], env, logs / "db-migrate.log", 600) != 0:
            raise RuntimeError(f"`airflow db migrate` failed; see {logs / 'db-migrate.log'}")
        os.environ.update(env)  # configure Airflow in this process too, for the connection sync below
        say("Connections:")
        for line in sync_connections(sandbox_connections(sandbox.conn_env), user_env):
            say(f"  {line}")
        load_demo_days(env, user_env, logs)
        password, password_file = ensure_password(env, home)
        banner = login_banner(listen, password, password_file, env)
        shown = False

        def show_banner_when_ready(line: str) -> None:
            nonlocal shown
            if not shown and "Airflow is ready" in line:
                shown = True
                say(banner)

        say("Starting `airflow standalone` (Ctrl-C stops it and the sandbox) ...")
        return run_standalone([*airflow_command(), "standalone"], env, show_banner_when_ready)
    except KeyboardInterrupt:
        say("\nstopped; the sandbox is stopped too")
        return 130
    except RuntimeError as error:
        say(f"\nmake airflow failed: {error}")
        return 1
    finally:
        sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())
