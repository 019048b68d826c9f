"""The two pagination shapes of the contract.

* Page numbers (`?page=2&page_size=20`) answer `count, total_pages, current_page, page_size, next,
  previous, has_next, has_previous, results` with absolute `next`/`previous` URLs, as DRF did.
* Cursors (`?cursor=...&page_size=10`) answer `next, previous, results`. The cursor is an opaque,
  URL-safe token holding the position of the last row seen (sort value + id), so pages stay stable
  while rows are inserted concurrently, and no OFFSET scan grows with depth.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlencode

import msgspec
from litestar.exceptions import NotFoundException
from sqlalchemy import and_, or_

from shop_kernel.problems import FieldValidationError

if TYPE_CHECKING:
    from litestar import Request
    from sqlalchemy import Select
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import InstrumentedAttribute

__all__ = (
    "CursorPage",
    "KeysetWindow",
    "NumberedPage",
    "PageRequest",
    "cursor_page",
    "decode_cursor",
    "encode_cursor",
    "fetch_keyset_window",
    "numbered_page",
    "page_request",
)

T = TypeVar("T")


class NumberedPage(msgspec.Struct, Generic[T]):
    """One page of a page-number paginated list."""

    count: int
    total_pages: int
    current_page: int
    page_size: int
    next: str | None
    previous: str | None
    has_next: bool
    has_previous: bool
    results: list[T]


class CursorPage(msgspec.Struct, Generic[T]):
    """One page of a cursor paginated list; follow `next`/`previous` as given."""

    next: str | None
    previous: str | None
    results: list[T]


class PageRequest(msgspec.Struct, frozen=True):
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


MAX_OFFSET = 2**62
"""Beyond any real table, and within a signed 64-bit integer whatever the page size."""


def page_request(page: int | None, page_size: int | None, *, default_size: int, max_size: int) -> PageRequest:
    """Normalise paging parameters; like DRF, a `page_size` above the maximum is capped, not refused."""
    page = 1 if page is None else page
    size = default_size if page_size is None or page_size < 1 else min(page_size, max_size)
    # An offset no table can reach is past the end too, and must not overflow the database's integers.
    if page < 1 or (page - 1) * size > MAX_OFFSET:
        raise NotFoundException(detail="Invalid page.")
    return PageRequest(page=page, page_size=size)


def _url_with(request: Request[Any, Any, Any], **params: str | int) -> str:
    """The absolute URL of this request with `params` replaced in its query string."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in params]
    query.extend((key, str(value)) for key, value in params.items())
    # The path as the client sent it: Litestar strips a trailing slash from scope["path"].
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1").split("?", 1)[0] if raw_path else request.url.path
    url = request.url  # parsed once per request; a new URL object per link cost more than the page's query
    return f"{url.scheme}://{url.netloc}{path}?{urlencode(query)}"


def numbered_page(
    request: Request[Any, Any, Any], items: Sequence[T], *, count: int, paging: PageRequest
) -> NumberedPage[T]:
    """Wrap one page of `items`; a page past the end is 404, as in the original API."""
    total_pages = max(1, math.ceil(count / paging.page_size))
    if paging.page > total_pages:
        raise NotFoundException(detail="Invalid page.")
    has_next = paging.page < total_pages
    has_previous = paging.page > 1
    return NumberedPage(
        count=count,
        total_pages=total_pages,
        current_page=paging.page,
        page_size=paging.page_size,
        next=_url_with(request, page=paging.page + 1) if has_next else None,
        previous=_url_with(request, page=paging.page - 1) if has_previous else None,
        has_next=has_next,
        has_previous=has_previous,
        results=list(items),
    )


class _Position(msgspec.Struct, array_like=True):
    value: Any
    id: int
    backwards: bool = False


def encode_cursor(value: Any, row_id: int, *, backwards: bool = False) -> str:
    raw = msgspec.json.encode(_Position(value=value, id=row_id, backwards=backwards))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, value_type: type[Any]) -> _Position:
    """Parse a cursor made by `encode_cursor`; anything else is a 400, never a 500."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = msgspec.json.decode(raw, type=_Position)
        position.value = msgspec.convert(position.value, value_type, strict=False)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise FieldValidationError({"cursor": ["Invalid cursor."]}, detail="Invalid cursor.") from exc
    return position


class KeysetWindow(msgspec.Struct, Generic[T]):
    rows: list[T]
    next_cursor: str | None
    previous_cursor: str | None


async def fetch_keyset_window(
    session: AsyncSession,
    statement: Select[Any],
    *,
    sort: InstrumentedAttribute[Any],
    tie_breaker: InstrumentedAttribute[int],
    cursor: str | None,
    page_size: int,
) -> KeysetWindow[Any]:
    """One page of `statement` in descending (`sort`, `tie_breaker`) order, after or before `cursor`."""
    position = decode_cursor(cursor, sort.type.python_type) if cursor else None
    backwards = bool(position and position.backwards)
    if position is not None:
        if backwards:
            after = or_(sort > position.value, and_(sort == position.value, tie_breaker > position.id))
        else:
            after = or_(sort < position.value, and_(sort == position.value, tie_breaker < position.id))
        statement = statement.where(after)
    order = (sort.asc(), tie_breaker.asc()) if backwards else (sort.desc(), tie_breaker.desc())
    rows = list((await session.scalars(statement.order_by(*order).limit(page_size + 1))).all())
    more = len(rows) > page_size
    rows = rows[:page_size]
    if backwards:
        rows.reverse()

    def at(row: Any, *, back: bool) -> str:
        return encode_cursor(getattr(row, sort.key), getattr(row, tie_breaker.key), backwards=back)

    has_next = more if not backwards else position is not None
    has_previous = position is not None if not backwards else more
    return KeysetWindow(
        rows=rows,
        next_cursor=at(rows[-1], back=False) if rows and has_next else None,
        previous_cursor=at(rows[0], back=True) if rows and has_previous else None,
    )


def cursor_page(request: Request[Any, Any, Any], items: Sequence[T], window: KeysetWindow[Any]) -> CursorPage[T]:
    return CursorPage(
        next=_url_with(request, cursor=window.next_cursor) if window.next_cursor else None,
        previous=_url_with(request, cursor=window.previous_cursor) if window.previous_cursor else None,
        results=list(items),
    )
