"""HTTP endpoints of the catalog: `/api/products/...` and `/api/products/categories/...`.

Longer than our ~350-line rule on purpose: the contract of the catalog's URL space (every query parameter as an
annotated type with its description and limits, every operation's summary and answers) reads in one place; the
handlers themselves are a few lines each and delegate to the services.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import ResponseHeader, State
from litestar.di import NamedDependency
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.params import FromQuery, JSONBody, QueryParameter

from shop_catalog.bulk import MAX_ROWS, BulkUpload, read_rows
from shop_catalog.cache import CATALOG_READ, COUNT_TTL_SECONDS, PAGE_READ, PRODUCT_READ, cache_of, tag_page
from shop_catalog.listing import RELEVANCE
from shop_catalog.schemas import (
    AveragePrice,
    CategoryNode,
    CategoryPatch,
    CategoryWrite,
    ProductPatch,
    ProductRead,
    ProductWrite,
)
from shop_catalog.search import parse_search
from shop_catalog.services import CategoryService, ProductFilters, ProductService
from shop_kernel import (
    AMOUNT_PATTERN,
    RESPONSE_CACHE,
    FieldValidationError,
    NumberedPage,
    RowId,
    Unit,
    bearer_security,
    money_problem,
    numbered_page,
    page_request,
    principal_of,
    problems,
    require_scopes,
    require_staff,
)

__all__ = ("CategoryController", "ProductController")

STAFF_WRITE_GUARDS = [require_staff, require_scopes("write")]
CREATED_COUNT = "X-Created-Count"
UPDATED_COUNT = "X-Updated-Count"
WRITE_SECURITY = bearer_security("write")

COUNT_RULE = (
    "`count` (and `total_pages`) is exact on the last page, so whenever the list fits one page. When more pages "
    "follow, it is the exact total of the same filters as the serving process counted it at most "
    f"{COUNT_TTL_SECONDS:g} seconds earlier (the same for every page, ordering and page size; a catalog write "
    "through that process counts anew at once), and never less than the products up to this page plus one. "
    "`next`, `previous` and the 404 of a page past the end always follow the current list."
)

PAGE_CACHE_RULE = (
    f"Anonymous pages are kept for {PAGE_READ.seconds:g} seconds in each serving process; a catalog write drops "
    "them everywhere at once, and an order drops the pages showing a product whose stock it changed. Signed-in "
    "pages are never kept."
)

Page = Annotated[int | None, QueryParameter(ge=1, description="1-based page number.")]
Search = Annotated[
    str | None,
    QueryParameter(
        max_length=200,
        description=(
            "Full-text search (docs/search.md): every word must match the name, SKU or description, as a whole "
            "word or its start (`iph` finds iPhone), accents and case aside (`cafe` finds Café); a word of five "
            "letters or more also matches with one typo (`blendr` finds Blender). Without `ordering`, results "
            "come by relevance: SKU equal to the query, SKU starting with it, every word in the name, words "
            "anywhere, then typo matches; newest first within each. A query with no letters or digits lists as "
            "if there were no `search`; words past the eighth are ignored."
        ),
    ),
]
CategoryFilter = Annotated[int | None, QueryParameter(description="A category id: that category and its descendants.")]
MinPrice = Annotated[
    Decimal | None, QueryParameter(description="Lowest price, inclusive.", schema_extra={"pattern": AMOUNT_PATTERN})
]
MaxPrice = Annotated[
    Decimal | None, QueryParameter(description="Highest price, inclusive.", schema_extra={"pattern": AMOUNT_PATTERN})
]
InStock = Annotated[bool | None, QueryParameter(description="true: stock above 0; false: out of stock.")]
IsActive = Annotated[
    bool | None, QueryParameter(description="Staff only; everybody else always sees active products only.")
]
Ordering = Annotated[
    Literal["name", "-name", "price", "-price", "created_at", "-created_at"] | None,
    QueryParameter(
        description=(
            "Sort field, `-` for descending; ties break on id. Default `-created_at`, or relevance with `search`."
        )
    ),
]


# The cache comes from the app's state (`state` is no dependency), not as a dependency of its own: Litestar
# resolves two dependencies of the same level in an anyio task group, which cost 7 % of a product page's CPU
# (py-spy); one per level is awaited. `unit` depends on the request's session, one level down.
async def provide_categories(unit: NamedDependency[Unit], state: State) -> CategoryService:
    return CategoryService(unit, cache_of(state))


async def provide_products(unit: NamedDependency[Unit], state: State) -> ProductService:
    return ProductService(unit, cache_of(state))


def _filters(
    search: str | None,
    category: int | None,
    min_price: Decimal | None,
    max_price: Decimal | None,
    in_stock: bool | None,
    is_active: bool | None,
    ordering: str | None,
) -> ProductFilters:
    errors = {
        name: [problem]
        for name, value in (("min_price", min_price), ("max_price", max_price))
        if value is not None and (problem := money_problem(value, allow_zero=True))
    }
    if errors:
        raise FieldValidationError(errors)
    return ProductFilters(
        search=search or None,
        category=category,
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
        is_active=is_active,
        ordering=ordering or (RELEVANCE if parse_search(search) else "-created_at"),
    )


class CategoryController(Controller):
    path = "/api/products/categories"
    tags = ["Categories"]
    dependencies = {"categories": provide_categories, "products": provide_products}

    @get(
        "/",
        operation_id="listCategories",
        summary="List categories",
        description="Each category with its whole subtree in `children`. 10 a page by default, at most 50.",
        opt={RESPONSE_CACHE: CATALOG_READ},
    )
    async def list_categories(
        self,
        request: Request[Any, Any, Any],
        categories: NamedDependency[CategoryService],
        page: Page = None,
        page_size: Annotated[int | None, QueryParameter(ge=1, description="Default 10, at most 50.")] = None,
        parent: Annotated[int | None, QueryParameter(description="Only the direct children of this category.")] = None,
        root: Annotated[bool, QueryParameter(description="Only top-level categories.")] = False,
    ) -> NumberedPage[CategoryNode]:
        paging = page_request(page, page_size, default_size=10, max_size=50)
        items, count = await categories.page(paging, parent=parent, roots_only=root)
        return numbered_page(request, items, count=count, paging=paging)

    @post(
        "/",
        operation_id="createCategory",
        summary="Create a category",
        status_code=201,
        guards=STAFF_WRITE_GUARDS,
        security=WRITE_SECURITY,
    )
    async def create_category(
        self, categories: NamedDependency[CategoryService], data: JSONBody[CategoryWrite]
    ) -> CategoryNode:
        return await categories.create(data)

    @get(
        "/{category_id:int}/",
        operation_id="getCategory",
        summary="A category and its subtree",
        opt={RESPONSE_CACHE: CATALOG_READ},
    )
    async def get_category(self, categories: NamedDependency[CategoryService], category_id: RowId) -> CategoryNode:
        return await categories.get(category_id)

    @put(
        "/{category_id:int}/",
        operation_id="replaceCategory",
        summary="Rename or move a category",
        description="Moving a category under itself or one of its descendants answers 409.",
        guards=STAFF_WRITE_GUARDS,
        security=WRITE_SECURITY,
        responses=problems(409),
    )
    async def replace_category(
        self, categories: NamedDependency[CategoryService], category_id: RowId, data: JSONBody[CategoryWrite]
    ) -> CategoryNode:
        return await categories.update(category_id, data)

    @patch(
        "/{category_id:int}/",
        operation_id="updateCategory",
        summary="Partially update a category",
        description="Moving a category under itself or one of its descendants answers 409.",
        guards=STAFF_WRITE_GUARDS,
        security=WRITE_SECURITY,
        responses=problems(409),
    )
    async def update_category(
        self, categories: NamedDependency[CategoryService], category_id: RowId, data: JSONBody[CategoryPatch]
    ) -> CategoryNode:
        return await categories.update(category_id, data)

    @delete(
        "/{category_id:int}/",
        operation_id="deleteCategory",
        summary="Delete a category",
        description=(
            "A category with subcategories or products answers 409 unless `cascade=true`, which deletes the "
            "whole subtree. Products are never deleted through a category, only unlinked."
        ),
        guards=STAFF_WRITE_GUARDS,
        security=WRITE_SECURITY,
        responses=problems(409),
    )
    async def delete_category(
        self,
        categories: NamedDependency[CategoryService],
        category_id: RowId,
        cascade: Annotated[bool, QueryParameter(description="Also delete the subtree.")] = False,
    ) -> None:
        await categories.delete(category_id, cascade=cascade)

    @get(
        "/{category_id:int}/products/",
        operation_id="listCategoryProducts",
        summary="Active products of a category and its descendants",
        description=f"50 a page by default, at most 200. {PAGE_CACHE_RULE} {COUNT_RULE}",
        opt={RESPONSE_CACHE: PAGE_READ},
    )
    async def category_products(
        self,
        request: Request[Any, Any, Any],
        products: NamedDependency[ProductService],
        category_id: RowId,
        page: Page = None,
        page_size: Annotated[int | None, QueryParameter(ge=1, description="Default 50, at most 200.")] = None,
        search: Search = None,
        min_price: MinPrice = None,
        max_price: MaxPrice = None,
        in_stock: InStock = None,
        ordering: Ordering = None,
    ) -> NumberedPage[ProductRead]:
        paging = page_request(page, page_size, default_size=50, max_size=200)
        filters = _filters(search, category_id, min_price, max_price, in_stock, True, ordering)
        items, count = await products.page(filters, paging, staff=principal_of(request).is_staff)
        if count == 0:  # 404 for an unknown category rather than an empty page
            await CategoryService(products.unit, products.cache).get(category_id)
        tag_page(request.scope, items)
        return numbered_page(request, items, count=count, paging=paging)

    @get(
        "/{category_id:int}/average-price/",
        operation_id="getAveragePrice",
        opt={RESPONSE_CACHE: CATALOG_READ},
        summary="Average price of a category",
        description="Over the distinct active products of the category and all its descendants; 0 when empty.",
    )
    async def average_price(self, categories: NamedDependency[CategoryService], category_id: RowId) -> AveragePrice:
        return await categories.average_price(category_id)


@dataclass
class BulkUploadOperation(Operation):
    """Documents the two accepted bodies, which the handler reads itself to report every bad row."""

    def __post_init__(self) -> None:
        created = (self.responses or {}).get("201")
        for header in (created.headers or {}).values() if isinstance(created, OpenAPIResponse) else ():
            if isinstance(header, OpenAPIHeader):  # Litestar's ResponseHeader documents no schema
                header.schema = Schema(type=OpenAPIType.INTEGER, minimum=0)
        self.request_body = RequestBody(
            required=True,
            description=f"Up to {MAX_ROWS} products. CSV: a header row; `categories` as `;`-separated ids.",
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.ARRAY, items=Reference("#/components/schemas/ProductWrite")),
                    example=[
                        {"name": "Product 1", "price": "19.99", "sku": "P001", "categories": [1], "stock_quantity": 10}
                    ],
                ),
                "text/csv": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING),
                    example="name,price,sku,categories,stock_quantity\nProduct 1,19.99,P001,1;2,10\n",
                ),
                "application/x-www-form-urlencoded": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        description=(
                            "DRF's indexed rows: `[0]name=...&[0]price=...&[0]categories=1&[0]categories=2&[1]name=...`"
                            "; each row's values read as a form is (see the other operations)."
                        ),
                        pattern_properties={INDEXED_ROW_FIELD: Schema()},
                        additional_properties=False,
                        min_properties=1,
                    ),
                ),
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        description=(
                            "One file part, CSV (`text/csv` or a `.csv` name) or JSON (`application/json` or a "
                            "`.json` name), and no other field; or the indexed rows of the url-encoded form (at "
                            "most 1,000 parts)."
                        ),
                        properties={"file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)},
                        pattern_properties={INDEXED_ROW_FIELD: Schema()},
                        additional_properties=False,
                        min_properties=1,
                    ),
                ),
            },
        )


INDEXED_ROW_FIELD = r"^\[[0-9]+\](name|price|sku|description|categories|stock_quantity|is_active)$"
"""A form field of a bulk upload: a product field of the row at that index."""


class ProductController(Controller):
    path = "/api/products"
    tags = ["Products"]
    dependencies = {"products": provide_products}

    @get(
        "/",
        operation_id="listProducts",
        summary="List products",
        description=(f"50 a page by default, at most 200. {PAGE_CACHE_RULE} {COUNT_RULE}"),
        opt={RESPONSE_CACHE: PAGE_READ},
    )
    async def list_products(
        self,
        request: Request[Any, Any, Any],
        products: NamedDependency[ProductService],
        page: Page = None,
        page_size: Annotated[int | None, QueryParameter(ge=1, description="Default 50, at most 200.")] = None,
        search: Search = None,
        category: CategoryFilter = None,
        min_price: MinPrice = None,
        max_price: MaxPrice = None,
        in_stock: InStock = None,
        is_active: IsActive = None,
        ordering: Ordering = None,
    ) -> NumberedPage[ProductRead]:
        paging = page_request(page, page_size, default_size=50, max_size=200)
        filters = _filters(search, category, min_price, max_price, in_stock, is_active, ordering)
        items, count = await products.page(filters, paging, staff=principal_of(request).is_staff)
        tag_page(request.scope, items)
        return numbered_page(request, items, count=count, paging=paging)

    @post(
        "/",
        operation_id="createProduct",
        summary="Create a product",
        status_code=201,
        guards=STAFF_WRITE_GUARDS,
        security=WRITE_SECURITY,
    )
    async def create_product(
        self, request: Request[Any, Any, Any], products: NamedDependency[ProductService], data: JSONBody[ProductWrite]
    ) -> ProductRead:
        return await products.create(data)

    @get(
        "/{product_id:int}/",
        operation_id="getProduct",
        summary="A product",
        description="Inactive products are visible to staff only.",
        opt={RESPONSE_CACHE: PRODUCT_READ},
    )
    async def get_product(
        self,
        request: Request[Any, Any, Any],
        products: NamedDependency[ProductService],
        product_id: RowId,
    ) -> ProductRead:
        return await products.get(product_id, staff=principal_of(request).is_staff)

    @put(
        "/{product_id:int}/",
        operation_id="replaceProduct",
        summary="Replace a product",
        guards=STAFF_WRITE_GUARDS,
        security=WRITE_SECURITY,
    )
    async def replace_product(
        self,
        request: Request[Any, Any, Any],
        products: NamedDependency[ProductService],
        product_id: RowId,
        data: JSONBody[ProductWrite],
    ) -> ProductRead:
        return await self._update(request, products, product_id, data)

    @patch(
        "/{product_id:int}/",
        operation_id="updateProduct",
        summary="Partially update a product",
        guards=STAFF_WRITE_GUARDS,
        security=WRITE_SECURITY,
    )
    async def update_product(
        self,
        request: Request[Any, Any, Any],
        products: NamedDependency[ProductService],
        product_id: RowId,
        data: JSONBody[ProductPatch],
    ) -> ProductRead:
        return await self._update(request, products, product_id, data)

    @staticmethod
    async def _update(
        request: Request[Any, Any, Any], products: ProductService, product_id: int, data: ProductWrite | ProductPatch
    ) -> ProductRead:
        product, _stock = await products.update(product_id, data)
        return product

    @delete(
        "/{product_id:int}/",
        operation_id="deleteProduct",
        summary="Delete a product",
        description="A product that appears in orders is deactivated instead, so order history stays intact.",
        guards=STAFF_WRITE_GUARDS,
        security=WRITE_SECURITY,
    )
    async def delete_product(self, products: NamedDependency[ProductService], product_id: RowId) -> None:
        await products.delete(product_id)

    @post(
        "/bulk_upload/",
        operation_id="bulkUploadProducts",
        summary="Create (or update) many products at once",
        description=(
            "A JSON array, `text/csv`, or a form (DRF's indexed rows, or one CSV or JSON file). All or nothing: "
            "any invalid row answers 400 with one entry per bad row "
            "(`{index, errors}`) and nothing is written. SKUs repeated in the upload or already in the catalog are "
            "row errors, unless `mode=upsert`, which updates the existing products instead. More than "
            f"{MAX_ROWS} rows answers 413."
        ),
        status_code=201,
        response_description=(
            "The products of the upload, one per row in input order, each as `GET /api/products/{id}/` shows it. "
            "The headers count the products created and updated."
        ),
        response_headers=[
            ResponseHeader(name=CREATED_COUNT, documentation_only=True, required=True, description="Products created."),
            ResponseHeader(
                name=UPDATED_COUNT,
                documentation_only=True,
                required=True,
                description="Existing products updated (`mode=upsert`).",
            ),
        ],
        operation_class=BulkUploadOperation,
        request_max_body_size=16 * 1024 * 1024,
        guards=STAFF_WRITE_GUARDS,
        security=WRITE_SECURITY,
    )
    async def bulk_upload(
        self,
        request: Request[Any, Any, Any],
        unit: NamedDependency[Unit],
        state: State,
        mode: FromQuery[Literal["create", "upsert"]] = "create",
    ) -> Response[list[ProductRead]]:
        rows = await read_rows(request)
        upload = BulkUpload(unit, cache_of(state))
        outcome = await upload.run(rows, upsert=mode == "upsert")
        counts = {CREATED_COUNT: str(len(outcome.created_ids)), UPDATED_COUNT: str(len(outcome.updated_ids))}
        return Response(await upload.products.get_many(outcome.ids), status_code=201, headers=counts)
