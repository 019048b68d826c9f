"""The composed app with its notification worker in-process, talking to the fake Africa's Talking and SMTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from app.main import create_app
from app.settings import Settings
from shop_notify import NotifySettings
from tests.support.fakes import FakeAfricasTalking, FakeSmtp, eventually

SECRET = "dlr-s3cret"


def notify_settings(at: FakeAfricasTalking, smtp: FakeSmtp) -> NotifySettings:
    return NotifySettings(
        sms_backend="africastalking",
        at_username="shop",
        at_api_key="test-api-key",
        at_sender_id="SHOP",
        at_base_url=at.url,
        # roomy: on a loaded machine the fake (a thread of the test process) can take a while to answer; tests
        # of the deadline itself set their own with the `notify` marker
        sms_timeout_seconds=3.0,
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        admin_email="orders@shop.test",
        default_from_email="noreply@shop.test",
        delivery_report_secret=SECRET,
        job_retries=3,
        job_retry_delay_seconds=0.05,
        relay_interval_seconds=0.05,
    )


def marked_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """NotifySettings fields a test sets with `@pytest.mark.notify(field=value)`."""
    marker = request.node.get_closest_marker("notify")
    return dict(marker.kwargs) if marker else {}


@contextmanager
def app_with_worker(
    settings: Settings, at: FakeAfricasTalking, smtp: FakeSmtp, **notify: Any
) -> Iterator[TestClient[Litestar]]:
    """A new app over the session's database (emptied by the `client` fixture) and an emptied Redis;
    `notify` overrides fields of the notify settings."""
    assert settings.redis_url
    with redis.Redis.from_url(settings.redis_url) as server:
        server.flushall()
    app = create_app(replace(settings, worker_in_process=True, notify=replace(notify_settings(at, smtp), **notify)))
    with TestClient(app) as worker_client:
        yield worker_client


def relayed(subscriber: str, outcome: str) -> float:
    """Events this process's outbox relays handed to `subscriber` with `outcome` (delivered, failed, undecodable)."""
    return REGISTRY.get_sample_value("shop_outbox_relayed_total", {"subscriber": subscriber, "outcome": outcome}) or 0.0


def jobs(outcome: str) -> float:
    """Notifications this process's worker has settled with `outcome` (sent, failed, skipped, missing, retry)."""
    return REGISTRY.get_sample_value("shop_notify_jobs_total", {"outcome": outcome}) or 0.0


def relay_passes(more: int) -> None:
    """Wait until this process's outbox relay has completed `more` passes after now: whatever it would hand over
    again, it has by then."""
    _passes("shop_outbox_relay_passes_total", more)


def reconciler_passes(more: int) -> None:
    """Wait until this process's notification reconciler has completed `more` passes after now."""
    _passes("shop_notify_reconciler_passes_total", more)


def _passes(counter: str, more: int) -> None:
    """A pass counter's metric, not a sleep: a fixed sleep is too short on a loaded machine and wasted on an idle
    one."""

    def done() -> float:
        return REGISTRY.get_sample_value(counter) or 0.0

    start = done()
    eventually(lambda: done() >= start + more)
