"""Request bodies: how big (on every route) and how slow (OWASP API4), and a clean answer when a client gives up.

Litestar enforces the body *size* when a handler reads the body (`request_max_body_size`, app-wide
from `REQUEST_MAX_BODY_BYTES`, counted on the bytes that arrive, so a chunked body without
`Content-Length` is cut off too). This middleware also refuses an announced `Content-Length` past the
route's limit before anything else runs (authentication, rate limits, the handler), on every route,
whether or not its handler reads a body: 413 problem+json at once. Nothing bounds the body's
*duration* either: uvicorn waits as long as a client keeps the connection open, so a
client trickling a byte a second holds a request (and whatever it already acquired) indefinitely.
This middleware gives the body a deadline, starting when the app first reads it: past it the read
raises and the client gets 408 problem+json. Once the body is complete, `receive` is passed through
untouched (streaming responses listen on it for a disconnect).

A client that disconnects before its body is complete is a client error, not a server error: Litestar
raises a 500 for it, which would page someone; it is answered (to nobody) as 400 instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from http import HTTPStatus
from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.middleware import ASGIMiddleware

from shop_kernel import ProblemError

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

__all__ = ("BodyTimeout", "ClientGaveUp", "RequestBodyMiddleware")


class BodyTimeout(ProblemError):
    status_code = HTTPStatus.REQUEST_TIMEOUT
    problem_type = "/problems/request-timeout"


class ClientGaveUp(ProblemError):
    status_code = HTTPStatus.BAD_REQUEST
    problem_type = "/problems/incomplete-body"


class RequestBodyMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, timeout_seconds: float) -> None:
        self.seconds = timeout_seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if not _refuse_announced_oversize(scope):  # no body announced: nothing to limit
            await next_app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        complete = False

        async def receive_with_deadline() -> ReceiveMessage:
            nonlocal deadline, complete
            if complete:
                return await receive()
            if deadline is None:
                deadline = loop.time() + self.seconds
            try:
                async with asyncio.timeout_at(deadline) if self.seconds else contextlib.nullcontext():
                    message = await receive()
            except TimeoutError:
                complete = True
                raise BodyTimeout(
                    f"The request body did not arrive within {self.seconds:g} seconds.", headers={"Connection": "close"}
                ) from None
            if message["type"] == "http.disconnect":
                complete = True
                raise ClientGaveUp("The client disconnected before sending the whole request body.")
            if not message.get("more_body", False):
                complete = True
            return message

        await next_app(scope, receive_with_deadline, send)


def _refuse_announced_oversize(scope: Scope) -> bool:
    """Whether the request announces a body (`Content-Length` or `Transfer-Encoding`); 413 past the limit."""
    announced, chunked = None, False
    for name, value in scope["headers"]:
        if name == b"content-length":
            announced = value
        elif name == b"transfer-encoding":
            chunked = True
    if announced is None:
        return chunked
    try:
        length = int(announced)
    except ValueError:
        raise ClientException("Invalid Content-Length header.") from None
    resolve = getattr(scope["route_handler"], "resolve_request_max_body_size", None)  # ASGI mounts have none
    limit = resolve() if resolve else None
    if limit is not None and length > limit:
        raise RequestEntityTooLarge
    return True
