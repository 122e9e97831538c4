"""Run the sandbox in-process, on a free loopback port, in a background thread: for tests.

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

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
    """The ``AIRFLOW_CONN_*`` values (JSON) of the default connections, pointing at ``base_url``."""
    return {
        "AIRFLOW_CONN_DROPSTREAM_DEFAULT": json.dumps(
            {"conn_type": "dropstream", "host": f"{base_url}/dropstream",
             "login": config.dropstream_user, "password": config.dropstream_password}
        ),
        "AIRFLOW_CONN_DCL_DEFAULT": json.dumps(
            {"conn_type": "dcl", "host": f"{base_url}/dcl/api/v1",
             "login": config.dcl_login, "password": config.dcl_password}
        ),
        "AIRFLOW_CONN_STREAM_DEFAULT": json.dumps(
            {"conn_type": "stream", "host": f"{base_url}/stream/client_api/v2",
             "login": config.stream_email, "password": config.stream_password}
        ),
    }  # fmt: skip


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
