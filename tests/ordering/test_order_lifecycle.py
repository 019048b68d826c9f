"""Reading, listing, cancelling and advancing orders."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import TestClient

from tests.ordering.conftest import Shop
from tests.support.api import Api, Caller
from tests.support.statements import counted

URL = "/api/orders/"


def test_customers_see_only_their_own_orders(client: TestClient[Litestar], shop: Shop, buyer: Caller, api: Api) -> None:
    item = shop.product(stock=10)
    mine = shop.order(buyer, (item, 1)).json()
    other = api.customer()
    theirs = shop.order(other, (item, 1)).json()

    assert [o["id"] for o in client.get(URL, headers=buyer.headers).json()["results"]] == [mine["id"]]
    assert client.get(f"{URL}{theirs['id']}/", headers=buyer.headers).status_code == 404
    assert client.post(f"{URL}{theirs['id']}/cancel/", headers=buyer.headers).status_code == 404
    assert client.get(f"{URL}{theirs['id']}/", headers=other.headers).json()["status"] == "pending"
    assert client.get(f"{URL}424242/", headers=buyer.headers).status_code == 404


def test_cursor_pagination_newest_first(client: TestClient[Litestar], shop: Shop, buyer: Caller) -> None:
    item = shop.product(stock=100)
    ids = [shop.order(buyer, (item, 1)).json()["id"] for _ in range(13)]
    first = client.get(URL, headers=buyer.headers).json()
    assert set(first) == {"next", "previous", "results"}
    assert [o["id"] for o in first["results"]] == ids[::-1][:10]
    assert first["previous"] is None
    assert first["next"].startswith("http://testserver.local/api/orders/?cursor=")
    second = client.get(first["next"], headers=buyer.headers).json()
    assert [o["id"] for o in second["results"]] == ids[::-1][10:]
    assert second["next"] is None
    back = client.get(second["previous"], headers=buyer.headers).json()
    assert [o["id"] for o in back["results"]] == ids[::-1][:10]
    small = client.get(URL, params={"page_size": 4}, headers=buyer.headers).json()
    assert len(small["results"]) == 4
    assert len(client.get(URL, params={"page_size": 1000}, headers=buyer.headers).json()["results"]) == 13
    assert client.get(URL, params={"cursor": "%%%"}, headers=buyer.headers).status_code == 400


def test_staff_see_everyone_and_filter(
    client: TestClient[Litestar], shop: Shop, buyer: Caller, api: Api, staff: Caller
) -> None:
    item = shop.product(stock=10)
    other = api.customer()
    a = shop.order(buyer, (item, 1)).json()
    b = shop.order(other, (item, 1)).json()
    client.post(f"{URL}{b['id']}/status/", json={"status": "confirmed"}, headers=staff.headers)

    everyone = client.get(URL, headers=staff.headers).json()["results"]
    assert [o["id"] for o in everyone] == [b["id"], a["id"]]
    confirmed = client.get(URL, params={"status": "confirmed"}, headers=staff.headers).json()["results"]
    assert [o["id"] for o in confirmed] == [b["id"]]
    by_customer = client.get(URL, params={"customer": buyer.username}, headers=staff.headers).json()["results"]
    assert [o["id"] for o in by_customer] == [a["id"]]
    # customers cannot use the filters to peek at others
    assert [
        o["id"] for o in client.get(URL, params={"customer": other.username}, headers=buyer.headers).json()["results"]
    ] == [a["id"]]
    assert client.get(URL, params={"status": "lost"}, headers=staff.headers).status_code == 400
    # found by fuzzing: the customer filter took any text; it is a username or a 400
    assert client.get(URL, params={"customer": "{'': []}"}, headers=staff.headers).status_code == 400


def test_cancel_gives_the_stock_back_once(client: TestClient[Litestar], shop: Shop, buyer: Caller) -> None:
    a, b = shop.product(stock=10), shop.product(stock=4)
    order = shop.order(buyer, (a, 3), (b, 4)).json()
    assert (shop.stock(a), shop.stock(b)) == (7, 0)

    with counted() as statements:
        cancelled = client.post(f"{URL}{order['id']}/cancel/", headers=buyer.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert (shop.stock(a), shop.stock(b)) == (10, 4)
    # the answer is the order as the cancel left it, built in the unit of work without reading it back
    assert cancelled.json() == client.get(f"{URL}{order['id']}/", headers=buyer.headers).json()
    assert len([s for s in statements if not s.lstrip().upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT"))]) <= 7

    again = client.post(f"{URL}{order['id']}/cancel/", headers=buyer.headers)
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/order-status"
    assert (shop.stock(a), shop.stock(b)) == (10, 4)


def test_lifecycle_moves_one_step_at_a_time(
    client: TestClient[Litestar], shop: Shop, buyer: Caller, staff: Caller
) -> None:
    order = shop.order(buyer, (shop.product(), 1)).json()
    status_url = f"{URL}{order['id']}/status/"
    skip = client.post(status_url, json={"status": "shipped"}, headers=staff.headers)
    assert skip.status_code == 409
    assert "pending" in skip.json()["detail"]
    for step in ("confirmed", "processing"):
        assert client.post(status_url, json={"status": step}, headers=staff.headers).json()["status"] == step
    assert (
        client.patch(f"{URL}{order['id']}/", json={"status": "shipped"}, headers=staff.headers).json()["status"]
        == "shipped"
    )
    assert client.post(f"{URL}{order['id']}/cancel/", headers=buyer.headers).status_code == 409
    assert client.post(status_url, json={"status": "delivered"}, headers=staff.headers).json()["status"] == "delivered"
    assert client.post(status_url, json={"status": "pending"}, headers=staff.headers).status_code == 409
    assert client.post(status_url, json={"status": "delivered"}, headers=staff.headers).status_code == 409
    assert client.post(status_url, json={"status": "teleported"}, headers=staff.headers).status_code == 400
    assert client.post(f"{URL}999999/status/", json={"status": "confirmed"}, headers=staff.headers).status_code == 404


def test_staff_can_cancel_a_confirmed_order(
    client: TestClient[Litestar], shop: Shop, buyer: Caller, staff: Caller
) -> None:
    item = shop.product(stock=2)
    order = shop.order(buyer, (item, 2)).json()
    client.post(f"{URL}{order['id']}/status/", json={"status": "confirmed"}, headers=staff.headers)
    response = client.post(f"{URL}{order['id']}/status/", json={"status": "cancelled"}, headers=staff.headers)
    assert response.json()["status"] == "cancelled"
    assert shop.stock(item) == 2


def test_customers_cannot_change_status(client: TestClient[Litestar], shop: Shop, buyer: Caller) -> None:
    order = shop.order(buyer, (shop.product(), 1)).json()
    assert (
        client.post(f"{URL}{order['id']}/status/", json={"status": "confirmed"}, headers=buyer.headers).status_code
        == 403
    )
    assert client.patch(f"{URL}{order['id']}/", json={"status": "delivered"}, headers=buyer.headers).status_code == 403
    assert client.get(f"{URL}{order['id']}/", headers=buyer.headers).json()["status"] == "pending"


def test_order_history_survives_product_deletion(
    client: TestClient[Litestar], shop: Shop, buyer: Caller, staff: Caller
) -> None:
    item = shop.product(name="Discontinued")
    order = shop.order(buyer, (item, 1)).json()
    assert client.delete(f"/api/products/{item['id']}/", headers=staff.headers).status_code == 204
    assert client.get(f"/api/products/{item['id']}/").status_code == 404
    assert client.get(f"/api/products/{item['id']}/", headers=staff.headers).json()["is_active"] is False
    assert (
        client.get(f"{URL}{order['id']}/", headers=buyer.headers).json()["items"][0]["product"]["name"]
        == "Discontinued"
    )


def test_reading_needs_the_read_scope(client: TestClient[Litestar], api: Api) -> None:
    writer = api.customer(scopes=("write",))
    assert client.get(URL, headers=writer.headers).status_code == 403
    assert client.get(URL).status_code == 401
