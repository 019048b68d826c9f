"""The response cache's bus: what one process changed reaches every process's cache over Redis pub/sub.

Each serving process subscribes to one channel while it runs. A write publishes the tags it changed after
its commit (`ResponseCache.changed`); every subscriber, the writer included, drops the entries carrying
them. While the subscription is down (Redis stopped, restarting, unreachable) the process's cache neither
serves nor keeps anything, since it could miss a change; once subscribed again it starts empty. A publish
that fails is logged: the other processes are then either cut off from Redis too (and not serving from
memory) or keep what they hold for at most its time-to-live.

Changes made while a message is on its way travel together in the next one: every order publishes the
products it touched, and one message per order cost each serving process a fifth of its time under order
load (publishing, and parsing every other process's messages). A writer still waits until a message
carrying its tags has been published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import msgspec
from redis.asyncio import Redis

from app.redis_outage import UNREACHABLE, request_path_redis
from shop_kernel.response_cache import EVERYTHING, ResponseCache

__all__ = ("CHANNEL", "RedisInvalidationBus")

CHANNEL = "shop:response-cache:changes"
logger = logging.getLogger("shop.cache")


class RedisInvalidationBus:
    def __init__(self, url: str, cache: ResponseCache, retry_seconds: float = 1.0) -> None:
        self.url = url
        self.cache = cache
        self.retry_seconds = retry_seconds
        self._publisher = request_path_redis(url)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.sender = uuid.uuid4().hex
        """Names this process's messages: it dropped their tags itself before publishing."""
        self._waiting: set[str] = set()
        self._next: asyncio.Future[None] | None = None
        """Resolved once the message carrying `_waiting` is published."""
        self._sender_task: asyncio.Task[None] | None = None
        cache.bus = self

    async def publish(self, tags: frozenset[str]) -> None:
        """Returns once a message carrying `tags` is published (or failed to be, which is logged)."""
        self._waiting |= tags
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        done = self._next
        if self._sender_task is None:
            self._sender_task = asyncio.create_task(self._send_waiting(), name="response-cache-publish")
        await asyncio.shield(done)  # a cancelled writer leaves the message to the others waiting for it

    async def _send_waiting(self) -> None:
        try:
            while self._next is not None:
                done, tags = self._next, self._waiting
                self._next, self._waiting = None, set()
                try:
                    await self._publisher.publish(CHANNEL, msgspec.json.encode(_Change(self.sender, sorted(tags))))
                except UNREACHABLE as error:
                    logger.warning("Could not publish a cache change to other processes: %s", type(error).__name__)
                except Exception as error:  # the writers waiting for this message get it, as they did unbatched
                    done.set_exception(error)
                    continue
                except asyncio.CancelledError:  # the loop is closing: nobody is left waiting for an answer
                    done.cancel()
                    self._abandon_waiting()
                    raise
                done.set_result(None)
        finally:
            self._sender_task = None

    def _abandon_waiting(self) -> None:
        if self._next is not None:
            self._next.cancel()
            self._next, self._waiting = None, set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="response-cache-bus")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            # redis-py may turn the cancellation of a read into a connection error; the flag ends the loop then
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout=5)
        await self._publisher.aclose()

    async def _listen(self) -> None:
        while self._running():
            client = Redis.from_url(self.url, socket_connect_timeout=1.0, health_check_interval=5)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self.cache.clear()  # whatever was published while this process was not listening is lost
                self.cache.subscribed = True
                while self._running():
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message["type"] == "message":
                        change = _change(message["data"])
                        if change.sender != self.sender:
                            self.cache.drop(change.tags)
            except UNREACHABLE as error:
                if self.cache.subscribed and self._running():
                    logger.warning("Response cache off while Redis is unreachable: %s", type(error).__name__)
            finally:
                self.cache.subscribed = False
                self.cache.clear()
                with contextlib.suppress(*UNREACHABLE):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(*UNREACHABLE):
                    await client.aclose()
            if self._running():
                await asyncio.sleep(self.retry_seconds)

    def _running(self) -> bool:
        return not self._stopping


class _Change(msgspec.Struct, array_like=True):
    sender: str
    tags: list[str]


def _change(data: bytes) -> _Change:
    try:
        return msgspec.json.decode(data, type=_Change)
    except (msgspec.ValidationError, msgspec.DecodeError):  # not ours: forget everything rather than guess
        return _Change("", [EVERYTHING])
