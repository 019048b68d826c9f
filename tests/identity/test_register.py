"""POST /api/auth/register/: creating customer accounts."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shop_identity.models import AccountSecret, Customer
from shop_kernel import MESSAGE_REQUESTED, OutboxMessage
from tests.factories import RegisterCustomerFactory
from tests.support.api import Api

URL = "/api/auth/register/"


def payload(**overrides: Any) -> dict[str, Any]:
    return dict(msgspec.to_builtins(RegisterCustomerFactory.build(**overrides)))


def customer_count(api: Api) -> int:
    async def count(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)

    return api.run(count)


def test_register_with_the_readme_example_creates_the_customer(client: TestClient[Litestar], api: Api) -> None:
    body = {
        "username": "john_doe",
        "email": "john@example.com",
        "password": "secure_password123",
        "password_confirm": "secure_password123",
        "first_name": "John",
        "last_name": "Doe",
        "phone_number": "+254712345678",
    }
    response = client.post(URL, json=body)

    assert response.status_code == 201
    created = response.json()
    assert created["username"] == "john_doe"
    assert created["email"] == "john@example.com"
    assert (created["first_name"], created["last_name"]) == ("John", "Doe")
    assert created["phone_number"] == "+254712345678"
    assert created["is_staff"] is False
    assert isinstance(created["id"], int)
    assert not {"password", "password_confirm", "password_hash"} & created.keys()

    stored = api.run(lambda s: s.scalar(select(Customer).where(Customer.id == created["id"])))
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert "secure_password123" not in stored.password_hash


def test_register_answers_without_trailing_slash_too(client: TestClient[Litestar]) -> None:
    assert client.post(URL.rstrip("/"), json=payload()).status_code == 201


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("0712345678", "+254712345678"),
        ("+254 733 123456", "+254733123456"),
        ("254701234567", "+254701234567"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_numbers_are_stored_in_e164(client: TestClient[Litestar], typed: str, stored: str) -> None:
    response = client.post(URL, json=payload(phone_number=typed))
    assert response.status_code == 201, response.text
    assert response.json()["phone_number"] == stored


def test_phone_number_is_optional(client: TestClient[Litestar]) -> None:
    body = payload()
    del body["phone_number"]
    response = client.post(URL, json=body)
    assert response.status_code == 201
    assert response.json()["phone_number"] is None


@pytest.mark.parametrize("phone", ["12", "+254 12", "not a phone", "0712"])
def test_invalid_phone_number_is_rejected(client: TestClient[Litestar], api: Api, phone: str) -> None:
    response = client.post(URL, json=payload(phone_number=phone))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert list(response.json()["errors"]) == ["phone_number"]
    assert customer_count(api) == 0


@pytest.mark.parametrize("email", ["john", "john@", "@example.com", "john@@example.com", "john doe@example.com"])
def test_invalid_email_is_rejected(client: TestClient[Litestar], email: str) -> None:
    response = client.post(URL, json=payload(email=email))
    assert response.status_code == 400
    assert "email" in response.json()["errors"]


def test_duplicate_username_is_rejected_case_insensitively(client: TestClient[Litestar], api: Api) -> None:
    assert client.post(URL, json=payload(username="Mary_W")).status_code == 201
    response = client.post(URL, json=payload(username="mary_w"))
    assert response.status_code == 400
    assert response.json()["errors"] == {"username": ["A user with that username already exists."]}
    assert customer_count(api) == 1


def test_duplicate_email_is_rejected_case_insensitively(client: TestClient[Litestar], api: Api) -> None:
    assert client.post(URL, json=payload(email="mary@example.com")).status_code == 201
    response = client.post(URL, json=payload(email="MARY@Example.com"))
    assert response.status_code == 400
    assert response.json()["errors"] == {"email": ["A user with that email already exists."]}
    assert customer_count(api) == 1


def test_simultaneous_registrations_of_one_name_create_one_account_with_one_verification_link(api: Api) -> None:
    """Each registration checks that the name is free, hashes the password, then writes: sent together, they all
    pass the check before the first one writes, and the losers meet the unique index. A loser answers the check's
    400 and leaves nothing: no account, no link, no message (the account and its link are one transaction)."""
    body = payload()
    answers = api.at_once("POST", URL, [{"json": body}] * 4)
    assert Counter(answer.status_code for answer in answers) == {201: 1, 400: 3}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 400:
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["errors"] == {
                "username": ["A user with that username already exists."],
                "email": ["A user with that email already exists."],
            }
    assert customer_count(api) == 1
    assert len(api.scalars(select(AccountSecret.id))) == 1
    (message,) = api.scalars(select(OutboxMessage.payload).where(OutboxMessage.topic == MESSAGE_REQUESTED))
    assert (message["template"], message["recipient"]) == ("email_verification", body["email"])


def test_password_confirmation_must_match(client: TestClient[Litestar], api: Api) -> None:
    body = payload()
    body["password_confirm"] = body["password"] + "x"
    response = client.post(URL, json=body)
    assert response.status_code == 400
    assert response.json()["errors"] == {"password_confirm": ["The two password fields didn't match."]}
    assert customer_count(api) == 0


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Sh0rt!", "too short"),
        ("83920174650", "entirely numeric"),
        ("password123", "too common"),
        ("Qwerty123", "too common"),
        ("wanjiku-2024!", "too similar"),
    ],
)
def test_weak_passwords_are_rejected(client: TestClient[Litestar], api: Api, password: str, reason: str) -> None:
    response = client.post(URL, json=payload(username="wanjiku", password=password))
    assert response.status_code == 400
    messages = response.json()["errors"]["password"]
    assert any(reason in message for message in messages), messages
    assert customer_count(api) == 0


def test_password_policy_is_djangos(client: TestClient[Litestar], api: Api) -> None:
    """Django's own examples through the endpoint; "newpass123" for "New" passes, as it does in Django."""
    response = client.post(URL, json=payload(username="New", email="new@example.com", password="newpass123"))
    assert response.status_code == 201, response.text
    user = {"username": "testclient", "email": "testclient@example.com", "first_name": "Test", "last_name": "Client"}
    refused = {
        "testclient": ["The password is too similar to the username."],
        "example.com": ["The password is too similar to the email address."],
        "godzilla": ["This password is too common."],
        "1234567": [
            "This password is too short. It must contain at least 8 characters.",
            "This password is too common.",
            "This password is entirely numeric.",
        ],
    }
    for password, messages in refused.items():
        response = client.post(URL, json=payload(**user, password=password))
        assert response.status_code == 400
        assert response.json()["errors"] == {"password": messages}, password
    assert customer_count(api) == 1
    assert client.post(URL, json=payload(**user, password="a-safe-password")).status_code == 201


def test_every_invalid_field_is_reported_at_once(client: TestClient[Litestar]) -> None:
    body = payload(email="nope", phone_number="1", password="12345678")
    body["password_confirm"] = "different"
    response = client.post(URL, json=body)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"email", "phone_number", "password", "password_confirm"}


@pytest.mark.parametrize("missing", ["username", "email", "password", "password_confirm"])
def test_required_fields(client: TestClient[Litestar], missing: str) -> None:
    body = payload()
    del body[missing]
    response = client.post(URL, json=body)
    assert response.status_code == 400
    problem = response.json()
    assert problem["status"] == 400
    assert missing in problem["errors"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("username", "has space"), ("username", "x" * 151), ("username", ""), ("first_name", "y" * 151), ("email", 42)],
)
def test_malformed_fields_are_rejected(client: TestClient[Litestar], field: str, value: Any) -> None:
    response = client.post(URL, json=payload(**{field: value}) if field != "email" else {**payload(), field: value})
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_malformed_json_is_a_problem_document(client: TestClient[Litestar]) -> None:
    response = client.post(URL, content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["title"] == "Bad Request"


def test_staff_flag_cannot_be_self_assigned(client: TestClient[Litestar]) -> None:
    response = client.post(URL, json={**payload(), "is_staff": True})
    assert response.status_code == 201
    assert response.json()["is_staff"] is False
