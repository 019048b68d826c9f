"""Delivery channels behind one small interface each: SMS (Africa's Talking or console), e-mail (SMTP or console)."""

from __future__ import annotations

import asyncio
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
MAX_ANSWER_BYTES = 64 * 1024
"""A messaging answer for one recipient is a few hundred bytes; anything past this is not read."""
MAX_MESSAGE_ID = 200
"""The length of `notify_notification.provider_message_id`."""


class DeliveryError(Exception):
    """The provider did not accept the message; the reason is kept in the notification log.

    `retry`: whether sending again is safe. False when the provider may have the message (it said 2xx
    but its answer cannot be read): a person checks and retries, as for an interrupted send.
    """

    def __init__(self, reason: str, *, retry: bool = True) -> None:
        super().__init__(reason)
        self.retry = retry


def printable(text: str, limit: int = 200) -> str:
    """Provider text as it may enter our log: control characters (NUL breaks PostgreSQL text) replaced, cut short."""
    return "".join(char if char.isprintable() else "\ufffd" for char in text[:limit])


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
        # the e-mail as a mail reader shows it (headers, blank line, body); the console log format prints a
        # multi-line message as lines, JSON keeps it in one string
        body = text.rstrip("\n")
        logger.info("E-mail to %s\nFrom: %s\nTo: %s\nSubject: %s\n\n%s", to, self.sender, to, subject, body)
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
    """`POST {base}/version1/messaging`; a 201 can still carry per-recipient failures, so each is checked.

    The answer is untrusted input (OWASP API10): the whole exchange has one deadline (httpx's timeouts
    are per read, so a server dripping bytes would otherwise hold the job until SAQ kills it), at most
    `MAX_ANSWER_BYTES` are read, redirects are not followed (the API key would go wherever they point),
    and provider text is cleaned before it reaches the log.
    """

    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient | None = None) -> None:
        self.url = settings.at_base_url.rstrip("/") + "/version1/messaging"
        self.username = settings.at_username
        self.sender_id = settings.at_sender_id
        self._api_key = settings.at_api_key
        self.timeout = settings.sms_timeout_seconds
        self.client = client or httpx.AsyncClient(timeout=settings.sms_timeout_seconds, follow_redirects=False)

    async def send(self, to: str, message: str) -> str | None:
        form = {"username": self.username, "to": to, "message": message}
        if self.sender_id:
            form["from"] = self.sender_id
        try:
            async with asyncio.timeout(self.timeout):
                status, body = await self._post(form)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise DeliveryError("Africa's Talking did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"Africa's Talking unreachable: {type(exc).__name__}") from exc
        if status not in (200, 201):
            redirect = " (redirects are not followed)" if 300 <= status < 400 else ""
            raise DeliveryError(f"Africa's Talking answered HTTP {status}{redirect}: {printable(_text(body))}")
        if body is None:
            raise DeliveryError(
                f"Africa's Talking answered HTTP {status} with more than {MAX_ANSWER_BYTES} bytes; "
                "it may have been sent: check, then retry.",
                retry=False,
            )
        try:
            data = msgspec.json.decode(body, type=_MessagingResponse).SMSMessageData
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            raise DeliveryError(
                f"Unreadable Africa's Talking answer (HTTP {status}, {printable(str(exc), 120)}); "
                f"it may have been sent: check, then retry. Answer: {printable(_text(body))}",
                retry=False,
            ) from exc
        if not data.Recipients:
            raise DeliveryError(f"No recipient accepted: {printable(data.Message)}")
        recipient = data.Recipients[0]
        if recipient.statusCode not in ACCEPTED:
            raise DeliveryError(
                f"Recipient {printable(recipient.number or to, 32)} refused: "
                f"{printable(recipient.status, 100)} ({recipient.statusCode})"
            )
        message_id = recipient.messageId
        if message_id is not None and (len(message_id) > MAX_MESSAGE_ID or not message_id.isprintable()):
            logger.warning("Africa's Talking message id unusable (%d characters); kept none", len(message_id))
            return None
        return message_id

    async def _post(self, form: dict[str, str]) -> tuple[int, bytes | None]:
        """The status and body of the answer; the body is None when it is larger than `MAX_ANSWER_BYTES`."""
        headers = {"apiKey": self._api_key, "Accept": "application/json", "Accept-Encoding": "identity"}
        async with self.client.stream("POST", self.url, data=form, headers=headers, follow_redirects=False) as answer:
            chunks: list[bytes] = []
            size = 0
            async for chunk in answer.aiter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    return answer.status_code, None
                chunks.append(chunk)
            return answer.status_code, b"".join(chunks)


def _text(body: bytes | None) -> str:
    return (body or b"")[:400].decode("utf-8", errors="replace")


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
            # one deadline for the whole exchange: aiosmtplib's timeout applies to each command alone
            async with asyncio.timeout(self.settings.smtp_timeout_seconds * 3):
                await aiosmtplib.send(
                    message,
                    hostname=self.settings.smtp_host,
                    port=self.settings.smtp_port,
                    username=self.settings.smtp_username,
                    password=self.settings.smtp_password,
                    start_tls=self.settings.smtp_starttls,
                    timeout=self.settings.smtp_timeout_seconds,
                )
        except TimeoutError as exc:
            raise DeliveryError("SMTP delivery failed: the server did not finish in time") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP delivery failed: {printable(str(exc), 500)}") from exc
        return message_id


def build_channels(settings: NotifySettings) -> tuple[SmsChannel, EmailChannel]:
    sms: SmsChannel = AfricasTalkingSms(settings) if settings.sms_backend == "africastalking" else ConsoleSms()
    email: EmailChannel = (
        SmtpEmail(settings) if settings.email_backend == "smtp" else ConsoleEmail(settings.default_from_email)
    )
    return sms, email
