"""OWASP API5:2023 Broken function level authorization: every operation is classified as public, for
signed-in customers or for staff, and the classification is enforced before anything else happens.

The table below must name every operation of the OpenAPI document: a new operation fails this module
until someone decides who may call it.
"""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.security.conftest import concrete, is_problem, operations
from tests.support.api import Api, Caller

PUBLIC = "public"
CUSTOMER = "customer"  # any signed-in person (a token with a user); staff are people too
STAFF = "staff"

WHO_MAY_CALL: dict[str, str] = {
    "GET /api/health": PUBLIC,
    "GET /api/ready": PUBLIC,
    "GET /metrics": PUBLIC,  # aggregate counters only; operations.md: keep it off the public ingress
    "POST /api/auth/register": PUBLIC,
    "GET /api/auth/profile": CUSTOMER,
    "PUT /api/auth/profile": CUSTOMER,
    "PATCH /api/auth/profile": CUSTOMER,
    "POST /api/auth/password": CUSTOMER,
    "POST /api/auth/password/reset": PUBLIC,  # answers the same whoever asks (docs/accounts.md)
    "POST /api/auth/password/reset/confirm": PUBLIC,  # the link's token or the SMS code is the key
    "GET /oauth/authorize": PUBLIC,
    "POST /oauth/authorize": PUBLIC,
    "POST /oauth/token": PUBLIC,  # the client authenticates in the request
    "POST /oauth/revoke": PUBLIC,
    "POST /oauth/introspect": PUBLIC,
    "GET /oauth/jwks": PUBLIC,
    "GET /oauth/userinfo": CUSTOMER,
    "POST /oauth/userinfo": CUSTOMER,
    "GET /.well-known/oauth-authorization-server": PUBLIC,
    "GET /.well-known/openid-configuration": PUBLIC,
    "GET /api/oauth/clients": STAFF,
    "POST /api/oauth/clients": STAFF,
    "POST /api/oauth/clients/{client_id}/disable": STAFF,
    "GET /api/products/categories": PUBLIC,
    "POST /api/products/categories": STAFF,
    "GET /api/products/categories/{category_id}": PUBLIC,
    "PUT /api/products/categories/{category_id}": STAFF,
    "PATCH /api/products/categories/{category_id}": STAFF,
    "DELETE /api/products/categories/{category_id}": STAFF,
    "GET /api/products/categories/{category_id}/products": PUBLIC,
    "GET /api/products/categories/{category_id}/average-price": PUBLIC,
    "GET /api/products": PUBLIC,
    "POST /api/products": STAFF,
    "POST /api/products/bulk_upload": STAFF,
    "GET /api/products/{product_id}": PUBLIC,
    "PUT /api/products/{product_id}": STAFF,
    "PATCH /api/products/{product_id}": STAFF,
    "DELETE /api/products/{product_id}": STAFF,
    "GET /api/orders": CUSTOMER,
    "POST /api/orders": CUSTOMER,
    "GET /api/orders/{order_id}": CUSTOMER,
    "POST /api/orders/{order_id}/cancel": CUSTOMER,
    "POST /api/orders/{order_id}/status": STAFF,
    "PATCH /api/orders/{order_id}": STAFF,
    "GET /api/notifications": STAFF,
    "GET /api/customers": STAFF,
    "GET /api/customers/{customer_id}": STAFF,
    "POST /api/customers/{customer_id}/deactivate": STAFF,
    "POST /api/customers/{customer_id}/reactivate": STAFF,
    "POST /api/auth/email/verify": PUBLIC,  # the link's token is the key
    "POST /api/auth/email/verify/resend": CUSTOMER,
    "GET /api/auth/me/export": CUSTOMER,
    "DELETE /api/auth/me": CUSTOMER,
    "POST /api/notifications/{notification_id}/retry": STAFF,
    "POST /api/notifications/sms/delivery-reports/{secret}": PUBLIC,  # the provider; the path secret is the key
}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _call(client: TestClient[Litestar], label: str, headers: dict[str, str]) -> int:
    method, path = label.split(" ", 1)
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    response = client.request(method, concrete(path, secret="x" * 32), json=body, headers=headers)
    if response.status_code in {401, 403} and not path.startswith("/oauth/"):  # OAuth answers RFC 6749 errors
        assert is_problem(response), f"{label}: {response.status_code} as {response.headers['content-type']}"
    return response.status_code


def test_every_documented_operation_is_classified(client: TestClient[Litestar]) -> None:
    documented = {f"{method} {path}" for method, path, _ in operations(client)}
    assert documented == set(WHO_MAY_CALL), {
        "not classified": sorted(documented - set(WHO_MAY_CALL)),
        "no longer served": sorted(set(WHO_MAY_CALL) - documented),
    }


@pytest.mark.parametrize("label", [label for label, who in WHO_MAY_CALL.items() if who == STAFF])
def test_staff_operations_refuse_everybody_else(
    client: TestClient[Litestar], api: Api, staff: Caller, label: str
) -> None:
    assert _call(client, label, {}) == 401
    assert _call(client, label, api.customer().headers) == 403
    service = {"Authorization": f"Bearer {api.issue_token(None, ('read', 'write'), client_id='svc')}"}
    assert _call(client, label, service) == 403
    if label.split(" ", 1)[0] in WRITES:
        read_only = api.staff(scopes=("read",))
        assert _call(client, label, read_only.headers) == 403  # the write scope is needed too


@pytest.mark.parametrize("label", [label for label, who in WHO_MAY_CALL.items() if who == CUSTOMER])
def test_customer_operations_need_a_signed_in_person(client: TestClient[Litestar], api: Api, label: str) -> None:
    assert _call(client, label, {}) == 401
    # a client-credentials token acts for no person: nothing of a customer's is reachable with it
    service = {"Authorization": f"Bearer {api.issue_token(None, ('read', 'write', 'openid'), client_id='svc')}"}
    assert _call(client, label, service) == 403
    if label.split(" ", 1)[0] in WRITES:
        assert _call(client, label, api.customer(scopes=("read",)).headers) == 403


@pytest.mark.parametrize("label", [label for label, who in WHO_MAY_CALL.items() if who == PUBLIC])
def test_public_operations_need_no_token(client: TestClient[Litestar], label: str) -> None:
    status = _call(client, label, {})
    # the OAuth endpoints authenticate the client (401) or the sign-in form (403 without its CSRF token)
    # inside the request, not with a bearer token
    assert status not in {401, 403} or label.startswith("POST /oauth/"), status
