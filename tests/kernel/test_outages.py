"""Which failures are a database outage (503), read from real driver errors, whatever wraps them."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
from advanced_alchemy.exceptions import RepositoryError
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shop_kernel import database_outage


def _error_of(statement: str, connection: sqlite3.Connection) -> sqlite3.Error:
    with pytest.raises(sqlite3.Error) as caught:
        connection.execute(statement)
    return caught.value


def test_a_full_sqlite_database_is_a_storage_outage(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "full.sqlite3")
    connection.execute("CREATE TABLE t (x TEXT)")
    connection.execute("PRAGMA max_page_count = 3")
    error = _error_of(
        "INSERT INTO t SELECT hex(randomblob(4000)) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3)", connection
    )
    outage = database_outage(error)
    assert outage is not None
    assert (outage.kind, outage.problem_type, outage.retry_after) == ("storage", "/problems/storage-full", 30)


def test_a_read_only_sqlite_database_is_a_read_only_outage(tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    outage = database_outage(_error_of("INSERT INTO t VALUES (1)", connection))
    assert outage is not None
    assert outage.kind == "read-only"
    assert "accepts no changes" in outage.detail


def test_an_sqlite_file_that_cannot_be_opened_is_unreachable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'db.sqlite3'}")
    with pytest.raises(OperationalError) as caught, engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    wrapped = RepositoryError("An exception occurred")  # advanced-alchemy's wrapping keeps the cause
    wrapped.__cause__ = caught.value
    outage = database_outage(wrapped)
    assert outage is not None
    assert outage.kind == "unreachable"
    assert outage.problem_type == "/problems/database-unavailable"


def test_a_locked_sqlite_database_is_busy(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    waiter = sqlite3.connect(path, timeout=0)
    outage = database_outage(_error_of("INSERT INTO t VALUES (1)", waiter))
    holder.execute("ROLLBACK")
    assert outage is not None
    assert outage.kind == "busy"


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "kind"),
    [
        ("08006", "unreachable"),  # connection_failure
        ("57P01", "unreachable"),  # admin_shutdown
        ("57P03", "unreachable"),  # cannot_connect_now (starting up)
        ("57014", "busy"),  # query_canceled by statement_timeout
        ("53300", "busy"),  # too_many_connections
        ("53100", "storage"),  # disk_full
        ("25006", "read-only"),  # read_only_sql_transaction
        ("23505", None),  # unique_violation: a conflict, not an outage
        ("42P01", None),  # undefined_table: a bug, a 500
    ],
)
def test_postgresql_states(sqlstate: str, kind: str | None) -> None:
    """The SQLSTATE the asyncpg dialect copies onto its translated errors."""
    outage = database_outage(DBAPIError("INSERT ...", {}, _PgError(sqlstate)))
    assert (outage.kind if outage else None) == kind


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "unreachable"),
        (OSError(errno.ENOSPC, "No space left on device"), "storage"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only"),
        (PoolTimeout("QueuePool limit of size 5 overflow 10 reached"), "busy"),
        (OSError(errno.EACCES, "Permission denied"), None),
        (ValueError("a bug"), None),
    ],
)
def test_other_failures(error: BaseException, kind: str | None) -> None:
    outage = database_outage(error)
    assert (outage.kind if outage else None) == kind


def test_an_invalidated_connection_is_unreachable() -> None:
    error = DBAPIError("SELECT 1", {}, Exception("connection was closed"), connection_invalidated=True)
    outage = database_outage(error)
    assert outage is not None
    assert outage.kind == "unreachable"


def test_a_cause_chain_that_loops_ends() -> None:
    first, second = ValueError("first"), ValueError("second")
    first.__context__, second.__context__ = second, first
    assert database_outage(first) is None
