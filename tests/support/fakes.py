"""Real peers on loopback: an HTTP server that speaks Africa's Talking's messaging API, and an SMTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller

from tests.support.live import free_port


@dataclass
class SmsRequest:
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class Canned:
    """An answer given as is, whatever was asked: for answers Africa's Talking should never give."""

    status: int = 201
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    drip: float = 0.0
    """Seconds between bytes of the body: each read is quick, the whole answer is not."""


@dataclass
class FakeAfricasTalking:
    """`mode`: ok, http500, timeout (answers after `delay`), a recipient statusCode such as 403, or a
    `Canned` answer."""

    mode: str | int | Canned = "ok"
    delay: float = 2.0
    received: list[SmsRequest] = field(default_factory=list)
    started: int = 0
    url: str = ""

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length", 0))
        raw = handler.rfile.read(length)
        if len(raw) < length:  # the sender died mid-request (a crash test): no provider sends half a request
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        self.started += 1
        if self.mode == "timeout":
            time.sleep(self.delay)
        self.received.append(SmsRequest(form=form, headers={k.lower(): v for k, v in handler.headers.items()}))
        if isinstance(self.mode, Canned):
            self._canned(handler, self.mode)
            return
        if self.mode == "http500":
            handler.send_response(500)
            handler.end_headers()
            handler.wfile.write(b"internal error")
            return
        code = 101 if self.mode in ("ok", "timeout") else int(self.mode)
        status = "Success" if code == 101 else "InvalidPhoneNumber"
        body = {
            "SMSMessageData": {
                "Message": "Sent to 1/1 Total Cost: KES 0.8000",
                "Recipients": [
                    {
                        "statusCode": code,
                        "number": form.get("to", ""),
                        "status": status,
                        "cost": "KES 0.8000",
                        "messageId": f"ATXid_{len(self.received)}",
                    }
                ],
            }
        }
        payload = json.dumps(body).encode()
        handler.send_response(201)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    @staticmethod
    def _canned(handler: BaseHTTPRequestHandler, answer: Canned) -> None:
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        try:
            if not answer.drip:
                handler.wfile.write(answer.body)
                return
            for byte in answer.body:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(answer.drip)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            return

    def messages(self) -> list[str]:
        return [r.form["message"] for r in self.received]


@contextmanager
def africas_talking() -> Iterator[FakeAfricasTalking]:
    fake = FakeAfricasTalking()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/version1/messaging":
                self.send_response(404)
                self.end_headers()
                return
            fake.respond(self)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class FakeSmtp:
    refuse: bool = False
    received: list[Message] = field(default_factory=list)
    port: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return "550 Mailbox unavailable"
        message = message_from_bytes(envelope.content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.received.append(message)
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[FakeSmtp]:
    fake = FakeSmtp()
    controller = Controller(fake, hostname="127.0.0.1", port=free_port())
    controller.start()
    fake.port = controller.port
    try:
        yield fake
    finally:
        controller.stop()


def eventually(condition: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Wait until `condition()` is truthy (and return it), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
