"""`run_unit_of_work` on a SQLite file: one writer thread, all-or-nothing, and waiting out another process's lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Connection, NullPool, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shop_kernel import close_unit_of_work_runner, run_unit_of_work, writes

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
