"""Every error is an RFC 9457 problem document."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, get, post
from litestar.testing import TestClient
from sqlalchemy.exc import IntegrityError as SQLAlchemyIntegrityError

from shop_kernel import ConflictError, TextInputMiddleware, TextRequest, UnprocessableError, install_shared
from shop_kernel.problems import problem_exception_handlers
from tests.support.api import Api, Caller


def assert_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body.get("type", "about:blank")
    return body


def test_unknown_route_is_404(client: TestClient[Litestar]) -> None:
    body = assert_problem(client.get("/api/nothing-here/"), 404)
    assert body["instance"] == "/api/nothing-here/"


def test_wrong_method_is_405_with_allow(client: TestClient[Litestar]) -> None:
    response = client.delete("/api/auth/register/")
    assert_problem(response, 405)
    assert "POST" in response.headers["allow"]


def test_validation_error_is_400_with_errors_by_field(client: TestClient[Litestar]) -> None:
    body = assert_problem(client.post("/api/auth/register/", json={"username": 5}), 400)
    assert body["type"] == "/problems/validation-error"
    assert isinstance(body["errors"], dict)
    assert "username" in body["errors"]


def test_unauthorized_and_forbidden(client: TestClient[Litestar], api: Api) -> None:
    assert_problem(client.get("/api/auth/profile/"), 401)
    no_scope = api.customer(scopes=())
    assert_problem(client.get("/api/auth/profile/", headers=no_scope.headers), 403)


@get("/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("secret internal detail")


@post("/conflict", sync_to_thread=False)
def conflict() -> None:
    raise ConflictError("Already cancelled.")


@post("/unprocessable", sync_to_thread=False)
def unprocessable() -> None:
    raise UnprocessableError("Idempotency key reused with a different body.", problem_type="/problems/idempotency")


def small_app() -> Litestar:
    return Litestar([boom, conflict, unprocessable], exception_handlers=problem_exception_handlers())


def test_unexpected_errors_are_500_without_internals() -> None:
    with TestClient(small_app()) as client:
        body = assert_problem(client.get("/boom"), 500)
    assert "secret" not in str(body)
    assert "Traceback" not in str(body)


def test_conflict_and_unprocessable_carry_their_type() -> None:
    with TestClient(small_app()) as client:
        assert assert_problem(client.post("/conflict"), 409)["detail"] == "Already cancelled."
        assert assert_problem(client.post("/unprocessable"), 422)["type"] == "/problems/idempotency"


def test_install_shared_keeps_the_host_apps_own_handlers() -> None:
    from litestar.config.app import AppConfig
    from litestar.exceptions import HTTPException

    def mine(*_: object) -> None:
        raise AssertionError

    config = AppConfig(exception_handlers={HTTPException: mine})
    install_shared(config)
    assert config.exception_handlers[HTTPException] is mine
    assert Exception in config.exception_handlers
    assert "principal" in config.dependencies
    assert config.request_class is TextRequest
    install_shared(config)  # every plugin calls it: still one text middleware
    assert sum(isinstance(m, TextInputMiddleware) for m in config.middleware) == 1


def test_install_shared_refuses_a_request_class_that_would_skip_the_text_rule() -> None:
    from litestar import Request
    from litestar.config.app import AppConfig
    from litestar.exceptions import ImproperlyConfiguredException

    class HostRequest(TextRequest[Any, Any, Any]):
        pass

    class UncheckedRequest(Request[Any, Any, Any]):
        pass

    config = AppConfig(request_class=HostRequest)
    install_shared(config)
    assert config.request_class is HostRequest
    config = AppConfig(request_class=Request)  # Litestar's own, named explicitly: the default
    install_shared(config)
    assert config.request_class is TextRequest
    with pytest.raises(ImproperlyConfiguredException, match=r"UncheckedRequest must derive from .*TextRequest"):
        install_shared(AppConfig(request_class=UncheckedRequest))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/products/{id}/"),
        ("DELETE", "/api/products/{id}/"),
        ("GET", "/api/products/categories/{id}/"),
        ("GET", "/api/products/categories/{id}/products/"),
        ("GET", "/api/products/categories/{id}/average-price/"),
        ("GET", "/api/orders/{id}/"),
        ("POST", "/api/orders/{id}/cancel/"),
        ("PATCH", "/api/orders/{id}/"),
        ("POST", "/api/notifications/{id}/retry/"),
    ],
)
@pytest.mark.parametrize("row_id", [2**53, 2**63, 2**80, -(2**70), 0])
def test_ids_outside_the_database_range_are_400_not_500(
    client: TestClient[Litestar], staff: Caller, method: str, path: str, row_id: int
) -> None:
    """Found by schemathesis: an id past 64 bits overflowed the database driver (500)."""
    response = client.request(method, path.format(id=row_id), headers=staff.headers, json={"status": "confirmed"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"/api/products/{2**53 - 1}/").status_code == 404  # the largest id is still an id


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/products/categories/", {"name": "Too far", "parent": 2**70}),
        ("/api/products/", {"name": "X", "price": "1.00", "sku": "X-1", "categories": [2**70]}),
        ("/api/orders/", {"items": [{"product_id": 2**70, "quantity": 1}]}),
    ],
)
def test_ids_in_bodies_outside_the_database_range_are_400(
    client: TestClient[Litestar], staff: Caller, path: str, body: dict[str, object]
) -> None:
    """Found by schemathesis: `parent: 217392675116263211008` reached the database and answered 500."""
    response = client.post(path, json=body, headers=staff.headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_an_unexpected_constraint_violation_is_409_not_500() -> None:
    """Found in review: a race the handler did not catch (a bulk upload and a create taking one SKU, a
    category deleted under a product being linked) surfaced as SQLAlchemy's own IntegrityError, a 500."""

    @get("/race", sync_to_thread=False)
    def race() -> None:
        raise SQLAlchemyIntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed: product.sku"))

    with TestClient(Litestar([race], exception_handlers=problem_exception_handlers())) as bare:
        response = bare.get("/race")
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/conflict"
    assert "UNIQUE" not in response.text
