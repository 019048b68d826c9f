"""What the OpenAPI document promises a generated client: operation names, and the constraints validation enforces."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

OPERATION_ID = re.compile(r"[a-z][a-zA-Z]{2,31}")
"""camelCase, letters only, at most 32 characters: `listProducts`, `getToken`."""


@pytest.fixture
def document(client: TestClient[Litestar], backend: str) -> dict[str, Any]:
    if backend != "sqlite":
        pytest.skip("the document does not depend on the database")
    return dict(client.get("/schema/openapi.json").json())


def test_every_operation_has_a_short_unique_camel_case_operation_id(document: dict[str, Any]) -> None:
    ids = [operation.get("operationId", "") for item in document["paths"].values() for operation in item.values()]
    assert len(ids) >= 44
    assert [i for i in ids if not OPERATION_ID.fullmatch(i)] == []
    assert len(set(ids)) == len(ids)
    assert {"listProducts", "getProduct", "createProduct", "updateProduct", "deleteProduct", "bulkUploadProducts"} <= set(
        ids
    )
    assert {"getAveragePrice", "listCategories", "createOrder", "listOrders", "registerCustomer", "getToken"} <= set(ids)
    assert document["paths"]["/api/auth/profile"]["get"]["operationId"] == "getProfile"
    assert document["paths"]["/api/auth/profile"]["patch"]["operationId"] == "updateProfile"
