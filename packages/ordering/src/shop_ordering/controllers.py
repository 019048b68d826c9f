"""HTTP endpoints of ordering: `/api/orders/...`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, QueryParameter

from shop_catalog import stock_changed
from shop_kernel import (
    CursorPage,
    FieldValidationError,
    Principal,
    RowId,
    Unit,
    bearer_security,
    cursor_page,
    principal_of,
    problems,
    require_customer,
    require_scopes,
    require_staff,
)
from shop_ordering.schemas import OrderRead, OrderStatus, OrderStatusChange, PlaceOrder
from shop_ordering.services import OrderingRules, OrderService

__all__ = ("OrderController", "orders_provider")

READ = [require_customer, require_scopes("read")]
WRITE = [require_customer, require_scopes("write")]
STAFF_WRITE = [require_staff, require_scopes("write")]


def orders_provider(rules: OrderingRules) -> Callable[[Unit], Awaitable[OrderService]]:
    """The `orders` dependency. It needs only the kernel's `unit` (the rules are fixed when the plugin is built):
    Litestar resolves a layer of two or more dependencies in an anyio task group, which costs more than the
    dependencies themselves on the order-placing path; `db_session` -> `unit` -> `orders` is one per layer."""

    async def provide_orders(unit: NamedDependency[Unit]) -> OrderService:
        return OrderService(unit, rules)

    return provide_orders


class OrderController(Controller):
    path = "/api/orders"
    tags = ["Orders"]

    @post(
        "/",
        operation_id="createOrder",
        summary="Place an order",
        description=(
            "Reserves stock for every line and writes the order in one transaction: all or nothing. Lines naming "
            "the same product are merged. Not enough stock answers 400 (as in the original API) with "
            "`type: /problems/insufficient-stock`, naming each product with the quantity available; unknown or "
            "inactive products answer 400. With an `Idempotency-Key` header, repeating the same request within "
            "24 hours returns the first order instead of placing another (a different body with the same key is "
            "422; a request with that key still in progress is 409)."
        ),
        status_code=201,
        guards=WRITE,
        security=bearer_security("write"),
        responses=problems(409, 422),
    )
    async def place_order(
        self,
        request: Request[Any, Any, Any],
        orders: NamedDependency[OrderService],
        data: JSONBody[PlaceOrder],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name="Idempotency-Key",
                max_length=255,
                pattern=r"^[!-~]([ -~]*[!-~])?$",  # visible ASCII (a UUID is typical), no space at either end
                description="Makes retries safe (24 hours). Visible ASCII, e.g. a UUID.",
            ),
        ] = None,
    ) -> Response[OrderRead]:
        if idempotency_key is not None and not idempotency_key.strip():
            raise FieldValidationError({"Idempotency-Key": ["Must not be blank."]})
        # The principal is read from the request rather than injected: see `orders_provider`.
        placed = await orders.place(principal_of(request).require_user_id(), data, idempotency_key)
        if placed.event is not None:
            await stock_changed(request.app, (item.product.id for item in placed.order.items))
        headers = {"Location": f"/api/orders/{placed.order.id}/"}
        if placed.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(placed.order, status_code=201, headers=headers)

    @get(
        "/",
        operation_id="listOrders",
        summary="List orders",
        description=(
            "Newest first with cursor pagination (`next`/`previous` are URLs). Customers see their own orders; "
            "staff see everybody's and may filter by `status` and `customer` (an id or a username)."
        ),
        guards=READ,
        security=bearer_security("read"),
    )
    async def list_orders(
        self,
        request: Request[Any, Any, Any],
        orders: NamedDependency[OrderService],
        principal: NamedDependency[Principal],
        cursor: Annotated[str | None, QueryParameter(description="Opaque; take it from `next` or `previous`.")] = None,
        page_size: Annotated[int, QueryParameter(ge=1, description="Default 10, at most 100.")] = 10,
        status: Annotated[OrderStatus | None, QueryParameter(description="Staff only.")] = None,
        customer: Annotated[
            str | None,
            QueryParameter(
                description="Staff only: a customer's id or username.",
                min_length=1,
                max_length=150,
                pattern=r"^[\w.@+-]+\Z",
                schema_extra={"pattern": r"^[\w.@+-]+$"},  # the document's patterns are ECMA-262: no `\Z`
            ),
        ] = None,
    ) -> CursorPage[OrderRead]:
        if not principal.is_staff:
            status, customer = None, None
        items, window = await orders.reads.page(
            principal, cursor=cursor, page_size=min(page_size, 100), status=status, customer=customer
        )
        return cursor_page(request, items, window)

    @get("/{order_id:int}/", operation_id="getOrder", summary="An order", guards=READ, security=bearer_security("read"))
    async def get_order(
        self, orders: NamedDependency[OrderService], principal: NamedDependency[Principal], order_id: RowId
    ) -> OrderRead:
        return await orders.reads.get(order_id, principal)

    @post(
        "/{order_id:int}/cancel/",
        operation_id="cancelOrder",
        summary="Cancel an order",
        description="Only pending or confirmed orders; the stock comes back exactly once. A second cancel is 409.",
        status_code=200,
        guards=WRITE,
        security=bearer_security("write"),
        responses=problems(409),
    )
    async def cancel_order(
        self,
        request: Request[Any, Any, Any],
        orders: NamedDependency[OrderService],
        principal: NamedDependency[Principal],
        order_id: RowId,
    ) -> OrderRead:
        order = await orders.cancel(order_id, principal)
        await stock_changed(request.app, (item.product.id for item in order.items))
        return order

    @post(
        "/{order_id:int}/status/",
        operation_id="changeOrderStatus",
        summary="Advance an order (staff)",
        description="pending → confirmed → processing → shipped → delivered, one step at a time; else 409.",
        status_code=200,
        guards=STAFF_WRITE,
        security=bearer_security("write"),
        responses=problems(409),
    )
    async def change_status(
        self,
        orders: NamedDependency[OrderService],
        principal: NamedDependency[Principal],
        order_id: RowId,
        data: JSONBody[OrderStatusChange],
    ) -> OrderRead:
        return await orders.advance(order_id, principal, data.status)

    @patch(
        "/{order_id:int}/",
        operation_id="updateOrder",
        summary="Change an order's status (staff)",
        description="The same transitions as `POST /api/orders/{id}/status/`; only `status` can change.",
        guards=STAFF_WRITE,
        security=bearer_security("write"),
        responses=problems(409),
    )
    async def patch_order(
        self,
        orders: NamedDependency[OrderService],
        principal: NamedDependency[Principal],
        order_id: RowId,
        data: JSONBody[OrderStatusChange],
    ) -> OrderRead:
        return await orders.advance(order_id, principal, data.status)
