"""Delivery channels behind one small interface each: SMS (Africa's Talking or console), e-mail (SMTP or console)."""

from __future__ import annotations

import logging
import uuid
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
import httpx
import msgspec

from shop_notify.settings import NotifySettings

__all__ = (
    "AfricasTalkingSms",
    "ConsoleEmail",
    "ConsoleSms",
    "DeliveryError",
    "EmailChannel",
    "SmsChannel",
    "SmtpEmail",
    "build_channels",
)

logger = logging.getLogger("shop.notify")
ACCEPTED = {100, 101, 102}
"""Africa's Talking recipient status codes meaning Processed, Sent, Queued."""


class DeliveryError(Exception):
    """The provider did not accept the message; the reason is kept in the notification log."""


class SmsChannel(Protocol):
    async def send(self, to: str, message: str) -> str | None:
        """Send; returns the provider's message id (if any) or raises `DeliveryError`."""
        ...


class EmailChannel(Protocol):
    async def send(self, to: str, subject: str, text: str, html: str) -> str | None: ...


class ConsoleSms:
    """Development default: the SMS goes to the log."""

    async def send(self, to: str, message: str) -> str | None:
        logger.info("SMS to %s: %s", to, message)
        return f"console-{uuid.uuid4().hex[:12]}"


class ConsoleEmail:
    def __init__(self, sender: str) -> None:
        self.sender = sender

    async def send(self, to: str, subject: str, text: str, html: str) -> str | None:
        logger.info("E-mail from %s to %s: %s\n%s", self.sender, to, subject, text)
        return f"console-{uuid.uuid4().hex[:12]}"


class _Recipient(msgspec.Struct):
    statusCode: int
    number: str = ""
    status: str = ""
    messageId: str | None = None


class _MessageData(msgspec.Struct):
    Recipients: list[_Recipient]
    Message: str = ""


class _MessagingResponse(msgspec.Struct):
    SMSMessageData: _MessageData


class AfricasTalkingSms:
    """`POST {base}/version1/messaging`; a 201 can still carry per-recipient failures, so each is checked."""

    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient | None = None) -> None:
        self.url = settings.at_base_url.rstrip("/") + "/version1/messaging"
        self.username = settings.at_username
        self.sender_id = settings.at_sender_id
        self._api_key = settings.at_api_key
        self.client = client or httpx.AsyncClient(timeout=settings.sms_timeout_seconds)

    async def send(self, to: str, message: str) -> str | None:
        form = {"username": self.username, "to": to, "message": message}
        if self.sender_id:
            form["from"] = self.sender_id
        try:
            response = await self.client.post(
                self.url, data=form, headers={"apiKey": self._api_key, "Accept": "application/json"}
            )
        except httpx.TimeoutException as exc:
            raise DeliveryError("Africa's Talking did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"Africa's Talking unreachable: {type(exc).__name__}") from exc
        if response.status_code not in (200, 201):
            raise DeliveryError(f"Africa's Talking answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            data = msgspec.json.decode(response.content, type=_MessagingResponse).SMSMessageData
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DeliveryError(f"Unexpected Africa's Talking response: {response.text[:200]}") from exc
        if not data.Recipients:
            raise DeliveryError(f"No recipient accepted: {data.Message[:200]}")
        recipient = data.Recipients[0]
        if recipient.statusCode not in ACCEPTED:
            raise DeliveryError(
                f"Recipient {recipient.number or to} refused: {recipient.status} ({recipient.statusCode})"
            )
        return recipient.messageId


class SmtpEmail:
    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    async def send(self, to: str, subject: str, text: str, html: str) -> str | None:
        message = EmailMessage()
        message["From"] = self.settings.default_from_email
        message["To"] = to
        message["Subject"] = subject
        message_id = f"<{uuid.uuid4().hex}@{self.settings.default_from_email.rsplit('@', 1)[-1]}>"
        message["Message-ID"] = message_id
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        try:
            await aiosmtplib.send(
                message,
                hostname=self.settings.smtp_host,
                port=self.settings.smtp_port,
                username=self.settings.smtp_username,
                password=self.settings.smtp_password,
                start_tls=self.settings.smtp_starttls,
                timeout=self.settings.smtp_timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP delivery failed: {exc}") from exc
        return message_id


def build_channels(settings: NotifySettings) -> tuple[SmsChannel, EmailChannel]:
    sms: SmsChannel = AfricasTalkingSms(settings) if settings.sms_backend == "africastalking" else ConsoleSms()
    email: EmailChannel = (
        SmtpEmail(settings) if settings.email_backend == "smtp" else ConsoleEmail(settings.default_from_email)
    )
    return sms, email
