"""`make airflow` (scripts/airflow_local.py): loopback, a login, the user's settings, no shadowed connection."""

from __future__ import annotations

import importlib.util
import json
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"


@pytest.fixture(scope="module")
def local() -> ModuleType:
    sys.path.insert(0, str(SCRIPTS))  # the script imports demo.py beside it, as when run
    try:
        spec = importlib.util.spec_from_file_location(
            "fulfillment_airflow_local", SCRIPTS / "airflow_local.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


def test_listens_on_loopback_unless_told_otherwise(local):
    assert local.listen_address(None, None, {}) == local.Listen("127.0.0.1", 8080)
    assert local.listen_address(None, None, {"AIRFLOW__API__HOST": "::1", "AIRFLOW__API__PORT": "9000"}) == (
        local.Listen("::1", 9000)
    )
    assert local.listen_address("0.0.0.0", 8081, {"AIRFLOW__API__HOST": "::1"}) == local.Listen(
        "0.0.0.0", 8081
    )
    assert local.Listen("0.0.0.0", 8081).url == "http://127.0.0.1:8081"


def test_the_users_airflow_settings_pass_through_and_win(local, tmp_path):
    user = {
        "PATH": "/usr/bin",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "True",  # theirs beats the script's default
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://me@db/airflow",
    }
    env = local.airflow_env(user, tmp_path, local.Listen("127.0.0.1", 8080))
    assert {key: env[key] for key in user if key != "PATH"} == {
        key: user[key] for key in user if key != "PATH"
    }
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1" and env["AIRFLOW__API__PORT"] == "8080"
    assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in env  # a login is required
    assert not [key for key in env if key.startswith("AIRFLOW_CONN_")]  # nothing shadows the metadata DB
    assert env["AIRFLOW_HOME"] == str(tmp_path)


def test_airflow_reads_that_environment_as_loopback_with_a_login(local, tmp_path):
    env = local.airflow_env({"PATH": "/usr/bin"}, tmp_path, local.Listen("127.0.0.1", 18123))
    env["PYTHONPATH"] = str(REPO)
    command = [
        sys.executable,
        "-c",
        (
            "from airflow.configuration import conf; "
            "print(conf.get('api', 'host'), conf.get('api', 'port'), conf.get('core', 'test_connection'), "
            "conf.getboolean('core', 'simple_auth_manager_all_admins'))"
        ),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.split()[-4:] == ["127.0.0.1", "18123", "Enabled", "False"], result.stderr[-2000:]


def test_a_password_is_generated_once_and_kept_private(local, tmp_path):
    env = local.airflow_env({}, tmp_path, local.Listen("127.0.0.1", 8080))
    password, path = local.ensure_password(env, tmp_path)
    assert password and len(password) >= 16
    assert json.loads(path.read_text()) == {"admin": password}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local.ensure_password(env, tmp_path) == (None, path)  # printed once: not again
    assert "with password" not in local.login_banner(local.Listen("127.0.0.1", 8080), None, path, env)
    theirs = {**env, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "bob:admin"}
    assert local.ensure_password(theirs, tmp_path / "other") == (None, None)


def test_the_banner_warns_when_reachable_from_other_machines(local, tmp_path):
    env = local.airflow_env({}, tmp_path, local.Listen("0.0.0.0", 8080))
    banner = local.login_banner(local.Listen("0.0.0.0", 8080), "pw", tmp_path / "p", env)
    assert "WARNING: listening on 0.0.0.0, not loopback" in banner
    assert "Log in as 'admin' with password 'pw' (shown once" in banner


SANDBOX = {
    "dropstream_default": {
        "conn_type": "dropstream",
        "host": "http://127.0.0.1:40001/dropstream",
        "login": "sandbox-api-user",
        "password": "sandbox-api-password",
    },
    "dcl_default": {
        "conn_type": "dcl",
        "host": "http://127.0.0.1:40001/dcl/api/v1",
        "login": "sandbox-dcl-login",
        "password": "sandbox-dcl-password",
    },
    "stream_default": {
        "conn_type": "stream",
        "host": "http://127.0.0.1:40001/stream/client_api/v2",
        "login": "sandbox@example.com",
        "password": "sandbox-stream-password",
    },
}


def stored(conn_id: str) -> Any:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(Connection).filter_by(conn_id=conn_id).one_or_none()
        return None if row is None else (row.conn_type, row.host, row.login, row.password, row.description)


@pytest.fixture
def clean_connections(airflow_db):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    def wipe() -> None:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id.in_(list(SANDBOX))).delete()

    wipe()
    yield
    wipe()


def test_connections_are_created_only_where_absent_and_a_users_is_never_replaced(local, clean_connections):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:  # made in the UI: the real vendor
        session.add(
            Connection(
                conn_id="dcl_default",
                conn_type="dcl",
                host="https://api.dclcorp.com/api/v1",
                login="acme",
                password="real-secret",
            )
        )
    lines = local.sync_connections(SANDBOX, {"AIRFLOW_CONN_STREAM_DEFAULT": "{}"})
    assert lines == [
        "dropstream_default: created in the metadata DB -> the sandbox at http://127.0.0.1:40001/dropstream",
        "dcl_default: yours, kept as it is (dcl at https://api.dclcorp.com/api/v1); DAGs using it do not call the sandbox",
        "stream_default: created in the metadata DB -> the sandbox at http://127.0.0.1:40001/stream/client_api/v2"
        " -- but your AIRFLOW_CONN_STREAM_DEFAULT is set and takes precedence over the metadata DB",
    ]
    assert stored("dcl_default") == ("dcl", "https://api.dclcorp.com/api/v1", "acme", "real-secret", None)
    assert stored("dropstream_default") == (
        "dropstream",
        "http://127.0.0.1:40001/dropstream",
        "sandbox-api-user",
        "sandbox-api-password",
        local.MANAGED,
    )


def test_a_sandbox_connection_follows_the_sandbox_until_the_user_edits_it(local, clean_connections):
    local.sync_connections(SANDBOX, {})
    moved = {
        conn_id: {**fields, "host": fields["host"].replace("40001", "40002")}
        for conn_id, fields in SANDBOX.items()
    }
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:  # the user points the DropStream one at their account, keeps the note
        row = session.query(Connection).filter_by(conn_id="dropstream_default").one()
        row.password = "their-password"
    lines = local.sync_connections(moved, {})
    assert lines[0].startswith("dropstream_default: yours, kept as it is")
    assert (
        lines[1]
        == "dcl_default: made by an earlier run, moved to the sandbox at http://127.0.0.1:40002/dcl/api/v1"
    )
    assert stored("dropstream_default")[1:4] == (
        "http://127.0.0.1:40001/dropstream",
        "sandbox-api-user",
        "their-password",
    )
    assert stored("stream_default")[1] == "http://127.0.0.1:40002/stream/client_api/v2"
    assert local.sync_connections(moved, {})[1] == (
        "dcl_default: made by an earlier run -> the sandbox at http://127.0.0.1:40002/dcl/api/v1"
    )
