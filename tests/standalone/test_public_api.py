"""A context's root module is its API for other contexts: it exports no table (decision 161). Its ORM models live in
`<package>.models`, which the import contract "No context imports another context's models" keeps for host apps."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from sqlalchemy import Table


@pytest.mark.parametrize("package", ["shop_catalog", "shop_identity", "shop_ordering", "shop_notify"])
def test_a_context_exports_no_table(package: str) -> None:
    module = importlib.import_module(package)
    exported = {name: getattr(module, name) for name in module.__all__}
    tables = sorted(name for name, value in exported.items() if isinstance(value, Table) or hasattr(value, "__table__"))
    assert tables == []
    assert importlib.import_module(f"{package}.models").__name__ == f"{package}.models"


@pytest.mark.parametrize("package", ["shop_catalog", "shop_identity", "shop_ordering", "shop_notify", "app"])
def test_a_context_writes_only_through_the_unit_of_work(package: str) -> None:
    """Its services write in `unit.transaction()` or `unit.run()` (`shop_kernel.units`): none commits, rolls back
    or asks for the session itself. In the app only its database set-up may (`app/db.py`, Alembic's `env.py`)."""
    source = Path(importlib.import_module(package).__file__ or "").parent
    found = [
        f"{path.name}:{number}"
        for path in sorted(source.rglob("*.py"))
        if path.name != "db.py" and "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\.(commit|rollback)\(|\bdb_session\s*:", line)
    ]
    assert found == []
