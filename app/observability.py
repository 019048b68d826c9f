"""Logs and metrics: one log format for every logger, with the request id, and Prometheus metrics at `/metrics`.

Every log line carries `timestamp`, `level`, `logger`, `event` and, inside a request or a job that a request
caused, `request_id` (the value of the `X-Request-ID` response header). Lines from the standard library's
`logging` (our packages, uvicorn, SAQ) and from structlog go through the same formatter: JSON lines
(`LOG_FORMAT=json`, the production default) or aligned text for people (`console`, the default elsewhere).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import textwrap
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.logging.config import LoggingConfig, StructLoggingConfig
from litestar.plugins.prometheus import PrometheusController
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select

from shop_kernel import OutboxMessage, Unit, current_request_id

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger

    from app.settings import Settings

__all__ = (
    "ACCESS_LOGGER",
    "REDIS_FALLBACKS",
    "REDIS_OUTAGES",
    "REDIS_UP",
    "ConsoleLines",
    "MetricsController",
    "RequestIdFilter",
    "SaqHeartbeatShutdownFilter",
    "colors_wanted",
    "configure_logging",
    "log_startup_warnings",
    "logging_config",
)

OUTBOX_PENDING = Gauge("shop_outbox_pending", "Outbox events not yet handed to every subscriber of their topic.")
OUTBOX_LAG = Gauge(
    "shop_outbox_lag_seconds", "Age of the oldest outbox event not yet handed to every subscriber (0 when none)."
)
REDIS_UP = Gauge(
    "shop_redis_up", "1 when this process last reached Redis, 0 while it finds Redis unreachable (app/redis_outage.py)."
)
REDIS_OUTAGES = Counter("shop_redis_outages", "Times this process found Redis unreachable after it had answered.")
REDIS_FALLBACKS = Counter(
    "shop_redis_fallbacks",
    "Operations done without Redis: rate-limit and sign-in counts kept in this process, cache reads and writes "
    "skipped.",
    ["use"],
)


class RequestIdFilter(logging.Filter):
    """Stamps the current request id on a standard-library record in the thread that logs it (the queue
    handler formats records in another thread, where the request's context is gone)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class SaqHeartbeatShutdownFilter(logging.Filter):
    """Drops the one ERROR litestar-saq 0.8 logs on every clean shutdown.

    `HeartbeatManager.stop()` stops the manager's own event loop while `run_until_complete` waits on it, so
    every orderly stop of a worker logs "HeartbeatManager thread crashed" with `RuntimeError('Event loop
    stopped before Future completed.')` (litestar-saq issue #110; the fix, PR #111, is not released). An
    ERROR on each deploy would train operators to ignore ERRORs; any other crash of that thread still logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "litestar_saq.heartbeat" or record.getMessage() != "HeartbeatManager thread crashed":
            return True
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, RuntimeError) and "Event loop stopped before Future completed" in str(error))


def _add_request_id(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    if "request_id" not in event and (request_id := current_request_id()) is not None:
        event["request_id"] = request_id
    return event


def _drop_empty_request_id(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    if event.get("request_id", "") is None:
        del event["request_id"]
    return event


def _drop_formatting_leftovers(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """Record attributes that are not fields: uvicorn passes its message a second time, with ANSI colour codes, as
    the `color_message` extra; `message` and `asctime` are left on a record by any handler that formatted it first.
    """
    for key in ("color_message", "message", "asctime"):
        event.pop(key, None)
    return event


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")


def _strip_ansi(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """No terminal escape codes from a message or a field in a JSON line or a log file (the console renderer adds its
    own colours, at a terminal only)."""
    for key, value in event.items():
        if isinstance(value, str) and "\x1b" in value:
            event[key] = _ANSI.sub("", value).replace("\x1b", "")
    return event


ACCESS_LOGGER = "shop.access"


def _console_access_line(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """Console only: an access-log record reads `GET /api/products/ 200 3.1 ms`, the request id beside it."""
    if event.get("logger") == ACCESS_LOGGER and {"method", "path", "status", "duration_ms"} <= event.keys():
        method, path, status, duration = (event.pop(key) for key in ("method", "path", "status", "duration_ms"))
        shown = f"{duration:.1f}" if isinstance(duration, float) else duration
        event["event"] = f"{method} {path} {status} {shown} ms"
    return event


class ConsoleLines:
    """structlog's ConsoleRenderer, except that the lines after the first of a multi-line message (an e-mail
    printed by the console channel) follow the log line, indented, instead of pushing its logger name and fields
    to the end of the message's last line."""

    def __init__(self, *, colors: bool) -> None:
        # plain tracebacks: rich's (the default when it is installed) also prints every frame's local variables,
        # which may hold a password or a token
        self._render = structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback)

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> str:
        message = event.get("event")
        rest = ""
        if isinstance(message, str) and "\n" in message:
            event["event"], rest = message.split("\n", 1)
        line = self._render(logger, method, event)
        if not rest.strip():
            return line
        first, _, traceback = line.partition("\n")
        body = textwrap.indent(rest.rstrip("\n"), "    ")
        return f"{first}\n{body}" + (f"\n{traceback}" if traceback else "")


def colors_wanted() -> bool:
    """Colour codes only for a person at a terminal: standard error is a TTY and NO_COLOR (no-color.org) is unset."""
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


_encoder = msgspec.json.Encoder(enc_hook=repr)  # a value JSON cannot hold is logged as its repr, never lost


def _json_text(value: Any, **_: Any) -> str:
    return _encoder.encode(value).decode()


def logging_config(settings: Settings) -> StructLoggingConfig:
    """One formatter for every line, whoever logs it: our packages (stdlib `logging` or structlog), Litestar,
    uvicorn, SAQ. structlog hands its events to the standard library, so both go through the same handler (a
    queue: writing to the stream never blocks the event loop) to standard error.

    `LOG_FORMAT=json` (production default): one JSON object per line. `console` (default elsewhere): aligned text
    for people, coloured only at a terminal.
    """
    as_json = settings.log_format == "json"
    timestamper = (
        structlog.processors.TimeStamper(fmt="iso", utc=True)
        if as_json
        else structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False)
    )
    rendering: list[Any] = (
        [structlog.processors.format_exc_info, _strip_ansi, structlog.processors.JSONRenderer(serializer=_json_text)]
        if as_json
        else [_strip_ansi, _console_access_line, ConsoleLines(colors=colors_wanted())]
    )
    standard_library = LoggingConfig(
        formatters={
            "standard": {
                "()": structlog.stdlib.ProcessorFormatter,
                # records from the standard library's loggers (structlog's have been through its processors)
                "foreign_pre_chain": [
                    timestamper,
                    structlog.stdlib.add_log_level,
                    structlog.stdlib.add_logger_name,
                    structlog.stdlib.ExtraAdder(),
                    _drop_formatting_leftovers,
                    _drop_empty_request_id,
                ],
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *rendering,
                ],
            }
        },
        filters={"request_id": {"()": RequestIdFilter}, "saq_heartbeat_shutdown": {"()": SaqHeartbeatShutdownFilter}},
        handlers={
            "queue_listener": {
                "class": "litestar.logging.standard.QueueListenerHandler",
                "level": "DEBUG",
                "formatter": "standard",
                "filters": ["request_id", "saq_heartbeat_shutdown"],
            },
            # written at once: uvicorn re-raises SIGTERM after its last line ("Finished server process"), and a
            # process killed by a signal never empties the queue above
            "direct": {"class": "logging.StreamHandler", "level": "DEBUG", "formatter": "standard"},
        },
        root={"level": settings.log_level, "handlers": ["queue_listener"]},
        loggers={
            "litestar": {"level": settings.log_level, "handlers": ["queue_listener"], "propagate": False},
            # uvicorn's own handlers (it installs them when started as `uvicorn ...`, as the image does) give way
            # to ours, so its lines look like every other; their level stays uvicorn's (`--log-level`, which
            # `shop serve` sets from LOG_LEVEL). Its access log stays off: ours is shop.access.
            "uvicorn": {"handlers": ["direct"], "propagate": False},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
            "saq": {"level": "WARNING" if settings.log_level == "INFO" else settings.log_level},
        },
        configure_root_logger=True,
    )
    return StructLoggingConfig(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            _add_request_id,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.PositionalArgumentsFormatter(),
            timestamper,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        standard_lib_logging_config=standard_library,
        log_exceptions="debug",
        disable_stack_trace={404, 401, 403, 405, 429},
        pretty_print_tty=False,
    )


def configure_logging(settings: Settings) -> None:
    """The same logging outside a Litestar app (the `shop worker` process)."""
    config = logging_config(settings)
    config.configure()
    if config.standard_lib_logging_config is not None:
        config.standard_lib_logging_config.configure()


def log_startup_warnings(settings: Settings) -> None:
    """What the settings found worth saying, once logging has its format (settings are read before it has)."""
    for warning in settings.startup_warnings():
        logging.getLogger("shop").warning(warning)


class MetricsController(PrometheusController):
    """`/metrics` for Prometheus: HTTP requests per route, orders, stock-out rejections, notification jobs and
    outbox relay passes and hand-overs (in the process that runs them), the outbox backlog and whether Redis
    answers. Scrape it inside the cluster; do not route it through the public ingress."""

    path = "/metrics"

    @get(
        operation_id="getMetrics",
        summary="Prometheus metrics",
        description="Prometheus text format. Refreshes the outbox gauges from the database on each scrape.",
        tags=["Operations"],
        media_type="text/plain",
    )
    async def get(self, unit: NamedDependency[Unit]) -> Response[bytes]:
        pending, oldest = (
            await unit.session.execute(
                select(func.count(), func.min(OutboxMessage.created_at)).where(OutboxMessage.dispatched_at.is_(None))
            )
        ).one()
        OUTBOX_PENDING.set(pending)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        OUTBOX_LAG.set(max((datetime.now(UTC) - oldest).total_seconds(), 0.0) if oldest is not None else 0.0)
        return await super().get.fn(self)  # type: ignore[no-any-return]
