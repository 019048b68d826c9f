"""A person's data over HTTP: the export holds everything about them and nothing of anybody else; closing the
account leaves nothing personal in any table and keeps the orders for accounting (docs/accounts.md)."""

from __future__ import annotations

import re

from advanced_alchemy.base import metadata_registry
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.identity.test_accounts import parts
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog
from tests.support.fakes import FakeAfricasTalking, FakeSmtp, eventually


def every_row(api: Api) -> str:
    """Every value of every table, as one text."""

    async def dump(session: AsyncSession) -> str:
        rows = []
        for table in metadata_registry.get(None).sorted_tables:
            rows += [f"{table.name}: {tuple(row)}" for row in (await session.execute(select(table))).all()]
        return "\n".join(rows)

    return api.run(dump)


def test_the_export_holds_the_callers_data_and_closing_the_account_erases_it(
    shop: TestClient[Litestar], api: Api, staff: Caller, catalog: Catalog, at: FakeAfricasTalking, smtp: FakeSmtp
) -> None:
    zawadi = api.customer(
        username="zawadi_w", email="zawadi@kilimo.example", first_name="Zawadi", last_name="Wanjiru",
        phone_number="0798765432",
    )  # fmt: skip
    other = api.customer(username="otieno_k", first_name="Otieno", phone_number=None)
    product = catalog.product(name="Jiko", price="2500.00", stock_quantity=5)
    order = {"items": [{"product_id": product["id"], "quantity": 1}], "notes": "Call Zawadi at the gate"}
    mine = shop.post("/api/orders/", json=order, headers=zawadi.headers).json()
    theirs = shop.post("/api/orders/", json={**order, "notes": "Otieno's"}, headers=other.headers).json()
    shop.post("/api/auth/password/reset/", json={"phone_number": "0798765432"})
    shop.post("/api/auth/password/reset/", json={"email": "zawadi@kilimo.example"})
    eventually(lambda: len(at.received) == 2 and len(smtp.received) == 3)  # her SMS, reset SMS; 2 orders + reset link

    export = shop.get("/api/auth/me/export/", headers=zawadi.headers)
    assert export.status_code == 200
    assert export.headers["content-disposition"] == 'attachment; filename="my-data.json"'
    document = export.json()
    assert document["profile"]["username"] == "zawadi_w"
    assert document["profile"]["phone_number"] == "+254798765432"
    assert [o["order_number"] for o in document["orders"]] == [mine["order_number"]]
    assert document["orders"][0]["items"][0]["product_name"] == "Jiko"
    assert document["orders"][0]["notes"] == "Call Zawadi at the gate"
    sent = {(n["channel"], n["recipient"], n["topic"]) for n in document["notifications"]}
    assert ("sms", "+254798765432", "order.placed") in sent
    assert ("email", "zawadi@kilimo.example", "message.requested") in sent
    assert [m["purpose"] for m in document["account_messages"]] == ["password_reset", "password_reset"]
    assert len(document["oauth"]["tokens"]) == 1
    assert set(document["oauth"]["tokens"][0]) == {
        "client_id", "scope", "issued_at", "expires_at", "revoked_at", "has_refresh_token", "refresh_expires_at",
        "refresh_used_at",
    }  # fmt: skip
    text = export.text
    # the worker sends the order e-mails and the reset link in parallel: in whichever order they arrive
    (reset_email,) = [email for email in smtp.received if email["Subject"] == "Reset your password"]
    found = re.search(r"token=([\w-]+)", parts(reset_email)[0])
    assert found
    for secret_or_other in (zawadi.token, found.group(1), "hash", theirs["order_number"], "tieno"):
        assert secret_or_other not in text, secret_or_other
    assert "[one-time secret]" in text  # the reset messages are listed, without their secrets

    # closing the account needs the password
    wrong = shop.request("DELETE", "/api/auth/me/", json={"password": "nope"}, headers=zawadi.headers)
    assert (wrong.status_code, wrong.json()["errors"]) == (400, {"password": ["Wrong password."]})
    closed = shop.request("DELETE", "/api/auth/me/", json={"password": zawadi.password}, headers=zawadi.headers)
    assert closed.status_code == 204
    assert shop.get("/api/auth/profile/", headers=zawadi.headers).status_code == 401

    everything = every_row(api)
    for personal in ("zawadi", "Zawadi", "Wanjiru", "kilimo", "798765432", "Call Zawadi", zawadi.password):
        assert personal not in everything, personal
    assert "Otieno" in everything  # somebody else's data stays

    # the orders stay for accounting, as the deleted customer's
    kept = shop.get(f"/api/orders/{mine['id']}/", headers=staff.headers).json()
    assert (kept["total_amount"], kept["order_number"]) == ("2500.00", mine["order_number"])
    assert kept["customer"] == f"deleted:{zawadi.id}"
    account = shop.get(f"/api/customers/{zawadi.id}/", headers=staff.headers).json()
    assert (account["username"], account["is_active"], account["orders"]["order_count"]) == (
        f"deleted:{zawadi.id}",
        False,
        1,
    )
    assert shop.post("/api/auth/password/reset/", json={"phone_number": "0798765432"}).status_code == 202
    assert len(at.received) == 2  # nobody to send to any more
