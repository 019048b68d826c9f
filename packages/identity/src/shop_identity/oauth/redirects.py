"""Which redirect URIs a client's registration covers.

Exact string match, except one case RFC 8252 section 7.3 requires: for a public client, an http redirect
URI on a loopback host matches the registered one whatever its port, since native apps (and a development
server) listen on whatever port is free. Host, path and query must still match exactly (decision 117).
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
    if not any_loopback_port:
        return False
    try:
        asked = urlsplit(requested)
        asked_host, _ = asked.hostname, asked.port  # the port must parse, whatever it is
    except ValueError:
        return False
    if asked.scheme != "http" or not asked_host or not is_loopback(asked_host) or "@" in asked.netloc:
        return False
    if asked.fragment or "#" in requested:
        return False
    for uri in registered:
        known = urlsplit(uri)
        if (known.scheme, known.hostname, known.path, known.query) == ("http", asked_host, asked.path, asked.query):
            return True
    return False
