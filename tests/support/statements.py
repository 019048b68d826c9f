"""Count the SQL statements the app sends while a block runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event

from shop_catalog.direct import DirectReads

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient


@contextmanager
def counted() -> Iterator[list[str]]:
    """Statements on every engine of this process (the test client runs the app here): the app's, the SQLite
    writer's of `run_unit_of_work`, and the catalog reads run on the driver (`shop_catalog.direct`)."""
    engine = Engine
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    DirectReads.observers.append(statements.append)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
        DirectReads.observers.remove(statements.append)


def statements_for(client: TestClient[Litestar], url: str, headers: dict[str, str] | None = None) -> int:
    with counted() as statements:
        assert client.get(url, headers=headers).status_code == 200
    return len(statements)
