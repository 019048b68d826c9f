"""Logs and metrics: JSON log lines that carry the request id, and Prometheus metrics at `/metrics`.

Every log line is one JSON object with `timestamp`, `level`, `event` and, inside a request or a job
that a request caused, `request_id` (the value of the `X-Request-ID` response header). Lines from
the standard library's `logging` (our packages, uvicorn, SAQ) and from structlog look the same.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.logging.config import LoggingConfig, StructLoggingConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shop_kernel import OutboxMessage, current_request_id

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger

    from app.settings import Settings

__all__ = (
    "REDIS_FALLBACKS",
    "REDIS_OUTAGES",
    "REDIS_UP",
    "MetricsController",
    "RequestIdFilter",
    "SaqHeartbeatShutdownFilter",
    "configure_logging",
    "logging_config",
    "metrics_config",
)

OUTBOX_PENDING = Gauge("shop_outbox_pending", "Outbox events not yet handed to the job queue.")
OUTBOX_LAG = Gauge(
    "shop_outbox_lag_seconds", "Age of the oldest outbox event not yet handed to the job queue (0 when none)."
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


_encoder = msgspec.json.Encoder(enc_hook=repr)  # a value JSON cannot hold is logged as its repr, never lost


def _json_bytes(value: Any, **_: Any) -> bytes:
    return _encoder.encode(value)


def _json_text(value: Any, **_: Any) -> str:
    return _encoder.encode(value).decode()


def logging_config(settings: Settings) -> StructLoggingConfig:
    as_json = settings.log_format == "json"
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_text)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    standard_library = LoggingConfig(
        formatters={
            "standard": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": [
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.stdlib.add_log_level,
                    structlog.stdlib.add_logger_name,
                    structlog.stdlib.ExtraAdder(),
                    _drop_empty_request_id,
                ],
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
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
            }
        },
        root={"level": settings.log_level, "handlers": ["queue_listener"]},
        loggers={
            "litestar": {"level": settings.log_level, "handlers": ["queue_listener"], "propagate": False},
            "uvicorn.access": {"level": "WARNING"},  # requests are measured by the metrics instead
            "saq": {"level": "WARNING" if settings.log_level == "INFO" else settings.log_level},
        },
        configure_root_logger=True,
    )
    return StructLoggingConfig(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=_json_bytes)
            if as_json
            else structlog.dev.ConsoleRenderer(colors=False),
        ],
        logger_factory=structlog.BytesLoggerFactory() if as_json else structlog.PrintLoggerFactory(),
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


def metrics_config() -> PrometheusConfig:
    """Request counts and latencies per route template (`/api/orders/{order_id:int}/`, not per id)."""
    return PrometheusConfig(
        app_name="shop",
        prefix="shop",
        group_path=True,
        exclude=["/metrics"],
        exclude_unhandled_paths=True,
        buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
    )


class MetricsController(PrometheusController):
    """`/metrics` for Prometheus: HTTP requests per route, orders, stock-out rejections, notification jobs
    (in the process that runs them), the outbox backlog and whether Redis answers. Scrape it inside the
    cluster; do not route it through the public ingress."""

    path = "/metrics"

    @get(
        operation_id="getMetrics",
        summary="Prometheus metrics",
        description="Prometheus text format. Refreshes the outbox gauges from the database on each scrape.",
        tags=["Operations"],
        media_type="text/plain",
    )
    async def get(self, db_session: NamedDependency[AsyncSession]) -> Response[bytes]:
        pending, oldest = (
            await db_session.execute(
                select(func.count(), func.min(OutboxMessage.created_at)).where(OutboxMessage.dispatched_at.is_(None))
            )
        ).one()
        OUTBOX_PENDING.set(pending)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        OUTBOX_LAG.set(max((datetime.now(UTC) - oldest).total_seconds(), 0.0) if oldest is not None else 0.0)
        return await super().get.fn(self)  # type: ignore[no-any-return]
