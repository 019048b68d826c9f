"""Build category trees and products through the HTTP API as staff."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.testing import TestClient

from tests.factories import ProductWriteFactory
from tests.support.api import Caller


class Catalog:
    def __init__(self, client: TestClient[Litestar], staff: Caller) -> None:
        self.client = client
        self.staff = staff

    def category(self, name: str, parent: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"name": name, "parent": parent["id"] if parent else None}
        response = self.client.post("/api/products/categories/", json=body, headers=self.staff.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def product(self, *categories: dict[str, Any], **fields: Any) -> dict[str, Any]:
        payload = msgspec.to_builtins(ProductWriteFactory.build(categories=[c["id"] for c in categories], **fields))
        response = self.client.post("/api/products/", json=payload, headers=self.staff.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created
