"""Bulk product upload: JSON array or CSV, all-or-nothing (one transaction of the unit of work), optionally
updating existing SKUs."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import msgspec
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import SerializationException
from sqlalchemy import Table, delete, insert, update

from shop_catalog.cache import CatalogCache
from shop_catalog.models import Product, product_category
from shop_catalog.schemas import ProductWrite
from shop_catalog.services import ProductService
from shop_kernel import (
    FieldValidationError,
    PayloadTooLarge,
    RowError,
    RowsValidationError,
    body_data,
    check_plain_text,
    decode_json_text,
    field_errors_from,
    money_problem,
    to_money,
)

if TYPE_CHECKING:
    from litestar import Request
    from sqlalchemy.ext.asyncio import AsyncSession

    from shop_kernel import Unit

__all__ = ("CSV_MEDIA_TYPES", "MAX_ROWS", "BulkOutcome", "BulkUpload", "parse_csv", "read_rows")

MAX_ROWS = 10_000
CSV_MEDIA_TYPES = frozenset({"text/csv", "application/csv"})
JSON_FILE_TYPES = frozenset({"application/json"})
NON_FIELD = "non_field_errors"
PRODUCT = cast("Table", Product.__table__)


async def read_rows(request: Request[Any, Any, Any]) -> list[Any]:
    """The rows of an upload: a JSON array, CSV, a form of DRF's indexed rows (`[0]name=...`), or a multipart form
    holding one CSV or JSON file. Every way through the kernel's text rule."""
    media_type = request.content_type[0]
    if media_type in CSV_MEDIA_TYPES:
        return parse_csv(await request.body())
    if media_type == RequestEncodingType.MULTI_PART:
        parts = list((await request.form()).multi_items())
        files = [(name, value) for name, value in parts if isinstance(value, UploadFile)]
        if files:
            if len(parts) > 1:
                raise FieldValidationError({NON_FIELD: ["Send one file and no other field."]})
            return await _file_rows(*files[0])
    try:
        rows = await body_data(request, list[ProductWrite])
    except SerializationException as exc:
        errors = {NON_FIELD: [f"Invalid JSON: {exc.detail}"]}
        raise FieldValidationError(errors, detail="Invalid JSON.") from exc
    if not isinstance(rows, list):
        raise FieldValidationError({NON_FIELD: ["Expected a JSON array of products."]})
    return rows


async def _file_rows(name: str, file: UploadFile) -> list[Any]:
    """A CSV file (`text/csv`, `.csv`) or a JSON one (`application/json`, `.json`), by its type or else its name."""
    content = await file.read()
    kind = file.content_type.split(";")[0].strip().lower()
    filename = (file.filename or "").lower()
    if kind in CSV_MEDIA_TYPES or (kind not in JSON_FILE_TYPES and filename.endswith(".csv")):
        check_plain_text(content)
        return parse_csv(content)
    if kind in JSON_FILE_TYPES or filename.endswith(".json"):
        try:
            rows = decode_json_text(content)
        except msgspec.DecodeError as exc:
            raise FieldValidationError({name: [f"Invalid JSON: {exc}"]}, detail="Invalid JSON.") from exc
        if not isinstance(rows, list):
            raise FieldValidationError({name: ["Expected a JSON array of products."]})
        return rows
    raise FieldValidationError({name: ["Send a CSV file (text/csv, .csv) or a JSON one (application/json, .json)."]})


def parse_csv(body: bytes) -> list[Any]:
    """A header row naming the fields; `categories` holds `;`-separated ids; empty cells mean "default"."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FieldValidationError({"non_field_errors": ["CSV must be UTF-8."]}) from exc
    reader = csv.DictReader(io.StringIO(text))
    try:
        if not reader.fieldnames or not {"name", "price", "sku"} <= {f.strip() for f in reader.fieldnames}:
            raise FieldValidationError({"non_field_errors": ["The CSV header must name at least name, price and sku."]})
        rows: list[Any] = []
        for record in reader:
            rows.append(_csv_row(record))
            if len(rows) > MAX_ROWS:
                break
    except csv.Error as exc:  # a field past csv.field_size_limit (128 KiB), a stray quote
        raise FieldValidationError({"non_field_errors": [f"Invalid CSV at line {reader.line_num}: {exc}"]}) from exc
    return rows


def _csv_row(record: dict[Any, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for header, value in record.items():
        if header is None or value is None or value.strip() == "":
            continue
        key = header.strip()
        row[key] = [part.strip() for part in value.split(";") if part.strip()] if key == "categories" else value
    return row


@dataclass(frozen=True)
class BulkOutcome:
    ids: list[int]
    """Of every row, in input order."""
    created_ids: list[int]
    updated_ids: list[int]


class BulkUpload:
    def __init__(self, unit: Unit, cache: CatalogCache | None = None) -> None:
        self.unit = unit
        self.products = ProductService(unit, cache)

    async def run(self, rows: Sequence[Any], *, upsert: bool) -> BulkOutcome:
        if len(rows) > MAX_ROWS:
            raise PayloadTooLarge(f"At most {MAX_ROWS} products per upload.")
        if not rows:
            raise FieldValidationError({"non_field_errors": ["The upload is empty."]})
        items, errors = self._decode(rows)
        async with self.products.cache.writing(self.unit) as session:
            existing = await self._check_references(items, errors, upsert=upsert)
            if errors:
                raise RowsValidationError([RowError(index=i, errors=errors[i]) for i in sorted(errors)])
            return await self._write(session, items, existing if upsert else {})

    def _decode(self, rows: Sequence[Any]) -> tuple[dict[int, ProductWrite], dict[int, dict[str, list[str]]]]:
        items: dict[int, ProductWrite] = {}
        errors: dict[int, dict[str, list[str]]] = {}
        first_row_of_sku: dict[str, int] = {}
        for index, raw in enumerate(rows):
            try:
                item = msgspec.convert(raw, ProductWrite, strict=False)
            except msgspec.ValidationError as exc:
                errors[index] = field_errors_from(exc)
                continue
            row_errors: dict[str, list[str]] = {}
            if problem := money_problem(item.price):
                row_errors["price"] = [problem]
            sku = item.sku.strip().lower()
            if not sku:
                row_errors["sku"] = ["This field may not be blank."]
            elif sku in first_row_of_sku:
                row_errors["sku"] = [f"Duplicate SKU in this upload (first at index {first_row_of_sku[sku]})."]
            else:
                first_row_of_sku[sku] = index
            if row_errors:
                errors[index] = row_errors
            else:
                items[index] = item
        return items, errors

    async def _check_references(
        self, items: dict[int, ProductWrite], errors: dict[int, dict[str, list[str]]], *, upsert: bool
    ) -> dict[str, int]:
        """Row errors for unknown categories and taken SKUs; returns the taken SKUs with their ids."""
        missing = await self.products.missing_categories(c for item in items.values() for c in item.categories)
        taken = await self.products.taken_skus(item.sku.strip() for item in items.values())
        for index, item in list(items.items()):
            row_errors: dict[str, list[str]] = {}
            if unknown := sorted(set(item.categories) & missing):
                row_errors["categories"] = [f"Unknown category id(s): {', '.join(map(str, unknown))}."]
            if not upsert and item.sku.strip().lower() in taken:
                row_errors["sku"] = ["A product with this SKU already exists (use ?mode=upsert to update it)."]
            if row_errors:
                errors[index] = row_errors
                del items[index]
        return taken

    async def _write(
        self, session: AsyncSession, items: dict[int, ProductWrite], existing: dict[str, int]
    ) -> BulkOutcome:
        ordered = [items[i] for i in sorted(items)]
        new = [item for item in ordered if item.sku.strip().lower() not in existing]
        changed = [item for item in ordered if item.sku.strip().lower() in existing]
        ids: dict[str, int] = {}
        if new:
            # Map ids back by SKU (unique): asking for parameter order would make SQLite insert row by row.
            inserted = await session.execute(
                insert(PRODUCT).returning(PRODUCT.c.sku, PRODUCT.c.id), [self._values(item) for item in new]
            )
            ids.update({sku.lower(): product_id for sku, product_id in inserted})
        if changed:
            await session.execute(
                update(Product),
                [{"id": existing[item.sku.strip().lower()], **self._values(item)} for item in changed],
            )
            ids.update({item.sku.strip().lower(): existing[item.sku.strip().lower()] for item in changed})
            await session.execute(
                delete(product_category).where(
                    product_category.c.product_id.in_([ids[i.sku.strip().lower()] for i in changed])
                )
            )
        links = [
            {"product_id": ids[item.sku.strip().lower()], "category_id": category}
            for item in ordered
            for category in sorted(set(item.categories))
        ]
        if links:
            await session.execute(insert(product_category), links)
        return BulkOutcome(
            ids=[ids[item.sku.strip().lower()] for item in ordered],
            created_ids=[ids[item.sku.strip().lower()] for item in new],
            updated_ids=[ids[item.sku.strip().lower()] for item in changed],
        )

    @staticmethod
    def _values(item: ProductWrite) -> dict[str, Any]:
        return {
            "name": item.name.strip(),
            "description": item.description,
            "price": to_money(item.price),
            "sku": item.sku.strip(),
            "stock_quantity": item.stock_quantity,
            "is_active": item.is_active,
        }
