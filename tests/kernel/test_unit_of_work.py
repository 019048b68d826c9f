"""`run_unit_of_work` on a SQLite file: one writer thread, all-or-nothing, and waiting out another process's lock."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    NullPool,
    Numeric,
    Table,
    bindparam,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shop_kernel import (
    Prepared,
    UnitBatcher,
    close_unit_of_work_runner,
    run_one_statement_units,
    run_unit_of_work,
    writes,
)

T = TypeVar("T")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[AsyncEngine]:
    path = tmp_path / "uow.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", poolclass=NullPool)  # each test runs its own loop
    yield engine
    close_unit_of_work_runner(engine)


def _insert(connection: Connection, names: list[str]) -> str:
    for name in names:
        connection.execute(text("INSERT INTO item (name) VALUES (:name)"), {"name": name})
    return threading.current_thread().name


def _unit(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    return asyncio.run(run_unit_of_work(engine, work))


def _names(engine: AsyncEngine) -> list[str]:
    with sqlite3.connect(str(engine.url.database)) as connection:
        return [name for (name,) in connection.execute("SELECT name FROM item ORDER BY id")]


def test_work_commits_in_the_writer_thread(engine: AsyncEngine) -> None:
    assert _unit(engine, lambda c: _insert(c, ["a", "b"])).startswith("sqlite-writer")
    assert _names(engine) == ["a", "b"]


def test_a_failing_unit_leaves_nothing_behind(engine: AsyncEngine) -> None:
    _unit(engine, lambda c: _insert(c, ["a"]))
    with pytest.raises(IntegrityError, match="UNIQUE"):
        _unit(engine, lambda c: _insert(c, ["b", "a"]))  # "b" is written, then "a" fails
    assert _names(engine) == ["a"]


def test_concurrent_units_all_commit(engine: AsyncEngine) -> None:
    async def many() -> list[str]:
        return await asyncio.gather(
            *(run_unit_of_work(engine, lambda c, n=n: _insert(c, [f"n{n}"])) for n in range(50))  # type: ignore[misc]
        )

    threads = asyncio.run(many())
    assert set(threads) == {threads[0]}  # one writer thread ran them all
    assert sorted(_names(engine)) == sorted(f"n{n}" for n in range(50))


def test_waits_while_another_process_holds_the_write_lock(engine: AsyncEngine) -> None:
    other = sqlite3.connect(str(engine.url.database), isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO item (name) VALUES ('other')")
    release = threading.Timer(0.3, other.execute, args=("COMMIT",))
    started = time.monotonic()
    release.start()
    try:
        _unit(engine, lambda c: _insert(c, ["mine"]))
    finally:
        release.join()
        other.close()
    assert time.monotonic() - started >= 0.3
    assert _names(engine) == ["other", "mine"]


def test_writers_of_other_processes_take_turns_and_a_dead_ones_turn_is_freed(engine: AsyncEngine) -> None:
    """Decision 216: every process's writer thread waits for its turn on `<database>-writer.lock` before it begins,
    and the kernel frees the turn of a process that dies holding it (killed here mid-turn)."""
    turns = f"{engine.url.database}-writer.lock"
    holder = subprocess.Popen(  # another process, its writer's turn taken and never given back
        [sys.executable, "-c", HOLD_TURN, turns], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        killer = threading.Timer(0.3, holder.kill)
        started = time.monotonic()
        killer.start()
        assert _unit(engine, lambda c: _insert(c, ["mine"])).startswith("sqlite-writer")
        waited = time.monotonic() - started
        killer.join()
    finally:
        holder.kill()
        holder.wait()
    assert waited >= 0.3  # it waited for the turn, not for SQLite's lock (nobody held that)
    assert _names(engine) == ["mine"]


HOLD_TURN = """
import fcntl, os, sys, time
descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("holding", flush=True)
time.sleep(60)
"""


def test_a_lock_held_past_the_deadline_fails(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writes, "SQLITE_BUSY_TIMEOUT_MS", 50)
    other = sqlite3.connect(str(engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            _unit(engine, lambda c: _insert(c, ["mine"]))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _names(engine) == []


def test_in_memory_databases_run_on_the_async_connection() -> None:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:", poolclass=NullPool)
    assert _unit(engine, lambda c: c.execute(text("SELECT 41 + 1")).scalar_one()) == 42
    assert not _unit(engine, lambda _c: threading.current_thread().name).startswith("sqlite-writer")


def test_units_submitted_together_share_a_transaction_and_fail_alone(engine: AsyncEngine) -> None:
    """`UnitBatcher`: units given at once commit together, each caller gets its own answer, and a unit that
    fails takes nobody else's write with it."""
    commits = 0

    def count(*_: object) -> None:
        nonlocal commits
        commits += 1

    async def submit(names: list[str]) -> list[object]:
        batcher = UnitBatcher(engine)
        # every unit is queued before the batcher's task first runs: they share one transaction
        units = [batcher.run(lambda c, name=name: (_insert(c, [name]), name)[1]) for name in names]
        return await asyncio.gather(*units, return_exceptions=True)

    _unit(engine, lambda c: _insert(c, ["warm-up"]))  # the writer thread exists before counting
    writer = writes._writer_for(engine)
    assert writer is not None
    event.listen(writer.engine, "commit", count)
    names = [f"n{n}" for n in range(10)]
    assert asyncio.run(submit(names)) == names
    assert commits == 1

    answers = asyncio.run(submit(["m0", "m1", "n3", "m2"]))  # "n3" exists: its unit fails, alone
    assert answers[:2] == ["m0", "m1"]
    assert isinstance(answers[2], IntegrityError)
    assert answers[3] == "m2"
    assert _names(engine) == ["warm-up", *names, "m0", "m1", "m2"]


def test_prepared_statements_answer_as_sqlalchemy_does(engine: AsyncEngine) -> None:
    """On the SQLite writer a `Prepared` statement runs on the sqlite3 connection; its rows, with the column types'
    processing, are the ones `Connection.execute` gives (here a Decimal and a UTC timestamp, whose type
    decorator must reach SQLite in the text form every other write uses)."""
    metadata = MetaData()
    money = Table(
        "money",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("amount", Numeric(10, 2)),
        Column("at", DateTimeUTC(timezone=True)),
    )
    when = datetime(2026, 12, 5, 1, 2, 3, 456789, tzinfo=UTC)
    insert_money = Prepared(insert(money).returning(money.c.id, money.c.amount, money.c.at), ["amount", "at"])
    read_money = Prepared(select(money.c.amount, money.c.at).where(money.c.id == bindparam("money_id")))

    def write_and_read(connection: Connection) -> tuple[object, ...]:
        metadata.create_all(connection)
        [(money_id, amount, at)] = insert_money.rows(connection, {"amount": Decimal("12.30"), "at": when})
        core = connection.execute(select(money.c.amount, money.c.at).where(money.c.id == money_id)).one()
        connection.execute(insert(money).values(amount=Decimal("12.30"), at=when))
        stored = connection.execute(text("SELECT amount, at FROM money ORDER BY id")).all()
        assert stored[0] == stored[1]  # the same text and number as a Core insert writes
        return (amount, at), read_money.rows(connection, {"money_id": money_id})[0], tuple(core)

    inserted, prepared, core = _unit(engine, write_and_read)
    assert inserted == prepared == core == (Decimal("12.30"), when)


def test_prepared_statements_on_asyncpg_keep_the_unit_whole(postgres_server: Any) -> None:
    """On asyncpg a `Prepared` statement runs on the driver's prepared statement: it begins the unit's transaction
    (a unit whose first statement it is still rolls back whole), its rows are the ones `Connection.execute` gives,
    and its errors are SQLAlchemy's, after which the pool's connections still work."""
    engine = create_async_engine(postgres_server.create_database(f"uow_{uuid.uuid4().hex[:8]}"), poolclass=NullPool)
    metadata = MetaData()
    money = Table(
        "money",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("code", Integer, unique=True),
        Column("amount", Numeric(10, 2)),
        Column("at", DateTimeUTC(timezone=True)),
    )
    when = datetime(2026, 12, 5, 1, 2, 3, 456789, tzinfo=UTC)
    insert_money = Prepared(insert(money).returning(money.c.id, money.c.amount, money.c.at), ["code", "amount", "at"])
    codes = Prepared(select(money.c.code).order_by(money.c.code))

    def first(connection: Connection) -> tuple[object, ...]:
        metadata.create_all(connection)
        [(money_id, amount, at)] = insert_money.rows(connection, {"code": 1, "amount": Decimal("12.30"), "at": when})
        core = connection.execute(select(money.c.amount, money.c.at).where(money.c.id == money_id)).one()
        return (amount, at), tuple(core)

    def then_fail(connection: Connection) -> None:
        insert_money.rows(connection, {"code": 2, "amount": Decimal("1.00"), "at": when})
        raise RuntimeError("after the first statement")

    def duplicate(connection: Connection) -> None:
        insert_money.rows(connection, {"code": 3, "amount": Decimal("1.00"), "at": when})
        insert_money.rows(connection, {"code": 1, "amount": Decimal("1.00"), "at": when})

    try:
        prepared, core = _unit(engine, first)
        assert prepared == core == (Decimal("12.30"), when)
        with pytest.raises(RuntimeError):
            _unit(engine, then_fail)
        with pytest.raises(IntegrityError, match="money_code_key") as raised:
            _unit(engine, duplicate)
        assert type(raised.value.orig).__name__ == "IntegrityError"  # the DBAPI error, as `_place_with_retries` reads
        assert _unit(engine, lambda c: codes.rows(c, {})) == [(1,)]
        # outside a transaction each statement commits as it ends: a failure after it takes nothing back
        with pytest.raises(RuntimeError):
            asyncio.run(run_one_statement_units(engine, then_fail))
        assert _unit(engine, lambda c: codes.rows(c, {})) == [(1,), (2,)]
    finally:
        asyncio.run(engine.dispose())


def test_one_statement_units_are_for_postgresql(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="SQLite writes go through run_unit_of_work"):
        asyncio.run(run_one_statement_units(engine, lambda c: None))
