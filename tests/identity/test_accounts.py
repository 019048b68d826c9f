"""Living with an account over HTTP: change a password, reset a forgotten one by e-mail link or SMS code.

The messages go through the outbox and the real in-process worker to the SMTP receiver and the Africa's
Talking fake, as order messages do (docs/accounts.md).
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.main import create_app
from app.settings import Settings
from shop_identity import IdentityPlugin
from shop_identity.models import AccountSecret, Customer
from shop_kernel import OutboxMessage
from shop_notify.models import NotificationLog
from tests.identity.oauth import OAuthHarness
from tests.support.api import Api, Caller
from tests.support.fakes import FakeAfricasTalking, FakeSmtp, eventually

NEW_PASSWORD = "#correct-Horse-7-battery"
RESET_ANSWER = {
    "detail": "If an active account has this address, a message with instructions is on its way. "
    "It works for 30 minutes."
}


def parts(email: Any) -> tuple[str, str]:
    """The text and HTML parts of a received e-mail."""
    text, html = email.get_payload()
    return text.get_payload(decode=True).decode(), html.get_payload(decode=True).decode()


def log_rows(api: Api) -> list[NotificationLog]:
    async def rows(session: AsyncSession) -> list[NotificationLog]:
        return list(await session.scalars(select(NotificationLog).order_by(NotificationLog.id)))

    return api.run(rows)


def works(client: TestClient[Litestar], token: str) -> bool:
    status = client.get("/api/auth/profile/", headers={"Authorization": f"Bearer {token}"}).status_code
    assert status in {200, 401}
    return status == 200


def change(client: TestClient[Litestar], caller: Caller, current: str, new: str, **extra: Any) -> Any:
    body = {"current_password": current, "new_password": new, "new_password_confirm": new, **extra}
    return client.post("/api/auth/password/", json=body, headers=caller.headers)


def test_changing_a_password_revokes_every_other_token_and_sends_a_notice(
    shop: TestClient[Litestar], api: Api, smtp: FakeSmtp
) -> None:
    buyer = api.customer(first_name="Achieng", email="achieng@example.com")
    other_device = api.issue_token(buyer.id)
    stranger = api.customer()

    refused = shop.post(
        "/api/auth/password/",
        json={"current_password": "wrong", "new_password": "12345678", "new_password_confirm": "12345679"},
        headers=buyer.headers,
    )
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["errors"] == {
        "current_password": ["Your old password was entered incorrectly. Please enter it again."],
        "new_password_confirm": ["The two password fields didn't match."],
        "new_password": ["This password is too common.", "This password is entirely numeric."],
    }
    assert change(shop, buyer, buyer.password, "achieng@example").json()["errors"] == {
        "new_password": ["The password is too similar to the email address."]
    }
    assert works(shop, other_device)  # nothing changed

    changed = change(shop, buyer, buyer.password, NEW_PASSWORD)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"detail": "Password changed.", "revoked_tokens": 1}
    assert works(shop, buyer.token)
    assert not works(shop, other_device)
    assert works(shop, stranger.token)
    assert change(shop, buyer, buyer.password, NEW_PASSWORD).status_code == 400  # the old one is gone

    eventually(lambda: len(smtp.received) == 1)
    notice = smtp.received[0]
    assert notice["X-Envelope-To"] == "achieng@example.com"
    assert notice["Subject"] == "Your password was changed"
    text, html = parts(notice)
    assert "Hello Achieng," in text
    assert f"The password of your account ({buyer.username}) was changed" in text
    assert "Achieng" in html
    eventually(lambda: [row.status for row in log_rows(api)] == ["sent"])
    row = log_rows(api)[0]
    assert (row.topic, row.channel, row.recipient, row.customer_id) == (
        "message.requested",
        "email",
        "achieng@example.com",
        buyer.id,
    )
    assert row.order_number is None

    # asked to, the change signs out the calling token too
    again = change(shop, buyer, NEW_PASSWORD, NEW_PASSWORD + "!", revoke_current=True)
    assert again.json()["revoked_tokens"] == 1
    assert not works(shop, buyer.token)


def test_a_reset_by_e_mail_link_sets_the_password_once_and_revokes_every_token(
    shop: TestClient[Litestar], api: Api, smtp: FakeSmtp, oauth: OAuthHarness
) -> None:
    buyer = api.customer(username="baraka", first_name="Baraka", last_name="Otieno", email="baraka@example.com")
    tokens = oauth.tokens_for(oauth.register(), buyer)
    # the address is matched case-insensitively; the answer is the one anybody gets
    requested = shop.post("/api/auth/password/reset/", json={"email": "Baraka@Example.com"})
    assert (requested.status_code, requested.json()) == (202, RESET_ANSWER)
    assert shop.post("/api/auth/password/reset/", json={"email": "nobody@example.com"}).json() == RESET_ANSWER

    eventually(lambda: len(smtp.received) == 1)
    email = smtp.received[0]
    assert (email["X-Envelope-To"], email["Subject"]) == ("baraka@example.com", "Reset your password")
    text, html = parts(email)
    found = re.search(r"http://testserver\.local/account/reset-password\?token=([\w-]+)", text)
    assert found, text
    link, token = found.group(0), found.group(1)
    assert f'href="{link}"' in html
    assert "works once, for 30 minutes" in text

    # the secret is in the message only: the log shows a placeholder, the outbox lost it, the table holds a digest
    eventually(lambda: [row.status for row in log_rows(api)] == ["sent"])
    row = log_rows(api)[0]
    assert token not in row.body + (row.html or "")
    assert "[one-time secret]" in row.body
    assert row.secret is None

    async def stored(session: AsyncSession) -> tuple[list[Any], list[str]]:
        outbox = list(await session.scalars(select(OutboxMessage.payload)))
        hashes = list(await session.scalars(select(AccountSecret.secret_hash)))
        return outbox, hashes

    outbox, hashes = api.run(stored)
    assert token not in str(outbox)
    assert len(hashes) == 1
    assert token not in hashes[0]

    # the link opens our page; a weak password is refused without using the link up
    page = shop.get(link.removeprefix("http://testserver.local"))
    assert page.status_code == 200
    assert f'value="{token}"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    weak = {"token": token, "new_password": "password", "new_password_confirm": "password"}
    refused = shop.post("/api/auth/password/reset/confirm/", json=weak)
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"new_password": ["This password is too common."]}

    done = shop.post(
        "/account/reset-password",
        data={"token": token, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )
    assert done.status_code == 200
    assert "Your password has been changed" in done.text
    assert not works(shop, buyer.token)
    assert not works(shop, tokens["access_token"])
    refreshed = oauth.token(oauth.register(), grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 400
    buyer.token = api.issue_token(buyer.id)
    assert change(shop, buyer, NEW_PASSWORD, NEW_PASSWORD + "!").status_code == 200  # the new password is the one

    # used once: the same link is refused, on the API and on the page
    again = shop.post("/api/auth/password/reset/confirm/", json={**weak, "new_password": NEW_PASSWORD})
    assert again.status_code == 400
    assert again.json()["errors"] == {
        "token": ["This password reset link is invalid, expired or already used. Ask for a new one."]
    }
    page_again = shop.post(
        "/account/reset-password",
        data={"token": token, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )
    assert page_again.status_code == 400
    assert "invalid, expired or already used" in page_again.text

    # an expired link is refused
    shop.post("/api/auth/password/reset/", json={"email": "baraka@example.com"})
    eventually(lambda: len(smtp.received) == 4)  # a notice for each change, then the new link
    assert [email["Subject"] for email in smtp.received].count("Your password was changed") == 2
    fresh = re.search(r"token=([\w-]+)", "".join(parts(email)[0] for email in smtp.received[1:]))
    assert fresh

    async def expire(session: AsyncSession) -> None:
        await session.execute(update(AccountSecret).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()

    api.run(expire)
    expired = shop.post("/api/auth/password/reset/confirm/", json={**weak, "token": fresh.group(1)})
    assert expired.status_code == 400
    assert "token" in expired.json()["errors"]


def test_a_reset_by_sms_code_allows_five_tries_and_expires(
    shop: TestClient[Litestar], api: Api, at: FakeAfricasTalking, smtp: FakeSmtp
) -> None:
    buyer = api.customer(phone_number="0712345678")
    extra_token = api.issue_token(buyer.id)
    assert shop.post("/api/auth/password/reset/", json={"phone_number": "+254 712 345678"}).json() == RESET_ANSWER

    eventually(lambda: len(at.received) == 1)
    sms = at.received[0].form
    assert sms["to"] == "+254712345678"
    assert len(sms["message"]) <= 160
    found = re.fullmatch(
        r"(\d{6}) is your password reset code\. It expires in 30 minutes\. Never share it with anyone\.", sms["message"]
    )
    assert found, sms["message"]
    code = found.group(1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    def confirm(given: str, phone: str = "0712345678") -> Any:
        return shop.post(
            "/api/auth/password/reset/confirm/",
            json={
                "phone_number": phone,
                "code": given,
                "new_password": NEW_PASSWORD,
                "new_password_confirm": NEW_PASSWORD,
            },
        )

    assert confirm(code, phone="0722000111").json()["errors"] == {
        "code": ["The code is wrong, expired or already used."]
    }
    for _ in range(4):
        assert confirm(wrong).json()["errors"] == {"code": ["The code is wrong, expired or already used."]}
    assert confirm(wrong).json()["errors"] == {
        "code": ["Too many wrong codes: this one no longer works. Ask for a new one."]
    }
    assert confirm(code).status_code == 400  # the fifth wrong try retired it
    assert works(shop, buyer.token)

    shop.post("/api/auth/password/reset/", json={"phone_number": "0712345678"})
    eventually(lambda: len(at.received) == 2)
    new_code = at.received[1].form["message"][:6]
    done = confirm(new_code)
    assert done.status_code == 200, done.text
    assert not works(shop, buyer.token)
    assert not works(shop, extra_token)
    assert confirm(new_code).status_code == 400  # single use
    eventually(lambda: len(smtp.received) == 1)  # the notice that the password changed
    assert smtp.received[0]["Subject"] == "Your password was changed"

    # a code past its 30 minutes is refused, however right
    shop.post("/api/auth/password/reset/", json={"phone_number": "0712345678"})
    eventually(lambda: len(at.received) == 3)

    async def expire(session: AsyncSession) -> None:
        await session.execute(update(AccountSecret).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()

    api.run(expire)
    assert confirm(at.received[2].form["message"][:6]).status_code == 400
    eventually(lambda: {row.status for row in log_rows(api)} == {"sent"})
    assert all(row.secret is None for row in log_rows(api))


@pytest.mark.backend
def test_a_reset_request_tells_nobody_whether_an_account_exists(client: TestClient[Litestar], api: Api) -> None:
    """Same status, same body and about the same time for addresses with and without an account."""
    counter = client.app.plugins.get(IdentityPlugin).throttle.counter

    async def accounts(session: AsyncSession) -> None:
        for number in range(30):
            session.add(Customer(username=f"user{number}", email=f"user{number}@example.com", password_hash="x"))
        await session.commit()

    api.run(accounts)
    timings: dict[bool, list[float]] = {True: [], False: []}
    answers = set()
    for number in range(30):
        for exists in (True, False):
            email = f"user{number}@example.com" if exists else f"ghost{number}@example.com"
            api.run(lambda _session: counter.forget("reset:address:testclient"))
            started = time.perf_counter()
            response = client.post("/api/auth/password/reset/", json={"email": email})
            timings[exists].append(time.perf_counter() - started)
            answers.add((response.status_code, response.text))
    assert answers == {(202, '{"detail":"' + RESET_ANSWER["detail"] + '"}')}
    difference = abs(statistics.median(timings[True]) - statistics.median(timings[False]))
    assert difference < 0.015, (statistics.median(timings[True]), statistics.median(timings[False]))

    # the per-account limit is silent: the answer stays the same, only the messages stop
    for _ in range(6):
        api.run(lambda _session: counter.forget("reset:address:testclient"))
        assert client.post("/api/auth/password/reset/", json={"email": "user0@example.com"}).status_code == 202

    async def messages(session: AsyncSession) -> int:
        return len(list(await session.scalars(select(AccountSecret.id))))

    assert api.run(messages) == 30 + 4  # user0 got 5 in the window in all; the 6th and 7th asked in vain


def test_an_e_mail_address_is_verified_by_the_link_sent_on_registration_and_on_every_change(
    shop: TestClient[Litestar], api: Api, smtp: FakeSmtp, staff: Caller
) -> None:
    registered = shop.post(
        "/api/auth/register/",
        json={
            "username": "wanjiku",
            "email": "wanjiku@example.com",
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        },
    )
    assert registered.status_code == 201
    assert (registered.json()["is_verified"], registered.json()["email_verified_at"]) == (False, None)
    caller = Caller(id=registered.json()["id"], username="wanjiku", token="", password=NEW_PASSWORD)
    caller.token = api.issue_token(caller.id)

    def link_in(email: Message) -> str:
        found = re.search(r"http://testserver\.local(/account/verify-email\?token=([\w-]+))", parts(email)[0])
        assert found, parts(email)[0]
        return found.group(1)

    eventually(lambda: len(smtp.received) == 1)
    email = smtp.received[0]
    assert (email["X-Envelope-To"], email["Subject"]) == ("wanjiku@example.com", "Confirm your e-mail address")
    assert "Please confirm that wanjiku@example.com is the address of your account (wanjiku)" in parts(email)[0]
    path = link_in(email)
    token = path.split("token=")[1]

    # opening the link changes nothing (mail scanners open links); the page's button does
    page = shop.get(path)
    assert page.status_code == 200
    assert f'value="{token}"' in page.text
    assert shop.get("/api/auth/profile/", headers=caller.headers).json()["is_verified"] is False
    confirmed = shop.post("/account/verify-email", data={"token": token})
    assert (confirmed.status_code, "Your e-mail address is confirmed" in confirmed.text) == (200, True)
    profile = shop.get("/api/auth/profile/", headers=caller.headers).json()
    assert profile["is_verified"] is True
    assert datetime.fromisoformat(profile["email_verified_at"]) > datetime.now(UTC) - timedelta(minutes=1)
    again = shop.post("/api/auth/email/verify/", json={"token": token})
    assert again.status_code == 400
    assert again.json()["errors"] == {
        "token": ["This verification link is invalid, expired or already used. Ask for a new one."]
    }
    assert shop.post("/api/auth/email/verify/resend/", headers=caller.headers).status_code == 409

    # a new address is unverified until its own link is followed; the old address gets nothing more
    changed = shop.patch("/api/auth/profile/", json={"email": "wanjiku@work.example"}, headers=caller.headers)
    assert (changed.json()["email"], changed.json()["is_verified"]) == ("wanjiku@work.example", False)
    eventually(lambda: len(smtp.received) == 2)
    assert smtp.received[1]["X-Envelope-To"] == "wanjiku@work.example"
    first_link = link_in(smtp.received[1])
    assert shop.post("/api/auth/email/verify/resend/", headers=caller.headers).status_code == 202
    eventually(lambda: len(smtp.received) == 3)
    # the resent link retired the one before it
    assert shop.post("/api/auth/email/verify/", json={"token": first_link.split("token=")[1]}).status_code == 400
    verified = shop.post("/api/auth/email/verify/", json={"token": link_in(smtp.received[2]).split("token=")[1]})
    assert verified.json() == {"detail": "Your e-mail address is verified."}
    assert shop.get("/api/auth/profile/", headers=caller.headers).json()["is_verified"] is True
    # editing other fields keeps it
    shop.patch("/api/auth/profile/", json={"first_name": "Wanjiku"}, headers=caller.headers)
    assert shop.get("/api/auth/profile/", headers=caller.headers).json()["is_verified"] is True


@pytest.mark.backend
def test_orders_can_require_a_verified_e_mail_address(
    settings: Settings, client: TestClient[Litestar], api: Api, staff: Caller
) -> None:
    buyer = api.customer()
    order = {"items": [{"product_id": 1, "quantity": 1}]}
    assert client.post("/api/orders/", json=order, headers=buyer.headers).status_code != 403  # off by default
    with TestClient(create_app(replace(settings, require_verified_email_for_orders=True))) as strict:
        refused = strict.post("/api/orders/", json=order, headers=buyer.headers)
        assert refused.status_code == 403
        assert refused.json()["type"] == "/problems/email-not-verified"
        assert strict.post("/api/orders/", json=order, headers=staff.headers).status_code != 403

        async def verify(session: AsyncSession) -> None:
            await session.execute(update(Customer).values(email_verified_at=datetime.now(UTC)))
            await session.commit()

        api.run(verify)
        fresh = api.issue_token(buyer.id)  # a new token: the old one's principal is cached for 5 s
        assert strict.post("/api/orders/", json=order, headers={"Authorization": f"Bearer {fresh}"}).status_code != 403
        assert strict.get("/api/orders/", headers=buyer.headers).status_code == 200
