"""A throwaway PostgreSQL cluster for tests and benchmarks: `start_postgres()`, then `.stop()`.

The session-wide `postgres_server` fixture (tests/conftest.py) starts one for every test folder.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries on the machine (Debian's layout, or on PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """A running cluster: superuser `postgres`, trust auth on 127.0.0.1 only."""

    bin: Path
    data: Path
    port: int
    user: str  # the OS user the server runs as (never root)
    host: str = "127.0.0.1"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, cwd="/")

    def uri(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def connection_json(self, database: str = "postgres") -> str:
        """An `AIRFLOW_CONN_<ID>` value for a database on this server."""
        return json.dumps(
            {
                "conn_type": "postgres",
                "host": self.host,
                "port": self.port,
                "login": "postgres",
                "schema": database,
            }
        )

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.uri(database), autocommit=True) as connection:
            connection.execute(statement)

    def create_database(self, prefix: str = "ledger") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.sql(f"CREATE DATABASE {name}")
        return name

    def stop(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w", check=False
        )
        shutil.rmtree(self.data.parent, ignore_errors=True)


def ledger_connection(backend: str, request, tmp_path) -> str:
    """An `AIRFLOW_CONN_FULFILLMENT_LEDGER` value: a fresh SQLite file, or a fresh database on the
    session's PostgreSQL server (the `postgres_server` fixture)."""
    if backend == "sqlite":
        return json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")})
    server = request.getfixturevalue("postgres_server")
    return server.connection_json(server.create_database())


CLUSTER_PREFIX = "fulfillment-pg-"
OWNER_FILE = "owner"  # "<pid> <start time>" of the process that started the cluster


def _process_identity(pid: int) -> str | None:
    """ "<pid> <start time>" of a live process (the start time tells a reused pid apart), else None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return f"{pid} {stat.read().rsplit(')', 1)[1].split()[19]}"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    except OSError:  # no /proc: the pid alone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return f"{pid} ?"


def sweep_stale_clusters(temp_root: str | None = None) -> list[Path]:
    """Stop and remove the throwaway clusters whose starting process is gone (a hard-killed pytest).

    Only folders this helper made and marked with their owner are touched; a cluster whose owner
    still runs (another test session) or that has no owner mark yet (one starting now) is left
    alone. Returns the folders removed.
    """
    folder = postgres_bin()
    removed = []
    for root in sorted(Path(temp_root or tempfile.gettempdir()).glob(f"{CLUSTER_PREFIX}*")):
        try:
            owner = (root / OWNER_FILE).read_text().strip()
            pid = int(owner.split()[0])
        except (OSError, ValueError, IndexError):
            continue
        alive = _process_identity(pid)
        if alive is not None and (alive == owner or owner.endswith(" ?") or alive.endswith(" ?")):
            continue
        data = root / "data"
        if folder is not None and (data / "postmaster.pid").exists():
            user = root.stat().st_uid
            server = PostgresServer(folder, data, 0, pwd.getpwuid(user).pw_name)
            server._run(str(folder / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w", check=False)
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


def start_postgres() -> PostgresServer:
    """initdb + pg_ctl start a fresh cluster in a temporary folder, on a free loopback port.

    First, clusters left running by a process that is gone are stopped (`sweep_stale_clusters`).
    As root, the server runs as the `postgres` system user (created if missing), as PostgreSQL
    refuses to run as root. Raises `RuntimeError` with the server's log when it cannot start.
    """
    folder = postgres_bin()
    if folder is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
    sweep_stale_clusters()
    user = pwd.getpwuid(os.geteuid()).pw_name
    root = Path(tempfile.mkdtemp(prefix=CLUSTER_PREFIX))
    (root / OWNER_FILE).write_text(_process_identity(os.getpid()) or f"{os.getpid()} ?")
    if os.geteuid() == 0:
        user = "postgres"
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", user], check=True)
        shutil.chown(root, user)
    os.chmod(root, 0o700)
    data = root / "data"
    server = PostgresServer(folder, data, _free_port(), user)
    server._run(
        str(folder / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C",
        "--no-sync",
    )
    options = f"-h {server.host} -p {server.port} -k {root} -c fsync=off -c full_page_writes=off"
    started = server._run(
        str(folder / "pg_ctl"),
        "start",
        "-D",
        str(data),
        "-w",
        "-t",
        "30",
        "-l",
        str(root / "server.log"),
        "-o",
        options,
        check=False,
    )
    if started.returncode != 0:
        log_text = (root / "server.log").read_text() if (root / "server.log").exists() else started.stderr
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {log_text.strip()[-2000:]}")
    _wait_ready(server)
    return server


def _has_c_utf8() -> bool:
    result = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False)
    return any(line.lower() in ("c.utf8", "c.utf-8") for line in result.stdout.splitlines())


def _wait_ready(server: PostgresServer, timeout: float = 20.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(server.uri(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
