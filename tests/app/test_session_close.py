"""Every request's session is closed as its answer starts; a database that dies during that close costs the
answer nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from advanced_alchemy.extensions.litestar import async_default_before_send_handler
from advanced_alchemy.extensions.litestar._utils import set_aa_scope_state
from advanced_alchemy.extensions.litestar.plugins.init.config.common import SESSION_SCOPE_KEY
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy.exc import OperationalError

from app.db import outage_tolerant

close_session_before_send = outage_tolerant(async_default_before_send_handler)

START = {"type": "http.response.start", "status": 200, "headers": []}


class Session:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        if self.error is not None:
            raise self.error


def _scope(session: Session) -> Any:
    scope: dict[str, Any] = {"type": "http"}
    set_aa_scope_state(scope, SESSION_SCOPE_KEY, session)  # type: ignore[arg-type]
    return scope


def test_an_outage_while_closing_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    gone = Session(OperationalError("ROLLBACK", {}, ConnectionRefusedError(111, "refused")))
    asyncio.run(close_session_before_send(START, _scope(gone)))  # type: ignore[arg-type]
    assert gone.closed
    assert "Closing a session failed (OperationalError)" in caplog.text


def test_any_other_error_while_closing_still_raises() -> None:
    with pytest.raises(ValueError, match="bug"):
        asyncio.run(close_session_before_send(START, _scope(Session(ValueError("bug")))))  # type: ignore[arg-type]


def test_each_request_gives_its_connection_back_in_an_app_that_is_not_the_first(client: TestClient[Litestar]) -> None:
    """advanced-alchemy renames the session key of every config after the first in a process (`migrate` made one
    before this app): a handler looking under the default key closed nothing, and each product page kept its
    connection (on PostgreSQL idle in a transaction, holding locks) until the garbage collector came by."""
    alchemy = client.app.state.alchemy
    assert alchemy.session_scope_key != SESSION_SCOPE_KEY
    pool = alchemy.get_engine().sync_engine.pool
    for path, status in (
        ("/api/products/", 200),
        ("/api/products/?page=1&ordering=price", 200),
        ("/api/products/1/", 404),
    ):
        assert client.get(path).status_code == status
        assert pool.checkedout() == 0, path
