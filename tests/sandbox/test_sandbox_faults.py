"""Fault injection: each fault, what the client sees (with httpx), determinism, prefixes, the control
API and the counters."""

from __future__ import annotations

import json

import httpx
import pytest

from airflow_provider_fulfillment.sandbox.faults import Faults
from airflow_provider_fulfillment.sandbox.testing import run_sandbox


def statuses(vendor, n, path="/stores", params=None):
    return [vendor.get(path, params).status_code for _ in range(n)]


def test_error_every_nth_in_the_vendor_format(sb, ds, dcl, stream):
    sb.set_faults(error_every=3, error_status=502)
    assert statuses(ds, 6) == [200, 200, 502, 200, 200, 502]
    r = ds.get("/stores")
    assert r.status_code == 200
    sb.set_faults(error_every=1)
    assert ds.get("/stores").json() == {"error": "Injected server error"}
    assert dcl.get("/orders").json() == {"error_code": 503, "error_message": "Injected server error"}
    assert stream.get("/orders").json() == {"success": False, "error": "Injected server error"}


def test_error_rate_is_seeded(sb, ds):
    runs = []
    for _ in range(2):
        sb.set_faults(error_rate=0.5, seed=11)
        runs.append(statuses(ds, 20))
    assert runs[0] == runs[1]
    assert 0 < runs[0].count(503) < 20
    sb.set_faults(error_rate=0.5, seed=12)
    assert statuses(ds, 20) != runs[0]


def test_rate_limit_bursts_with_retry_after(sb, ds):
    sb.set_faults(rate_limit_every=4, rate_limit_burst=2, retry_after=0.5)
    responses = [ds.get("/stores") for _ in range(8)]
    assert [r.status_code for r in responses] == [200, 200, 429, 429, 200, 200, 429, 429]
    limited = responses[2]
    assert limited.headers["retry-after"] == "0.5" and limited.json()["error"]
    sb.set_faults(rate_limit_every=2, retry_after=3)
    assert [ds.get("/stores").headers.get("retry-after") for _ in range(2)] == [None, "3"]


def test_dropped_connection_is_a_transport_error(sb, ds):
    sb.set_faults(drop_every=2)
    assert ds.get("/stores").status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        ds.get("/stores")
    assert ds.get("/stores").status_code == 200  # the client reconnects
    dropped = sb.counters().select(fault="drop")
    assert len(dropped) == 1 and dropped[0].status == 0 and dropped[0].path == "/dropstream/stores"


def test_drop_rate(sb, ds):
    sb.set_faults(drop_rate=1.0)
    for _ in range(2):
        with pytest.raises(httpx.TransportError):
            ds.get("/orders", {"page": 1})


def test_truncated_body_length_mode(sb, ds):
    sb.set_faults(truncate_every=1)
    with pytest.raises(httpx.RemoteProtocolError):
        ds.get("/orders", {"page": 1, "limit": 50})
    rec = sb.counters().select(fault="truncate")[0]
    assert rec.status == 200


def test_truncated_body_json_mode(sb, ds):
    sb.set_faults(truncate_every=2, truncate_mode="json")
    ok = ds.get("/orders", {"page": 1, "limit": 50})
    cut = ds.get("/orders", {"page": 1, "limit": 50})
    assert ok.status_code == cut.status_code == 200
    assert cut.content == ok.content[: len(ok.content) // 2]
    with pytest.raises(json.JSONDecodeError):
        cut.json()


def test_latency_and_jitter_are_applied_and_recorded(sb, ds):
    sb.set_faults(latency=0.05, jitter=0.02, seed=5)
    for _ in range(3):
        assert ds.get("/stores").status_code == 200
    delays = [r.delay for r in sb.counters().select(path="/dropstream/stores")]
    assert len(delays) == 3 and all(0.05 <= d < 0.07 for d in delays)
    sb.set_faults(latency=0.05, jitter=0.02, seed=5)
    sb.reset_counters()
    for _ in range(3):
        ds.get("/stores")
    assert [r.delay for r in sb.counters().select(path="/dropstream/stores")] == delays  # seeded jitter


def test_faults_are_limited_to_a_prefix(sb, ds, dcl, stream):
    sb.set_faults(error_every=1, prefix="/dcl")
    assert dcl.get("/orders").status_code == 503
    assert ds.get("/stores").status_code == 200
    assert stream.get("/orders").status_code == 200
    # a fault's own prefix overrides the global one
    sb.set_faults(error_every=1, prefix="/dcl", error_prefix="/stream", rate_limit_every=1)
    assert stream.get("/orders").status_code == 503
    assert dcl.get("/orders").status_code == 429
    assert ds.get("/stores").status_code == 200
    # token faults can be scoped too
    sb.set_faults(token_max_uses=1, token_prefix="/stream")
    assert statuses(ds, 3) == [200, 200, 200]


def test_faults_never_apply_to_control(sb, http):
    sb.set_faults(drop_every=1, error_every=1, latency=0.0)
    assert http.get("/_control/health").status_code == 200
    assert http.get("/_control/faults").json()["drop_every"] == 1
    assert sb.counters().total == 0  # control requests are not counted


def test_session_and_token_faults_are_recorded(sb, ds):
    sb.set_faults(session_max_pages=1)
    sid = ds.json("/orders", {"limit": 5})["session_id"]
    assert ds.get("/orders", {"session_id": sid}).status_code == 404
    assert sb.counters().faults() == {"session_expired": 1}


def test_knob_validation():
    with pytest.raises(ValueError, match="unknown fault knob 'nope'"):
        Faults.from_dict({"nope": 1})
    for bad in (
        {"error_rate": 2},
        {"truncate_mode": "half"},
        {"error_status": 302},
        {"error_status": 600},
        {"prefix": "dcl"},
        {"drop_every": -1},
    ):
        with pytest.raises(ValueError):
            Faults.from_dict(bad)
    assert Faults.from_dict({"error_status": 404}).error_status == 404  # "not visible yet"
    f = Faults.from_dict({"error_every": "3", "retry_after": "0.5", "session_expire_after": "none"})
    assert (f.error_every, f.retry_after, f.session_expire_after) == (3, 0.5, None)


def test_control_api_faults(sb, http, ds):
    r = http.put("/_control/faults", json={"error_every": 2, "prefix": "/dropstream"})
    assert r.status_code == 200 and r.json()["error_every"] == 2 and r.json()["latency"] == 0.0
    assert sb.faults.error_every == 2
    r = http.patch("/_control/faults", json={"retry_after": 0})
    assert r.json()["error_every"] == 2 and r.json()["retry_after"] == 0
    assert statuses(ds, 2) == [200, 503]
    r = http.put("/_control/faults", json={"rate_limit_every": 1})
    assert r.json()["error_every"] == 0  # PUT replaces every knob
    r = http.put("/_control/faults", json={"bogus": 1})
    assert r.status_code == 400 and "bogus" in r.json()["error"]
    assert http.put("/_control/faults", content=b"[1]").status_code == 400
    assert http.delete("/_control/faults").json() == Faults().to_dict()
    assert sb.faults == Faults()


def test_control_api_counters_match_exact_requests(sb, http, ds):
    r = ds.get(
        "/orders", [("limit", "2"), ("sort", "store_id"), ("sort", "fulfillment_state"), ("page", "1")]
    )
    assert r.status_code == 200
    ds.get("/stores")
    counters = http.get("/_control/counters").json()
    assert counters["total"] == 3  # the token request, orders, stores
    by_key = {(e["method"], e["path"], e["status"]): e["count"] for e in counters["by_key"]}
    assert by_key[("POST", "/dropstream/auth/token", 200)] == 1
    assert by_key[("GET", "/dropstream/stores", 200)] == 1
    orders = [r for r in counters["requests"] if r["path"] == "/dropstream/orders"][0]
    assert orders["query"] == [
        ["limit", "2"],
        ["sort", "store_id"],
        ["sort", "fulfillment_state"],
        ["page", "1"],
    ]
    snapshot = sb.counters()
    assert snapshot.count(prefix="/dropstream") == counters["total"]
    assert snapshot.select(path="/dropstream/orders")[0].params == {
        "limit": "2",
        "sort": "fulfillment_state",
        "page": "1",
    }
    assert http.delete("/_control/counters").status_code == 200
    assert sb.counters().total == 0


def test_control_api_sessions_tokens_world(sb, http, ds):
    sid = ds.json("/orders", {"limit": 5})["session_id"]
    http.delete("/_control/sessions")
    assert ds.get("/orders", {"session_id": sid}).status_code == 404
    http.delete("/_control/tokens")
    assert ds.get("/stores").status_code == 401
    world = http.get("/_control/world").json()
    assert world["dropstream_orders"] == sb.world.orders and world["truth"] == sb.world.truth.summary()
    truth = http.get("/_control/truth").json()
    assert set(truth["orphan_shipments"]) == sb.world.truth.orphan_shipments


def test_startup_faults_and_options():
    with run_sandbox(seed=1, orders=100, error_every=1, error_prefix="/stream", session_ttl=5) as sb:
        assert sb.faults.error_every == 1 and sb.config.session_ttl == 5
        assert httpx.get(f"{sb.url}/stream/client_api/v2/orders").status_code == 503
        env = sb.conn_env()
        dcl = json.loads(env["AIRFLOW_CONN_DCL_DEFAULT"])
        assert dcl["host"] == f"{sb.url}/dcl/api/v1" and dcl["conn_type"] == "dcl"
        assert json.loads(env["AIRFLOW_CONN_STREAM_DEFAULT"])["host"].endswith("/stream/client_api/v2")
        assert json.loads(env["AIRFLOW_CONN_DROPSTREAM_DEFAULT"])["host"] == f"{sb.url}/dropstream"
    with pytest.raises(TypeError, match="unknown sandbox option"), run_sandbox(colour="blue"):
        pass
