"""The one HTTP core: clients, auth, retry policy and error mapping for every vendor, sync and async.

Hooks and triggers build an `HttpCore` from a `ClientSettings` and an auth; they never talk to
httpx directly. The retry policy and the error messages are therefore the same everywhere.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import tenacity

from airflow_provider_fulfillment.concurrency import DEFAULT_CEILING, controller_for
from airflow_provider_fulfillment.errors import (
    BodyUnreadable,
    FinalStatus,
    FulfillmentAPIError,
    FulfillmentAuthError,
    FulfillmentError,
    FulfillmentVendorError,
    InvalidBody,
    RetryableStatus,
    Scrubber,
    TokenRefused,
    TokenUnreadable,
    VendorRejected,
    Where,
    clip,
    is_retryable,
    safe_params,
    translate,
    vendor_message,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_WAIT = 60.0
# The ceiling of requests in flight per connection. The adaptive controller (concurrency.py)
# starts at 4 and goes higher only while the vendor answers fast and without 429/503.
DEFAULT_MAX_CONCURRENCY = DEFAULT_CEILING
_BACKOFF_BASE = 0.5
# No retry waits less than this (unless the connection's max_wait is lower): a `Retry-After: 0`,
# a date already past or an unlucky jitter must not turn five attempts into a burst.
MIN_RETRY_WAIT = 0.25


def mask_secret(secret: str | None) -> None:
    """Register a secret with Airflow's masker, so no log line or task output shows it."""
    if not secret:
        return
    try:
        from airflow.sdk.log import mask_secret as airflow_mask_secret
    except ImportError:  # pragma: no cover - Airflow always ships it
        return
    airflow_mask_secret(secret)


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
    max_requests_per_second: float | None = None  # a hard budget for the whole connection
    default_base_url: str = ""  # the vendor's documented base URL, for hints about the host

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
            max_requests_per_second=_positive(extra, "max_requests_per_second", None, float, conn.conn_id),
            default_base_url=default_base_url,
        )
        for secret in settings.secrets():
            mask_secret(secret)
        return settings

    def secrets(self) -> tuple[str, ...]:
        """Every secret the connection holds: what no message may quote.

        The login is a user name or e-mail for all three vendors, shown so the user can tell which
        account failed; with a password, `login:password` as Basic credentials is a secret too.
        """
        return tuple(secret for secret in (self.password, self.token) if secret)

    def scrubber(self) -> Scrubber:
        return Scrubber(self.secrets(), basic=(self.login, self.password) if self.password else None)


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


@dataclass
class _TokenCell:
    """One connection's current token and the lock its renewals take (shared by its hooks)."""

    token: str | None = None
    renewal: threading.Lock = field(default_factory=threading.Lock)


_token_cells: dict[tuple[str, ...], _TokenCell] = {}
_token_cells_lock = threading.Lock()
# How often a coroutine waiting for a peer's renewal looks again (it must not block its loop).
_RENEWAL_POLL = 0.005


def _token_cell(key: tuple[str, ...] | None) -> _TokenCell:
    if key is None:
        return _TokenCell()
    with _token_cells_lock:
        return _token_cells.setdefault(key, _TokenCell())


def forget_tokens() -> None:
    """Drop every connection's cached token (tests; a new run signs in afresh)."""
    with _token_cells_lock:
        _token_cells.clear()


# A 401 renews the token; the renewed one may be refused too without being wrong: it expired or
# was revoked before this request reached the server (another worker of the same login signing
# in, a token dying after N uses while many requests are in flight). So a request renews up to
# this many times; a token refused that often is wrong, and the error says so.
MAX_RENEWALS = 3


class BearerTokenAuth(httpx.Auth):
    """Bearer auth whose token comes from a vendor's sign-in endpoint, cached and renewed on 401
    (up to `MAX_RENEWALS` times a request).

    `shared_by` (conn id, sign-in URL, login) makes every hook of one connection in this process
    share one token, and renew it one at a time (single-flight): threads through a lock, coroutines
    by polling it without blocking their loop, threads with their own loops alike. A vendor that
    allows one active token per user would otherwise have each renewal revoke the others' tokens.
    A ready token (the connection's extra `token`) is used as is and never renewed: a 401 then
    means the token is wrong.
    """

    requires_response_body = True

    def __init__(
        self,
        build_token_request: Callable[[], httpx.Request] | None,
        read_token: Callable[[httpx.Response], str] | None,
        ready_token: str | None = None,
        *,
        shared_by: tuple[str, ...] | None = None,
    ) -> None:
        self._build_token_request = build_token_request
        self._read_token = read_token
        self._cell = _token_cell(None if ready_token else shared_by)
        if ready_token:
            self._cell.token = ready_token
        self.token_fetches = 0
        self.tokens_seen: list[str] = [ready_token] if ready_token else []

    @property
    def _token(self) -> str | None:
        return self._cell.token

    @property
    def renewable(self) -> bool:
        return self._build_token_request is not None

    def sync_auth_flow(self, request: httpx.Request):
        """httpx's sync driver of the flow, renewals under the connection's lock."""
        flow = self._flow(request)
        try:
            request = next(flow)
            while True:
                response = yield request
                if self.requires_response_body:
                    response.read()
                try:
                    request = flow.send(response)
                except StopIteration:
                    return
        finally:
            flow.close()

    def _flow(self, request: httpx.Request):
        refused: str | None = None
        token = self._token
        for renewals in range(MAX_RENEWALS + 1):
            if token is None or token == refused:
                with self._cell.renewal:
                    token = yield from self._renewed(refused)
            request.headers["Authorization"] = f"Bearer {token}"
            response = yield request
            if response.status_code != 401 or not self.renewable or renewals == MAX_RENEWALS:
                return
            refused = token

    async def async_auth_flow(self, request: httpx.Request):
        """The async client's flow: the same single-flight renewal, waited for without blocking."""
        refused: str | None = None
        token = self._token
        for renewals in range(MAX_RENEWALS + 1):
            if token is None or token == refused:
                async with self._renewing():
                    renewal = self._renewed(refused)
                    try:
                        token_request = next(renewal)
                        while True:
                            token_response = yield token_request
                            await token_response.aread()
                            token_request = renewal.send(token_response)
                    except StopIteration as finished:
                        token = finished.value
            request.headers["Authorization"] = f"Bearer {token}"
            response = yield request
            if response.status_code != 401 or not self.renewable or renewals == MAX_RENEWALS:
                return
            refused = token

    @contextlib.asynccontextmanager
    async def _renewing(self):
        import asyncio

        while not self._cell.renewal.acquire(blocking=False):
            await asyncio.sleep(_RENEWAL_POLL)
        try:
            yield
        finally:
            self._cell.renewal.release()

    def _renewed(self, refused: str | None):
        """A token other than `refused`: the one a peer renewed meanwhile, or a new one (call with
        the renewal lock held), so N callers meeting a 401 at once sign in once."""
        if self._cell.token is None or self._cell.token == refused:
            yield from self._fetch_token()
        return self._cell.token

    def _fetch_token(self):
        if self._build_token_request is None or self._read_token is None:
            raise FulfillmentError("no token and no way to get one: set login and password, or extra 'token'")
        token_response = yield self._build_token_request()
        self.token_fetches += 1
        if token_response.status_code == 429 or token_response.status_code >= 500:
            raise RetryableStatus(token_response)
        if token_response.status_code >= 400:
            raise TokenRefused(token_response)
        try:
            token = self._read_token(token_response)
        except ValueError as error:  # cut in transit (retry) or not the documented shape (don't)
            raise TokenUnreadable(token_response, str(error), not isinstance(error, InvalidBody)) from None
        mask_secret(token)
        self.tokens_seen = [*self.tokens_seen[-3:], token]
        self._cell.token = token


def auth_kind(auth: httpx.Auth | None) -> str:
    """How a connection authenticates, in the terms the error table's hints use."""
    if isinstance(auth, BearerTokenAuth):
        return "renewable_token" if auth.renewable else "ready_token"
    return "basic" if isinstance(auth, httpx.BasicAuth) else "none"


# --------------------------------------------------------------------------- messages


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), if any.

    `0`, a negative number or a date already past is no hint at all (None): honouring it would
    retry at once, again and again.
    """
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return seconds


# --------------------------------------------------------------------------- paths


def path_segment(value: str | int) -> str:
    """An identifier as exactly one URL path segment, whatever it holds.

    Everything outside RFC 3986's unreserved characters is percent-encoded (`/`, `?`, `#`, `%`,
    spaces...), and `.`/`..` become `%2E`/`%2E%2E`, so no identifier can add a segment, start a
    query or fragment, or walk up the path (`../auth/sign_in` stays one segment).
    """
    text = str(value)
    if not text:
        raise ValueError("an empty identifier cannot be a path segment")
    if text in (".", ".."):
        return text.replace(".", "%2E")
    return quote(text, safe="-._~")


def record_path(collection: str, ident: str | int) -> str:
    """`/orders/<ident>` with the identifier encoded as one segment (see `path_segment`)."""
    return f"{collection.rstrip('/')}/{path_segment(ident)}"


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
        self._scrubber = settings.scrubber()
        # Shared by every hook, thread and trigger of this connection in the process.
        self.controller = controller_for(
            settings.conn_id,
            settings.base_url,
            ceiling=settings.max_concurrency,
            max_rps=settings.max_requests_per_second,
        )

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
        wait_out_429: bool = True,
    ) -> Any:
        """Send one request, retrying what may succeed later; return the 2xx response (or `parse` of it).

        `parse` runs inside the retry loop: a body cut short in transit is retried like a dropped
        connection, while a well-formed body that does not fit the model fails at once.
        `wait_out_429=False` (read-ahead that may not be needed) gives up on a 429 at once.
        """
        policy = self._retry_kwargs()
        if not wait_out_429:
            policy["retry"] = tenacity.retry_if_exception(
                lambda signal: is_retryable(signal) and not _is_429(signal)
            )
        retrying = tenacity.Retrying(**policy, sleep=self._sleep or tenacity.nap.sleep)
        try:
            return retrying(self._send_once, method, path, params, json, parse)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clear error
            raise self.error_for(
                exc, method, path, params, retrying.statistics.get("attempt_number", 1)
            ) from None

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
            raise self.error_for(
                exc, method, path, params, retrying.statistics.get("attempt_number", 1)
            ) from None

    def _send_once(self, method: str, path: str, params: Any, json: Any, parse: Any) -> Any:
        log.debug("%s %s %s", method, path, safe_params(params))
        started = self.controller.acquire()
        response: httpx.Response | None = None
        try:
            response = self.client.request(method, _relative(path), params=_query(params), json=json)
        finally:
            self._release(started, response, self._sleep)
        return _parsed(self._check(response), parse)

    async def _asend_once(self, method: str, path: str, params: Any, json: Any, parse: Any) -> Any:
        """The same admission as `_send_once`, awaited: a trigger's polls share the connection's
        controller (its limit, learnt rate, budget and Retry-After pause) with every thread."""
        log.debug("%s %s %s", method, path, safe_params(params))
        started = await self.controller.aacquire()
        response: httpx.Response | None = None
        try:
            response = await self.async_client.request(
                method, _relative(path), params=_query(params), json=json
            )
        finally:
            self._release(started, response, self._asleep)
        return _parsed(self._check(response), parse)

    def _release(self, started: float, response: httpx.Response | None, fake_sleep: Any) -> None:
        """Tell the controller how a request ended (None: no answer). A 429/503's Retry-After
        pauses the whole connection; tests with a fake sleep wait on their own, so theirs do not."""
        if response is None:
            self.controller.release(started, None)
            return
        pause = None
        if response.status_code in (429, 503) and fake_sleep is None:
            asked = retry_after_seconds(response)
            pause = None if asked is None else min(asked, self.settings.max_wait)
        self.controller.release(started, response.status_code, pause)

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetryableStatus(response)
        if status >= 400:
            raise FinalStatus(response)
        return response

    # policy --------------------------------------------------------------------------
    def _retry_kwargs(self) -> dict[str, Any]:
        return {
            "stop": tenacity.stop_after_attempt(max(1, self.settings.max_attempts)),
            "wait": self._wait,
            "retry": tenacity.retry_if_exception(is_retryable),
            "reraise": True,
            "before_sleep": self._log_retry,
        }

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Honour a usable Retry-After; otherwise exponential backoff with jitter in its upper half.

        Every wait is at least `MIN_RETRY_WAIT` and at most the connection's `max_wait`.
        """
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after_seconds(exc.response) if isinstance(exc, RetryableStatus) else None
        return retry_wait(state.attempt_number, asked, self.settings.max_wait)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        self.controller.retried()
        exc = state.outcome.exception() if state.outcome else None
        what = f"HTTP {exc.response.status_code}" if isinstance(exc, RetryableStatus) else type(exc).__name__
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "connection '%s': attempt %d failed (%s); retrying in %.2fs",
            self.settings.conn_id,
            state.attempt_number,
            what,
            wait,
        )

    # errors --------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        """`text` without any secret of this connection (tokens issued so far included)."""
        for token in getattr(self.auth, "tokens_seen", ()):
            self._scrubber.add(token)
        return self._scrubber(text)

    def where(self) -> Where:
        """This connection, as the error table's hints speak of it."""
        return Where(
            conn_id=self.settings.conn_id,
            vendor=self.settings.vendor,
            base_url=self.settings.base_url,
            default_base_url=self.settings.default_base_url,
            auth=auth_kind(self.auth),  # type: ignore[arg-type]
            scrub=self.scrub,
        )

    def error_for(
        self, signal: BaseException, method: str, path: str, params: Any = None, attempts: int = 1
    ) -> BaseException:
        """The one error a failure becomes (`errors.ERROR_TABLE`); unknown exceptions pass unchanged."""
        return translate(signal, self.where(), method=method, path=path, params=params, attempts=attempts)


def _is_429(signal: BaseException) -> bool:
    return isinstance(signal, RetryableStatus) and signal.response.status_code == 429


def retry_wait(attempt: int, retry_after: float | None, cap: float) -> float:
    """Seconds before retry number `attempt`: Retry-After if usable, else backoff; floored, then capped."""
    if retry_after is not None:
        wanted = retry_after
    else:
        ceiling = _BACKOFF_BASE * (2 ** (attempt - 1))
        wanted = random.uniform(ceiling / 2, ceiling)
    return min(cap, max(MIN_RETRY_WAIT, wanted))


def _parsed(response: httpx.Response, parse: Callable[[httpx.Response], Any] | None) -> Any:
    if parse is None:
        return response
    from pydantic import ValidationError

    try:
        return parse(response)
    except ValidationError as error:
        raise invalid_body(response.status_code, error) from None
    except InvalidBody as error:  # well-formed, wrong shape: retrying will not help (unless transient)
        raise BodyUnreadable(
            response.status_code, f"invalid response body: {clip(str(error))}", error.transient
        ) from None
    except ValueError as error:  # json.JSONDecodeError and friends: cut or garbled in transit
        raise BodyUnreadable(
            response.status_code, f"response body is not JSON: {clip(str(error))}", True
        ) from None


def invalid_body(status: int, error: Any, within: tuple[str | int, ...] = ()) -> BodyUnreadable:
    """A pydantic `ValidationError` as the body error, each problem located in the body
    (`orders.3.created_at: ...`; `within` is where the validated part lies, for one record)."""
    problems = error.errors(include_url=False, include_input=False)
    truncated = any(p.get("type") == "json_invalid" for p in problems)
    where = "; ".join(
        f"{'.'.join(str(part) for part in (*within, *p.get('loc', ()))) or 'body'}: {p.get('msg')}"
        for p in problems[:5]
    )
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return BodyUnreadable(status, f"invalid response body: {where}{more}", truncated)


def _relative(path: str) -> str:
    return path.lstrip("/")


def _query(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    return {key: value for key, value in params.items() if value is not None}


def _user_agent() -> str:
    from airflow_provider_fulfillment import __version__

    return f"airflow-provider-fulfillment/{__version__}"


__all__ = [
    "BearerTokenAuth",
    "forget_tokens",
    "ClientSettings",
    "FulfillmentAPIError",
    "FulfillmentAuthError",
    "FulfillmentError",
    "FulfillmentVendorError",
    "HttpCore",
    "InvalidBody",
    "VendorRejected",
    "mask_secret",
    "path_segment",
    "record_path",
    "retry_after_seconds",
    "retry_wait",
    "vendor_message",
]
