"""A killed process loses no notification: `make run`'s shape (one `shop serve` process with its worker and the
embedded Redis) killed with SIGKILL while customers place orders, then started again on the same `var/`.

Every notification ends `sent`, or `failed` with a reason; none stays `queued` or `sending`, and none is sent
twice (the one documented exception: a row a dead worker left `sending` becomes `failed`, "Interrupted while
sending", because the provider may have it).
"""

from __future__ import annotations

import re
import signal
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from app.auth import DEMO_CUSTOMER_TOKEN, DEMO_STAFF_TOKEN
from tests.support.fakes import FakeAfricasTalking, FakeSmtp, africas_talking, eventually, smtp_server
from tests.support.live import free_port, served

ORDER_NUMBER = re.compile(r"order (\S+) has been received")
SETTLED = {"sent", "failed", "skipped"}


def _env(var: Path, at: FakeAfricasTalking, smtp: FakeSmtp) -> dict[str, str]:
    return {
        "VAR_DIR": str(var),
        "WEB_CONCURRENCY": "2",  # `make run`'s shape on this machine: two serving processes and one worker
        "SMS_BACKEND": "africastalking",
        "AT_API_KEY": "crash-key",
        "AT_BASE_URL": at.url,
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "NOTIFY_JOB_TIMEOUT_SECONDS": "3",
        "NOTIFY_SWEEP_SECONDS": "1",
        "NOTIFY_RECONCILE_INTERVAL_SECONDS": "1",
        "NOTIFY_RECONCILE_AFTER_SECONDS": "2",
    }


def _place_orders_until_gone(base: str, product_id: int, placed: list[str], stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {DEMO_CUSTOMER_TOKEN}"}
    body = {"items": [{"product_id": product_id, "quantity": 1}]}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        while not stop.is_set():
            try:
                answer = client.post("/api/orders/", json=body)
            except httpx.TransportError:  # the server was killed
                return
            assert answer.status_code == 201, answer.text
            placed.append(answer.json()["order_number"])


def _rows(database: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute(
            "SELECT id, channel, status, order_number, last_error, provider_message_id FROM notify_notification"
        ).fetchall()


@pytest.mark.parametrize("redis_data", ["kept", "lost"])
def test_a_killed_server_loses_no_notification_and_sends_none_twice(tmp_path: Path, redis_data: str) -> None:
    var = tmp_path / "var"
    port = free_port()
    with africas_talking() as at, smtp_server() as smtp:
        at.mode, at.delay = "timeout", 0.2  # a slow provider: a backlog of notifications when the server dies
        env = _env(var, at, smtp)
        placed: list[str] = []
        with served(env, "--setup", port=port) as server:
            staff = {"Authorization": f"Bearer {DEMO_STAFF_TOKEN}"}
            [product] = httpx.get(f"{server.base}/api/products/", params={"search": "CI-SK-26"}).json()["results"]
            assert httpx.patch(
                f"{server.base}/api/products/{product['id']}/", json={"stock_quantity": 100_000}, headers=staff
            ).is_success
            stop = threading.Event()
            buyers = [
                threading.Thread(target=_place_orders_until_gone, args=(server.base, product["id"], placed, stop))
                for _ in range(4)
            ]
            for buyer in buyers:
                buyer.start()
            eventually(lambda: len(placed) >= 40 and at.started >= 3, timeout=60)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=10)
            stop.set()
            for buyer in buyers:
                buyer.join(timeout=15)

        database = var / "shop.sqlite3"
        backlog = [row for row in _rows(database) if row["status"] not in SETTLED]
        assert backlog, "the server died with nothing left to send: the test proved nothing"
        eventually(lambda: not (var / "redis.pid").exists() or not _redis_alive(var), timeout=15)
        if redis_data == "lost":  # Redis' own file gone as well: the database alone must drive every send
            for aof in var.glob("redis-appendonly.aof*"):
                aof.unlink()
        at.mode = "ok"
        with served(env, port=port):
            eventually(lambda: all(row["status"] in SETTLED for row in _rows(database)), timeout=90, interval=0.5)
            rows = _rows(database)

    orders = {row["order_number"] for row in rows}
    assert set(placed) <= orders, "an order that was answered 201 has no notifications"
    for row in rows:
        if row["status"] == "failed":
            assert row["last_error"], row
    sms_per_order = Counter(m for text in at.messages() if (m := _order_of(text)))
    mail_per_order = Counter(o for message in smtp.received if (o := _order_in_subject(message["Subject"], orders)))
    for row in rows:
        sent = sms_per_order if row["channel"] == "sms" else mail_per_order
        times = sent[row["order_number"]]
        if row["status"] == "sent":
            assert times == 1, (row["channel"], row["order_number"], times)
        else:  # failed: only the documented case, interrupted mid-send, and then never a second send
            assert "Interrupted while sending" in row["last_error"], row["last_error"]
            assert times <= 1
    assert sum(1 for row in rows if row["status"] == "sent") >= len(rows) - 20


def _order_of(text: str) -> str | None:
    match = ORDER_NUMBER.search(text)
    return match.group(1) if match else None


def _order_in_subject(subject: str, orders: set[str]) -> str | None:
    return next((word.strip(".,:#") for word in subject.split() if word.strip(".,:#") in orders), None)


def _redis_alive(var: Path) -> bool:
    try:
        pid = int((var / "redis.pid").read_text())
        return "redis" in Path(f"/proc/{pid}/cmdline").read_text()
    except (OSError, ValueError):
        return False
