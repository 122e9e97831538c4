"""The one way to start the sandbox: in-process in a background thread (tests), or the CLI in a
subprocess (the demo, the benchmarks: :class:`SandboxProcess`), each on a free loopback port.

    with run_sandbox(seed=42, orders=2000, session_ttl=0.2) as sb:
        os.environ.update(sb.conn_env())
        sb.set_faults(rate_limit_every=3, retry_after=0)
        ...  # exercise a hook
        assert sb.counters().count(path="/dropstream/orders", status=429) == 1
        expected = sb.world.dropstream.order_ids(state="pending_shipment")

``run_sandbox`` takes every :class:`~.app.SandboxConfig` field (``end``, ``days``, ``dcl_orders``,
``session_ttl``, credentials, ``clock``...) and every :class:`~.faults.Faults` knob by name (or
``faults=`` as a dict or ``Faults``) as the initial faults.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow_provider_fulfillment.vendors import VENDORS

from .app import SandboxApp, SandboxConfig
from .counters import Counters
from .faults import Faults
from .live import LiveKnobs
from .world import World

LOOPBACK = "127.0.0.1"


def split_options(options: dict[str, Any]) -> dict[str, Any]:
    """SandboxConfig keyword arguments from options that mix config fields and fault knobs (which
    become ``faults``); a name that is neither is a TypeError."""
    config: dict[str, Any] = {}
    knobs: dict[str, Any] = {}
    live: dict[str, Any] = {}
    names = SandboxConfig.field_names()
    knob_names = set(Faults.knob_names())
    live_names = set(LiveKnobs.knob_names())
    for name, value in options.items():
        if name in names:
            config[name] = value
        elif name in knob_names:
            knobs[name] = value
        elif name in live_names:
            live[name] = value
        else:
            raise TypeError(f"unknown sandbox option {name!r}")
    if live:
        config["live"] = LiveKnobs.from_dict(live)
    faults = config.get("faults")
    if isinstance(faults, dict):
        knobs = {**faults, **knobs}
        faults = None
    base = faults if isinstance(faults, Faults) else None
    config["faults"] = Faults.from_dict(knobs, base) if knobs or base is None else base
    return config


def conn_env(base_url: str, config: SandboxConfig) -> dict[str, str]:
    """The ``AIRFLOW_CONN_*`` values (JSON) of every declared vendor's default connection, pointing
    at its mount under ``base_url`` (``/<conn type>`` + the API's path, as ``sandbox.app`` mounts it)."""
    credentials = {
        "dropstream": (config.dropstream_user, config.dropstream_password),
        "dcl": (config.dcl_login, config.dcl_password),
        "stream": (config.stream_email, config.stream_password),
    }
    env = {}
    for conn_type, vendor in VENDORS.items():
        login, password = credentials[conn_type]
        host = f"{base_url}/{conn_type}{vendor.api_path}"
        env[f"AIRFLOW_CONN_{vendor.default_conn_name.upper()}"] = json.dumps(
            {"conn_type": conn_type, "host": host, "login": login, "password": password}
        )
    return env


class SandboxServer:
    """A running sandbox: its URL, its world, and handles on its faults and counters."""

    def __init__(self, app: SandboxApp, host: str = LOOPBACK, port: int = 0) -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 15.0) -> SandboxServer:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("sandbox server failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sandbox server did not start in time")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SandboxServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ what tests use

    @property
    def url(self) -> str:
        """Base URL, no vendor prefix: ``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def world(self) -> World:
        return self.app.world

    @property
    def config(self) -> SandboxConfig:
        return self.app.config

    def conn_env(self) -> dict[str, str]:
        """``{"AIRFLOW_CONN_DROPSTREAM_DEFAULT": json, "AIRFLOW_CONN_DCL_DEFAULT": ..., "AIRFLOW_CONN_STREAM_DEFAULT": ...}``."""
        return conn_env(self.url, self.app.config)

    @property
    def faults(self) -> Faults:
        return self.app.faults

    def set_faults(self, **knobs: Any) -> Faults:
        """Replace every knob (those not given go back to off) and restart the "every Nth" counts."""
        faults = Faults.from_dict(knobs)
        self.app.set_faults(faults)
        return faults

    def update_faults(self, **knobs: Any) -> Faults:
        """Change only the knobs given (the "every Nth" counts restart too)."""
        faults = Faults.from_dict(knobs, self.app.faults)
        self.app.set_faults(faults)
        return faults

    def reset_faults(self) -> None:
        self.app.set_faults(Faults())

    def counters(self) -> Counters:
        return self.app.log.snapshot()

    def reset_counters(self) -> None:
        self.app.log.reset()

    def set_live(self, **knobs: Any) -> LiveKnobs:
        """Replace every live-data knob (those not given go back to off); see ``sandbox.live``."""
        live = LiveKnobs.from_dict(knobs)
        self.app.live.set(live)
        return live

    def reset(self) -> None:
        """The state a test starts from: no faults, no live-data knobs, empty counters, no session."""
        self.app.live.set(LiveKnobs())
        self.reset_faults()
        self.reset_counters()
        self.expire_sessions()

    def advance(self, seconds: str | float) -> dict[str, Any]:
        """Move the world's clock forward (seconds, or "36h", "2d"); see :mod:`.clock`."""
        return self.app.world_clock.advance(seconds)

    def expire_sessions(self) -> None:
        """Expire every DropStream session now."""
        self.app.expire_sessions()

    def revoke_tokens(self) -> None:
        """Invalidate every bearer token now (clients must authenticate again)."""
        self.app.revoke_tokens()


@contextmanager
def run_sandbox(seed: int = 42, orders: int = 2000, **options: Any) -> Iterator[SandboxServer]:
    """Start a sandbox on a free loopback port for the duration of the ``with`` block."""
    config = SandboxConfig(seed=seed, orders=orders, **split_options(options))
    server = SandboxServer(SandboxApp(config))
    server.start()
    try:
        yield server
    finally:
        server.stop()


class SandboxProcess:
    """The sandbox CLI in a subprocess (the demo, the benchmarks): started on a free loopback port,
    ready once its control API answers; its URL and ``AIRFLOW_CONN_*`` values come from the env
    file the CLI writes. ``args`` are CLI flags (``["--seed", "42", "--orders", "5000"]``)."""

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        env_file: str | os.PathLike[str],
        log_file: str | os.PathLike[str] | None = None,
        timeout: float = 120.0,
        cwd: str | os.PathLike[str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.args = list(args)
        self.env_file = Path(env_file)
        self.log_file = Path(log_file) if log_file is not None else None
        self.timeout = timeout
        self.cwd = cwd
        self.preexec_fn = preexec_fn
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.conn_env: dict[str, str] = {}
        self.summary: dict[str, Any] = {}

    def start(self) -> SandboxProcess:
        self.env_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "airflow_provider_fulfillment.sandbox",
            "--host",
            LOOPBACK,
            "--port",
            "0",
            "--env-file",
            str(self.env_file),
            *self.args,
        ]
        log = self.log_file.open("wb") if self.log_file is not None else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                command,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self.preexec_fn,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.log_file.read_text(errors="replace")[-2000:] if self.log_file else ""
                raise RuntimeError(
                    f"the sandbox exited with status {self.process.returncode} before answering"
                    + (f"; its output:\n{output}" if output else "")
                )
            if not self.conn_env and self.env_file.exists():
                self.conn_env = read_env_file(self.env_file)
                if "AIRFLOW_CONN_DROPSTREAM_DEFAULT" in self.conn_env:
                    host = json.loads(self.conn_env["AIRFLOW_CONN_DROPSTREAM_DEFAULT"])["host"]
                    self.url = host.rsplit("/dropstream", 1)[0]
                else:
                    self.conn_env = {}  # written only in part so far
            if self.url:
                with contextlib.suppress(OSError, ValueError):
                    self.summary = self.control("GET", "/health")
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the sandbox did not answer within {self.timeout:.0f} s")

    def control(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """Call the control API (``/_control/...``): JSON in, JSON out."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/_control{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> SandboxProcess:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``export NAME='value'`` lines (what the sandbox CLI prints and writes) as a dict."""
    env: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            env[name] = value
    return env
