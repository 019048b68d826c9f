"""`shop worker` as its own process: it delivers, and a worker killed mid-send never causes a second SMS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from app.settings import Settings
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog
from tests.support.fakes import FakeAfricasTalking, africas_talking, eventually


@contextmanager
def worker(settings: Settings, at: FakeAfricasTalking) -> Iterator[subprocess.Popen[str]]:
    environ = {k: v for k, v in os.environ.items() if k not in {"APP_ENV", "DEMO_DATA"}}
    environ.update(
        {
            "APP_ENV": "test",
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url or "",
            "SMS_BACKEND": "africastalking",
            "AT_API_KEY": "worker-key",
            "AT_BASE_URL": at.url,
            "NOTIFY_JOB_TIMEOUT_SECONDS": "3",
            "NOTIFY_SWEEP_SECONDS": "1",
            "NOTIFY_RECONCILE_INTERVAL_SECONDS": "1",
            "NOTIFY_RECONCILE_AFTER_SECONDS": "2",
            "LOG_LEVEL": "WARNING",
        }
    )
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "shop"), "worker"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=15)


def sms_rows(client: TestClient[Litestar], staff: Caller, order: str) -> list[dict[str, Any]]:
    rows = client.get("/api/notifications/", params={"order": order}, headers=staff.headers).json()["results"]
    return [row for row in rows if row["channel"] == "sms"]


@pytest.mark.backend("postgresql")
def test_a_separate_worker_delivers_and_a_killed_one_never_sends_twice(
    client: TestClient[Litestar], settings: Settings, catalog: Catalog, api: Api, staff: Caller
) -> None:
    """A separate worker is the production shape (PostgreSQL). SQLite's worker is `shop serve`'s child, killed
    mid-send with it in tests/notify/test_crash_recovery.py."""
    assert settings.redis_url
    queue_redis = redis.Redis.from_url(settings.redis_url)
    queue_redis.flushall()
    buyer = api.customer(phone_number="0712345678")
    product = catalog.product(stock_quantity=5)

    def order() -> str:
        body = {"items": [{"product_id": product["id"], "quantity": 1}]}
        return str(client.post("/api/orders/", json=body, headers=buyer.headers).json()["order_number"])

    with africas_talking() as at:
        with worker(settings, at):
            first = order()
            eventually(lambda: [r for r in sms_rows(client, staff, first) if r["status"] == "sent"], timeout=30)
        assert len(at.received) == 1

        at.mode, at.delay = "timeout", 6.0  # the provider hangs on the next message...
        with worker(settings, at) as doomed:
            second = order()
            eventually(lambda: at.started == 2, timeout=30)
            doomed.send_signal(signal.SIGKILL)  # ...and the worker sending it dies
            doomed.wait(timeout=10)
        at.mode, at.delay = "ok", 0.0
        queue_redis.delete("saq:notify:sweep")  # skip saq's 60 s lock between sweeps: time has "passed"
        with worker(settings, at):
            [row] = eventually(
                lambda: [r for r in sms_rows(client, staff, second) if r["status"] == "failed"], timeout=40
            )
        assert "may have been delivered" in row["last_error"]
        eventually(lambda: len(at.received) == 2, timeout=10)  # the hung request completes: one message
        assert at.started == 2


@pytest.mark.backend("postgresql")
def test_a_worker_killed_under_load_leaves_no_notification_behind(
    client: TestClient[Litestar], settings: Settings, catalog: Catalog, api: Api, staff: Caller
) -> None:
    """The production shape (PostgreSQL, an external Redis that survives): orders keep coming while the only worker
    is killed; a new one settles every row. Jobs the dead worker held are SAQ's to sweep (after their timeout, about
    5 s each while it waits for the dead worker to confirm the abort): the bound is in docs/operations.md."""
    assert settings.redis_url
    queue_redis = redis.Redis.from_url(settings.redis_url)
    queue_redis.flushall()
    buyer = api.customer(phone_number="0712345678")
    product = catalog.product(stock_quantity=1000)
    body = {"items": [{"product_id": product["id"], "quantity": 1}]}
    placed: list[str] = []

    def everything() -> list[dict[str, Any]]:
        answer = client.get("/api/notifications/", params={"page_size": 100}, headers=staff.headers).json()
        return list(answer["results"])

    with africas_talking() as at:
        # each SMS answered half a second late: whatever the machine's load, the last orders' messages are still queued
        # or being sent when the worker is killed (at 0.1 s a busy machine let the worker catch up first)
        at.mode, at.delay = "timeout", 0.5
        with worker(settings, at) as doomed:
            for _ in range(30):
                placed.append(client.post("/api/orders/", json=body, headers=buyer.headers).json()["order_number"])
                if len(placed) == 15:
                    eventually(lambda: at.started >= 2, timeout=30)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=10)
        assert [row for row in everything() if row["status"] in ("queued", "sending")], "nothing was left to do"
        at.mode = "ok"
        queue_redis.delete("saq:notify:sweep")
        with worker(settings, at):
            rows = eventually(
                lambda: (r := everything()) and all(row["status"] in ("sent", "failed") for row in r) and r,
                timeout=180,  # SAQ sweeps the dead worker's jobs one by one, 5 s each, then retries them with backoff
                interval=0.5,
            )
    assert len(rows) == 2 * len(placed)  # an SMS and an e-mail per order
    sms_per_order = Counter(number for text in at.messages() for number in placed if number in text)
    for row in rows:
        if row["status"] == "failed":  # the one documented case: killed between claiming and recording the send
            assert "Interrupted while sending" in row["last_error"]
        if row["channel"] == "sms":
            times = sms_per_order[row["order_number"]]
            assert times == 1 if row["status"] == "sent" else times <= 1
