"""`shop_kernel.Unit`, the unit of work every write goes through, on the app's real database (both backends): one
commit per outermost block, nothing written and no hook run when it raises, outbox events only with a commit."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Connection, event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shop_kernel import Unit
from shop_kernel.outbox import OUTBOX
from tests.support.api import Api

TOPIC = "test.noted"


class Noted(msgspec.Struct):
    n: int


class Refused(Exception):
    pass


def staged(api: Api) -> list[tuple[str, dict[str, Any]]]:
    """The test's events in the outbox, as another session sees them (committed only)."""

    async def read(session: AsyncSession) -> list[tuple[str, dict[str, Any]]]:
        rows = await session.execute(select(OUTBOX.c.key, OUTBOX.c.payload).where(OUTBOX.c.topic == TOPIC))
        return sorted((key, payload) for key, payload in rows)

    return api.run(read)


def test_nested_blocks_join_and_commit_once_then_run_the_hooks(client: TestClient[Litestar], api: Api) -> None:
    seen: list[str] = []

    async def write(session: AsyncSession) -> None:
        commits: list[int] = []
        event.listen(session.sync_session, "after_commit", lambda _s: commits.append(1))
        unit = Unit(session)
        async with unit.transaction() as outer:
            unit.stage(TOPIC, "a", Noted(1))
            async with unit.transaction() as inner:
                assert inner is outer is unit.session
                unit.stage(TOPIC, "b", Noted(2))
                unit.after_commit(lambda: seen.append(f"sync after {len(commits)} commit(s)"))

                async def tell_others() -> None:
                    seen.append("async")

                unit.after_commit(tell_others)
            assert (commits, seen) == ([], [])  # the inner block's end commits nothing
        assert commits == [1]
        unit.after_commit(lambda: seen.append("no transaction: at once"))

    api.run(write)
    assert seen == ["sync after 1 commit(s)", "async", "no transaction: at once"]
    assert staged(api) == [("a", {"n": 1}), ("b", {"n": 2})]


def test_a_block_that_raises_writes_nothing_and_runs_no_hook(client: TestClient[Litestar], api: Api) -> None:
    seen: list[str] = []

    async def write(session: AsyncSession) -> None:
        unit = Unit(session)

        async def fails_inside() -> None:
            async with unit.transaction():
                unit.stage(TOPIC, "lost", Noted(1))
                unit.after_commit(lambda: seen.append("lost"))
                async with unit.transaction() as inner:
                    await inner.flush()  # written, not committed
                    raise Refused

        with pytest.raises(Refused):
            await fails_inside()
        # the unit stays usable: the next block commits alone, with only its own hooks
        async with unit.transaction():
            unit.stage(TOPIC, "kept", Noted(2))
            unit.after_commit(lambda: seen.append("kept"))

            def broken() -> None:
                raise RuntimeError("a hook failed")

            unit.after_commit(broken)  # logged; the write stays committed and later hooks still run
            unit.after_commit(lambda: seen.append("after the broken one"))

    api.run(write)
    assert seen == ["kept", "after the broken one"]
    assert staged(api) == [("kept", {"n": 2})]


def test_stage_and_async_hooks_need_a_transaction(client: TestClient[Litestar], api: Api) -> None:
    async def misuse(session: AsyncSession) -> None:
        unit = Unit(session)
        with pytest.raises(RuntimeError, match="open transaction"):
            unit.stage(TOPIC, "nowhere", Noted(1))

        async def hook() -> None:  # pragma: no cover - refused before it can run
            raise AssertionError

        with pytest.raises(RuntimeError, match="open transaction"):
            unit.after_commit(hook)

    api.run(misuse)
    assert staged(api) == []


def test_run_commits_core_work_alone_and_its_hooks_after(client: TestClient[Litestar], api: Api) -> None:
    seen: list[str] = []

    async def write(session: AsyncSession) -> int:
        unit = Unit(session)

        def work(connection: Connection) -> int:
            unit.stage(TOPIC, "core", Noted(3), connection)
            unit.after_commit(lambda: seen.append("after run"))
            assert seen == []  # registered from the work: waits for its commit
            return int(connection.scalar(select(func.count()).select_from(OUTBOX).where(OUTBOX.c.topic == TOPIC)))

        counted = await unit.run(work)

        def fails(connection: Connection) -> None:
            unit.stage(TOPIC, "rolled back", Noted(4), connection)
            unit.after_commit(lambda: seen.append("never"))
            raise Refused

        with pytest.raises(Refused):
            await unit.run(fails)
        async with unit.transaction():
            with pytest.raises(RuntimeError, match="cannot join"):
                await unit.run(work)
        return counted

    assert api.run(write) == 1
    assert seen == ["after run"]
    assert staged(api) == [("core", {"n": 3})]
