"""HTTP/1.1 over a plain socket, for what HTTP client libraries will not do: trickle a body, stop half-way,
announce a length and send nothing, send chunks past a limit and then listen."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


class RawConnection:
    def __init__(self, base_url: str, timeout: float = 20.0) -> None:
        parts = urlsplit(base_url)
        self.host = f"{parts.hostname}:{parts.port}"
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.started = time.monotonic()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def head(self, method: str, path: str, headers: dict[str, str]) -> None:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", *(f"{k}: {v}" for k, v in headers.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send(self, data: bytes) -> bool:
        """False once the server has closed its side (it answered and stopped reading)."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def chunks(self, parts: Iterable[bytes], *, pause: float = 0.0) -> int:
        """Send `parts` with chunked framing (no final chunk); returns how many went out before the server stopped
        reading."""
        sent = 0
        for part in parts:
            if not self.send(f"{len(part):x}\r\n".encode() + part + b"\r\n"):
                break
            sent += 1
            time.sleep(pause)
        return sent

    def response(self) -> RawResponse:
        """Read one response (Content-Length framed, as all of the app's are)."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before a response: {data!r}")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return RawResponse(int(status_line.split()[1]), headers, body[:length], time.monotonic() - self.started)
