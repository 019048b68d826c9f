"""Order notifications end to end: real Redis, a real in-process SAQ worker, Africa's Talking and SMTP on loopback."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient
from litestar_saq import SAQPlugin

from app.main import create_app
from app.settings import Settings
from shop_notify import NotifyPlugin, delivery_job
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog
from tests.support.fakes import FakeAfricasTalking, FakeSmtp, eventually
from tests.support.notify import SECRET, notify_settings, relay_passes, relayed


def place(shop: TestClient[Litestar], catalog: Catalog, buyer: Caller, **body: Any) -> dict[str, Any]:
    product = catalog.product(name="Kettle", price="1299.97", stock_quantity=5)
    response = shop.post(
        "/api/orders/", json={"items": [{"product_id": product["id"], "quantity": 1}], **body}, headers=buyer.headers
    )
    assert response.status_code == 201
    order: dict[str, Any] = response.json()
    return order


def log(shop: TestClient[Litestar], staff: Caller, **params: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = shop.get("/api/notifications/", params=params, headers=staff.headers).json()[
        "results"
    ]
    return results


def test_a_placed_order_sends_one_sms_and_one_email(
    shop: TestClient[Litestar],
    settings: Settings,
    catalog: Catalog,
    api: Api,
    staff: Caller,
    at: FakeAfricasTalking,
    smtp: FakeSmtp,
) -> None:
    buyer = api.customer(first_name="Wanjiru", last_name="Kamau", phone_number="0712345678")
    order = place(shop, catalog, buyer, notes="Gate <b>B</b>")
    number = order["order_number"]

    eventually(lambda: len(at.received) == 1 and len(smtp.received) == 1)
    sms = at.received[0]
    assert sms.form == {
        "username": "shop",
        "to": "+254712345678",
        "message": f"Hello Wanjiru, your order {number} has been received. Total: KES 1299.97. "
        "Thank you for shopping with us!",
        "from": "SHOP",
    }
    assert len(sms.form["message"]) <= 160
    assert sms.headers["apikey"] == "test-api-key"
    assert sms.headers["accept"] == "application/json"

    email = smtp.received[0]
    assert email["Subject"] == f"New Order Received - {number}"
    assert email["X-Envelope-To"] == "orders@shop.test"
    assert email["From"] == "noreply@shop.test"
    text = email.get_payload()[0].get_payload(decode=True).decode()
    html = email.get_payload()[1].get_payload(decode=True).decode()
    assert f"New order {number} from Wanjiru Kamau ({buyer.username})" in text
    assert "1 x Kettle @ KES 1299.97 = KES 1299.97" in text
    assert "Total: KES 1299.97" in text
    assert "Notes: Gate <b>B</b>" in text
    assert "Gate &lt;b&gt;B&lt;/b&gt;" in html
    assert "{{" not in text + html
    assert "{%" not in text + html

    entries = eventually(
        lambda: (
            [e for e in log(shop, staff, order=number) if e["status"] == "sent"]
            if len(log(shop, staff, order=number, status="sent")) == 2
            else None
        )
    )
    assert {(e["channel"], e["recipient"], e["attempts"]) for e in entries} == {
        ("sms", "+254712345678", 1),
        ("email", "orders@shop.test", 1),
    }
    assert next(e for e in entries if e["channel"] == "sms")["provider_message_id"] == "ATXid_1"
    # one SAQ job for the event (its SMS and its e-mail), none per notification (decision 155)
    with redis.Redis.from_url(settings.redis_url or "") as queue_redis:
        jobs = sorted(key.decode() for key in queue_redis.scan_iter("saq:job:notify:*"))
    assert jobs == [f"saq:job:notify:notify:event:order.placed:{order['id']}"]


def test_cancelling_sends_a_cancellation_notice(
    shop: TestClient[Litestar], catalog: Catalog, api: Api, at: FakeAfricasTalking, smtp: FakeSmtp
) -> None:
    buyer = api.customer(first_name="Otieno", phone_number="+254733000111")
    order = place(shop, catalog, buyer)
    eventually(lambda: len(at.received) == 1)
    assert shop.post(f"/api/orders/{order['id']}/cancel/", headers=buyer.headers).status_code == 200
    eventually(lambda: len(at.received) == 2 and len(smtp.received) == 2)
    assert at.received[1].form["message"] == f"Hello Otieno, your order {order['order_number']} has been cancelled."
    assert smtp.received[1]["Subject"] == f"Order Cancelled - {order['order_number']}"


def test_no_phone_means_no_sms_but_the_email_goes(
    shop: TestClient[Litestar], catalog: Catalog, api: Api, staff: Caller, at: FakeAfricasTalking, smtp: FakeSmtp
) -> None:
    buyer = api.customer(phone_number=None)
    order = place(shop, catalog, buyer)
    eventually(lambda: len(smtp.received) == 1)
    entries = eventually(lambda: log(shop, staff, order=order["order_number"], status="skipped"))
    assert entries[0]["channel"] == "sms"
    assert at.received == []


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("http500", "HTTP 500"),
        (403, "refused: InvalidPhoneNumber (403)"),
        pytest.param("timeout", "did not answer in time", marks=pytest.mark.notify(sms_timeout_seconds=0.5)),
    ],
)
def test_sms_failures_are_retried_then_logged_as_failed(
    shop: TestClient[Litestar],
    catalog: Catalog,
    api: Api,
    staff: Caller,
    at: FakeAfricasTalking,
    smtp: FakeSmtp,
    mode: str | int,
    reason: str,
) -> None:
    at.mode = mode
    at.delay = 1.0
    order = place(shop, catalog, api.customer(phone_number="0712345678"))
    [failed] = eventually(lambda: log(shop, staff, order=order["order_number"], status="failed"), timeout=30)
    assert failed["channel"] == "sms"
    assert failed["attempts"] == 3
    assert reason in failed["last_error"]
    assert "test-api-key" not in failed["last_error"]
    eventually(lambda: len(at.received) == 3)
    # the event's job ran three times for its SMS; its e-mail, sent the first time, was never sent again
    [email] = log(shop, staff, order=order["order_number"], status="sent")
    assert (email["channel"], email["attempts"], len(smtp.received)) == ("email", 1, 1)

    at.mode = "ok"
    retried = shop.post(f"/api/notifications/{failed['id']}/retry/", headers=staff.headers)
    assert retried.status_code == 202
    eventually(
        lambda: (
            log(shop, staff, order=order["order_number"], status="sent")
            and any(e["channel"] == "sms" for e in log(shop, staff, order=order["order_number"], status="sent"))
        )
    )
    assert shop.post(f"/api/notifications/{failed['id']}/retry/", headers=staff.headers).status_code == 409


def test_smtp_refusal_is_retried_then_failed(
    shop: TestClient[Litestar], catalog: Catalog, api: Api, staff: Caller, smtp: FakeSmtp
) -> None:
    smtp.refuse = True
    order = place(shop, catalog, api.customer())
    [failed] = eventually(lambda: log(shop, staff, order=order["order_number"], status="failed"), timeout=30)
    assert failed["channel"] == "email"
    assert "550" in failed["last_error"]
    assert smtp.received == []


def test_delivery_reports_update_the_log(
    shop: TestClient[Litestar], catalog: Catalog, api: Api, staff: Caller, at: FakeAfricasTalking
) -> None:
    order = place(shop, catalog, api.customer(phone_number="0712345678"))
    eventually(lambda: log(shop, staff, order=order["order_number"], status="sent"))
    url = f"/api/notifications/sms/delivery-reports/{SECRET}/"
    form = {"id": "ATXid_1", "status": "Failed", "phoneNumber": "+254712345678", "failureReason": "AbsentSubscriber"}
    assert shop.post("/api/notifications/sms/delivery-reports/wrong/", data=form).status_code == 404
    assert shop.post(url, data={"status": "Success"}).status_code == 400
    assert shop.post(url, data=form).json() == {"status": "recorded"}
    [entry] = log(shop, staff, order=order["order_number"], status="undelivered")
    assert entry["last_error"] == "Failed: AbsentSubscriber"
    assert shop.post(url, data={**form, "id": "unknown"}).json() == {"status": "ignored"}


def test_the_log_is_for_staff_only(shop: TestClient[Litestar], api: Api) -> None:
    customer = api.customer()
    assert shop.get("/api/notifications/", headers=customer.headers).status_code == 403
    assert shop.get("/api/notifications/").status_code == 401


def test_a_job_interrupted_mid_send_is_not_sent_again(
    shop: TestClient[Litestar], catalog: Catalog, api: Api, staff: Caller, at: FakeAfricasTalking
) -> None:
    """A worker killed while talking to the provider leaves the row `sending`; its retry must not resend."""
    from sqlalchemy import update

    from shop_notify.models import NotificationLog

    order = place(shop, catalog, api.customer(phone_number="0712345678"))
    [sent] = eventually(
        lambda: [e for e in log(shop, staff, order=order["order_number"], status="sent") if e["channel"] == "sms"]
    )

    async def crash_mid_send(session: Any) -> None:
        await session.execute(update(NotificationLog).where(NotificationLog.id == sent["id"]).values(status="sending"))
        await session.commit()

    api.run(crash_mid_send)
    queue = shop.app.plugins.get(SAQPlugin).get_queue("notify")
    job = delivery_job(shop.app.plugins.get(NotifyPlugin).settings, sent["id"], suffix=":after-crash")
    shop.blocking_portal.call(queue.enqueue, job)  # what SAQ does when it finds the dead worker's job
    [failed] = eventually(lambda: log(shop, staff, order=order["order_number"], status="failed"))
    assert failed["id"] == sent["id"]
    assert "may have been delivered" in failed["last_error"]
    assert len(at.received) == 1


def test_orders_placed_while_redis_is_down_are_notified_once_it_is_back(
    client: TestClient[Litestar],
    settings: Settings,
    tmp_path: Path,
    catalog: Catalog,
    api: Api,
    at: FakeAfricasTalking,
    smtp: FakeSmtp,
) -> None:
    from app.redis_server import EmbeddedRedis

    own_redis = EmbeddedRedis(tmp_path / "redis")
    own_redis.start()
    app = create_app(
        replace(settings, redis_url=own_redis.url, worker_in_process=True, notify=notify_settings(at, smtp))
    )
    try:
        with TestClient(app) as shop:
            own_redis.stop()
            buyer = api.customer(phone_number="0712345678")
            failed = relayed("notify", "failed")
            order = place(shop, catalog, buyer)  # 201 although Redis is gone
            # the relay handed the order's event to notify, which could not enqueue: it stays pending for notify
            eventually(lambda: relayed("notify", "failed") > failed, timeout=20)
            assert at.received == []
            own_redis.start()
            eventually(lambda: len(at.received) == 1 and len(smtp.received) == 1, timeout=40)
            relay_passes(3)  # several passes later, nothing was handed over or sent again
            assert len(at.received) == 1
            assert len(smtp.received) == 1
            assert order["order_number"] in at.received[0].form["message"]
    finally:
        own_redis.stop()
