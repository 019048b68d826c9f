"""The app's outermost middleware: request id, security headers, metrics and the access log in one pass.

These four used to be a middleware each plus two `before_send` hooks; every request paid for four send
wrappers, a `Request` object, a parsed URL and a header map just to add nine headers and count itself.
Here one wrapper appends prepared header pairs to the response's list and the metrics keep their series
objects per (method, route template, status), so the fixed cost of a request is a few dictionary reads.

- Request id: the caller's well-formed `X-Request-ID`, else a new one (`shop_kernel.context`).
- Security headers (OWASP API8): set only where the answer did not choose its own (the OAuth pages set
  stricter ones). JSON and problem answers get a content policy that forbids everything; HTML keeps its
  scripts; HSTS only in production, where TLS is in front.
- Metrics: `shop_requests_total`, `shop_request_duration_seconds`, `shop_requests_in_progress` and
  `shop_requests_error_total`, labelled by method, route template (never an id) and status.
- Access log: one INFO line per request on the `shop.access` logger (method, path without the query,
  status, duration_ms, request_id), unless `ACCESS_LOG=false` or the level is above INFO.

Answers that never reach a route's middleware (404 for an unknown path, 405), and those a middleware below
this one raised (401, 413: Litestar answers them above every middleware) get the same headers from
`edge_headers_for_unrouted`, a `before_send` hook that leaves alone what this middleware already did; the
latter are counted and logged there, with their real status.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, cast

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from prometheus_client import Counter, Gauge, Histogram

from app.observability import ACCESS_LOGGER
from shop_kernel.context import incoming_request_id, request_id_var

if TYPE_CHECKING:
    from litestar.types import ASGIApp, BeforeMessageSendHookHandler, Message, Receive, Scope, Send
    from prometheus_client.metrics import MetricWrapperBase

__all__ = ("EdgeMiddleware", "edge_headers_for_unrouted")

access_logger = logging.getLogger(ACCESS_LOGGER)
LABELS = ("method", "path", "status_code", "app_name")
APP_NAME = "shop"
REQUESTS = Counter("shop_requests_total", "Total requests", LABELS)
DURATION = Histogram(
    "shop_request_duration_seconds",
    "Request duration, in seconds",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
IN_PROGRESS = Gauge("shop_requests_in_progress", "Requests being served", ("method", "path", "app_name"))
ERRORS = Counter("shop_requests_error_total", "Requests answered with a 5xx", LABELS)

ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
CSP = b"content-security-policy"
NOT_A_PAGE = b"default-src 'none'; frame-ancestors 'none'"
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
EDGED = "shop.edge"
"""Scope key: this middleware already completed the answer's headers."""
PENDING = "shop.edge.pending"
"""Scope key: the metrics and access log of an answer raised below the middleware, awaiting its status."""
EDGE_ID = "shop.edge.request_id"


def _finish_headers(headers: list[tuple[bytes, bytes]], request_id: bytes, *, production: bool) -> None:
    """Append the request id and every security header the answer did not set itself."""
    present = {name.lower() for name, _ in headers}
    if b"x-request-id" not in present:
        headers.append((b"x-request-id", request_id))
    headers.extend(pair for pair in ALWAYS if pair[0] not in present)
    if CSP not in present:
        content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
        if not content_type.startswith(b"text/html"):
            headers.append((CSP, NOT_A_PAGE))
    if production and HSTS[0] not in present:
        headers.append(HSTS)


class _Series:
    """The metric children of one (method, route template, status): looked up once, then reused."""

    __slots__ = ("count", "duration", "errors")

    def __init__(self, method: str, path: str, status: int) -> None:
        values = (method, path, str(status), APP_NAME)
        self.count = REQUESTS.labels(*values)
        self.duration = DURATION.labels(*values)
        self.errors: MetricWrapperBase | None = ERRORS.labels(*values) if status >= 500 else None


_series: dict[tuple[str, str, int], _Series] = {}
_in_progress: dict[tuple[str, str], Gauge] = {}


def _record(method: str, path: str, status: int, seconds: float) -> None:
    series = _series.get((method, path, status))
    if series is None:
        series = _series[(method, path, status)] = _Series(method, path, status)
    series.count.inc()
    series.duration.observe(seconds)
    if series.errors is not None:
        series.errors.inc()  # type: ignore[attr-defined]


def _progress(method: str, path: str) -> Gauge:
    gauge = _in_progress.get((method, path))
    if gauge is None:
        gauge = _in_progress[(method, path)] = IN_PROGRESS.labels(method, path, APP_NAME)
    return gauge


class EdgeMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, *, production: bool, metrics: bool = True, access_log: bool = True) -> None:
        self.production = production
        self.metrics = metrics
        self.access_log = access_log

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        encoded_id = request_id.encode()
        production = self.production
        status: int | None = None
        edge = cast("dict[str, Any]", scope)

        async def send_finished(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message["headers"])
                _finish_headers(headers, encoded_id, production=production)
                message["headers"] = headers
                edge[EDGED] = True
            await send(message)

        token = request_id_var.set(request_id)
        method, path = scope["method"], scope["path_template"]  # type: ignore[typeddict-item]
        measured = self.metrics and path != "/metrics"
        started = time.perf_counter()

        def done(answered: int) -> None:
            seconds = time.perf_counter() - started
            if measured:
                _progress(method, path).dec()
                _record(method, path, answered, seconds)
            if self.access_log and access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    "%s %s %s %.1f ms",
                    method,
                    scope["path"],
                    answered,
                    seconds * 1000,
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "status": answered,
                        "duration_ms": round(seconds * 1000, 2),
                        "request_id": request_id,
                    },
                )

        if measured:
            _progress(method, path).inc()
        try:
            await next_app(scope, receive, send_finished)
        except BaseException:
            if status is None:  # a middleware below raised (401, 413...): Litestar answers it above this one
                edge[PENDING] = done
                edge[EDGE_ID] = request_id
            else:
                done(status)
            raise
        else:
            done(status if status is not None else 500)  # nothing sent: the server answers 500
        finally:
            request_id_var.reset(token)


def edge_headers_for_unrouted(*, production: bool) -> BeforeMessageSendHookHandler:
    """`before_send` hook: the request id and security headers on answers `EdgeMiddleware` did not see."""

    async def finish(message: Message, scope: Scope) -> None:
        edge = cast("dict[str, Any]", scope)
        if message["type"] != "http.response.start" or edge.get(EDGED):
            return
        if (done := edge.pop(PENDING, None)) is not None:
            done(message["status"])  # metrics and access log of an answer raised below the middleware
        headers = list(message["headers"])
        request_id = edge.get(EDGE_ID) or request_id_var.get() or incoming_request_id(scope) or uuid.uuid4().hex
        _finish_headers(headers, request_id.encode(), production=production)
        message["headers"] = headers

    return finish
