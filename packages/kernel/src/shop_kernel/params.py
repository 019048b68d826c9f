"""Request parameters every context declares the same way."""

from __future__ import annotations

from typing import Annotated, TypeAlias

import msgspec
from litestar.params import PathParameter

__all__ = ("MAX_ROW_ID", "RowId", "RowIdField")

MAX_ROW_ID = 2**53 - 1
"""The largest id: 2^53-1, the largest integer every JSON client reads exactly (JavaScript's
`Number.MAX_SAFE_INTEGER`), far below what a BIGINT/INTEGER key holds on PostgreSQL and SQLite (2^63-1).
A bound at 2^63-1 also came out as a float in the OpenAPI document (9.223372036854776e+18), which
generators round past the limit."""

RowId: TypeAlias = Annotated[int, PathParameter(ge=1, le=MAX_ROW_ID)]
"""A path id: anything outside 1..2^53-1 is a 400 before it reaches the database (which would overflow)."""

RowIdField: TypeAlias = Annotated[int, msgspec.Meta(ge=1, le=MAX_ROW_ID)]
"""The same bound for an id inside a request body."""
