"""The request id: one per HTTP request, carried into logs, outbox events and the background jobs they cause.

`RequestIdMiddleware` takes a well-formed `X-Request-ID` from the caller (a load balancer or another
service that already assigned one) or makes a new one, keeps it in a context variable for the
duration of the request, and returns it in the `X-Request-ID` response header. Logging reads it with
`current_request_id()`; the outbox stores it with each event so the job that handles the event logs
under the same id (`bind_request_id`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = (
    "REQUEST_ID_HEADER",
    "RequestIdMiddleware",
    "bind_request_id",
    "current_request_id",
    "incoming_request_id",
    "request_id_on_every_response",
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


class RequestIdMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


async def request_id_on_every_response(message: Message, scope: Scope) -> None:
    """`before_send` hook: answers that never reach a route's middleware (404 for an unknown path, 405) get an
    `X-Request-ID` too; those that did keep the one `RequestIdMiddleware` gave them."""
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders.from_message(message)
        if REQUEST_ID_HEADER not in headers:
            headers[REQUEST_ID_HEADER] = current_request_id() or incoming_request_id(scope) or uuid.uuid4().hex
