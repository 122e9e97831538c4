"""What the sandbox app and its vendor routers share: the error a route raises, the error format of
each vendor, and the server-side state records (sessions, tokens). Routers import from here, the
app imports the routers: no import circle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._util import dumps


@dataclass
class Session:
    """A DropStream paging session: the result set is fixed at creation; ``pos`` is the cursor."""

    id: str
    resource: str
    rows: Sequence[int]
    query_key: tuple
    limit: int
    pos: int = 0
    page: int = 0
    last_used: float = 0.0


@dataclass
class Token:
    vendor: str
    issued: float
    ttl: float
    uses: int = 0
    subject: str = ""


class ApiError(Exception):
    """Raised by routes: the response to send (status, body bytes, content type, headers)."""

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


def vendor_error(path: str, status: int, message: str) -> tuple[bytes, str]:
    """A message in the error format of the vendor that owns ``path``."""
    if path.startswith("/dcl"):
        return dumps({"error_code": status, "error_message": message}), "application/json"
    if path.startswith("/stream"):
        if status == 401:
            return message.encode(), "text/plain; charset=utf-8"
        return dumps({"success": False, "error": message}), "application/json"
    return dumps({"error": message}), "application/json"
