"""The database is the truth, the queue only a way to get work done sooner: notifications whose jobs Redis lost
are sent anyway, once; a row a dead worker left `sending` is settled by the documented rule, never resent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from redis.asyncio import Redis
from saq.queue.redis import RedisQueue
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import make_alchemy_config
from app.settings import Settings
from shop_kernel import OutboxRelay
from shop_notify import NotifyPlugin
from shop_notify.models import NotificationLog
from tests.support.api import Api
from tests.support.catalog import Catalog
from tests.support.fakes import FakeAfricasTalking, FakeSmtp, eventually
from tests.support.notify import app_with_worker, notify_settings, reconciler_passes

FAST = {"reconcile_after_seconds": 0.3, "reconcile_interval_seconds": 0.2}


def relay_then_lose_the_queue(settings: Settings, at: FakeAfricasTalking, smtp: FakeSmtp) -> None:
    """What a server killed with the embedded Redis leaves: log rows written, their jobs enqueued, then gone
    (`app_with_worker` empties Redis before it starts)."""
    assert settings.redis_url

    async def relay() -> int:
        alchemy = make_alchemy_config(settings)
        queue = RedisQueue(Redis.from_url(settings.redis_url or ""), name="notify")
        runtime = NotifyPlugin(notify_settings(at, smtp), session_maker=alchemy.create_session_maker()).runtime()
        try:
            return await OutboxRelay(runtime.engine(), [runtime.subscriber(queue)]).relay_once()
        finally:
            await queue.disconnect()
            await alchemy.get_engine().dispose()

    assert asyncio.run(relay()) == 1


def rows(api: Api) -> list[Any]:
    async def read(session: AsyncSession) -> list[Any]:
        return list((await session.execute(NotificationLog.__table__.select().order_by("id"))).all())

    return api.run(read)


def statuses(api: Api) -> dict[str, str]:
    return {row.channel: row.status for row in rows(api)}


@pytest.fixture
def relayed(
    client: TestClient[Litestar], settings: Settings, catalog: Catalog, api: Api, at: FakeAfricasTalking, smtp: FakeSmtp
) -> str:
    """One order whose SMS and e-mail rows are `queued` and whose jobs Redis lost; returns its number."""
    buyer = api.customer(phone_number="0712345678")
    product = catalog.product(stock_quantity=5)
    body = {"items": [{"product_id": product["id"], "quantity": 1}]}
    order = client.post("/api/orders/", json=body, headers=buyer.headers).json()
    relay_then_lose_the_queue(settings, at, smtp)
    assert statuses(api) == {"sms": "queued", "email": "queued"}
    return str(order["order_number"])


def sms_sending_since(api: Api, since: datetime) -> None:
    """What a worker that claimed the SMS and then died leaves behind."""

    async def claim(session: AsyncSession) -> None:
        await session.execute(
            update(NotificationLog)
            .where(NotificationLog.channel == "sms")
            .values(status="sending", attempts=1, updated_at=since)
        )
        await session.commit()

    api.run(claim)


def test_queued_notifications_whose_jobs_were_lost_are_sent_once(
    relayed: str, settings: Settings, api: Api, at: FakeAfricasTalking, smtp: FakeSmtp
) -> None:
    with app_with_worker(settings, at, smtp, **FAST):
        eventually(lambda: statuses(api) == {"sms": "sent", "email": "sent"}, timeout=20)
        eventually(lambda: len(at.received) == 1 and len(smtp.received) == 1)
        reconciler_passes(3)  # several passes later: still once each
    assert len(at.received) == 1
    assert len(smtp.received) == 1
    assert relayed in at.received[0].form["message"]


def test_a_row_a_dead_worker_left_sending_fails_for_a_person_to_check(
    relayed: str, settings: Settings, api: Api, at: FakeAfricasTalking, smtp: FakeSmtp
) -> None:
    sms_sending_since(api, datetime.now(UTC) - timedelta(hours=1))
    with app_with_worker(settings, at, smtp, **FAST):
        eventually(lambda: statuses(api) == {"sms": "failed", "email": "sent"})
    [sms] = [row for row in rows(api) if row.channel == "sms"]
    assert sms.last_error.startswith("Interrupted while sending")
    assert at.received == []  # the provider may have it: never sent a second time by itself
    assert len(smtp.received) == 1


def test_a_recent_sending_row_is_left_to_its_job(
    relayed: str, settings: Settings, api: Api, at: FakeAfricasTalking, smtp: FakeSmtp
) -> None:
    """`sending` for less than the job's time limit may still be in a live worker's hands: not touched."""
    sms_sending_since(api, datetime.now(UTC))
    with app_with_worker(settings, at, smtp, **FAST):
        eventually(lambda: statuses(api).get("email") == "sent")
        reconciler_passes(3)
        assert statuses(api)["sms"] == "sending"
    assert at.received == []
