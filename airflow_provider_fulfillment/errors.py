"""The one error model: every exception the provider raises, and one table from failure to exception.

This is the bottom layer: it imports nothing from the package, so `http.py`, `paging.py`, the hooks
and the operators all share it. Inside the retry loop, failures travel as *signals* (a status to
retry, a body that could not be read, a refused sign-in...); when the loop gives up, `translate`
reads `ERROR_TABLE` once, top to bottom, and builds the one error the user sees: its class, the
vendor's own words (scrubbed of the connection's secrets) and a hint that fits the cause.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, quote_plus, urlencode

import httpx

MESSAGE_LIMIT = 300
# Secrets shorter than this are not scrubbed from prose (a 3-letter password would eat words);
# Airflow's own masker draws the same line (`min_length_masked_secret`).
MIN_SCRUBBED_LENGTH = 4
SCRUBBED = "***"
_SECRET_KEYS = frozenset({"password", "token", "access_token", "secret", "api_key"})


def _rebuild(cls: type[Exception], fields: dict[str, Any]) -> Exception:
    return cls(**fields)


# --------------------------------------------------------------------------- errors users catch


class FulfillmentError(Exception):
    """Base of every error this provider raises on purpose."""


class FulfillmentAPIError(FulfillmentError):
    """A request failed for good: names the connection, the request, the status and the vendor's words."""

    def __init__(
        self,
        *,
        conn_id: str,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        status: int | None = None,
        vendor_message: str = "",
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

    def fields(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id,
            "method": self.method,
            "path": self.path,
            "params": self.params,
            "status": self.status,
            "vendor_message": self.vendor_message,
            "attempts": self.attempts,
            "hint": self.hint,
            "vendor": self.vendor,
        }

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

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across Airflow's process boundaries
        return (_rebuild, (type(self), self.fields()))


class FulfillmentAuthError(FulfillmentAPIError):
    """401/403, or a refused sign-in: the connection's credentials. Never retried."""


class FulfillmentVendorError(FulfillmentAPIError):
    """The vendor answered 2xx but said it failed (DCL `error_code != 0`)."""


class RecordNotFound(FulfillmentError, LookupError):
    """The vendor has no record with that identifier."""

    def __init__(self, *, conn_id: str, vendor: str, resource: str, ident: str) -> None:
        self.conn_id = conn_id
        self.vendor = vendor
        self.resource = resource
        self.ident = ident
        super().__init__(f"connection '{conn_id}': {vendor} {resource} {ident!r} not found")

    def __reduce__(self) -> tuple[Any, ...]:
        fields = {"conn_id": self.conn_id, "vendor": self.vendor, "resource": self.resource}
        return (_rebuild, (type(self), {**fields, "ident": self.ident}))


class CapReached(FulfillmentError):
    """A page-based DropStream result set was cut at the cap: the caller must split or use a session."""

    def __init__(self, *, total: int | None, cap: int = 10_000) -> None:
        self.total = total
        self.cap = cap
        super().__init__(
            f"page-based result set exceeds the {cap:,}-result cap"
            + (f" (total_count {total})" if total is not None else "")
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), {"total": self.total, "cap": self.cap}))


# --------------------------------------------------------------------------- signals (inside the retry loop)


class InvalidBody(ValueError):
    """A parser's verdict on a well-formed body that is not what the API documents (never retried)."""

    transient = False


class MissingRecords(InvalidBody):
    """A 2xx answer without its records key (a vendor error in a 200, an envelope cut short): never an
    empty last page; retried like a transient fault, then loud."""

    transient = True


class VendorRejected(Exception):
    """The vendor reported an error inside a successful HTTP answer; the caller adds the request."""

    def __init__(self, *, code: Any, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"error_code {code}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), {"code": self.code, "message": self.message}))


class RetryableStatus(Exception):
    """A 5xx or 429 answer that the retry policy may try again."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


class FinalStatus(Exception):
    """A 4xx answer: retrying will not help."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


class BodyUnreadable(Exception):
    """A 2xx body that could not be read as the documented JSON (`transient`: cut short in transit)."""

    def __init__(self, status: int, detail: str, transient: bool) -> None:
        self.status = status
        self.detail = detail
        self.transient = transient
        super().__init__(detail)


class TokenRefused(Exception):
    """The sign-in (token) endpoint answered 4xx."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


class TokenUnreadable(Exception):
    """The sign-in answered 2xx without a readable token."""

    def __init__(self, response: httpx.Response, detail: str, transient: bool) -> None:
        self.response = response
        self.detail = detail
        self.transient = transient
        super().__init__(detail)


def is_retryable(signal: BaseException) -> bool:
    """Whether the retry policy may try again after this signal."""
    if isinstance(signal, RetryableStatus):
        return True
    if isinstance(signal, (BodyUnreadable, TokenUnreadable)):
        return signal.transient
    # Connection refused/reset, timeouts, dropped connections, truncated bodies: all transient.
    return isinstance(signal, httpx.TransportError)


# --------------------------------------------------------------------------- vendor text, scrubbed


def clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


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
                return clip(value if isinstance(value, str) else str(value))
    text = response.text.strip() if response.content else ""
    return clip(text or (response.reason_phrase or ""))


class Scrubber:
    """Replaces every secret known to a connection, in each form a vendor may echo it, by `***`.

    A gateway that answers a refused sign-in by echoing the request body shows the password
    JSON-escaped; one that echoes headers shows the Basic credentials base64-encoded; a query
    string shows them percent-encoded. All of those are covered, longest first.
    """

    def __init__(self, secrets: Iterable[str | None] = (), basic: tuple[str, str] | None = None) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SCRUBBED_LENGTH:
                forms.update(_echoed_forms(secret))
        if basic and basic[0] is not None and basic[1]:
            forms.add(base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode())
        self._forms = sorted((form for form in forms if form), key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        """A secret learnt later (a token just issued)."""
        if secret and len(secret) >= MIN_SCRUBBED_LENGTH:
            self._forms = sorted({*self._forms, *_echoed_forms(secret)}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, SCRUBBED)
        return text


def _echoed_forms(secret: str) -> set[str]:
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }


def safe_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Request parameters fit to print: no value of a secret-sounding key."""
    if not params:
        return {}
    return {
        key: (SCRUBBED if key.lower() in _SECRET_KEYS else value)
        for key, value in params.items()
        if value is not None
    }


# --------------------------------------------------------------------------- the table

Kind = Literal["transport", "status", "sign_in", "sign_in_body", "body", "vendor"]
AuthKind = Literal["none", "basic", "renewable_token", "ready_token"]


@dataclass(frozen=True)
class Where:
    """The connection and request a failure belongs to: what the table's hints may speak of."""

    conn_id: str
    vendor: str = ""
    base_url: str = ""
    default_base_url: str = ""
    auth: AuthKind = "none"
    scrub: Callable[[str], str] = field(default=lambda text: text, repr=False)

    @property
    def missing_prefix(self) -> str:
        """The default base URL's path prefix (`/api/v1`) when the configured base URL lacks it."""
        prefix = httpx.URL(self.default_base_url).path.rstrip("/") if self.default_base_url else ""
        if prefix and not httpx.URL(self.base_url or "http://x").path.rstrip("/").endswith(prefix):
            return prefix
        return ""


@dataclass(frozen=True)
class Failure:
    """One request's last outcome, as the table reads it."""

    kind: Kind
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    status: int | None = None
    message: str = ""  # the vendor's or the transport's words (scrubbed before use)
    attempts: int = 1
    url: str = ""  # the URL the request went to, without its query


@dataclass(frozen=True)
class Rule:
    """One row: which failures it takes, the error class they become, and the hint that fits."""

    kind: Kind
    statuses: frozenset[int] | None
    error: type[FulfillmentAPIError]
    hint: str = ""
    when: Callable[[Failure, Where], bool] | None = None

    def matches(self, failure: Failure, where: Where) -> bool:
        if failure.kind != self.kind:
            return False
        if self.statuses is not None and failure.status not in self.statuses:
            return False
        return self.when is None or self.when(failure, where)


def _auth(*kinds: AuthKind) -> Callable[[Failure, Where], bool]:
    return lambda failure, where: where.auth in kinds


def _no_prefix(failure: Failure, where: Where) -> bool:
    return bool(where.missing_prefix)


_PREFIX_HINT = (
    "nothing at {url}: the connection's host must be the whole base URL, with the API's path prefix "
    "{missing_prefix}, e.g. {default_base_url}"
)
_NOT_THE_API = (
    "nothing at {url}: is {base_url} the API's base URL? The connection's host must be the whole "
    "base URL, path prefix included"
)
RATE_LIMIT_HINT = "rate limited: raise the connection's max_attempts/max_wait or lower max_concurrency"

# Read top to bottom; the first row that matches wins. Every error a request can end in is here.
ERROR_TABLE: tuple[Rule, ...] = (
    Rule("transport", None, FulfillmentAPIError, "is {base_url} reachable?"),
    # A sign-in endpoint that is not there is a Base URL problem, not a password problem.
    Rule("sign_in", frozenset({404, 405}), FulfillmentAuthError, _PREFIX_HINT, _no_prefix),
    Rule("sign_in", frozenset({404, 405}), FulfillmentAuthError, _NOT_THE_API),
    Rule(
        "sign_in",
        frozenset({400, 401, 403, 422}),
        FulfillmentAuthError,
        "the sign-in was refused: check the connection's login and password",
    ),
    Rule(
        "sign_in", None, FulfillmentAuthError, "the sign-in failed: check the connection's login and password"
    ),
    Rule("sign_in_body", None, FulfillmentAuthError, "the sign-in answer was not what the API documents"),
    Rule(
        "status",
        frozenset({401}),
        FulfillmentAuthError,
        "the token was renewed and still refused: check the connection's credentials",
        _auth("renewable_token"),
    ),
    Rule(
        "status",
        frozenset({401, 403}),
        FulfillmentAuthError,
        "the token in the connection's extra 'token' was refused: replace it, or give login and password",
        _auth("ready_token"),
    ),
    Rule("status", frozenset({401, 403}), FulfillmentAuthError, "check the connection's credentials"),
    Rule("status", frozenset({404, 405}), FulfillmentAPIError, _PREFIX_HINT, _no_prefix),
    Rule("status", frozenset({429}), FulfillmentAPIError, RATE_LIMIT_HINT),
    Rule("status", None, FulfillmentAPIError),
    Rule("body", None, FulfillmentAPIError, "the response body was not what the API documents"),
    Rule("vendor", None, FulfillmentVendorError),
)


def _url(response: httpx.Response) -> str:
    return str(response.request.url.copy_with(query=None))


def failure_of(signal: BaseException, method: str, path: str, params: Any, attempts: int) -> Failure | None:
    """The table's view of a signal (None: not a failure the table knows)."""
    if isinstance(signal, (TokenRefused, TokenUnreadable)):
        response, request = signal.response, signal.response.request
        if isinstance(signal, TokenRefused):
            kind: Kind = "sign_in"
            words = vendor_message(response)
        else:
            kind = "sign_in_body"
            words = ("response body is not JSON: " if signal.transient else "") + clip(signal.detail)
        return Failure(
            kind,
            request.method,
            request.url.path,
            None,
            response.status_code,
            words,
            attempts,
            _url(response),
        )
    if isinstance(signal, (RetryableStatus, FinalStatus)):
        response = signal.response
        words = vendor_message(response)
        return Failure("status", method, path, params, response.status_code, words, attempts, _url(response))
    if isinstance(signal, VendorRejected):
        words = f"error_code {signal.code}: {signal.message}".rstrip(": ")
        return Failure("vendor", method, path, params, 200, words)
    if isinstance(signal, BodyUnreadable):
        return Failure("body", method, path, params, signal.status, signal.detail, attempts)
    if isinstance(signal, httpx.TransportError):
        words = f"{type(signal).__name__}: {signal}" if str(signal) else type(signal).__name__
        return Failure("transport", method, path, params, None, words, attempts)
    if isinstance(signal, httpx.HTTPError):
        return Failure("transport", method, path, params, None, str(signal), attempts)
    return None


def error_for(failure: Failure, where: Where) -> FulfillmentAPIError:
    """The table's verdict: the first matching row's class, with its hint filled in."""
    rule = next(rule for rule in ERROR_TABLE if rule.matches(failure, where))
    hint = rule.hint.format(
        url=failure.url or where.base_url + failure.path,
        base_url=where.base_url,
        default_base_url=where.default_base_url,
        missing_prefix=where.missing_prefix,
    )
    return rule.error(
        conn_id=where.conn_id,
        method=failure.method,
        path=failure.path,
        params=safe_params(failure.params),
        status=failure.status,
        vendor_message=where.scrub(failure.message),
        attempts=failure.attempts,
        hint=where.scrub(hint),
        vendor=where.vendor,
    )


def translate(
    signal: BaseException, where: Where, *, method: str, path: str, params: Any = None, attempts: int = 1
) -> BaseException:
    """The error to raise for whatever ended a request: provider errors pass through, signals are mapped."""
    if isinstance(signal, FulfillmentError):
        return signal
    failure = failure_of(signal, method, path, params, attempts)
    return signal if failure is None else error_for(failure, where)


__all__ = [
    "ERROR_TABLE",
    "BodyUnreadable",
    "CapReached",
    "Failure",
    "FinalStatus",
    "FulfillmentAPIError",
    "FulfillmentAuthError",
    "FulfillmentError",
    "FulfillmentVendorError",
    "InvalidBody",
    "MissingRecords",
    "RecordNotFound",
    "RetryableStatus",
    "Rule",
    "Scrubber",
    "TokenRefused",
    "TokenUnreadable",
    "VendorRejected",
    "Where",
    "error_for",
    "is_retryable",
    "safe_params",
    "translate",
    "vendor_message",
]
