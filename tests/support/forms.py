"""Form bodies built the way Django REST Framework's test client builds them, without importing Django.

DRF's `APIClient` posts `multipart/form-data` unless a test says `format="json"`: its `MultiPartRenderer` hands the
data to `django.test.client.encode_multipart` with the fixed boundary `BoUnDaRyStRiNg`. That encoder writes each
value as `str(value)` (so `True` goes out as "True" and `Decimal("9.99")` as "9.99"), a list as the field repeated,
and a file-like value (anything with `read`) as a file part named after the file, typed from its `content_type` or
its extension, else `application/octet-stream`. Lines end with CRLF. `UploadedFile` stands for Django's
`SimpleUploadedFile`.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

__all__ = ("BOUNDARY", "MULTIPART_CONTENT", "URLENCODED", "UploadedFile", "encode_multipart", "encode_urlencoded")

BOUNDARY = "BoUnDaRyStRiNg"
MULTIPART_CONTENT = f"multipart/form-data; boundary={BOUNDARY}"
URLENCODED = "application/x-www-form-urlencoded"


@dataclass
class UploadedFile:
    name: str
    content: bytes
    content_type: str | None = None

    def read(self) -> bytes:
        return self.content


def _text_part(key: str, value: Any) -> list[bytes]:
    text = value if isinstance(value, bytes) else str(value).encode()
    return [f"--{BOUNDARY}".encode(), f'Content-Disposition: form-data; name="{key}"'.encode(), b"", text]


def _file_part(key: str, file: UploadedFile) -> list[bytes]:
    content_type = file.content_type or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return [
        f"--{BOUNDARY}".encode(),
        f'Content-Disposition: form-data; name="{key}"; filename="{file.name or key}"'.encode(),
        f"Content-Type: {content_type}".encode(),
        b"",
        file.read(),
    ]


def encode_multipart(data: dict[str, Any]) -> bytes:
    """`django.test.client.encode_multipart(BOUNDARY, data)`: what DRF's test client sends by default."""
    lines: list[bytes] = []
    for key, value in data.items():
        if value is None:
            raise TypeError(f"Cannot encode None for key '{key}' as POST data.")  # as Django refuses it
        if hasattr(value, "read"):
            lines += _file_part(key, value)
        elif not isinstance(value, (str, bytes)) and hasattr(value, "__iter__"):
            for item in value:
                lines += _file_part(key, item) if hasattr(item, "read") else _text_part(key, item)
        else:
            lines += _text_part(key, value)
    lines += [f"--{BOUNDARY}--".encode(), b""]
    return b"\r\n".join(lines)


def encode_urlencoded(data: dict[str, Any] | list[tuple[str, Any]]) -> bytes:
    """What a browser form or `curl -d` sends: lists as the field repeated."""
    return urlencode(data, doseq=True).encode()
