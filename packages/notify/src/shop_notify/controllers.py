"""Staff view of the notification log, manual retry, and the Africa's Talking delivery-report callback."""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, ServiceUnavailableException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Body, FromPath, QueryParameter
from litestar.types import Guard

from shop_kernel import (
    NumberedPage,
    RowId,
    Unit,
    bearer_security,
    numbered_page,
    page_request,
    problems,
    require_scopes,
    require_staff,
)
from shop_notify.models import NotificationLog
from shop_notify.services import NotificationLogService
from shop_notify.settings import NotifySettings

__all__ = ("DeliveryReportController", "NotificationController", "NotificationRead", "delivery_report_secret_guard")

logger = logging.getLogger("shop.notify")
Status = Literal["queued", "sending", "sent", "failed", "skipped", "delivered", "undelivered"]


class NotificationRead(msgspec.Struct):
    id: int
    event_key: str
    topic: str
    order_number: str | None
    channel: str
    recipient: str
    status: str
    provider_message_id: str | None
    attempts: int
    last_error: str | None
    subject: str | None
    body: str
    created_at: datetime
    updated_at: datetime


def _read(row: NotificationLog) -> NotificationRead:
    return msgspec.convert(row, NotificationRead, from_attributes=True)


async def provide_notification_log(unit: NamedDependency[Unit]) -> NotificationLogService:
    return NotificationLogService(unit)


NOTIFICATION_LOG = {"notification_log": Provide(provide_notification_log)}


class NotificationController(Controller):
    path = "/api/notifications"
    tags = ["Notifications"]
    guards = [require_staff, require_scopes("read")]
    security = bearer_security("read")
    dependencies = NOTIFICATION_LOG

    @get(
        "/",
        operation_id="listNotifications",
        summary="The notification log (staff)",
        description="Newest first; filter by order number and status.",
    )
    async def list_notifications(
        self,
        request: Request[Any, Any, Any],
        notification_log: NamedDependency[NotificationLogService],
        order: Annotated[str | None, QueryParameter(description="An order number, e.g. ORD-7KQ2M9XA.")] = None,
        status: Annotated[Status | None, QueryParameter(description="Delivery status.")] = None,
        page: Annotated[int | None, QueryParameter(ge=1)] = None,
        page_size: Annotated[int | None, QueryParameter(ge=1, description="Default 50, at most 200.")] = None,
    ) -> NumberedPage[NotificationRead]:
        paging = page_request(page, page_size, default_size=50, max_size=200)
        rows, count = await notification_log.page(
            order=order, status=status, offset=paging.offset, limit=paging.page_size
        )
        return numbered_page(request, [_read(row) for row in rows], count=count, paging=paging)

    @post(
        "/{notification_id:int}/retry/",
        operation_id="retryNotification",
        summary="Retry a failed notification (staff)",
        status_code=202,
        guards=[require_scopes("write")],
        security=bearer_security("write"),
        responses=problems(409, 503),
    )
    async def retry(
        self,
        notification_log: NamedDependency[NotificationLogService],
        notify_settings: NamedDependency[NotifySettings],
        notification_id: RowId,
        task_queues: NamedDependency[Any] = None,
    ) -> NotificationRead:
        if task_queues is None:  # mounted without litestar-saq's plugin: nothing could send it
            raise ServiceUnavailableException(detail="No job queue is configured to send notifications.")
        queue = task_queues.get(notify_settings.queue_name)
        return _read(await notification_log.retry(notification_id, notify_settings, queue))


class DeliveryReport(msgspec.Struct):
    """The form Africa's Talking posts to the delivery-report callback URL."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    status: Annotated[str, msgspec.Meta(max_length=50)]
    phoneNumber: Annotated[str, msgspec.Meta(max_length=32)] = ""
    failureReason: Annotated[str, msgspec.Meta(max_length=200)] = ""
    networkCode: Annotated[str, msgspec.Meta(max_length=20)] = ""
    retryCount: Annotated[str, msgspec.Meta(max_length=10)] = ""


DELIVERY_REPORT_MAX_BYTES = 16 * 1024
"""A report is a form of six short fields (well under 1 KiB)."""


def delivery_report_secret_guard(settings: NotifySettings) -> Guard:
    """404 for a wrong (or unset) path secret, checked before the body is read or validated."""
    expected = settings.delivery_report_secret.encode()

    def check_secret(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        given = str(connection.path_params.get("secret", "")).encode()
        if not expected or not hmac.compare_digest(given, expected):
            raise NotFoundException()

    return check_secret


class DeliveryReportController(Controller):
    """Mounted by `NotifyPlugin` behind `delivery_report_secret_guard`."""

    path = "/api/notifications/sms/delivery-reports"
    tags = ["Notifications"]
    dependencies = NOTIFICATION_LOG

    @post(
        "/{secret:str}/",
        operation_id="recordDeliveryReport",
        summary="Africa's Talking delivery reports",
        description="Configure `<base>/api/notifications/sms/delivery-reports/<secret>/` as the callback URL.",
        status_code=200,
        include_in_schema=True,
        request_max_body_size=DELIVERY_REPORT_MAX_BYTES,
    )
    async def delivery_report(
        self,
        notification_log: NamedDependency[NotificationLogService],
        secret: FromPath[str],
        data: Annotated[DeliveryReport, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> dict[str, str]:
        if not await notification_log.record_report(data.id, data.status, data.failureReason):
            logger.info("delivery report for unknown message %s ignored", data.id)
            return {"status": "ignored"}
        return {"status": "recorded"}
