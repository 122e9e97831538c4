"""Browser tests against the real Airflow API server, driven by Debian's Chromium through Playwright.

One `airflow api-server` per test session (migrating its metadata DB takes most of the start-up), in a
throwaway AIRFLOW_HOME: SQLite, the simple auth manager with one admin whose password the fixture
chooses, connection testing enabled, the repository's code first on the server's path. One Chromium per
session too, logged in once; each test gets a fresh page in that logged-in context and leaves a
screenshot of where it ended in its tmp dir (``page.screenshot`` for more).

    def test_something(airflow_server, airflow_page):
        airflow_page.goto(airflow_server.url("/connections"))
        ...
        token = airflow_server.token()          # the REST API as the same admin
        airflow_server.api("GET", "/api/v2/connections")
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_USER = "admin"
SERVER_START_TIMEOUT = 180.0  # two cores shared with the rest of the suite: start-up can be slow
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium_path() -> str | None:
    found = shutil.which("chromium")
    return found or next((path for path in CHROMIUM_CANDIDATES if os.access(path, os.X_OK)), None)


def airflow_env(home: Path, password: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment: this test run's own settings only (none of the caller's AIRFLOW_*)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps({ADMIN_USER: password}))
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        }
    )
    env.update(extra or {})
    return env


def airflow_cli() -> list[str]:
    candidate = Path(sys.executable).with_name("airflow")
    return [str(candidate)] if candidate.exists() else [sys.executable, "-m", "airflow"]


@dataclass
class AirflowServer:
    """A running `airflow api-server`: where it listens, who may log in, and its home."""

    base_url: str
    username: str
    password: str
    home: Path
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _token: str | None = field(default=None, repr=False)

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def token(self) -> str:
        """A JWT for the REST API, from the simple auth manager's token endpoint."""
        if self._token is None:
            body = json.dumps({"username": self.username, "password": self.password}).encode()
            request = urllib.request.Request(
                self.url("/auth/token"), data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                self._token = json.loads(response.read())["access_token"]
        return self._token

    def api(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> tuple[int, Any]:
        """(status, decoded JSON body) of a REST call; HTTP errors are returned, not raised."""
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url(path), data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw, status = response.read(), response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def airflow(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """An `airflow ...` CLI command against this server's home and metadata DB."""
        return subprocess.run(
            [*airflow_cli(), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)


def start_airflow_server(home: Path, extra_env: Mapping[str, str] | None = None) -> AirflowServer:
    """Migrate a fresh metadata DB in ``home`` and start `airflow api-server` on a free loopback port."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_loopback_port()
    base_url = f"http://127.0.0.1:{port}"
    password = secrets.token_urlsafe(12)
    env = airflow_env(home, password, {"AIRFLOW__API__BASE_URL": base_url, **(extra_env or {})})
    log_path = home / "api-server.log"
    server = AirflowServer(base_url, ADMIN_USER, password, home, env, log_path)
    migrated = server.airflow("db", "migrate", timeout=300)
    if migrated.returncode != 0:
        raise RuntimeError(
            f"`airflow db migrate` failed:\n{migrated.stdout[-2000:]}\n{migrated.stderr[-3000:]}"
        )
    with log_path.open("wb") as log:
        server.process = subprocess.Popen(
            [*airflow_cli(), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the api-server exited early:\n{server.log_tail()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(server.url("/api/v2/monitor/health"), timeout=5) as response,
        ):
            if response.status == 200:
                return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"the api-server did not answer in {SERVER_START_TIMEOUT:.0f} s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def airflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    """The real Airflow API server (UI + REST API) for this session, login required."""
    server = start_airflow_server(tmp_path_factory.mktemp("airflow-api-server"))
    try:
        yield server
    finally:
        server.stop()


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread
# while it is open, and every later test that calls asyncio.run() (triggers, async hooks) would fail.
@pytest.fixture(scope="module")
def browser_context(airflow_server: AirflowServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's Chromium (headless, fresh profile), logged in to the Airflow UI once."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (scripts/system-deps.sh installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the [test] extra) is missing")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            context.set_default_timeout(30_000)
            page = context.new_page()
            log_in(page, airflow_server)
            page.close()
            yield context
        finally:
            context.close()


def log_in(page: Any, server: AirflowServer) -> None:
    """Fill the simple auth manager's login form and wait until the UI is back."""
    page.goto(server.url("/"))
    page.wait_for_url("**/auth/login**")
    page.fill("input[name=username]", server.username)
    page.fill("input[name=password]", server.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/" not in url)


@pytest.fixture
def airflow_page(browser_context: Any, tmp_path: Path) -> Iterator[Any]:
    """A new page in the logged-in browser; its last view is saved as ``tmp_path/final.png``."""
    page = browser_context.new_page()
    try:
        yield page
    finally:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(tmp_path / "final.png"), full_page=True)
        page.close()
