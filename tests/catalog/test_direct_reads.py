"""The catalog's hot reads run on the driver (decision 145) and return what the session would have."""

from __future__ import annotations

import sqlite3
import threading
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import column, func, select, table, update
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.util import greenlet_spawn

from shop_catalog.direct import DirectReads
from shop_catalog.listing import ListPlan, ListShape, page_statement
from shop_catalog.queries import PRODUCT
from shop_kernel import database_outage
from tests.support.api import Api
from tests.support.catalog import Catalog
from tests.support.statements import counted

SHAPE = ListShape(staff=False, ordering="price", category=True, min_price=True)


def _values(subtree: list[int], *, offset: int = 0) -> dict[str, Any]:
    return {"subtree": subtree, "min_price": Decimal("1.00"), "limit": 10, "offset": offset}


def test_direct_rows_equal_the_sessions(api: Api, catalog: Catalog) -> None:
    shelf, other = catalog.category("Shelf"), catalog.category("Other")
    catalog.product(shelf, name="Kettle", price="20.50")
    catalog.product(shelf, other, name="Mug", price="3.10")
    catalog.product(other, name="Lamp", price="9.99")
    catalog.product(shelf, name="Pin", price="0.50")

    async def compare(session: AsyncSession) -> None:
        dialect = session.get_bind().dialect.name
        statement = page_statement(SHAPE, ListPlan("subtree", spelled_out=dialect == "sqlite"), dialect)
        reads = DirectReads()
        with counted() as statements:
            direct = await reads.all(session, statement, _values([shelf["id"]]))
        assert len(statements) == 1
        # read on a connection of its own: SQLite the thread's, PostgreSQL a pooled one handed back (decision 159)
        assert not session.in_transaction()
        by_session = [tuple(row) for row in await session.execute(statement, _values([shelf["id"]]))]
        assert direct == by_session
        assert [(row[1], row[3]) for row in direct] == [("Mug", Decimal("3.10")), ("Kettle", Decimal("20.50"))]
        assert all(row[7].tzinfo is not None for row in direct)  # created_at: aware, as the ORM gives it
        assert await reads.all(session, statement, _values([])) == []  # an empty subtree lists nothing
        assert await reads.all(session, statement, _values([shelf["id"], other["id"]], offset=2)) == [
            tuple(row) for row in await session.execute(statement, _values([shelf["id"], other["id"]], offset=2))
        ]

    api.run(compare)


def test_a_read_inside_a_transaction_sees_its_writes_and_a_slow_one_leaves_the_loop(api: Api, catalog: Catalog) -> None:
    shelf = catalog.category("Shelf")
    kettle = catalog.product(shelf, name="Kettle", price="20.50")

    async def check(session: AsyncSession) -> None:
        dialect = session.get_bind().dialect.name
        statement = page_statement(SHAPE, ListPlan("order", spelled_out=dialect == "sqlite"), dialect)
        await session.execute(update(PRODUCT).where(PRODUCT.c.id == kettle["id"]).values(price=Decimal("7.25")))
        # not committed: only the session's own connection can see it
        rows = await DirectReads().all(session, statement, _values([shelf["id"]]))
        assert [row[3] for row in rows] == [Decimal("7.25")]
        await session.rollback()
        # a budget nothing fits in: SQLite interrupts the read and runs it again through the session
        patient = DirectReads(inline_budget_seconds=0.0, progress_steps=1)
        direct: list[str] = []
        DirectReads.observers.append(direct.append)
        try:
            rows = await patient.all(session, statement, _values([shelf["id"]]))
        finally:
            DirectReads.observers.remove(direct.append)
        assert [row[3] for row in rows] == [Decimal("20.50")]
        assert direct == [] or dialect != "sqlite"  # SQLite: answered by the session, not inline

    api.run(check)


def test_a_read_is_not_cut_off_while_another_thread_holds_the_gil(tmp_path: Any) -> None:
    """Decision 194: the budget is the reading thread's CPU time. sqlite3 lets go of the GIL while a read runs and
    each look at the clock takes it back; a thread busy in Python meanwhile made a 2 ms wall-clock budget run out on
    reads that used a fraction of it, which were then run again the slow way."""
    path = tmp_path / "reads.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (x INTEGER)")
        setup.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(3000)])
    statement = select(func.count()).select_from(table("t", column("x"))).where(column("x") % 7 == 1)
    dialect = sqlite_dialect()
    reads = DirectReads(progress_steps=10_000)  # the clock is looked at a few times in each read
    connection = reads._sqlite(str(path))
    assert connection is not None
    stop = threading.Event()

    def hold_the_gil() -> None:
        while not stop.is_set():
            sum(range(1000))

    busy = threading.Thread(target=hold_the_gil)
    busy.start()
    try:
        answers = [reads._sqlite_rows(connection, statement, dialect, {}) for _ in range(20)]
    finally:
        stop.set()
        busy.join()
    # every read answered inline (with the wall clock none was); one or two may still meet the wall-clock bound if
    # the machine itself stalls this process for 20 ms
    assert sum(answer is None for answer in answers) <= 2
    assert {str(answer) for answer in answers if answer is not None} == {"[(429,)]"}


@pytest.mark.backend("postgresql")
def test_a_read_on_a_pooled_connection_the_server_closed_is_an_outage(api: Api, catalog: Catalog) -> None:
    """A pooled connection back less than a second ago is handed out without a ping (decision 158); if the server
    closed it meanwhile (a restart), asyncpg's bare InterfaceError became a 500. It is a lost connection: 503."""
    shelf = catalog.category("Shelf")
    catalog.product(shelf, name="Kettle", price="20.50")

    async def check(session: AsyncSession) -> None:
        engine = session.get_bind().engine
        statement = page_statement(SHAPE, ListPlan("order", spelled_out=False), "postgresql")
        held = [await greenlet_spawn(engine.raw_connection) for _ in range(engine.pool.checkedin() or 1)]
        for raw in held:  # every idle connection of the pool, closed under the pool's feet
            await raw.driver_connection.close()
            await greenlet_spawn(raw.close)
        with pytest.raises(ConnectionResetError) as lost:
            await DirectReads().all(session, statement, _values([shelf["id"]]))
        assert database_outage(lost.value) is not None
        rows = await DirectReads().all(session, statement, _values([shelf["id"]]))  # the dead one was dropped
        assert [row[1] for row in rows] == ["Kettle"]

    api.run(check)


@pytest.mark.backend("postgresql")
@pytest.mark.parametrize("ordering", ["name", "-name", "created_at", "-created_at", "price", "-price"])
def test_a_page_under_a_price_floor_reads_its_ids_from_the_index_alone(
    api: Api, catalog: Catalog, ordering: str
) -> None:
    """Decision 215: every ordering's index carries the price on PostgreSQL, so a page under a price floor walks
    the index without visiting the table (an index-only scan, once VACUUM has marked the pages visible)."""
    for n in range(30):
        catalog.product(name=f"Lamp {n:02d}", price=f"{n + 1}.00")
    shape = ListShape(staff=False, ordering=ordering, min_price=True)
    page_ids = page_statement(shape, ListPlan("order", spelled_out=False), "postgresql").get_final_froms()[0].right

    async def explain(session: AsyncSession) -> str:
        async with session.bind.connect() as outside:  # VACUUM runs outside a transaction
            await outside.execution_options(isolation_level="AUTOCOMMIT")
            await outside.exec_driver_sql("VACUUM ANALYZE catalog_product")
        connection = await session.connection()
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a table this small would be read whole
        await connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        bound = page_ids.element.params(min_price=Decimal("12.00"), limit=5, offset=3)
        sql = str(bound.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}))
        plan = await connection.exec_driver_sql("EXPLAIN " + sql)
        return "\n".join(row[0] for row in plan)

    plan = api.run(explain)
    index = {"name": "name", "created_at": "created", "price": "price"}[ordering.removeprefix("-")]
    assert (
        f"Index Only Scan{' Backward' if ordering.startswith('-') else ''} using ix_catalog_product_active_{index}"
        in plan
    ), plan
