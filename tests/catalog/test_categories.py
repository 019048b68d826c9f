"""/api/products/categories/: the unlimited-depth category tree."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import TestClient

from tests.support.api import Api, Caller
from tests.support.catalog import Catalog

URL = "/api/products/categories/"


def test_create_category_with_the_readme_example(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    electronics = catalog.category("Electronics")
    response = client.post(URL, json={"name": "Laptops", "parent": electronics["id"]}, headers=staff.headers)
    assert response.status_code == 201
    laptops = response.json()
    assert laptops["parent"] == electronics["id"]
    assert laptops["full_path"] == "Electronics > Laptops"
    assert laptops["children"] == []
    assert {"id", "name", "parent", "children", "full_path", "created_at", "updated_at"} == set(laptops)


def test_list_nests_the_whole_subtree_with_paths(client: TestClient[Litestar], catalog: Catalog) -> None:
    electronics = catalog.category("Electronics")
    phones = catalog.category("Smartphones", electronics)
    catalog.category("Android", phones)
    catalog.category("Books")

    body = client.get(URL).json()
    assert body["count"] == 4
    assert [c["name"] for c in body["results"]] == ["Android", "Books", "Electronics", "Smartphones"]
    tree = next(c for c in body["results"] if c["name"] == "Electronics")
    assert tree["full_path"] == "Electronics"
    assert tree["parent"] is None
    [child] = tree["children"]
    assert (child["name"], child["parent"], child["full_path"]) == (
        "Smartphones",
        electronics["id"],
        "Electronics > Smartphones",
    )
    [grandchild] = child["children"]
    assert grandchild["full_path"] == "Electronics > Smartphones > Android"
    assert grandchild["children"] == []


def test_list_filters_roots_and_children_of_a_parent(client: TestClient[Litestar], catalog: Catalog) -> None:
    home = catalog.category("Home")
    catalog.category("Kitchen", home)
    catalog.category("Garden", home)
    catalog.category("Toys")
    roots = client.get(URL, params={"root": "true"}).json()
    assert [c["name"] for c in roots["results"]] == ["Home", "Toys"]
    children = client.get(URL, params={"parent": home["id"]}).json()
    assert [c["name"] for c in children["results"]] == ["Garden", "Kitchen"]


def test_list_pages_ten_by_default_and_caps_at_fifty(client: TestClient[Litestar], catalog: Catalog) -> None:
    for number in range(12):
        catalog.category(f"Category {number:02d}")
    first = client.get(URL).json()
    assert (first["count"], first["page_size"], len(first["results"]), first["total_pages"]) == (12, 10, 10, 2)
    assert first["next"] == "http://testserver.local/api/products/categories/?page=2"
    assert first["previous"] is None
    second = client.get(first["next"]).json()
    assert [c["name"] for c in second["results"]] == ["Category 10", "Category 11"]
    assert client.get(URL, params={"page_size": 500}).json()["page_size"] == 50


def test_get_one_category(client: TestClient[Litestar], catalog: Catalog) -> None:
    root = catalog.category("Garden")
    catalog.category("Tools", root)
    body = client.get(f"{URL}{root['id']}/").json()
    assert body["name"] == "Garden"
    assert [c["name"] for c in body["children"]] == ["Tools"]
    assert client.get(f"{URL}999999/").status_code == 404


def test_rename_and_move(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    a = catalog.category("A")
    b = catalog.category("B")
    child = catalog.category("Child", a)
    moved = client.patch(f"{URL}{child['id']}/", json={"parent": b["id"]}, headers=staff.headers)
    assert moved.status_code == 200
    assert moved.json()["full_path"] == "B > Child"
    renamed = client.put(f"{URL}{b['id']}/", json={"name": "Bee"}, headers=staff.headers)
    assert renamed.json()["full_path"] == "Bee"
    assert renamed.json()["children"][0]["full_path"] == "Bee > Child"
    to_root = client.patch(f"{URL}{child['id']}/", json={"parent": None}, headers=staff.headers)
    assert to_root.json()["full_path"] == "Child"


def test_a_category_cannot_become_its_own_ancestor(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    top = catalog.category("Top")
    middle = catalog.category("Middle", top)
    bottom = catalog.category("Bottom", middle)
    for new_parent in (top, bottom):
        response = client.patch(f"{URL}{top['id']}/", json={"parent": new_parent["id"]}, headers=staff.headers)
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/category-cycle"
    assert client.get(f"{URL}{top['id']}/").json()["parent"] is None


def test_unknown_parent_is_400(client: TestClient[Litestar], staff: Caller) -> None:
    response = client.post(URL, json={"name": "Orphan", "parent": 424242}, headers=staff.headers)
    assert response.status_code == 400
    assert response.json()["errors"] == {"parent": ['Invalid pk "424242" - object does not exist.']}


def test_name_is_required_and_bounded(client: TestClient[Litestar], staff: Caller) -> None:
    assert "name" in client.post(URL, json={}, headers=staff.headers).json()["errors"]
    assert client.post(URL, json={"name": ""}, headers=staff.headers).status_code == 400
    assert client.post(URL, json={"name": "x" * 101}, headers=staff.headers).status_code == 400


def test_deleting_a_non_empty_category_needs_cascade(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    root = catalog.category("Root")
    child = catalog.category("Child", root)
    grandchild = catalog.category("Grandchild", child)
    product = catalog.product(grandchild)

    refused = client.delete(f"{URL}{root['id']}/", headers=staff.headers)
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/category-not-empty"
    assert client.delete(f"{URL}{grandchild['id']}/", headers=staff.headers).status_code == 409

    assert client.delete(f"{URL}{root['id']}/?cascade=true", headers=staff.headers).status_code == 204
    for category in (root, child, grandchild):
        assert client.get(f"{URL}{category['id']}/").status_code == 404
    kept = client.get(f"/api/products/{product['id']}/").json()
    assert kept["categories"] == []


def test_deleting_an_empty_category(client: TestClient[Litestar], catalog: Catalog, staff: Caller) -> None:
    leaf = catalog.category("Leaf")
    assert client.delete(f"{URL}{leaf['id']}/", headers=staff.headers).status_code == 204
    assert client.delete(f"{URL}{leaf['id']}/", headers=staff.headers).status_code == 404


def test_category_writes_need_staff_with_write_scope(client: TestClient[Litestar], catalog: Catalog, api: Api) -> None:
    existing = catalog.category("Existing")
    customer = api.customer()
    read_only_staff = api.staff(scopes=("read",))
    assert client.post(URL, json={"name": "X"}).status_code == 401
    assert client.post(URL, json={"name": "X"}, headers=customer.headers).status_code == 403
    assert client.post(URL, json={"name": "X"}, headers=read_only_staff.headers).status_code == 403
    assert client.patch(f"{URL}{existing['id']}/", json={"name": "Y"}, headers=customer.headers).status_code == 403
    assert client.delete(f"{URL}{existing['id']}/", headers=customer.headers).status_code == 403
    assert client.get(URL).json()["count"] == 1


def test_updating_an_unknown_category_is_404(client: TestClient[Litestar], staff: Caller) -> None:
    assert client.patch(f"{URL}31337/", json={"name": "Y"}, headers=staff.headers).status_code == 404
