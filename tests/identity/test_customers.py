"""Staff finding customers, seeing their orders and switching accounts off and on (docs/accounts.md)."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import TestClient

from tests.support.api import Api, Caller
from tests.support.catalog import Catalog


def test_staff_find_customers_see_their_orders_and_switch_accounts_off_and_on(
    client: TestClient[Litestar], api: Api, staff: Caller, catalog: Catalog
) -> None:
    amina = api.customer(username="amina_w", email="amina@kilimo.example", phone_number="0798765432")
    brian = api.customer(username="brian_o", email="brian@example.com", phone_number=None)
    brian_device = api.issue_token(brian.id)
    product = catalog.product(name="Jiko", price="2500.00", stock_quantity=5)
    placed = client.post(
        "/api/orders/", json={"items": [{"product_id": product["id"], "quantity": 2}]}, headers=amina.headers
    ).json()

    everyone = client.get("/api/customers/", headers=staff.headers).json()
    assert everyone["count"] == 3  # staff are accounts too
    assert [row["username"] for row in everyone["results"]] == ["brian_o", "amina_w", staff.username]
    first = everyone["results"][1]
    assert {key: first[key] for key in ("email", "phone_number", "is_active", "is_verified", "is_staff")} == {
        "email": "amina@kilimo.example",
        "phone_number": "+254798765432",
        "is_active": True,
        "is_verified": False,
        "is_staff": False,
    }
    assert "password_hash" not in first

    def found(search: str) -> list[str]:
        response = client.get("/api/customers/", params={"search": search}, headers=staff.headers)
        assert response.status_code == 200
        return [row["username"] for row in response.json()["results"]]

    assert found("AMINA") == ["amina_w"]
    assert found("kilimo.example") == ["amina_w"]
    assert found("0798 765432") == ["amina_w"]  # another notation of the stored number
    assert found("8765432") == ["amina_w"]
    assert found("%") == []  # a wildcard is a character like any other
    paged = client.get("/api/customers/", params={"page_size": 2, "page": 2}, headers=staff.headers).json()
    assert (paged["count"], len(paged["results"]), paged["next"]) == (3, 1, None)
    assert client.get("/api/customers/", params={"page": 3, "page_size": 2}, headers=staff.headers).status_code == 404

    detail = client.get(f"/api/customers/{amina.id}/", headers=staff.headers).json()
    assert detail["orders"]["order_count"] == 1
    assert {key: detail["orders"]["last_order"][key] for key in ("id", "order_number", "status", "total_amount")} == {
        "id": placed["id"],
        "order_number": placed["order_number"],
        "status": "pending",
        "total_amount": "5000.00",
    }
    assert client.get(f"/api/customers/{brian.id}/", headers=staff.headers).json()["orders"] == {
        "order_count": 0,
        "last_order": None,
    }
    assert client.get("/api/customers/999999/", headers=staff.headers).status_code == 404

    # the staff order list takes the customer's id as well as the username
    for key in (str(amina.id), "amina_w"):
        orders = client.get("/api/orders/", params={"customer": key}, headers=staff.headers).json()["results"]
        assert [order["order_number"] for order in orders] == [placed["order_number"]]
    assert client.get("/api/orders/", params={"customer": str(brian.id)}, headers=staff.headers).json()["results"] == []

    # customers never reach these routes
    for path in ("/api/customers/", f"/api/customers/{amina.id}/", f"/api/customers/{brian.id}/"):
        assert client.get(path, headers=amina.headers).status_code == 403
    assert client.post(f"/api/customers/{brian.id}/deactivate/", headers=amina.headers).status_code == 403

    # deactivation signs the account out everywhere at once; its orders stay
    off = client.post(f"/api/customers/{brian.id}/deactivate/", headers=staff.headers)
    assert (off.status_code, off.json()["is_active"]) == (200, False)
    assert client.get("/api/auth/profile/", headers=brian.headers).status_code == 401
    assert client.get("/api/auth/profile/", headers={"Authorization": f"Bearer {brian_device}"}).status_code == 401
    assert client.get("/api/auth/profile/", headers=amina.headers).status_code == 200
    assert client.post(f"/api/customers/{staff.id}/deactivate/", headers=staff.headers).status_code == 409
    read_only = api.staff(scopes=("read",))
    assert client.post(f"/api/customers/{amina.id}/deactivate/", headers=read_only.headers).status_code == 403

    on = client.post(f"/api/customers/{brian.id}/reactivate/", headers=staff.headers)
    assert (on.status_code, on.json()["is_active"]) == (200, True)
    assert client.get("/api/auth/profile/", headers=brian.headers).status_code == 401  # revoked stays revoked
    fresh = api.issue_token(brian.id)
    assert client.get("/api/auth/profile/", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
