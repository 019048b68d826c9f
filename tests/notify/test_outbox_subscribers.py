"""The outbox has subscribers: a second one joins by mounting its plugin, without touching notify or the app's
composition, and each gets every event of its topics exactly once, on its own schedule: one failing (or Redis away,
for notify) holds back neither the other nor the orders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import pytest
from litestar.plugins import InitPluginProtocol
from litestar.testing import TestClient
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.main import create_app
from app.redis_server import EmbeddedRedis
from app.settings import Settings
from shop_kernel import (
    MESSAGE_REQUESTED,
    OUTBOX_DELIVERY,
    MessageRequested,
    OutboxConsumer,
    OutboxEvent,
    OutboxMessage,
    OutboxRelay,
    Subscriber,
)
from shop_ordering.events import ORDER_CANCELLED, ORDER_PLACED, OrderCancelled, OrderPlaced
from tests.support.api import Api
from tests.support.catalog import Catalog
from tests.support.fakes import FakeAfricasTalking, FakeSmtp, eventually
from tests.support.notify import notify_settings, relay_passes, relayed

if TYPE_CHECKING:
    from litestar.config.app import AppConfig


class Audit:
    """A second subscriber, as a webhook dispatcher or a search indexer would be: it records what it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self.failing = False

    async def handle(self, events: list[OutboxEvent[Any]]) -> None:
        if self.failing:
            raise RuntimeError("the audit sink is down")
        for event in events:
            assert isinstance(event.body, OrderPlaced | OrderCancelled)  # decoded, not a dict
            self.received.append((event.topic, event.body.order_number))


class AuditPlugin(InitPluginProtocol):
    """The plugin a sibling consumer ships: it mounts nothing else, it only declares its outbox subscriber."""

    def __init__(self, audit: Audit) -> None:
        self.audit = audit

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        return app_config

    def outbox_subscribers(self, worker: Mapping[str, Any]) -> Sequence[Subscriber]:
        assert worker["worker"].queue.name == "notify"  # the context of the worker whose relay asks
        return [Subscriber("audit", {ORDER_PLACED: OrderPlaced, ORDER_CANCELLED: OrderCancelled}, self.audit.handle)]


def outbox_state(api: Api) -> tuple[int, Counter[str]]:
    """(events not yet dispatched, delivery rows per subscriber)."""

    async def read(session: AsyncSession) -> tuple[int, Counter[str]]:
        pending = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.dispatched_at.is_(None))
        )
        names = await session.scalars(select(OUTBOX_DELIVERY.c.subscriber))
        return int(pending or 0), Counter(names)

    return api.run(read)


def test_two_subscribers_each_get_every_event_once_whoever_fails(
    client: TestClient[Any],
    settings: Settings,
    catalog: Catalog,
    api: Api,
    at: FakeAfricasTalking,
    smtp: FakeSmtp,
    own_redis: EmbeddedRedis,
) -> None:
    audit = Audit()
    buyer = api.customer(phone_number="0712345678")
    product = catalog.product(stock_quantity=10)
    body = {"items": [{"product_id": product["id"], "quantity": 1}]}
    shop_settings = replace(settings, redis_url=own_redis.url, worker_in_process=True, notify=notify_settings(at, smtp))
    plugin = AuditPlugin(audit)
    assert isinstance(plugin, OutboxConsumer)
    app = create_app(shop_settings, plugins=[plugin])
    before = {
        (name, outcome): relayed(name, outcome) for name in ("audit", "notify") for outcome in ("delivered", "failed")
    }

    def sms_for(number: str) -> int:
        return sum(number in sms.form["message"] for sms in at.received)

    with TestClient(app) as shop:

        def order() -> tuple[int, str]:
            answer = shop.post("/api/orders/", json=body, headers=buyer.headers)
            assert answer.status_code == 201, answer.text
            return int(answer.json()["id"]), str(answer.json()["order_number"])

        _, first = order()
        eventually(lambda: audit.received and sms_for(first))

        # notify cannot enqueue while Redis is away; the audit still gets the next order at once
        own_redis.stop()
        failed = relayed("notify", "failed")  # notify has every earlier event: a failure now is the next order's
        _, second = order()
        eventually(lambda: (ORDER_PLACED, second) in audit.received)
        eventually(lambda: relayed("notify", "failed") > failed)  # notify was handed it too: Redis refused
        assert sms_for(second) == 0
        assert outbox_state(api)[0] == 1  # undispatched: notify does not have it yet
        own_redis.start()
        eventually(lambda: sms_for(second), timeout=30)

        # the audit failing holds back neither notify nor the orders; it catches up once it works again
        audit.failing = True
        third_id, third = order()
        cancelled = shop.post(f"/api/orders/{third_id}/cancel/", headers=buyer.headers)
        assert cancelled.status_code == 200
        eventually(lambda: sms_for(third) == 2)  # placed, then cancelled
        assert all(number != third for _, number in audit.received)
        audit.failing = False
        eventually(lambda: (ORDER_CANCELLED, third) in audit.received, timeout=30)
        eventually(lambda: outbox_state(api)[0] == 0)
        relay_passes(3)  # several passes later, nothing was handed over again

    assert Counter(audit.received) == Counter(
        {(ORDER_PLACED, first): 1, (ORDER_PLACED, second): 1, (ORDER_PLACED, third): 1, (ORDER_CANCELLED, third): 1}
    )
    assert [sms_for(number) for number in (first, second, third)] == [1, 1, 2]
    assert outbox_state(api) == (0, Counter({"notify": 4, "audit": 4}))
    assert relayed("audit", "delivered") - before["audit", "delivered"] == 4
    assert relayed("notify", "delivered") - before["notify", "delivered"] == 4
    assert relayed("audit", "failed") > before["audit", "failed"]


def test_an_event_committed_late_with_a_smaller_id_is_still_handed_over(client: TestClient[Any], api: Api) -> None:
    """Ids are drawn at insert, not at commit: an event can appear below one already handed over. A row per
    delivery (not a "last id" cursor) still finds it; a payload that does not decode holds nothing back."""

    async def scenario(session: AsyncSession) -> list[list[str]]:
        engine = session.bind
        assert isinstance(engine, AsyncEngine)
        passes: list[list[str]] = []

        async def handle(events: list[OutboxEvent[Any]]) -> None:
            passes[-1].extend(f"{event.key}:{event.body.template}" for event in events)

        relay = OutboxRelay(engine, [Subscriber("late", {MESSAGE_REQUESTED: MessageRequested}, handle)])

        async def event(message_id: int, key: str, payload: dict[str, Any]) -> int:
            row = {"id": message_id, "topic": MESSAGE_REQUESTED, "key": key, "payload": payload,
                   "created_at": datetime.now(UTC), "attempts": 0}  # fmt: skip
            async with engine.begin() as connection:
                await connection.execute(insert(OutboxMessage), row)
            passes.append([])
            return await relay.relay_once()

        message = {"template": "password_changed", "channel": "email", "recipient": "a@shop.test"}
        assert await event(900_002, "later-id", message) == 1
        assert await event(900_001, "committed-late", message) == 1
        assert await event(900_003, "bad", {"template": "x"}) == 1  # no channel or recipient: logged, passed over
        passes.append([])
        assert await relay.relay_once() == 0
        return passes

    assert api.run(scenario) == [["later-id:password_changed"], ["committed-late:password_changed"], [], []]
    assert outbox_state(api) == (0, Counter({"late": 3}))
    with pytest.raises(ValueError, match="distinct names"):
        OutboxRelay(cast("AsyncEngine", None), [Subscriber("same", {}, Audit().handle)] * 2)
    assert relayed("late", "undecodable") >= 1
