"""One Alembic history describes exactly the models of every context."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.base import metadata_registry
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import app.models  # noqa: F401
from app.db import make_alchemy_config
from app.settings import Settings
from shop_catalog import search_owns


def _on_database(url: str, fn: Callable[[Any], Any]) -> Any:
    async def run() -> Any:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_models_and_migrations_agree(settings: Settings) -> None:
    def diff(connection: Any) -> list[Any]:
        # the search index is the migration's alone (no model describes it), as in app/migrations/env.py
        include = lambda _obj, name, *_rest: not search_owns(name)  # noqa: E731
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include})
        return list(compare_metadata(context, metadata_registry.get(None)))

    assert _on_database(settings.database_url, diff) == []


def test_migrations_downgrade_to_nothing_and_back(
    backend: str, database_factory: Callable[[str], str], settings: Settings
) -> None:
    fresh = Settings(env="test", database_url=database_factory(backend), demo_data=False, var_dir=settings.var_dir)
    commands = AlembicCommands(sqlalchemy_config=make_alchemy_config(fresh))
    commands.upgrade("head")
    commands.downgrade("base")

    def tables(connection: Any) -> set[str]:
        return set(inspect(connection).get_table_names())

    assert tables_without_version(_on_database(fresh.database_url, tables)) == set()
    commands.upgrade("head")
    expected = {table.name for table in metadata_registry.get(None).sorted_tables}
    assert tables_without_version(_on_database(fresh.database_url, tables)) == expected


def tables_without_version(names: set[str]) -> set[str]:
    return {name for name in names if not search_owns(name)} - {"alembic_version"}
