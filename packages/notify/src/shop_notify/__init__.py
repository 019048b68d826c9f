"""shop_notify: SMS and e-mail notifications for order events, as background jobs on SAQ.

Public API for host apps; it consumes `shop_ordering.events` and imports nothing else of ordering.
Its ORM models live in `shop_notify.models`, for host apps' metadata and migrations (decision 161).
"""

from shop_notify.channels import AfricasTalkingSms, ConsoleEmail, ConsoleSms, DeliveryError, SmtpEmail
from shop_notify.delivery import NotifyRuntime, deliver_notification, delivery_job
from shop_notify.plugin import NotifyPlugin, queue_redis
from shop_notify.privacy import erase_customer_notifications, export_customer_notifications
from shop_notify.settings import AT_LIVE_URL, AT_SANDBOX_URL, NotifySettings

__all__ = (
    "AT_LIVE_URL",
    "AT_SANDBOX_URL",
    "AfricasTalkingSms",
    "ConsoleEmail",
    "ConsoleSms",
    "DeliveryError",
    "NotifyPlugin",
    "NotifyRuntime",
    "NotifySettings",
    "SmtpEmail",
    "deliver_notification",
    "delivery_job",
    "erase_customer_notifications",
    "export_customer_notifications",
    "queue_redis",
)
