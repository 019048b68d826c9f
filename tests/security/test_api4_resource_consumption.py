"""OWASP API4:2023 Unrestricted resource consumption: what one request may cost, and the answer past it.

- Bodies: 1 MiB on every route (`REQUEST_MAX_BODY_BYTES`; Litestar's own default is 10 MB), 16 MiB for
  the bulk upload, 16 KiB for delivery reports. An announced `Content-Length` past the limit is 413
  before anything else runs; a chunked body without one is cut off as its bytes arrive.
- Slow bodies: `REQUEST_BODY_TIMEOUT_SECONDS` (408).
- Huge and deeply nested JSON is 4xx at once, never a 500 or a long parse.
- Pages are capped on every paginated list; the bulk upload takes at most 10,000 rows
  (tests/catalog/test_bulk_upload.py::test_more_than_ten_thousand_rows_is_413); PostgreSQL cancels any
  statement past `DB_STATEMENT_TIMEOUT_MS` (tests/deploy/test_database.py); rate limits in
  tests/app/test_rate_limits.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.settings import RequestLimits, Settings
from tests.security.conftest import concrete, is_problem, operations
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog
from tests.support.live import live_server
from tests.support.raw_http import RawConnection

MiB = 1024 * 1024
LIMITS = {"/api/products/bulk_upload": 16 * MiB, "/api/notifications/sms/delivery-reports/{secret}": 16 * 1024}
"""Routes that declare their own limit; every other route takes at most `RequestLimits().max_body_bytes`."""


def limit_of(path: str) -> int:
    return LIMITS.get(path, RequestLimits().max_body_bytes)


def test_the_default_limit_is_deliberate_and_smaller_than_litestars(app: Litestar, settings: Settings) -> None:
    assert RequestLimits().max_body_bytes == MiB
    assert settings.request_limits.max_body_bytes == MiB
    assert app.request_max_body_size == MiB  # Litestar's default would be 10_000_000


@pytest.mark.backend
def test_every_operation_refuses_an_announced_body_past_its_limit(client: TestClient[Litestar]) -> None:
    """Anonymous and whatever the route: refused before authentication, validation or any query."""
    checked = 0
    for method, path, _ in operations(client):
        limit = limit_of(path)
        response = client.request(
            method,
            concrete(path),
            content=b"[" * (limit + 1),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413, (method, path, response.status_code, response.text[:200])
        assert is_problem(response), (method, path)
        problem = response.json()
        assert problem["type"] == "/problems/too-large"
        assert problem["detail"] == f"The request body is larger than the {limit} bytes this endpoint accepts."
        checked += 1
    assert checked >= 40


@pytest.mark.backend
def test_a_body_at_the_limit_is_read_and_judged_on_its_content(client: TestClient[Litestar]) -> None:
    padded = b'{"username": "x"}' + b" " * (MiB - 17)
    response = client.post("/api/auth/register/", content=padded, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "email" in response.json()["errors"]  # judged on its content: a field is missing


def chunked(size: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    """A body of `size` bytes sent without Content-Length."""
    yield b"["
    sent = 1
    while sent < size:
        part = b" " * min(piece, size - sent)
        sent += len(part)
        yield part


def test_bodies_without_content_length_are_cut_off_as_they_arrive(
    client: TestClient[Litestar], api: Api, staff: Caller
) -> None:
    customer = api.customer()
    cases = [
        ("POST", "/api/auth/register/", {}, MiB),
        ("POST", "/oauth/token", {"Content-Type": "application/x-www-form-urlencoded"}, MiB),
        ("POST", "/api/products/", staff.headers, MiB),
        ("PATCH", "/api/products/categories/1/", staff.headers, MiB),
        ("POST", "/api/orders/", customer.headers, MiB),
        ("PATCH", "/api/auth/profile/", customer.headers, MiB),
        ("POST", "/api/oauth/clients/", staff.headers, MiB),
        ("POST", "/api/products/bulk_upload/", staff.headers, 16 * MiB),
    ]
    for method, path, headers, limit in cases:
        response = client.request(
            method, path, content=chunked(limit + 1), headers={"Content-Type": "application/json", **headers}
        )
        assert response.status_code == 413, (path, response.text[:300])
        assert is_problem(response)
        assert str(limit) in response.json()["detail"]
    assert client.get("/api/products/", headers=staff.headers).json()["count"] == 0


@pytest.mark.backend
def test_huge_and_deeply_nested_json_is_4xx_at_once_on_every_json_operation(
    client: TestClient[Litestar], api: Api, staff: Caller
) -> None:
    customer = api.customer()
    customer_operations = {("POST", "/api/orders"), ("PUT", "/api/auth/profile"), ("PATCH", "/api/auth/profile")}
    bodies = {
        "100k-element array": b"[" + b"0," * 99_999 + b"0]",
        "array 100k deep": b"[" * 100_000 + b"]" * 100_000,
        "object 50k deep": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "50k keys": b"{" + b",".join(b'"k%d":0' % n for n in range(50_000)) + b"}",
    }
    checked = 0
    for method, path, operation in operations(client):
        if "application/json" not in operation.get("requestBody", {}).get("content", {}):
            continue
        caller = customer if (method, path) in customer_operations else staff
        for name, body in bodies.items():
            started = time.monotonic()
            response = client.request(
                method, concrete(path), content=body, headers={**caller.headers, "Content-Type": "application/json"}
            )
            elapsed = time.monotonic() - started
            # 50k unknown keys are skipped, not stored: a profile update of nothing known may succeed
            lowest = 200 if name == "50k keys" else 400
            assert lowest <= response.status_code < 500, (method, path, name, response.status_code, response.text[:200])
            assert response.status_code < 300 or is_problem(response), (method, path, name)
            assert elapsed < 2.0, (method, path, name, elapsed)
            checked += 1
    assert checked >= 14 * len(bodies)
    assert client.get("/api/products/", headers=staff.headers).json()["count"] == 0


def test_a_hundred_thousand_order_lines_are_refused_without_a_write(
    client: TestClient[Litestar], catalog: Catalog, api: Api, staff: Caller
) -> None:
    product = catalog.product(stock_quantity=5)
    buyer = api.customer()
    line = {"product_id": product["id"], "quantity": 1}
    too_big = client.post("/api/orders/", json={"items": [line] * 100_000}, headers=buyer.headers)
    assert too_big.status_code == 413
    assert is_problem(too_big)
    # under the byte limit, still far past the 100 lines an order may have
    too_many = client.post("/api/orders/", json={"items": [line] * 25_000}, headers=buyer.headers)
    assert too_many.status_code == 400
    assert "items" in too_many.json()["errors"]
    assert client.get("/api/orders/", headers=buyer.headers).json()["results"] == []
    assert client.get(f"/api/products/{product['id']}/").json()["stock_quantity"] == 5


def test_bulk_uploads_nested_too_deeply_or_with_giant_csv_fields_are_400(
    client: TestClient[Litestar], staff: Caller
) -> None:
    """Found here: both answered 500 (msgspec's RecursionError, csv's field size limit)."""
    url = "/api/products/bulk_upload/"
    nested = client.post(
        url, content=b"[" * 5_000 + b"]" * 5_000, headers={**staff.headers, "Content-Type": "application/json"}
    )
    assert nested.status_code == 400, nested.text[:300]
    assert is_problem(nested)
    giant_field = b"name,price,sku,description\nKettle,10.00,K1," + b"x" * 200_000 + b"\n"
    csv_response = client.post(url, content=giant_field, headers={**staff.headers, "Content-Type": "text/csv"})
    assert csv_response.status_code == 400, csv_response.text[:300]
    assert "line" in csv_response.json()["errors"]["non_field_errors"][0]
    assert client.get("/api/products/", headers=staff.headers).json()["count"] == 0


def test_every_paginated_list_caps_its_page_size(
    client: TestClient[Litestar], catalog: Catalog, api: Api, staff: Caller
) -> None:
    category = catalog.category("Kitchen")
    paginated = [
        (path, int(re.search(r"at most (\d+)", parameter["description"])[1]))  # type: ignore[index]
        for method, path, operation in operations(client)
        for parameter in operation.get("parameters", [])
        if method == "GET" and parameter["name"] == "page_size"
    ]
    assert {path for path, _ in paginated} == {
        "/api/products",
        "/api/products/categories",
        "/api/products/categories/{category_id}/products",
        "/api/orders",
        "/api/notifications",
        "/api/customers",
    }
    for path, most in paginated:
        url = concrete(path, category_id=str(category["id"]))
        response = client.get(url, params={"page_size": 10**9}, headers=staff.headers)
        assert response.status_code == 200, (path, response.text[:200])
        page = response.json()
        if "page_size" in page:
            assert page["page_size"] == most, path
        else:  # cursor pages: the size shows in the link to the next page
            assert most <= 100
        assert client.get(url, params={"page_size": "lots"}, headers=staff.headers).status_code == 400


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[tuple[str, Path]]:
    """`shop serve` (uvicorn) with a 64 KiB body limit and a 1 s body deadline."""
    var_dir = tmp_path_factory.mktemp("live-api4")
    env = {
        "APP_ENV": "test",
        "DEMO_DATA": "false",
        "DATABASE_URL": f"sqlite:///{var_dir / 'shop.sqlite3'}",
        "VAR_DIR": str(var_dir),
        "REDIS_URL": redis_url,
        "WORKER_IN_PROCESS": "false",
        "REQUEST_MAX_BODY_BYTES": str(64 * 1024),
        "REQUEST_BODY_TIMEOUT_SECONDS": "1",
        "LOG_LEVEL": "INFO",
    }
    with live_server(env, "--setup") as (base, log):
        yield base, log


def test_over_real_http_an_announced_oversize_body_is_refused_before_it_is_sent(live: tuple[str, Path]) -> None:
    base, _ = live
    with RawConnection(base) as http:
        http.head("POST", "/api/auth/register/", {"Content-Type": "application/json", "Content-Length": str(10**9)})
        answer = http.response()
    assert answer.status == 413
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["detail"] == "The request body is larger than the 65536 bytes this endpoint accepts."
    assert answer.elapsed < 2


def test_over_real_http_a_chunked_body_is_cut_off_at_the_limit(live: tuple[str, Path]) -> None:
    base, _ = live
    with RawConnection(base) as http:
        http.head("POST", "/api/auth/register/", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        http.chunks([b"[" + b" " * 16_383, *[b" " * 16_384] * 4])  # 80 KiB, never the final chunk
        answer = http.response()
    assert answer.status == 413
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "65536 bytes" in answer.json()["detail"]


def test_over_real_http_a_trickled_body_gets_408_after_the_deadline(live: tuple[str, Path]) -> None:
    base, _ = live
    with RawConnection(base) as http:
        http.head("POST", "/api/auth/register/", {"Content-Type": "application/json", "Content-Length": "200"})
        http.send(b'{"username": ')
        answer = http.response()  # nothing more is sent
    assert answer.status == 408
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == "/problems/request-timeout"
    assert 0.9 < answer.elapsed < 5


def test_over_real_http_a_body_sent_in_time_is_served(live: tuple[str, Path]) -> None:
    base, _ = live
    body = b'{"username": "slow"}'
    with RawConnection(base) as http:
        http.head("POST", "/api/auth/register/", {"Content-Type": "application/json", "Content-Length": str(len(body))})
        for byte in body:
            http.send(bytes([byte]))
            time.sleep(0.02)
        answer = http.response()
    assert answer.status == 400  # judged on its content: a field is missing
    assert "email" in answer.json()["errors"]


def test_over_real_http_a_client_that_hangs_up_mid_body_is_not_a_server_error(live: tuple[str, Path]) -> None:
    base, log = live
    with RawConnection(base) as http:
        http.head("POST", "/api/auth/register/", {"Content-Type": "application/json", "Content-Length": "500"})
        http.send(b'{"username": "gone"')
    time.sleep(0.5)
    with RawConnection(base) as http:  # the server still serves, and logged no server error
        http.head("GET", "/api/health/", {})
        assert http.response().status == 200
    text = log.read_text()
    assert "server error" not in text
    assert "unhandled error" not in text
