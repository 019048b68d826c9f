"""The request id: one per HTTP request, carried into logs, outbox events and the background jobs they cause.

The host app's outermost middleware (the composed app's `app.edge.EdgeMiddleware`) takes a well-formed
`X-Request-ID` from the caller (`incoming_request_id`: a load balancer or another service that already
assigned one) or makes a new one, keeps it in `request_id_var` for the duration of the request, and
returns it in the `X-Request-ID` response header. Logging reads it with
`current_request_id()`; the outbox stores it with each event so the job that handles the event logs
under the same id (`bind_request_id`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar.types import Scope

__all__ = (
    "REQUEST_ID_HEADER",
    "bind_request_id",
    "current_request_id",
    "incoming_request_id",
    "request_id_var",
)

REQUEST_ID_HEADER = "X-Request-ID"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
request_id_var: ContextVar[str | None] = ContextVar("shop_request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


@contextmanager
def bind_request_id(request_id: str | None) -> Iterator[None]:
    """Make `request_id` current for the block (a background job handling what a request caused)."""
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


def incoming_request_id(scope: Scope) -> str | None:
    """The caller's `X-Request-ID`, if it is one we may repeat."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            # A caller's id is kept only if it cannot smuggle anything into logs or headers.
            return candidate if _VALID.fullmatch(candidate) else None
    return None
