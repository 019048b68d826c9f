"""A context's root module is its API for other contexts: it exports no table (decision 161). Its ORM models live in
`<package>.models`, which the import contract "No context imports another context's models" keeps for host apps."""

from __future__ import annotations

import importlib

import pytest
from sqlalchemy import Table


@pytest.mark.parametrize("package", ["shop_catalog", "shop_identity", "shop_ordering", "shop_notify"])
def test_a_context_exports_no_table(package: str) -> None:
    module = importlib.import_module(package)
    exported = {name: getattr(module, name) for name in module.__all__}
    tables = sorted(name for name, value in exported.items() if isinstance(value, Table) or hasattr(value, "__table__"))
    assert tables == []
    assert importlib.import_module(f"{package}.models").__name__ == f"{package}.models"
