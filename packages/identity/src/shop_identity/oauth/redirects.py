"""Which redirect URIs a client's registration covers.

Exact string match, except one case RFC 8252 section 7.3 requires: for a public client, an http redirect
URI on a loopback host matches the registered one whatever its port, since native apps (and a development
server) listen on whatever port is free. Host, path and query must still match exactly (decision 114).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ("covers_redirect_uri", "is_loopback")

LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str) -> bool:
    try:
        return host in LOOPBACK_NAMES or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def covers_redirect_uri(registered: tuple[str, ...], requested: str, *, any_loopback_port: bool) -> bool:
    if requested in registered:
        return True
    asked = _loopback_parts(requested) if any_loopback_port else None
    return asked is not None and any(_loopback_parts(uri) == asked for uri in registered)


def _loopback_parts(uri: str) -> tuple[str, str, str] | None:
    """(host, path, query) of an http URI on a loopback host without user info or fragment; else None.
    A port that is not a number makes the URI invalid; any other port is left out of the comparison."""
    try:
        parts = urlsplit(uri)
        host, _ = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or not host or not is_loopback(host) or "@" in parts.netloc or "#" in uri:
        return None
    return host, parts.path, parts.query
