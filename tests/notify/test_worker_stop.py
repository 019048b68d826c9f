"""The separate worker stops within its deadline even when one of its tasks ignores being cancelled.

On a busy machine SAQ's sweep task once lost its cancellation inside a Redis call and then slept out its
60 s interval; SAQ's own stop waits for it without a limit, longer than the pod's grace period. The task
below does the same on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from saq import Worker
from saq.queue.redis import RedisQueue

from app.worker import BoundedWorker
from shop_notify import queue_redis


async def noop(_ctx: Any) -> None:
    return None


async def stubborn() -> None:
    """Swallows the first cancellation, then sleeps as SAQ's sweep task did."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        assert current is not None
        current.uncancel()
    await asyncio.sleep(30)


async def stop_time(worker: Worker[Any], ran: list[str], patience: float = 5) -> float:
    """Start `worker`, plant the stubborn task among its own, stop it as SIGTERM does; seconds to stop."""
    running = asyncio.create_task(worker.start())
    for _ in range(200):
        if worker.tasks:
            break
        await asyncio.sleep(0.01)
    planted = asyncio.create_task(stubborn())
    worker.tasks.add(planted)
    await asyncio.sleep(0.05)
    began = time.monotonic()
    worker.event.set()  # what saq's SIGTERM handler does
    try:
        await asyncio.wait_for(asyncio.shield(running), timeout=patience)
    except TimeoutError:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(running, timeout=5)
    finally:
        planted.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await planted
    ran.append("done")
    return time.monotonic() - began


def make(kind: type[Worker[Any]], redis_url: str, hooks: list[str], **extra: Any) -> Worker[Any]:
    async def on_shutdown(_ctx: Any) -> None:
        hooks.append("shutdown")

    queue = RedisQueue(queue_redis(redis_url), name=f"stop-test-{kind.__name__}")
    return kind(queue, functions=[noop], shutdown=[on_shutdown], concurrency=2, **extra)


def test_a_worker_stops_within_its_deadline_and_runs_its_shutdown_hooks(redis_url: str) -> None:
    hooks: list[str] = []
    ran: list[str] = []
    worker = make(BoundedWorker, redis_url, hooks, stop_deadline=0.5)
    took = asyncio.run(stop_time(worker, ran))
    assert took < 3, took
    assert hooks == ["shutdown"]
    assert ran == ["done"]


def test_saqs_own_worker_waits_for_the_stubborn_task(redis_url: str) -> None:
    """Why BoundedWorker exists: without a deadline the same stop is still waiting 2 s later."""
    hooks: list[str] = []
    ran: list[str] = []
    worker = make(Worker, redis_url, hooks)
    took = asyncio.run(stop_time(worker, ran, patience=2))
    assert took >= 2, took
    assert hooks == []  # the hooks never ran: stop was still waiting
