"""A database that cannot do its job is an outage, answered 503 with `Retry-After`, never a 500.

`database_outage(exc)` reads an exception, and what caused it, the way an operator would: the server is
unreachable or restarting, out of space, read-only, or too busy. The answer is the same whatever
wrapped the error on its way up (SQLAlchemy, advanced-alchemy's repository errors, aiosqlite, or the raw
driver error from the SQLite writer thread): the whole cause chain is read.

Anything else (a bug, a constraint) is not an outage and keeps its own answer.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = ("Outage", "database_outage")

# SQLite primary result codes (the low byte of an extended code)
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 5, 6, 8, 10, 13, 14


@dataclass(frozen=True)
class Outage:
    kind: Literal["unreachable", "storage", "read-only", "busy"]
    retry_after: int
    """Seconds a client should wait before trying again."""

    @property
    def problem_type(self) -> str:
        return "/problems/storage-full" if self.kind == "storage" else "/problems/database-unavailable"

    @property
    def detail(self) -> str:
        return {
            "unreachable": "The database cannot be reached right now; nothing was changed. Try again shortly.",
            "storage": "The database has run out of storage space; nothing was changed. Try again later.",
            "read-only": "The database accepts no changes right now; nothing was changed. Try again later.",
            "busy": "The database is too busy to answer in time; nothing was changed. Try again shortly.",
        }[self.kind]


UNREACHABLE = Outage("unreachable", 2)
BUSY = Outage("busy", 2)
STORAGE = Outage("storage", 30)
READ_ONLY = Outage("read-only", 30)
_SQLITE_MESSAGES = {
    "database or disk is full": STORAGE,
    "disk i/o error": STORAGE,
    "attempt to write a readonly database": READ_ONLY,
    "unable to open database file": UNREACHABLE,
    "database is locked": BUSY,
}


def database_outage(exc: BaseException) -> Outage | None:
    """The outage `exc` (or an exception behind it) reports, or None when it is no outage."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        found = _outage_of(link)
        if found is not None:
            return found
        driver_error = link.orig if isinstance(link, DBAPIError) else None
        link = driver_error or link.__cause__ or link.__context__
    return None


def _outage_of(exc: BaseException) -> Outage | None:  # noqa: PLR0911 - one answer per kind of failure
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return UNREACHABLE
    if isinstance(exc, PoolTimeout):  # every pooled connection busy past the pool timeout
        return BUSY
    if (code := getattr(exc, "sqlite_errorcode", None)) is not None:
        return _sqlite(code & 0xFF)
    if isinstance(state := getattr(exc, "sqlstate", None), str):
        return _postgres(state)
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return STORAGE
        if exc.errno == errno.EROFS:
            return READ_ONLY
        if isinstance(exc, ConnectionError | socket.gaierror | TimeoutError):
            return UNREACHABLE
        return None
    if type(exc).__module__ == "sqlite3":  # an error without its code: read the message SQLite gives
        return _SQLITE_MESSAGES.get(str(exc).lower())
    return None


def _sqlite(primary: int) -> Outage | None:
    if primary in (SQLITE_FULL, SQLITE_IOERR):
        return STORAGE
    if primary == SQLITE_READONLY:
        return READ_ONLY
    if primary == SQLITE_CANTOPEN:
        return UNREACHABLE
    if primary in (SQLITE_BUSY, SQLITE_LOCKED):
        return BUSY
    return None


def _postgres(state: str) -> Outage | None:
    """SQLSTATE classes: 08 connection exception, 57P0x shutdown / starting up, 53 insufficient resources,
    57014 a statement cancelled at `statement_timeout`, 25006 read-only transaction (a standby or
    `default_transaction_read_only`)."""
    if state.startswith(("08", "57P0")):
        return UNREACHABLE
    if state == "57014":  # query_canceled: the statement ran past `statement_timeout`
        return BUSY
    if state == "53100":  # disk_full
        return STORAGE
    if state.startswith("53"):  # out of memory, too many connections
        return BUSY
    if state == "25006":
        return READ_ONLY
    return None
