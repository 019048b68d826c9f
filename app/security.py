"""Security headers on every answer (OWASP API8: security misconfiguration).

Set only where a handler did not choose its own (the OAuth pages set stricter ones for themselves).
JSON and problem answers get a content policy that forbids everything: no browser should ever render
them as a page. HTML (the API docs) keeps its scripts. HSTS only in production, where TLS is in front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.datastructures import MutableScopeHeaders

if TYPE_CHECKING:
    from litestar.types import BeforeMessageSendHookHandler, Message, Scope

__all__ = ("security_headers",)

ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}
NOT_A_PAGE = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(*, production: bool) -> BeforeMessageSendHookHandler:
    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        for name, value in ALWAYS.items():
            if name not in headers:
                headers[name] = value
        if "Content-Security-Policy" not in headers and not headers.get("Content-Type", "").startswith("text/html"):
            headers["Content-Security-Policy"] = NOT_A_PAGE
        if production and "Strict-Transport-Security" not in headers:
            headers["Strict-Transport-Security"] = HSTS

    return add_headers
