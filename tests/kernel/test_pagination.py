"""Page-number and keyset cursor pagination, served by a small Litestar app."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.testing import TestClient
from sqlalchemy import DateTime, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shop_kernel import (
    CursorPage,
    NumberedPage,
    cursor_page,
    encode_cursor,
    fetch_keyset_window,
    numbered_page,
    page_request,
    problem_exception_handlers,
)

T0 = datetime(2024, 1, 20, 10, 0, tzinfo=UTC)


class Base(DeclarativeBase):
    """A private metadata: these tables must not join the app's migrations."""


class Event(Base):
    __tablename__ = "event"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@get("/numbers", sync_to_thread=False)
def numbers(
    request: Request[Any, Any, Any], page: FromQuery[int | None] = None, page_size: FromQuery[int | None] = None
) -> NumberedPage[int]:
    paging = page_request(page, page_size, default_size=20, max_size=50)
    everything = list(range(1, 151))
    window = everything[paging.offset : paging.offset + paging.page_size]
    return numbered_page(request, window, count=len(everything), paging=paging)


@get("/events")
async def events(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], cursor: FromQuery[str | None] = None
) -> CursorPage[int]:
    window = await fetch_keyset_window(
        db_session, select(Event), sort=Event.created_at, tie_breaker=Event.id, cursor=cursor, page_size=10
    )
    return cursor_page(request, [row.id for row in window.rows], window)


@post("/events")
async def add_event(db_session: NamedDependency[AsyncSession], id: FromQuery[int], minutes: FromQuery[int]) -> None:
    db_session.add(Event(id=id, created_at=T0 + timedelta(minutes=minutes)))
    await db_session.commit()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    # Not `metadata=`/`create_all=`: advanced-alchemy would install this metadata as the process-wide
    # default and the app's own tables would vanish from later tests.
    config = SQLAlchemyAsyncConfig(connection_string=f"sqlite+aiosqlite:///{tmp_path / 'events.sqlite3'}")

    async def create_tables() -> None:
        async with config.get_engine().begin() as connection:
            await connection.run_sync(Base.metadata.create_all)

    app = Litestar(
        [numbers, events, add_event],
        plugins=[SQLAlchemyPlugin(config)],
        exception_handlers=problem_exception_handlers(),
        on_startup=[create_tables],
    )
    with TestClient(app, base_url="http://shop.test") as client:
        # 25 events; ids 1-25, five of them per minute so the id tie-breaker matters
        for event_id in range(1, 26):
            client.post(f"/events?id={event_id}&minutes={(event_id - 1) // 5}")
        yield client


def query(url: str | None) -> dict[str, list[str]]:
    assert url is not None
    return parse_qs(urlsplit(url).query)


def test_numbered_page_has_the_contract_shape(client: TestClient[Litestar]) -> None:
    body = client.get("/numbers?page=2&page_size=20&search=iphone").json()
    assert list(body) == [
        "count", "total_pages", "current_page", "page_size", "next", "previous", "has_next", "has_previous", "results"
    ]  # fmt: skip
    assert (body["count"], body["total_pages"], body["current_page"], body["page_size"]) == (150, 8, 2, 20)
    assert body["results"] == list(range(21, 41))
    assert body["has_next"]
    assert body["has_previous"]
    assert body["next"].startswith("http://shop.test/numbers?")
    assert query(body["next"]) == {"page": ["3"], "page_size": ["20"], "search": ["iphone"]}
    assert query(body["previous"])["page"] == ["1"]


def test_first_and_last_pages(client: TestClient[Litestar]) -> None:
    first = client.get("/numbers").json()
    assert first["previous"] is None
    assert not first["has_previous"]
    assert first["page_size"] == 20
    last = client.get("/numbers?page=8").json()
    assert last["next"] is None
    assert not last["has_next"]
    assert last["results"] == list(range(141, 151))


def test_page_size_is_capped_and_pages_past_the_end_are_404(client: TestClient[Litestar]) -> None:
    assert client.get("/numbers?page_size=1000").json()["page_size"] == 50
    assert client.get("/numbers?page_size=0").json()["page_size"] == 20
    for page in ("9", "0", "-1"):
        response = client.get(f"/numbers?page={page}")
        assert response.status_code == 404
        assert response.json()["detail"] == "Invalid page."


def test_cursor_pages_walk_forward_and_back_newest_first(client: TestClient[Litestar]) -> None:
    first = client.get("/events").json()
    assert first["results"] == [25, 24, 23, 22, 21, 20, 19, 18, 17, 16]
    assert first["previous"] is None
    second = client.get(first["next"]).json()
    assert second["results"] == [15, 14, 13, 12, 11, 10, 9, 8, 7, 6]
    third = client.get(second["next"]).json()
    assert third["results"] == [5, 4, 3, 2, 1]
    assert third["next"] is None
    back = client.get(third["previous"]).json()
    assert back["results"] == second["results"]
    assert client.get(back["previous"]).json() == {"next": first["next"], "previous": None, "results": first["results"]}


def test_cursor_pages_are_stable_while_rows_are_inserted(client: TestClient[Litestar]) -> None:
    first = client.get("/events").json()
    client.post("/events?id=26&minutes=60")  # newer than everything
    client.post("/events?id=27&minutes=60")
    assert client.get(first["next"]).json()["results"] == [15, 14, 13, 12, 11, 10, 9, 8, 7, 6]
    assert client.get("/events").json()["results"][:2] == [27, 26]


@pytest.mark.parametrize("cursor", ["garbage!", "bm90IGpzb24", encode_cursor("not a date", 3)])
def test_invalid_cursor_is_400(client: TestClient[Litestar], cursor: str) -> None:
    response = client.get("/events", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["errors"] == {"cursor": ["Invalid cursor."]}
