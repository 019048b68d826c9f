"""Configuration of the notify context; the host app builds it (from the environment in `app/`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ("AT_LIVE_URL", "AT_SANDBOX_URL", "NotifySettings")

AT_LIVE_URL = "https://api.africastalking.com"
AT_SANDBOX_URL = "https://api.sandbox.africastalking.com"


@dataclass(frozen=True)
class NotifySettings:
    sms_backend: Literal["console", "africastalking"] = "console"
    at_username: str = "sandbox"
    at_api_key: str = ""
    at_sender_id: str | None = None
    at_base_url: str = AT_SANDBOX_URL
    sms_timeout_seconds: float = 10.0

    email_backend: Literal["console", "smtp"] = "console"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    admin_email: str = "admin@shop.example"
    default_from_email: str = "shop@shop.example"

    shop_name: str = "our shop"
    currency: str = "KES"
    delivery_report_secret: str = ""
    """Path secret of the Africa's Talking delivery-report callback; empty disables the endpoint."""

    queue_name: str = "notify"
    job_timeout_seconds: int = 30
    job_retries: int = 5
    job_retry_delay_seconds: float = 2.0
    relay_interval_seconds: float = 0.5
    sweep_interval_seconds: int = 60
    """How often a worker looks for jobs abandoned by a dead worker (after their timeout)."""
    worker_concurrency: int = 10
    reconcile_interval_seconds: float = 30.0
    """How often a worker compares the notification log with the queue (see `NotifyRuntime.reconcile`)."""
    reconcile_after_seconds: float = 60.0
    """A `queued` row untouched this long whose job is not in the queue gets its job again."""

    def __repr__(self) -> str:  # never print secrets
        return f"NotifySettings(sms_backend={self.sms_backend!r}, email_backend={self.email_backend!r})"
