"""Determinism across servers (same seed, same bytes) and the command line entry point."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx

from airflow_provider_fulfillment.sandbox.__main__ import _parser, build_config
from airflow_provider_fulfillment.sandbox.app import DEFAULT_CREDENTIALS
from airflow_provider_fulfillment.sandbox.testing import run_sandbox
from airflow_provider_fulfillment.vendors import VENDORS


def _fetch_all(url: str) -> list[bytes]:
    """A fixed sequence of data requests against one server; bodies with the server URL removed."""
    out = []
    with httpx.Client(base_url=url) as c:
        tok = c.post(
            "/dropstream/auth/token",
            auth=(DEFAULT_CREDENTIALS["dropstream_user"], DEFAULT_CREDENTIALS["dropstream_password"]),
            json={"grant_type": "client_credentials"},
        ).json()["access_token"]
        ds = {"Authorization": f"Bearer {tok}"}
        first = c.get("/dropstream/orders", headers=ds, params={"limit": 300})
        sid = first.json()["session_id"]
        for r in (
            first,
            c.get("/dropstream/orders", headers=ds, params={"session_id": sid}),
            c.get("/dropstream/orders", headers=ds, params={"page": 2, "limit": 250, "sort": "store_id"}),
            c.get("/dropstream/shipments", headers=ds, params={"page": 1, "limit": 500}),
            c.get(f"/dropstream/orders/{first.json()['orders'][7]['id']}", headers=ds),
            c.get("/dropstream/customers", headers=ds),
            c.get(
                "/dcl/api/v1/orders",
                auth=(DEFAULT_CREDENTIALS["dcl_login"], DEFAULT_CREDENTIALS["dcl_password"]),
            ),
        ):
            assert r.status_code == 200, r.text
            out.append(r.content)
        st = c.post(
            "/stream/client_api/v2/auth/sign_in",
            json={
                "api_user": {
                    "email": DEFAULT_CREDENTIALS["stream_email"],
                    "password": DEFAULT_CREDENTIALS["stream_password"],
                }
            },
        ).json()["token"]
        r = c.get(
            "/stream/client_api/v2/orders", headers={"Authorization": f"Bearer {st}"}, params={"page": 2}
        )
        out.append(r.content.replace(url.encode(), b"<sandbox>"))
    return out


def test_same_seed_gives_byte_identical_responses():
    with run_sandbox(seed=99, orders=3000) as a, run_sandbox(seed=99, orders=3000) as b:
        assert a.port != b.port
        bodies_a, bodies_b = _fetch_all(a.url), _fetch_all(b.url)
    assert bodies_a == bodies_b
    with run_sandbox(seed=100, orders=3000) as c:
        assert _fetch_all(c.url)[2] != bodies_a[2]


def test_cli_options_build_the_config():
    args = _parser().parse_args(
        [
            "--seed",
            "7",
            "--orders",
            "123",
            "--days",
            "30",
            "--end",
            "2025-06-01T00:00:00Z",
            "--session-ttl",
            "5",
            "--rate-limit-every",
            "4",
            "--retry-after",
            "0",
            "--fault",
            "drop_every=9",
            "--fault",
            "prefix=/dcl",
        ]
    )
    config = build_config(args)
    assert (config.seed, config.orders, config.days, config.session_ttl) == (7, 123, 30, 5)
    assert config.end.isoformat() == "2025-06-01T00:00:00+00:00"
    f = config.faults
    assert (f.rate_limit_every, f.retry_after, f.drop_every, f.prefix) == (4, 0.0, 9, "/dcl")


def test_cli_serves_and_prints_connections(tmp_path):
    env_file = tmp_path / "sandbox.env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_fulfillment.sandbox",
            "--port",
            "0",
            "--orders",
            "300",
            "--error-every",
            "1",
            "--error-prefix",
            "/stream",
            "--env-file",
            str(env_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        header = proc.stdout.readline()
        exports = [proc.stdout.readline() for _ in VENDORS]
        url = re.search(r"on (http://127\.0\.0\.1:\d+) ", header).group(1)
        conns = {}
        for line in exports:
            m = re.fullmatch(r"export (AIRFLOW_CONN_\w+)='(.*)'\n", line)
            conns[m.group(1)] = json.loads(m.group(2))
        assert set(conns) == {
            "AIRFLOW_CONN_DROPSTREAM_DEFAULT",
            "AIRFLOW_CONN_DCL_DEFAULT",
            "AIRFLOW_CONN_STREAM_DEFAULT",
        }
        # every declared vendor, under its default connection's name, with its declared conn type
        assert {name: conn["conn_type"] for name, conn in conns.items()} == {
            f"AIRFLOW_CONN_{vendor.default_conn_name.upper()}": vendor.conn_type
            for vendor in VENDORS.values()
        }
        assert conns["AIRFLOW_CONN_DROPSTREAM_DEFAULT"] == {
            "conn_type": "dropstream",
            "host": f"{url}/dropstream",
            "login": DEFAULT_CREDENTIALS["dropstream_user"],
            "password": DEFAULT_CREDENTIALS["dropstream_password"],
        }
        assert conns["AIRFLOW_CONN_DCL_DEFAULT"]["host"] == f"{url}/dcl/api/v1"
        assert conns["AIRFLOW_CONN_STREAM_DEFAULT"]["host"] == f"{url}/stream/client_api/v2"
        assert env_file.read_text().splitlines() == [e.rstrip("\n") for e in exports]
        health = httpx.get(f"{url}/_control/health", timeout=10).json()
        assert health["status"] == "ok" and health["dropstream_orders"] == 300
        assert httpx.get(f"{url}/_control/faults").json()["error_every"] == 1
        assert httpx.get(f"{url}/stream/client_api/v2/orders").status_code == 503
        dcl = conns["AIRFLOW_CONN_DCL_DEFAULT"]
        r = httpx.get(f"{dcl['host']}/orders", auth=(dcl["login"], dcl["password"]), params={"page_size": 1})
        assert r.status_code == 200 and r.json()["error_code"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
