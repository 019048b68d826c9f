"""`NotifyPlugin`: the notify context (log endpoints, delivery reports) and its SAQ queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol
from litestar_saq import QueueConfig
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from saq.types import PartialTimersDict

from shop_kernel import OutboxRelay, Subscriber, install_shared, subscribers_of
from shop_notify import models as _models  # noqa: F401  (tables join the shared metadata)
from shop_notify.channels import EmailChannel, SmsChannel, build_channels
from shop_notify.controllers import DeliveryReportController, NotificationController, delivery_report_secret_guard
from shop_notify.delivery import NotifyRuntime, deliver_event, deliver_notification
from shop_notify.rendering import Renderer
from shop_notify.settings import NotifySettings

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from saq.types import Context
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("NotifyPlugin", "queue_redis")


def queue_redis(url: str) -> Redis:
    """The job queue's Redis client. A command that cannot reach Redis is retried with backoff (0.2, 0.4 and
    0.8 s) before it fails, and a connection Redis closed while it was away is replaced. Without this (redis-py
    retries nothing by default) each worker fetch fails at once and is tried again at once: a worker spun a
    whole core for as long as Redis was away, the API's own in `make run`. No socket timeout: the worker's
    fetch blocks on Redis by design."""
    return Redis.from_url(url, retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), retries=3))


class NotifyPlugin(InitPluginProtocol):
    """Mount with a session factory; add `queue_config(...)` to the host app's `SAQPlugin` to run the worker.

    An `OutboxConsumer` (`outbox_subscribers`): its subscriber turns order events and requested messages into
    notifications. Its worker runs the kernel's outbox relay for every consumer the host app mounts.
    """

    def __init__(
        self,
        settings: NotifySettings | None = None,
        *,
        session_maker: Callable[[], AsyncSession] | None = None,
        sms: SmsChannel | None = None,
        email: EmailChannel | None = None,
    ) -> None:
        self.settings = settings or NotifySettings()
        self.session_maker = session_maker
        default_sms, default_email = build_channels(self.settings)
        self.sms = sms or default_sms
        self.email = email or default_email
        self._background: list[tuple[asyncio.Event, list[asyncio.Task[None]]]] = []
        """The relay and reconciler of each worker running in this process, with the event that stops them."""

    def runtime(self) -> NotifyRuntime:
        if self.session_maker is None:
            raise RuntimeError("NotifyPlugin needs a session_maker to deliver notifications")
        return NotifyRuntime(self.settings, self.session_maker, self.sms, self.email, Renderer())

    def queue_config(self, redis_url: str, *, in_process: bool, plugins: Sequence[object] = ()) -> QueueConfig:
        """The `notify` queue: its tasks, and, started and stopped with each worker, notify's reconciler and the
        kernel's outbox relay for the subscribers that notify and every other `OutboxConsumer` among `plugins`
        (the host app's mounted plugins, notify among them or not) declare."""
        consumers = (self, *(plugin for plugin in plugins if plugin is not self))
        return QueueConfig(
            name=self.settings.queue_name,
            # an instance rather than `dsn`: litestar-saq only parses redis:// DSNs, not unix:// sockets
            broker_instance=queue_redis(redis_url),
            tasks=[deliver_event, deliver_notification],
            startup=[partial(self._on_worker_startup, consumers=consumers)],
            shutdown=[self._on_worker_shutdown],
            concurrency=self.settings.worker_concurrency,
            timers=PartialTimersDict(schedule=1, worker_info=10, abort=1, sweep=self.settings.sweep_interval_seconds),
            separate_process=not in_process,
        )

    def outbox_subscribers(self, worker: Mapping[str, Any]) -> Sequence[Subscriber]:
        """Notify's one subscriber: logged notifications and keyed jobs on the queue of `worker`."""
        runtime = worker.get("notify") or self.runtime()
        return [runtime.subscriber(worker["worker"].queue)]

    async def _on_worker_startup(self, ctx: Context, *, consumers: tuple[object, ...]) -> None:
        runtime = self.runtime()
        stop = asyncio.Event()
        extra = cast("dict[str, Any]", ctx)  # saq's Context allows extra keys
        extra["notify"] = runtime
        relay = OutboxRelay(
            runtime.engine(), subscribers_of(consumers, extra), interval=self.settings.relay_interval_seconds
        )
        tasks = [
            asyncio.create_task(relay.run(stop)),
            asyncio.create_task(runtime.run_reconciler(ctx["worker"].queue, stop)),
        ]
        self._background.append((stop, tasks))

    async def _on_worker_shutdown(self, ctx: Context) -> None:
        await self._stop_background()

    async def _stop_background(self) -> None:
        """Let the relay and the reconciler finish the statement they are in, then stop (idempotent)."""
        while self._background:
            stop, tasks = self._background.pop()
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    @asynccontextmanager
    async def _stop_background_before_the_database(self, _app: Litestar) -> AsyncIterator[None]:
        """A lifespan entered after the database plugin's, so it exits before that one disposes the engine.

        Litestar exits lifespan managers before it runs `on_shutdown` hooks, and an in-process SAQ worker
        stops in one of those hooks: without this the relay or the reconciler could be mid-statement on a
        disposed engine, a wait that never ends (the app's shutdown hung).
        """
        try:
            yield
        finally:
            await self._stop_background()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        install_shared(app_config)
        settings = self.settings
        app_config.dependencies["notify_settings"] = Provide(lambda: settings, use_cache=True, sync_to_thread=False)
        reports = Router(
            path="/", route_handlers=[DeliveryReportController], guards=[delivery_report_secret_guard(settings)]
        )
        app_config.route_handlers.extend([NotificationController, reports])
        app_config.signature_namespace.update({"NotifySettings": NotifySettings})
        app_config.lifespan.append(self._stop_background_before_the_database)
        return app_config
