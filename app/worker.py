"""The background worker, composed once (`worker_queue`) for both ways it runs: inside the web process (litestar-saq's
`SAQPlugin`) and as its own process (`shop worker`, `run_worker`), where SAQ's worker gets a stop with a deadline.

SAQ stops by cancelling its tasks and then waiting, without a limit, until every one of them has finished.
A task that does not end when cancelled therefore holds the process for as long as it likes. We saw this on
a busy machine: an upkeep task lost its cancellation inside a Redis call and then slept through its whole
interval (60 s for the sweep), longer than the pod's grace period, so the kubelet would have killed the
worker. `BoundedWorker.stop` gives SAQ's stop a deadline and then finishes the shutdown itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, cast

from saq import Worker
from saq.types import Context

from app.db import make_alchemy_config
from app.settings import Settings
from shop_notify import NotifyPlugin, queue_redis

if TYPE_CHECKING:
    from litestar.plugins import PluginProtocol
    from litestar_saq import QueueConfig
    from saq.queue import Queue
    from saq.types import Function, ReceivesContext

logger = logging.getLogger("shop.worker")

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
"""Used only when no REDIS_URL is configured and `shop serve` did not start the embedded one."""


def worker_queue(settings: Settings, plugins: Sequence[PluginProtocol], *, in_process: bool) -> QueueConfig:
    """The worker's one queue (`notify`, of the NotifyPlugin among the mounted `plugins`): its tasks, and the hooks
    that start and stop notify's reconciler and the kernel's outbox relay with each worker. The relay serves the
    subscribers every mounted plugin declares (`shop_kernel.OutboxConsumer`): none is listed here."""
    [notify] = [plugin for plugin in plugins if isinstance(plugin, NotifyPlugin)]
    return notify.queue_config(settings.redis_url or LOCAL_REDIS, in_process=in_process, plugins=plugins)


STOP_DEADLINE_SECONDS = 10.0
"""How long SAQ's own stop may take after SIGTERM; the shutdown hooks get the same again. Both together stay
well inside the Deployment's terminationGracePeriodSeconds (45 s)."""


class BoundedWorker(Worker[Context]):
    """A SAQ worker whose stop ends within `stop_deadline` seconds, plus as much again for its shutdown hooks."""

    def __init__(self, *args: Any, stop_deadline: float = STOP_DEADLINE_SECONDS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_deadline = stop_deadline

    @classmethod
    def of(cls, config: QueueConfig, queue: Queue, *, stop_deadline: float = STOP_DEADLINE_SECONDS) -> BoundedWorker:
        """The worker `SAQPlugin` would build from `config` (litestar-saq normalises its tasks and hooks to
        callables in `QueueConfig.__post_init__`), bounded."""
        return cls(
            queue,
            functions=cast("Collection[Function[Context]]", config.tasks),
            startup=cast("Collection[ReceivesContext[Context]]", config.startup),
            shutdown=cast("Collection[ReceivesContext[Context]]", config.shutdown),
            concurrency=config.concurrency,
            timers=config.timers,
            stop_deadline=stop_deadline,
        )

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(super().stop(), timeout=self.stop_deadline)
        except TimeoutError:
            lingering = sorted(task.get_name() for task in self.tasks if not task.done())
            logger.warning(
                "worker tasks did not stop within %.0f s of being cancelled; stopping without them",
                self.stop_deadline,
                extra={"tasks": lingering},
            )
            # saq's stop was cut short before its shutdown hooks: run them here (ours are idempotent)
            self._stopped = True
            self.pool.shutdown(wait=False, cancel_futures=True)
            hooks: list[Any] = list(self.shutdown) if isinstance(self.shutdown, list | tuple) else [self.shutdown]
            for hook in filter(None, hooks):
                try:
                    await asyncio.wait_for(hook(self.context), timeout=self.stop_deadline)
                except TimeoutError:
                    logger.warning("a worker shutdown hook did not finish within %.0f s", self.stop_deadline)


async def run_worker(
    settings: Settings, *, stop_deadline: float = STOP_DEADLINE_SECONDS, plugins: Sequence[PluginProtocol] = ()
) -> None:
    """Run the `notify` queue's worker, with the reconciler and the outbox relay for the plugins the app mounts
    (`app.main.context_plugins`, with `plugins` as `create_app(plugins=...)` has them), until SIGTERM or SIGINT."""
    from saq.queue.redis import RedisQueue

    from app.main import context_plugins  # not at the top: app.main composes with this module

    alchemy = make_alchemy_config(settings)
    mounted = context_plugins(settings, alchemy.create_session_maker(), plugins=plugins)
    config = worker_queue(settings, mounted, in_process=False)
    # saq's Queue.from_url does not accept unix:// (the embedded Redis); a client instance works for both
    queue = RedisQueue(queue_redis(settings.redis_url or LOCAL_REDIS), name=config.name)
    worker = BoundedWorker.of(config, queue, stop_deadline=stop_deadline)
    try:
        await worker.start()
    finally:
        await queue.disconnect()
        await alchemy.get_engine().dispose()
