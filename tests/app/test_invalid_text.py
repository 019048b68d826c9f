"""Text that is not text (issue 18): invalid UTF-8 and control characters are a 400 in every text field.

The probes of the issue, through HTTP, on SQLite and PostgreSQL: invalid UTF-8 answered 500 on SQLite, a NUL
answered 500 on PostgreSQL (which refuses NUL in text) and was stored by SQLite. One kernel rule
(`shop_kernel.text`) now refuses both before a handler runs: 400 problem+json `/problems/invalid-text`, naming
the field. Tab, line feed and carriage return stay allowed. The same probes for every string field of every
documented operation run in tests/app/test_fuzz.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.factories import ProductWriteFactory, RegisterCustomerFactory
from tests.identity.oauth import REDIRECT_URI, OAuthHarness, forms_of, pkce_pair
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog
from tests.support.forms import MULTIPART_CONTENT, encode_multipart

INVALID_TEXT = "/problems/invalid-text"
BAD_BYTES = "@@not-utf-8@@"
"""Stands for invalid UTF-8 in a body built as JSON; replaced by `\\xff\\xfe` once encoded."""
BAD_VALUES = {"NUL": "a\x00b", "ESC": "a\x1bb", "invalid UTF-8": BAD_BYTES}


def encoded(body: Any) -> bytes:
    return msgspec.json.encode(body).replace(BAD_BYTES.encode(), b"a\xff\xfeb")


def assert_invalid_text(response: Any, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["type"] == INVALID_TEXT, problem
    if field is not None:
        assert field in problem["errors"], problem
    return problem


def product(**fields: Any) -> dict[str, Any]:
    return dict(msgspec.to_builtins(ProductWriteFactory.build(**fields)))


def registration(**fields: Any) -> dict[str, Any]:
    return dict(msgspec.to_builtins(RegisterCustomerFactory.build(**fields)))


# (name, who, method, path, field, body with the bad value in `field`); `{category}`, `{product}` are filled in
BODY_PROBES: list[tuple[str, str, str, str, str, Callable[[World, str], Any]]] = [
    ("register first_name", "anonymous", "POST", "/api/auth/register/", "first_name",
     lambda _, v: registration(first_name=v)),
    ("register last_name", "anonymous", "POST", "/api/auth/register/", "last_name",
     lambda _, v: registration(last_name=v)),
    ("register password", "anonymous", "POST", "/api/auth/register/", "password",
     lambda _, v: registration(password=v, password_confirm=v)),
    ("profile PUT", "customer", "PUT", "/api/auth/profile/", "first_name", lambda _, v: {"first_name": v}),
    ("profile PATCH", "customer", "PATCH", "/api/auth/profile/", "last_name", lambda _, v: {"last_name": v}),
    ("category POST", "staff", "POST", "/api/products/categories/", "name", lambda _, v: {"name": v}),
    ("category PATCH", "staff", "PATCH", "/api/products/categories/{category}/", "name", lambda _, v: {"name": v}),
    ("product POST name", "staff", "POST", "/api/products/", "name", lambda _, v: product(name=v)),
    ("product POST description", "staff", "POST", "/api/products/", "description",
     lambda _, v: product(description=v)),
    ("product PATCH name", "staff", "PATCH", "/api/products/{product}/", "name", lambda _, v: {"name": v}),
    ("product PATCH description", "staff", "PATCH", "/api/products/{product}/", "description",
     lambda _, v: {"description": v}),
    ("order notes", "customer", "POST", "/api/orders/", "notes",
     lambda w, v: {"items": [{"product_id": w.product["id"], "quantity": 1}], "notes": v}),
    ("OAuth client name", "staff", "POST", "/api/oauth/clients/", "name",
     lambda _, v: {"name": v, "redirect_uris": [REDIRECT_URI]}),
]  # fmt: skip


class World:
    """A category, a product and one caller of each kind, the same on both databases."""

    def __init__(self, client: TestClient[Litestar], api: Api, staff: Caller, catalog: Catalog) -> None:
        self.client = client
        self.category = catalog.category("Phones")
        self.product = catalog.product(self.category, stock_quantity=5)
        self.customer = api.customer()
        self.headers = {"anonymous": {}, "customer": self.customer.headers, "staff": staff.headers}

    def fill(self, text: str) -> str:
        return text.replace("{category}", str(self.category["id"])).replace("{product}", str(self.product["id"]))

    def send(self, who: str, method: str, path: str, body: bytes, content_type: str = "application/json") -> Any:
        headers = {**self.headers[who], "Content-Type": content_type}
        return self.client.request(method, self.fill(path), content=body, headers=headers)


@pytest.fixture
def world(client: TestClient[Litestar], api: Api, staff: Caller, catalog: Catalog) -> World:
    return World(client, api, staff, catalog)


def test_the_issues_body_probes_are_400_and_write_nothing(world: World, staff: Caller) -> None:
    client = world.client
    profile_before = client.get("/api/auth/profile/", headers=world.customer.headers).json()
    for name, who, method, path, field, body in BODY_PROBES:
        for kind, bad in BAD_VALUES.items():
            response = world.send(who, method, path, encoded(body(world, bad)))
            problem = assert_invalid_text(response)
            if kind == "invalid UTF-8":
                assert problem["detail"] == "The request body is not valid UTF-8.", (name, problem)
            else:
                assert problem["detail"] == "The request body contains control characters.", (name, problem)
                code = f"U+{ord(bad[1]):04X}"
                assert code in problem["errors"][field][0], (name, kind, problem)
    assert client.get("/api/auth/profile/", headers=world.customer.headers).json() == profile_before
    assert client.get("/api/products/", headers=staff.headers).json()["count"] == 1
    assert client.get("/api/products/categories/", headers=staff.headers).json()["count"] == 1
    assert client.get(f"/api/products/{world.product['id']}/").json()["name"] == world.product["name"]
    assert client.get("/api/orders/", headers=staff.headers).json()["results"] == []
    assert client.get("/api/oauth/clients/", headers=staff.headers).json() == []


def test_the_bulk_upload_names_the_row_in_json_and_the_line_in_csv(world: World, staff: Caller) -> None:
    rows = [product(), product(name="a\x00b")]
    problem = assert_invalid_text(world.send("staff", "POST", "/api/products/bulk_upload/", encoded(rows)))
    assert [row["index"] for row in problem["errors"]] == [1]
    assert "U+0000" in problem["errors"][0]["errors"]["name"][0]

    bad_utf8 = encoded([product(name=BAD_BYTES)])
    assert_invalid_text(world.send("staff", "POST", "/api/products/bulk_upload/", bad_utf8))

    csv = b"name,price,sku\nLamp,12.50,L-1\nDe\x00sk,99.00,D-1\n"
    problem = assert_invalid_text(world.send("staff", "POST", "/api/products/bulk_upload/", csv, "text/csv"))
    assert problem["errors"]["non_field_errors"][0].startswith("Line 3: Contains the control character U+0000")

    csv = b"name,price,sku\nL\xe4mp,12.50,L-1\n"  # latin-1, not UTF-8
    problem = assert_invalid_text(world.send("staff", "POST", "/api/products/bulk_upload/", csv, "application/csv"))
    assert problem["errors"] == {"non_field_errors": ["Not valid UTF-8 (line 2)."]}
    assert world.client.get("/api/products/", headers=staff.headers).json()["count"] == 1


@pytest.mark.parametrize(
    ("who", "path", "parameter"),
    [
        ("anonymous", "/api/products/?search={bad}", "search"),
        ("anonymous", "/api/products/categories/{category}/products/?search={bad}", "search"),
        ("staff", "/api/notifications/?order={bad}", "order"),
        ("staff", "/api/orders/?customer={bad}", "customer"),
        ("staff", "/api/orders/?cursor={bad}", "cursor"),
    ],
)
def test_the_issues_query_probes_are_400(world: World, who: str, path: str, parameter: str) -> None:
    for bad in ("a%00b", "a%1Bb", "a%FFb", "a%C3b"):
        response = world.client.get(world.fill(path).replace("{bad}", bad), headers=world.headers[who])
        problem = assert_invalid_text(response, parameter)
        assert problem["detail"] == "The query string is not valid text."


def test_path_parameters_and_paths_are_checked_too(world: World) -> None:
    problem = assert_invalid_text(world.send("staff", "POST", "/api/oauth/clients/a%00b/disable/", b""), "client_id")
    assert "U+0000" in problem["errors"]["client_id"][0]
    assert_invalid_text(world.send("staff", "POST", "/api/oauth/clients/a%FFb/disable/", b""))


def test_tab_line_breaks_and_escaped_backslashes_are_text(world: World) -> None:
    notes = "Leave it at the door.\r\nRing twice,\tthen wait."
    order = world.send(
        "customer",
        "POST",
        "/api/orders/",
        encoded({"items": [{"product_id": world.product["id"], "quantity": 1}], "notes": notes}),
    )
    assert order.status_code == 201, order.text
    read = world.client.get(f"/api/orders/{order.json()['id']}/", headers=world.customer.headers)
    assert read.json()["notes"] == notes
    # a backslash followed by b, f or u0000 is text, not an escape, once the backslash is escaped itself
    description = r"Drivers in C:\bin\files; write \u0000 for NUL. Café"
    body = msgspec.json.encode(product(description=description)).replace("é".encode(), rb"\u00e9")
    created = world.send("staff", "POST", "/api/products/", body)
    assert created.status_code == 201, created.text
    assert created.json()["description"] == description


def test_field_names_and_nested_values_are_checked(world: World) -> None:
    body = b'{"name": "ok", "a\\u0000": 1}'
    problem = assert_invalid_text(world.send("staff", "POST", "/api/products/categories/", body))
    assert problem["errors"] == {"non_field_errors": ["A field name contains the control character U+0000."]}
    client = {"name": "App", "redirect_uris": [REDIRECT_URI, "https://app.example/c\u0007b"]}
    problem = assert_invalid_text(world.send("staff", "POST", "/api/oauth/clients/", encoded(client)), "redirect_uris")
    assert problem["errors"]["redirect_uris"] == [
        "Contains the control character U+0007 at [1]; only tab, line feed and carriage return are allowed."
    ]


def test_forms_are_checked_as_json_is_and_json_in_another_type_is_not_read(world: World) -> None:
    """A JSON operation reads forms too (issue 14): their fields follow the same rule. JSON labelled with another
    type (Litestar used to decode it anyway) is 415, never read."""
    url = "/api/products/categories/"
    for content_type, body in (
        ("application/x-www-form-urlencoded", b"name=a%00b"),
        ("application/x-www-form-urlencoded", b"name=a%FFb"),
        (MULTIPART_CONTENT, encode_multipart({"name": "a\x1bb"})),
        (MULTIPART_CONTENT, encode_multipart({"name": b"a\xff\xfeb"})),
    ):
        assert_invalid_text(world.send("staff", "POST", url, body, content_type), None)
    # a JSON value inside a form is checked once decoded (`\u0000` is no control character until then)
    order = encode_multipart({"items": ['{"product_id": 1, "quantity": 1, "x": "a\\u0000b"}']})
    assert_invalid_text(world.send("customer", "POST", "/api/orders/", order, MULTIPART_CONTENT), "items")
    for content_type in ("text/plain", "application/octet-stream", ""):
        response = world.send("staff", "POST", url, b'{"name":"a\\u0000b"}', content_type)
        assert response.status_code == 415, response.text
        assert response.json()["type"] == "/problems/unsupported-media-type"
    assert world.client.get(url).json()["count"] == 1


def test_oauth_endpoints_answer_in_their_own_shape(oauth: OAuthHarness, api: Api) -> None:
    client = oauth.register(public=False, grant_types=["client_credentials"], scopes=["read"])
    token = oauth.token(client, grant_type="client_credentials", scope="read\x00")
    assert token.status_code == 400
    assert token.headers["content-type"].startswith("application/json")
    assert token.json()["error"] == "invalid_request"

    page = oauth.client.get(oauth.authorize_url(client["client_id"], state="st\x00"))
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "invalid_request" in page.text

    public = oauth.register()
    _, challenge = pkce_pair()
    sign_in_page = oauth.client.get(oauth.authorize_url(public["client_id"], scope="read", challenge=challenge))
    assert sign_in_page.status_code == 200, sign_in_page.text
    form = forms_of(sign_in_page.text)[0]
    user = api.customer()
    answer = oauth.client.post(
        form.action, data={**form.fields, "username": user.username + "\x00", "password": user.password}
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "invalid_request" in answer.text
