"""GET/PUT/PATCH /api/auth/profile/: the caller's own account."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from shop_identity.models import AccountSecret
from shop_kernel import MESSAGE_REQUESTED, OutboxMessage
from tests.support.api import Api

URL = "/api/auth/profile/"


def test_profile_shows_the_callers_account(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer(phone_number="0712345678")
    api.customer()  # someone else
    response = client.get(URL, headers=me.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == me.id
    assert body["username"] == me.username
    assert body["phone_number"] == "+254712345678"
    assert "password_hash" not in body


def test_put_with_the_readme_example_changes_only_the_given_fields(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer()
    response = client.put(URL, headers=me.headers, json={"first_name": "John Updated", "phone_number": "+254700123456"})
    assert response.status_code == 200
    body = response.json()
    assert body["first_name"] == "John Updated"
    assert body["phone_number"] == "+254700123456"
    assert body["last_name"] == me.profile["last_name"]
    assert body["email"] == me.profile["email"]
    assert client.get(URL, headers=me.headers).json() == body


def test_patch_changes_email_and_clears_phone(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer()
    response = client.patch(URL, headers=me.headers, json={"email": "New.Address@Example.com", "phone_number": None})
    assert response.status_code == 200
    assert response.json()["email"] == "New.Address@example.com"
    assert response.json()["phone_number"] is None


def test_staff_flag_username_and_password_cannot_be_changed(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer()
    response = client.put(
        URL,
        headers=me.headers,
        json={"is_staff": True, "username": "root", "password": "x", "id": 999, "last_name": "Kamau"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["is_staff"] is False
    assert body["username"] == me.username
    assert body["id"] == me.id
    assert body["last_name"] == "Kamau"


def test_email_taken_by_someone_else_is_rejected_and_nothing_changes(client: TestClient[Litestar], api: Api) -> None:
    other = api.customer()
    me = api.customer()
    response = client.patch(URL, headers=me.headers, json={"email": other.profile["email"].upper(), "first_name": "Z"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"email": ["A user with that email already exists."]}
    assert client.get(URL, headers=me.headers).json()["first_name"] == me.profile["first_name"]


def test_of_two_customers_taking_one_new_address_at_once_the_loser_changes_nothing(
    client: TestClient[Litestar], api: Api
) -> None:
    """The loser passes the uniqueness check and meets the unique index when it writes (or sees the winner's
    commit): either way a 400, its other fields unchanged and no verification link for it."""
    first, second = api.customer(), api.customer()
    change = {"email": "shared@example.com", "first_name": "Winner"}
    answers = api.at_once("PATCH", URL, [{"json": change, "headers": caller.headers} for caller in (first, second)])
    assert sorted(answer.status_code for answer in answers) == [200, 400], [a.text for a in answers]
    (lost,) = [answer for answer in answers if answer.status_code == 400]
    assert lost.json()["errors"] == {"email": ["A user with that email already exists."]}
    loser = first if answers[0] is lost else second
    assert client.get(URL, headers=loser.headers).json() == loser.profile
    assert len(api.scalars(select(AccountSecret.id))) == 1
    (message,) = api.scalars(select(OutboxMessage.payload).where(OutboxMessage.topic == MESSAGE_REQUESTED))
    assert (message["template"], message["recipient"]) == ("email_verification", "shared@example.com")


def test_invalid_phone_on_update_is_rejected(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer()
    response = client.patch(URL, headers=me.headers, json={"phone_number": "123"})
    assert response.status_code == 400
    assert "phone_number" in response.json()["errors"]
    assert client.get(URL, headers=me.headers).json()["phone_number"] == me.profile["phone_number"]


def test_reading_needs_the_read_scope(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer(scopes=("write",))
    response = client.get(URL, headers=me.headers)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert response.headers["content-type"].startswith("application/problem+json")


def test_updating_needs_the_write_scope(client: TestClient[Litestar], api: Api) -> None:
    me = api.customer(scopes=("read",))
    assert client.get(URL, headers=me.headers).status_code == 200
    response = client.patch(URL, headers=me.headers, json={"first_name": "Nope"})
    assert response.status_code == 403
    assert response.json()["detail"] == "The access token lacks the required scope: write."


def test_service_clients_have_no_profile(client: TestClient[Litestar], api: Api) -> None:
    token = api.issue_token(None, ("read", "write"), client_id="warehouse-sync")
    response = client.get(URL, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


def test_anonymous_callers_are_challenged(client: TestClient[Litestar]) -> None:
    response = client.get(URL)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
