"""OWASP API1:2023 Broken object level authorization: one customer never reaches another's objects.

Orders are the only objects a customer owns by id; the profile has no id in its path (it is always the
caller's). Someone else's order answers 404, exactly like an id that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.security.conftest import concrete, is_problem, operations
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog

ORDER_PATHS = "/api/orders/{order_id}"


def _place(client: TestClient[Litestar], buyer: Caller, product: dict[str, Any], **headers: str) -> dict[str, Any]:
    body = {"items": [{"product_id": product["id"], "quantity": 1}]}
    response = client.post("/api/orders/", json=body, headers={**buyer.headers, **headers})
    assert response.status_code in {200, 201}, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture
def two_customers(api: Api) -> tuple[Caller, Caller]:
    return api.customer(), api.customer()


def test_every_order_operation_hides_other_customers_orders(
    client: TestClient[Litestar], catalog: Catalog, two_customers: tuple[Caller, Caller]
) -> None:
    """A sweep over every documented operation on one order: the owner reaches it, the other customer gets
    the same 404 as for an id that does not exist, and the order is unchanged afterwards."""
    alice, mallory = two_customers
    product = catalog.product(stock_quantity=10)
    order = _place(client, alice, product)
    swept = []
    for method, path, _operation in operations(client):
        if not path.startswith(ORDER_PATHS):
            continue
        swept.append(f"{method} {path}")
        body = {"status": "confirmed"} if method in {"POST", "PATCH", "PUT"} else None
        theirs = client.request(method, concrete(path, order_id=str(order["id"])), headers=mallory.headers, json=body)
        missing = client.request(method, concrete(path, order_id="987654321"), headers=mallory.headers, json=body)
        assert theirs.status_code == missing.status_code, (
            f"{method} {path}: {theirs.status_code} vs {missing.status_code}"
        )
        assert theirs.status_code in {403, 404}, f"{method} {path}: {theirs.status_code}"  # 403: staff-only moves
        assert is_problem(theirs)
        # nothing tells an existing order from a missing one but the id the caller sent
        assert theirs.json()["detail"].replace(str(order["id"]), "N") == missing.json()["detail"].replace(
            "987654321", "N"
        )
    assert len(swept) >= 4, swept  # read, cancel, status (POST and PATCH)
    after = client.get(f"/api/orders/{order['id']}/", headers=alice.headers).json()
    assert after["status"] == "pending"
    assert client.get(f"/api/products/{product['id']}/").json()["stock_quantity"] == 9


def test_order_lists_show_only_the_callers_orders(
    client: TestClient[Litestar], catalog: Catalog, two_customers: tuple[Caller, Caller]
) -> None:
    alice, mallory = two_customers
    product = catalog.product(stock_quantity=10)
    mine = {_place(client, alice, product)["id"] for _ in range(3)}
    theirs = {_place(client, mallory, product)["id"]}
    listed = {o["id"] for o in client.get("/api/orders/", headers=alice.headers).json()["results"]}
    assert listed == mine
    # query parameters cannot widen the list to other customers
    for params in ({"customer": mallory.id}, {"user": mallory.id}, {"customer_id": mallory.id}, {"all": "true"}):
        found = client.get("/api/orders/", params=params, headers=alice.headers)
        assert found.status_code in {200, 400}
        if found.status_code == 200:
            assert {o["id"] for o in found.json()["results"]}.isdisjoint(theirs)


def test_an_idempotency_key_never_replays_another_customers_order(
    client: TestClient[Litestar], catalog: Catalog, two_customers: tuple[Caller, Caller]
) -> None:
    """Keys are scoped to the customer: the same key from someone else places their own order."""
    alice, mallory = two_customers
    product = catalog.product(stock_quantity=10)
    first = _place(client, alice, product, **{"Idempotency-Key": "shared-key-1"})
    second = _place(client, mallory, product, **{"Idempotency-Key": "shared-key-1"})
    assert second["id"] != first["id"]
    assert client.get(f"/api/orders/{second['id']}/", headers=mallory.headers).status_code == 200
    assert client.get(f"/api/orders/{first['id']}/", headers=mallory.headers).status_code == 404


def test_the_profile_is_always_the_callers_own(
    client: TestClient[Litestar], two_customers: tuple[Caller, Caller]
) -> None:
    alice, mallory = two_customers
    assert client.get("/api/auth/profile/", headers=mallory.headers).json()["id"] == mallory.id
    # naming another customer's id or username in the body changes nothing of theirs
    changed = client.patch(
        "/api/auth/profile/",
        json={"id": alice.id, "username": alice.username, "first_name": "Mallory"},
        headers=mallory.headers,
    )
    assert changed.status_code in {200, 400}
    assert client.get("/api/auth/profile/", headers=alice.headers).json()["first_name"] != "Mallory"
    assert client.get("/api/auth/profile/", headers=alice.headers).json()["username"] == alice.username
    # there is no id-addressed profile to probe; the staff's customer routes refuse a customer outright
    for path in (f"/api/auth/profile/{alice.id}/", f"/api/users/{alice.id}/"):
        assert client.get(path, headers=mallory.headers).status_code in {404, 405}
    for path in (f"/api/customers/{alice.id}/", f"/api/customers/{mallory.id}/", "/api/customers/"):
        assert client.get(path, headers=mallory.headers).status_code == 403


def test_staff_see_every_order_but_customers_never_see_the_notification_log(
    client: TestClient[Litestar], catalog: Catalog, two_customers: tuple[Caller, Caller], staff: Caller
) -> None:
    alice, mallory = two_customers
    product = catalog.product(stock_quantity=10)
    order = _place(client, alice, product)
    assert client.get(f"/api/orders/{order['id']}/", headers=staff.headers).status_code == 200
    # the notification log names customers' phone numbers and order numbers: staff only
    assert client.get("/api/notifications/", headers=mallory.headers).status_code == 403
