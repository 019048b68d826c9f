"""What the OpenAPI document promises a generated client: operation names, and the constraints validation enforces."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from shop_identity.oauth.clients import GRANT_TYPES
from shop_identity.oauth.server import SCOPES
from shop_ordering import OrderingSettings
from tests.identity.oauth import REDIRECT_URI, OAuthHarness
from tests.support.api import Api
from tests.support.catalog import Catalog

pytestmark = pytest.mark.backend  # the document, and the code generated from it, do not depend on the database

OPERATION_ID = re.compile(r"[a-z][a-zA-Z]{2,31}")
"""camelCase, letters only, at most 32 characters: `listProducts`, `getToken`."""


@pytest.fixture
def document(client: TestClient[Litestar]) -> dict[str, Any]:
    return dict(client.get("/schema/openapi.json").json())


def test_every_operation_has_a_short_unique_camel_case_operation_id(document: dict[str, Any]) -> None:
    ids = [operation.get("operationId", "") for item in document["paths"].values() for operation in item.values()]
    assert len(ids) >= 44
    assert [i for i in ids if not OPERATION_ID.fullmatch(i)] == []
    assert len(set(ids)) == len(ids)
    assert {
        "listProducts",
        "getProduct",
        "createProduct",
        "updateProduct",
        "deleteProduct",
        "bulkUploadProducts",
    } <= set(ids)
    assert {"getAveragePrice", "listCategories", "createOrder", "listOrders", "registerCustomer", "getToken"} <= set(
        ids
    )
    assert document["paths"]["/api/auth/profile"]["get"]["operationId"] == "getProfile"
    assert document["paths"]["/api/auth/profile"]["patch"]["operationId"] == "updateProfile"


def test_the_document_states_the_constraints_registration_enforces(
    document: dict[str, Any], client: TestClient[Litestar], api: Api
) -> None:
    schemas = document["components"]["schemas"]
    password = schemas["RegisterCustomer"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (8, 128)
    registration = schemas["ClientRegistration"]["properties"]
    for field, values in (("grant_types", GRANT_TYPES), ("scopes", tuple(SCOPES))):
        assert registration[field]["minItems"] == 1
        assert registration[field]["items"]["enum"] == list(values)
    assert registration["redirect_uris"]["items"]["maxLength"] == 2000
    # ...and they are enforced: just under each bound is refused, the bound itself is not refused for it.
    form = {"username": "shopper", "email": "shopper@example.com", "first_name": "", "last_name": ""}
    short = client.post("/api/auth/register/", json={**form, "password": "Zq7!xk2", "password_confirm": "Zq7!xk2"})
    assert short.status_code == 400
    assert "password" in short.json()["errors"]
    assert client.post("/api/auth/register/", json={**form, "password": "Zq7!xk2m", "password_confirm": "Zq7!xk2m"}
                       ).status_code == 201  # fmt: skip
    staff = api.staff()
    for field in ("grant_types", "scopes"):
        body = {"name": "App", "public": True, "redirect_uris": ["https://app.example/cb"], field: []}
        refused = client.post("/api/oauth/clients/", json=body, headers=staff.headers)
        assert refused.status_code == 400
        assert field in refused.json()["errors"]
    unknown = {"name": "App", "redirect_uris": ["https://app.example/cb"], "scopes": ["read", "admin"]}
    assert "scopes" in client.post("/api/oauth/clients/", json=unknown, headers=staff.headers).json()["errors"]


def test_the_oauth_endpoints_document_their_forms_and_answers(document: dict[str, Any]) -> None:
    paths = document["paths"]
    authorize = {p["name"]: p for p in paths["/oauth/authorize"]["get"]["parameters"]}
    assert {"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge"} <= set(authorize)
    assert authorize["response_type"]["required"] is True
    assert authorize["response_type"]["schema"]["enum"] == ["code"]
    assert authorize["code_challenge_method"]["schema"]["enum"] == ["S256"]
    assert "Location" in paths["/oauth/authorize"]["get"]["responses"]["302"]["headers"]
    components = document["components"]["schemas"]

    def named(schema: dict[str, Any]) -> dict[str, Any]:
        return dict(components[schema["$ref"].rsplit("/", 1)[-1]])

    forms = {
        path: named(paths[path]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"])
        for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect")
    }
    assert [form["title"] for form in forms.values()] == ["TokenRequest", "RevocationRequest", "IntrospectionRequest"]
    token = forms["/oauth/token"]
    assert token["required"] == ["grant_type"]
    assert token["properties"]["grant_type"]["enum"] == list(GRANT_TYPES)
    assert {"code", "redirect_uri", "code_verifier", "refresh_token", "scope", "client_id", "client_secret"} <= set(
        token["properties"]
    )
    for path in ("/oauth/revoke", "/oauth/introspect"):
        assert forms[path]["required"] == ["token"]
        assert forms[path]["properties"]["token_type_hint"]["enum"] == ["access_token", "refresh_token"]

    def answer(path: str, status: str) -> dict[str, Any]:
        return named(paths[path]["post"]["responses"][status]["content"]["application/json"]["schema"])

    assert answer("/oauth/token", "200")["required"] == ["access_token", "token_type", "expires_in"]
    assert {"refresh_token", "scope", "id_token"} <= set(answer("/oauth/token", "200")["properties"])
    assert answer("/oauth/introspect", "200")["required"] == ["active"]
    assert answer("/oauth/revoke", "200")["maxProperties"] == 0
    for path in forms:
        assert answer(path, "400")["required"] == ["error"]  # RFC 6749 5.2
        assert answer(path, "401")["required"] == ["error"]


def test_an_oauth_parameter_name_an_error_cannot_repeat_is_invalid_request(https: TestClient[Litestar]) -> None:
    """Found by schemathesis once the forms were documented: a name outside visible ASCII was echoed into the error
    description, which authlib refuses to build (500)."""
    for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
        for name in ("ü", 'a"b', "a\\b"):
            answer = https.post(path, data={name: "1", "token": "t", "grant_type": "client_credentials"})
            assert answer.status_code == 400, (path, name, answer.text)
            assert answer.json() == {
                "error": "invalid_request",
                "error_description": "A parameter name contains characters that are not allowed.",
            }


def test_the_document_states_the_configured_quantity_limit(
    document: dict[str, Any], client: TestClient[Litestar], api: Api, catalog: Catalog
) -> None:
    quantity = document["components"]["schemas"]["OrderLineIn"]["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == (1, OrderingSettings().max_quantity_per_line)
    product = catalog.product(catalog.category("Phones"), stock_quantity=5000)
    customer = api.customer()
    over = {"items": [{"product_id": product["id"], "quantity": quantity["maximum"] + 1}]}
    refused = client.post("/api/orders/", json=over, headers=customer.headers)
    assert refused.status_code == 400
    assert list(refused.json()["errors"]) == ["items"]
    at_most = {"items": [{"product_id": product["id"], "quantity": quantity["maximum"]}]}
    assert client.post("/api/orders/", json=at_most, headers=customer.headers).status_code == 201


def test_the_oauth_answers_match_their_documented_schemas(
    document: dict[str, Any], oauth: OAuthHarness, api: Api
) -> None:
    schemas = document["components"]["schemas"]

    def conforms(name: str, body: dict[str, Any]) -> None:
        jsonschema.validate(body, {**schemas[name], "additionalProperties": False})  # nothing undocumented either

    app = oauth.register(public=False, may_introspect=True)
    issued = oauth.tokens_for(app, api.customer(), scope="openid read")
    conforms("TokenResponse", issued)
    refreshed = oauth.token(app, grant_type="refresh_token", refresh_token=issued["refresh_token"])
    conforms("TokenResponse", refreshed.json())
    machine = oauth.register(public=False, grant_types=["client_credentials"], redirect_uris=[], scopes=["read"])
    conforms("TokenResponse", oauth.token(machine, grant_type="client_credentials").json())
    for token in (refreshed.json()["access_token"], refreshed.json()["refresh_token"], "unknown"):
        described = oauth.endpoint("/oauth/introspect", app, token=token)
        assert described.status_code == 200
        conforms("IntrospectionResponse", described.json())
    revoked = oauth.endpoint("/oauth/revoke", app, token=refreshed.json()["access_token"])
    assert revoked.status_code == 200
    conforms("RevocationResponse", revoked.json())
    refused = oauth.token(app, grant_type="authorization_code", code="nope", redirect_uri=REDIRECT_URI)
    assert refused.status_code == 400
    conforms("OAuthErrorBody", refused.json())
