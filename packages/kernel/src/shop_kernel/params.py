"""Request parameters every context declares the same way."""

from __future__ import annotations

from typing import Annotated, TypeAlias

import msgspec
from litestar.params import PathParameter

__all__ = ("MAX_ROW_ID", "RowId", "RowIdField")

MAX_ROW_ID = 2**63 - 1
"""The largest id a BIGINT/INTEGER primary key holds on PostgreSQL and SQLite."""

RowId: TypeAlias = Annotated[int, PathParameter(ge=1, le=MAX_ROW_ID)]
"""A path id: anything outside 1..2^63-1 is a 400 before it reaches the database (which would overflow)."""

RowIdField: TypeAlias = Annotated[int, msgspec.Meta(ge=1, le=MAX_ROW_ID)]
"""The same bound for an id inside a request body."""
