"""Alembic environment: one migration history for every context's tables (the shared metadata)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal, cast

from advanced_alchemy.base import metadata_registry
from advanced_alchemy.types import DateTimeUTC
from alembic import context
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncEngine, async_engine_from_config

import app.models  # noqa: F401  (imports every context's models so their tables are in the metadata)
from shop_catalog import search_owns

if TYPE_CHECKING:
    from advanced_alchemy.alembic.commands import AlembicCommandConfig
    from sqlalchemy.engine import Connection

config = cast("AlembicCommandConfig", context.config)
target_metadata = metadata_registry.get(getattr(config, "bind_key", None))


def _render_item(type_: str, obj: object, autogen_context: Any) -> str | Literal[False]:
    """Render advanced-alchemy's column types by their public import, not their private module."""
    if type_ == "type" and isinstance(obj, DateTimeUTC):
        autogen_context.imports.add("from advanced_alchemy.types import DateTimeUTC")
        return "DateTimeUTC(timezone=True)"
    return False


def include_object(_obj: object, name: str | None, _type: str, _reflected: bool, _compare_to: object) -> bool:
    """Autogenerate leaves the search index alone: its migration (0011) owns it, no model describes it."""
    return not search_owns(name)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=_render_item,
        version_table=getattr(config, "version_table_name", "alembic_version"),
        render_as_batch=True,
        compare_type=True,
        include_object=include_object,
        **kwargs,  # type: ignore[arg-type]
    )


def run_offline() -> None:
    _configure(url=config.db_url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = getattr(config, "engine", None)
    if engine is None:
        section = config.get_section(config.config_ini_section) or {}
        section["sqlalchemy.url"] = config.db_url
        engine = async_engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    engine = cast("AsyncEngine", engine)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        # asyncio.run closes its loop on return: pooled connections must not outlive it.
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
