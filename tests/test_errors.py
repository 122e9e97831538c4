"""The one error model: keyword-only fields, one table, hints that fit the cause, no secret in any text."""

from __future__ import annotations

import ast
import json
import pickle
from pathlib import Path

import httpx
import pytest

from airflow_provider_fulfillment import errors
from airflow_provider_fulfillment.errors import (
    CapReached,
    FulfillmentAPIError,
    FulfillmentAuthError,
    FulfillmentVendorError,
    RecordNotFound,
    VendorRejected,
)
from airflow_provider_fulfillment.hooks.dcl import DclHook
from airflow_provider_fulfillment.hooks.dropstream import DropStreamHook
from airflow_provider_fulfillment.hooks.stream import StreamHook
from tests.fakes import json_response

PACKAGE = Path(__file__).resolve().parents[1] / "airflow_provider_fulfillment"
PASSWORD = "Hunter2-Very-Secret!"


def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / module).read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def test_errors_is_the_bottom_layer_and_paging_imports_it_not_http():
    assert not {name for name in _imports("errors.py") if name.startswith("airflow_provider_fulfillment")}
    paging = _imports("paging.py")
    assert "airflow_provider_fulfillment.errors" in paging
    assert "airflow_provider_fulfillment.http" not in paging


def test_old_import_paths_still_give_the_same_classes():
    from airflow_provider_fulfillment import http, paging
    from airflow_provider_fulfillment.hooks import base

    assert http.FulfillmentAPIError is FulfillmentAPIError
    assert http.FulfillmentAuthError is FulfillmentAuthError
    assert http.FulfillmentVendorError is FulfillmentVendorError
    assert http.FulfillmentError is errors.FulfillmentError
    assert http.VendorRejected is VendorRejected
    assert http.InvalidBody is errors.InvalidBody
    assert paging.CapReached is CapReached
    assert base.RecordNotFound is RecordNotFound


@pytest.mark.parametrize(
    "error",
    [
        FulfillmentAPIError(
            conn_id="c", method="GET", path="/orders", params={"page": 2}, status=503, attempts=3
        ),
        FulfillmentAuthError(
            conn_id="c", method="POST", path="/auth/token", status=401, hint="h", vendor="DCL"
        ),
        FulfillmentVendorError(
            conn_id="c", method="GET", path="/orders", status=200, vendor_message="error_code 7"
        ),
        RecordNotFound(conn_id="c", vendor="Stream", resource="order", ident="A#1"),
        CapReached(total=12_000),
        VendorRejected(code=3, message="Invalid page"),
    ],
)
def test_every_error_pickles_to_the_same_text_and_class(error):
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy)) == (type(error), str(error))


def test_fields_are_keyword_only():
    with pytest.raises(TypeError):
        FulfillmentAPIError("c", "GET", "/orders")  # type: ignore[misc]
    with pytest.raises(TypeError):
        VendorRejected(3, "x")  # type: ignore[misc]
    with pytest.raises(TypeError):
        RecordNotFound("not found")  # type: ignore[misc]


def test_the_table_ends_in_a_catch_all_for_every_kind():
    kinds = {"transport", "status", "sign_in", "sign_in_body", "body", "vendor"}
    assert {rule.kind for rule in errors.ERROR_TABLE if rule.statuses is None and rule.when is None} == kinds


# ------------------------------------------------------------------ hints that fit the cause


def _hook(hook_class, set_connection, host, handler, login="user@example.com", password=PASSWORD, **extra):
    set_connection("mine", hook_class.conn_type, host, login, password, max_wait=0, max_attempts=1, **extra)
    return hook_class("mine", transport=httpx.MockTransport(handler))


def test_stream_base_url_without_its_prefix_says_so_not_check_the_password(set_connection):
    sent = []

    def handler(request):
        sent.append(str(request.url))
        return httpx.Response(404, text="Not Found")

    hook = _hook(StreamHook, set_connection, "https://orders.example.com", handler)
    with pytest.raises(FulfillmentAuthError) as caught:
        list(hook.iter_orders())
    assert sent == ["https://orders.example.com/auth/sign_in"]
    assert str(caught.value) == (
        "Stream connection 'mine': POST /auth/sign_in failed: HTTP 404: Not Found (nothing at "
        "https://orders.example.com/auth/sign_in: the connection's host must be the whole base URL, with "
        "the API's path prefix /client_api/v2, e.g. https://orders-api-production.vatit-stream.com/client_api/v2)"
    )
    assert "password" not in str(caught.value)


def test_dcl_base_url_without_its_prefix_explains_the_404(set_connection):
    hook = _hook(DclHook, set_connection, "https://api.dclcorp.com", lambda r: httpx.Response(404, text=""))
    with pytest.raises(FulfillmentAPIError) as caught:
        list(hook.iter_orders())
    assert type(caught.value) is FulfillmentAPIError
    assert caught.value.hint == (
        "nothing at https://api.dclcorp.com/orders: the connection's host must be the whole base URL, with "
        "the API's path prefix /api/v1, e.g. https://api.dclcorp.com/api/v1"
    )


def test_a_404_explained_by_the_base_url_is_not_reported_as_a_missing_record(set_connection):
    def handler(request):
        if request.url.path.endswith("/auth/sign_in"):
            return json_response(200, {"token": "tok-123456"})
        return httpx.Response(404, text="Not Found")

    hook = _hook(StreamHook, set_connection, "https://orders.example.com", handler)
    with pytest.raises(FulfillmentAPIError, match="path prefix /client_api/v2"):
        hook.get_order("SHIP-1")
    with pytest.raises(FulfillmentAPIError, match="path prefix /client_api/v2"):
        hook.get_state("order", "SHIP-1")


def test_refused_sign_in_names_login_and_password(set_connection):
    hook = _hook(
        DropStreamHook,
        set_connection,
        "https://ds.example.com",
        lambda r: json_response(401, {"error": "nope"}),
    )
    with pytest.raises(FulfillmentAuthError) as caught:
        list(hook.iter_orders())
    assert str(caught.value) == (
        "DropStream connection 'mine': POST /auth/token failed: HTTP 401: nope "
        "(the sign-in was refused: check the connection's login and password)"
    )


def test_refused_ready_token_says_replace_the_token(set_connection):
    hook = _hook(
        StreamHook,
        set_connection,
        "https://st.example.com/client_api/v2",
        lambda r: httpx.Response(401, text="Access token is missing or invalid."),
        password=None,
        token="ready-token-abc",
    )
    with pytest.raises(FulfillmentAuthError) as caught:
        list(hook.iter_orders())
    assert caught.value.hint == (
        "the token in the connection's extra 'token' was refused: replace it, or give login and password"
    )


def test_dcl_basic_refusal_and_rejection_in_a_200(set_connection):
    answers = iter(
        [
            json_response(401, {"error_code": 401, "error_message": "Authorization has been denied"}),
            json_response(200, {"error_code": 503, "error_message": "busy", "orders": None}),
        ]
    )
    hook = _hook(DclHook, set_connection, "https://api.dclcorp.com/api/v1", lambda r: next(answers))
    with pytest.raises(FulfillmentAuthError, match=r"HTTP 401: Authorization has been denied \(check the"):
        list(hook.iter_orders())
    with pytest.raises(FulfillmentVendorError) as caught:
        list(hook.iter_orders())
    assert str(caught.value) == (
        "DCL connection 'mine': GET /orders?page_size=100&page=1 failed: HTTP 200: error_code 503: busy"
    )


# ------------------------------------------------------------------ no secret in any text


def test_a_gateway_echoing_the_sign_in_body_never_shows_the_password(set_connection, caplog):
    def echo(request):  # a gateway that answers a refused sign-in with the request it got
        return json_response(401, {"error": f"bad credentials in {request.content.decode()}"})

    hook = _hook(StreamHook, set_connection, "https://st.example.com/client_api/v2", echo)
    with pytest.raises(FulfillmentAuthError) as caught:
        list(hook.iter_orders())
    text = str(caught.value)
    assert PASSWORD not in text and json.dumps(PASSWORD)[1:-1] not in text
    assert '"password":"***"' in text.replace(" ", "")
    assert "user@example.com" in text  # a login that is a user name is no secret
    ok, message = hook.test_connection()
    assert not ok and PASSWORD not in message and "***" in message
    assert PASSWORD not in caplog.text


def test_echoed_basic_credentials_and_url_encoded_passwords_are_scrubbed(set_connection):
    import base64
    from urllib.parse import quote

    basic = base64.b64encode(f"acct:{PASSWORD}".encode()).decode()

    def echo(request):
        return httpx.Response(
            502,
            text=f"upstream refused Authorization: {request.headers['Authorization']} pw={quote(PASSWORD)}",
        )

    hook = _hook(DclHook, set_connection, "https://api.dclcorp.com/api/v1", echo, login="acct")
    with pytest.raises(FulfillmentAPIError) as caught:
        list(hook.iter_orders())
    text = str(caught.value)
    assert basic not in text and quote(PASSWORD) not in text and PASSWORD not in text
    assert text.endswith("HTTP 502: upstream refused Authorization: Basic *** pw=***")


def test_issued_tokens_are_scrubbed_too(set_connection):
    def handler(request):
        if request.url.path.endswith("/auth/token"):
            return json_response(200, {"access_token": "jwt-issued-7777", "token_type": "Bearer"})
        return json_response(400, {"error": f"token {request.headers['Authorization']} lacks scope"})

    hook = _hook(DropStreamHook, set_connection, "https://ds.example.com", handler)
    with pytest.raises(FulfillmentAPIError) as caught:
        list(hook.iter_orders())
    assert "jwt-issued-7777" not in str(caught.value) and "Bearer ***" in str(caught.value)


# ------------------------------------------------------------------ the Test button


def test_test_button_names_no_made_up_connection_id(monkeypatch):
    """Airflow's API server tests a form under a random 8-character id; the message must not show it."""
    transient = "Xq3vB9kP"
    body = {"conn_type": "dcl", "host": "https://api.dclcorp.com", "login": "acct", "password": PASSWORD}
    monkeypatch.setenv(f"AIRFLOW_CONN_{transient.upper()}", json.dumps(body))
    hook = DclHook(transient, transport=httpx.MockTransport(lambda r: httpx.Response(404, text="")))
    ok, message = hook.test_connection()
    assert not ok
    assert transient not in message
    assert message.startswith(
        "DCL connection (being tested): GET /orders?page=1&page_size=1 failed: HTTP 404"
    )


def test_test_button_names_the_users_stored_connection(monkeypatch, airflow_db):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == "warehouse_west").delete()
        session.add(
            Connection(
                conn_id="warehouse_west", conn_type="dcl", host="https://api.dclcorp.com", login="acct-west"
            )
        )
    transient = "Ab12Cd34"
    body = {"conn_type": "dcl", "host": "https://api.dclcorp.com", "login": "acct-west", "password": PASSWORD}
    monkeypatch.setenv(f"AIRFLOW_CONN_{transient.upper()}", json.dumps(body))
    hook = DclHook(transient, transport=httpx.MockTransport(lambda r: httpx.Response(404, text="")))
    try:
        ok, message = hook.test_connection()
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == "warehouse_west").delete()
    assert not ok and transient not in message
    assert message.startswith(
        "DCL connection 'warehouse_west': GET /orders?page=1&page_size=1 failed: HTTP 404"
    )
