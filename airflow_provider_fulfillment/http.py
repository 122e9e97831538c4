"""The one HTTP core: clients, auth, retry policy and error mapping for every vendor, sync and async.

Hooks and triggers build an `HttpCore` from a `ClientSettings` and an auth; they never talk to
httpx directly. The retry policy and the error messages are therefore the same everywhere.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

import httpx
import tenacity

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_WAIT = 60.0
DEFAULT_MAX_CONCURRENCY = 4
_BACKOFF_BASE = 0.5
_MESSAGE_LIMIT = 300


def mask_secret(secret: str | None) -> None:
    """Register a secret with Airflow's masker, so no log line or task output shows it."""
    if not secret:
        return
    try:
        from airflow.sdk.log import mask_secret as airflow_mask_secret
    except ImportError:  # pragma: no cover - Airflow always ships it
        return
    airflow_mask_secret(secret)


# --------------------------------------------------------------------------- errors


class FulfillmentError(Exception):
    """Base of every error this provider raises on purpose."""


class FulfillmentAPIError(FulfillmentError):
    """A request failed for good: names the connection, the request, the status and the vendor's words."""

    def __init__(
        self,
        conn_id: str,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        status: int | None,
        vendor_message: str,
        attempts: int = 1,
        hint: str = "",
        vendor: str = "",
    ) -> None:
        self.vendor = vendor
        self.conn_id = conn_id
        self.method = method
        self.path = path
        self.params = dict(params or {})
        self.status = status
        self.vendor_message = vendor_message
        self.attempts = attempts
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        query = urlencode(self.params, doseq=True)
        request = f"{self.method} {self.path}{'?' + query if query else ''}"
        outcome = f"HTTP {self.status}" if self.status is not None else "no response"
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        who = f"{self.vendor} connection" if self.vendor else "connection"
        text = f"{who} '{self.conn_id}': {request} failed{tries}: {outcome}"
        if self.vendor_message:
            text += f": {self.vendor_message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def __reduce__(self):  # keep the error picklable across Airflow's process boundaries
        return (
            type(self),
            (
                self.conn_id,
                self.method,
                self.path,
                self.params,
                self.status,
                self.vendor_message,
                self.attempts,
                self.hint,
                self.vendor,
            ),
        )


class FulfillmentAuthError(FulfillmentAPIError):
    """401/403: the credentials of the connection were refused. Never retried."""


class FulfillmentVendorError(FulfillmentAPIError):
    """The vendor answered 2xx but said it failed (DCL `error_code != 0`)."""


class VendorRejected(Exception):
    """The vendor reported an error inside a successful HTTP answer; the caller adds the request."""

    def __init__(self, code: Any, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"error_code {code}: {message}")


class _RetryableStatus(Exception):
    """Internal: a 5xx or 429 answer that the retry policy may try again."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ClientSettings:
    """What a hook needs from its Airflow connection, read once."""

    conn_id: str
    base_url: str
    vendor: str = ""  # the vendor's name in messages ("DropStream"), since a conn id need not say it
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_wait: float = DEFAULT_MAX_WAIT
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY

    @classmethod
    def from_connection(cls, conn: Any, default_base_url: str, vendor: str = "") -> ClientSettings:
        extra = conn.extra_dejson or {}
        base_url = (conn.host or "").strip() or default_base_url
        if "://" not in base_url:
            base_url = f"https://{base_url}"
        if conn.port and base_url.count(":") < 2:
            scheme, _, rest = base_url.partition("://")
            host, slash, path = rest.partition("/")
            base_url = f"{scheme}://{host}:{conn.port}{slash}{path}"
        settings = cls(
            conn_id=conn.conn_id,
            base_url=base_url.rstrip("/"),
            vendor=vendor,
            login=conn.login or None,
            password=conn.password or None,
            token=extra.get("token") or None,
            timeout=_positive(extra, "timeout", DEFAULT_TIMEOUT, float, conn.conn_id),
            max_attempts=_positive(extra, "max_attempts", DEFAULT_MAX_ATTEMPTS, int, conn.conn_id),
            max_wait=_positive(extra, "max_wait", DEFAULT_MAX_WAIT, float, conn.conn_id, allow_zero=True),
            max_concurrency=_positive(extra, "max_concurrency", DEFAULT_MAX_CONCURRENCY, int, conn.conn_id),
        )
        mask_secret(settings.password)
        mask_secret(settings.token)
        return settings


def _positive(
    extra: Mapping[str, Any], key: str, default: Any, kind: type, conn_id: str, allow_zero: bool = False
) -> Any:
    value = extra.get(key)
    if value in (None, ""):
        return default
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"connection '{conn_id}': extra '{key}' must be a number, got {value!r}") from None
    if number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"connection '{conn_id}': extra '{key}' must be positive, got {value!r}")
    return number


# --------------------------------------------------------------------------- auth


class BearerTokenAuth(httpx.Auth):
    """Bearer auth whose token comes from a vendor's sign-in endpoint, cached and renewed once on 401.

    One generator serves httpx's sync and async clients alike. A ready token (the connection's
    extra `token`) is used as is and never renewed: a 401 then means the token is wrong.
    """

    requires_response_body = True

    def __init__(
        self,
        build_token_request: Callable[[], httpx.Request] | None,
        read_token: Callable[[httpx.Response], str] | None,
        ready_token: str | None = None,
    ) -> None:
        self._build_token_request = build_token_request
        self._read_token = read_token
        self._token = ready_token
        self.token_fetches = 0

    @property
    def renewable(self) -> bool:
        return self._build_token_request is not None

    def auth_flow(self, request: httpx.Request):
        if self._token is None:
            yield from self._fetch_token()
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401 and self.renewable:
            yield from self._fetch_token()
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request

    def _fetch_token(self):
        if self._build_token_request is None or self._read_token is None:
            raise FulfillmentError("no token and no way to get one: set login and password, or extra 'token'")
        token_response = yield self._build_token_request()
        self.token_fetches += 1
        if token_response.status_code == 429 or token_response.status_code >= 500:
            raise _RetryableStatus(token_response)
        if token_response.status_code >= 400:
            raise _TokenRefused(token_response)
        try:
            token = self._read_token(token_response)
        except ValueError as error:  # cut in transit (retry) or not the documented shape (don't)
            raise _TokenUnreadable(token_response, str(error), not isinstance(error, InvalidBody)) from None
        mask_secret(token)
        self._token = token


class InvalidBody(ValueError):
    """A parser's verdict on a well-formed body that is not what the API documents (never retried)."""


class _TokenUnreadable(Exception):
    def __init__(self, response: httpx.Response, detail: str, transient: bool) -> None:
        self.response = response
        self.detail = detail
        self.transient = transient
        super().__init__(detail)


class _TokenRefused(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


# --------------------------------------------------------------------------- messages


def vendor_message(response: httpx.Response) -> str:
    """The vendor's own words about a failure, from whichever error shape it uses."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        for key in ("error_message", "error", "message", "errors", "detail"):
            value = body.get(key)
            if value:
                return _clip(value if isinstance(value, str) else str(value))
    text = response.text.strip() if response.content else ""
    return _clip(text or (response.reason_phrase or ""))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import datetime

    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# --------------------------------------------------------------------------- the core


class HttpCore:
    """A pooled httpx client (sync and async) bound to one connection, with retries and error mapping."""

    def __init__(
        self,
        settings: ClientSettings,
        auth: httpx.Auth | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        asleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.auth = auth
        self._transport = transport
        self._async_transport = async_transport
        self._sleep = sleep
        self._asleep = asleep
        self._client: httpx.Client | None = None
        self._async_client: httpx.AsyncClient | None = None

    # clients -------------------------------------------------------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        pool = max(4, 2 * self.settings.max_concurrency)
        return {
            "base_url": self.settings.base_url + "/",
            "auth": self.auth,
            "timeout": httpx.Timeout(self.settings.timeout),
            "limits": httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            "headers": {"Accept": "application/json", "User-Agent": _user_agent()},
            "follow_redirects": False,
        }

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(transport=self._transport, **self._client_kwargs())
        return self._client

    @property
    def async_client(self) -> httpx.AsyncClient:
        if self._async_client is None:
            self._async_client = httpx.AsyncClient(transport=self._async_transport, **self._client_kwargs())
        return self._async_client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None

    # requests ------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        parse: Callable[[httpx.Response], Any] | None = None,
    ) -> Any:
        """Send one request, retrying what may succeed later; return the 2xx response (or `parse` of it).

        `parse` runs inside the retry loop: a body cut short in transit is retried like a dropped
        connection, while a well-formed body that does not fit the model fails at once.
        """
        retrying = tenacity.Retrying(**self._retry_kwargs(), sleep=self._sleep or tenacity.nap.sleep)
        try:
            return retrying(self._send_once, method, path, params, json, parse)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clear error
            raise self._final_error(exc, method, path, params, retrying) from None

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        parse: Callable[[httpx.Response], Any] | None = None,
    ) -> Any:
        """The async twin of `request`, with the same policy (used by triggers)."""
        import asyncio

        retrying = tenacity.AsyncRetrying(**self._retry_kwargs(), sleep=self._asleep or asyncio.sleep)
        try:
            return await retrying(self._asend_once, method, path, params, json, parse)
        except Exception as exc:  # noqa: BLE001
            raise self._final_error(exc, method, path, params, retrying) from None

    def _send_once(self, method: str, path: str, params: Any, json: Any, parse: Any) -> Any:
        log.debug("%s %s %s", method, path, _safe_params(params))
        response = self.client.request(method, _relative(path), params=_query(params), json=json)
        return _parsed(self._check(response), parse)

    async def _asend_once(self, method: str, path: str, params: Any, json: Any, parse: Any) -> Any:
        log.debug("%s %s %s", method, path, _safe_params(params))
        response = await self.async_client.request(method, _relative(path), params=_query(params), json=json)
        return _parsed(self._check(response), parse)

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status == 429 or status >= 500:
            raise _RetryableStatus(response)
        if status >= 400:
            raise _FinalStatus(response)
        return response

    # policy --------------------------------------------------------------------------
    def _retry_kwargs(self) -> dict[str, Any]:
        return {
            "stop": tenacity.stop_after_attempt(max(1, self.settings.max_attempts)),
            "wait": self._wait,
            "retry": tenacity.retry_if_exception(_is_retryable),
            "reraise": True,
            "before_sleep": self._log_retry,
        }

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Honour Retry-After when the vendor sends it; otherwise exponential backoff with full jitter."""
        cap = self.settings.max_wait
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus):
            asked = retry_after_seconds(exc.response)
            if asked is not None:
                return min(asked, cap)
        ceiling = min(cap, _BACKOFF_BASE * (2 ** (state.attempt_number - 1)))
        return random.uniform(0, ceiling)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        what = f"HTTP {exc.response.status_code}" if isinstance(exc, _RetryableStatus) else type(exc).__name__
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "connection '%s': attempt %d failed (%s); retrying in %.2fs",
            self.settings.conn_id,
            state.attempt_number,
            what,
            wait,
        )

    def _final_error(
        self, exc: BaseException, method: str, path: str, params: Any, retrying: Any
    ) -> FulfillmentError:
        attempts = retrying.statistics.get("attempt_number", 1)
        conn_id = self.settings.conn_id
        # Every error names the vendor too: a connection id like 'wh_east' does not say who failed.
        api_error = partial(FulfillmentAPIError, vendor=self.settings.vendor)
        auth_error = partial(FulfillmentAuthError, vendor=self.settings.vendor)
        vendor_error = partial(FulfillmentVendorError, vendor=self.settings.vendor)
        shown = _safe_params(params)
        if isinstance(exc, FulfillmentError):
            return exc
        if isinstance(exc, _TokenRefused):
            return auth_error(
                conn_id,
                exc.response.request.method,
                exc.response.request.url.path,
                None,
                exc.response.status_code,
                vendor_message(exc.response),
                attempts,
                hint="the sign-in was refused: check the connection's login and password",
            )
        if isinstance(exc, _TokenUnreadable):
            request = exc.response.request
            detail = ("response body is not JSON: " if exc.transient else "") + _clip(exc.detail)
            return auth_error(
                conn_id,
                request.method,
                request.url.path,
                None,
                exc.response.status_code,
                detail,
                attempts,
                hint="the sign-in answer was not what the API documents",
            )
        if isinstance(exc, (_RetryableStatus, _FinalStatus)):
            response = exc.response
            status = response.status_code
            if status in (401, 403):
                renewable = isinstance(self.auth, BearerTokenAuth) and self.auth.renewable
                hint = (
                    "the token was renewed once and still refused: check the connection's credentials"
                    if renewable and status == 401
                    else "check the connection's credentials"
                )
                return auth_error(
                    conn_id, method, path, shown, status, vendor_message(response), attempts, hint
                )
            hint = ""
            if status == 429:
                hint = "rate limited: raise the connection's max_attempts/max_wait or lower max_concurrency"
            return api_error(conn_id, method, path, shown, status, vendor_message(response), attempts, hint)
        if isinstance(exc, VendorRejected):
            return vendor_error(
                conn_id, method, path, shown, 200, f"error_code {exc.code}: {exc.message}".rstrip(": ")
            )
        if isinstance(exc, _BodyUnreadable):
            return api_error(
                conn_id,
                method,
                path,
                shown,
                exc.status,
                exc.detail,
                attempts,
                hint="the response body was not what the API documents",
            )
        if isinstance(exc, httpx.TransportError):
            return api_error(
                conn_id,
                method,
                path,
                shown,
                None,
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                attempts,
                hint=f"is {self.settings.base_url} reachable?",
            )
        if isinstance(exc, httpx.HTTPError):
            return api_error(conn_id, method, path, shown, None, str(exc), attempts)
        raise exc


class _FinalStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


class _BodyUnreadable(Exception):
    """A 2xx body that could not be read as the documented JSON."""

    def __init__(self, status: int, detail: str, transient: bool) -> None:
        self.status = status
        self.detail = detail
        self.transient = transient
        super().__init__(detail)


def _parsed(response: httpx.Response, parse: Callable[[httpx.Response], Any] | None) -> Any:
    if parse is None:
        return response
    from pydantic import ValidationError

    try:
        return parse(response)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        truncated = any(p.get("type") == "json_invalid" for p in problems)
        where = "; ".join(
            f"{'.'.join(str(part) for part in p.get('loc', ())) or 'body'}: {p.get('msg')}"
            for p in problems[:5]
        )
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise _BodyUnreadable(
            response.status_code, f"invalid response body: {where}{more}", truncated
        ) from None
    except InvalidBody as error:  # well-formed, wrong shape: retrying will not help
        raise _BodyUnreadable(
            response.status_code, f"invalid response body: {_clip(str(error))}", False
        ) from None
    except ValueError as error:  # json.JSONDecodeError and friends: cut or garbled in transit
        raise _BodyUnreadable(
            response.status_code, f"response body is not JSON: {_clip(str(error))}", True
        ) from None


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, _RetryableStatus):
        return True
    if isinstance(exc, (_BodyUnreadable, _TokenUnreadable)):
        return exc.transient
    # Connection refused/reset, timeouts, dropped connections, truncated bodies: all transient.
    return isinstance(exc, httpx.TransportError)


def _relative(path: str) -> str:
    return path.lstrip("/")


def _query(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    return {key: value for key, value in params.items() if value is not None}


_SECRET_KEYS = frozenset({"password", "token", "access_token", "secret", "api_key"})


def _safe_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Request parameters fit to print: no value of a secret-sounding key."""
    if not params:
        return {}
    return {
        key: ("***" if key.lower() in _SECRET_KEYS else value)
        for key, value in params.items()
        if value is not None
    }


def _user_agent() -> str:
    from airflow_provider_fulfillment import __version__

    return f"airflow-provider-fulfillment/{__version__}"
