"""`OrderingPlugin`: mounts the ordering context into any Litestar app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from litestar.di import Provide
from litestar.openapi.spec import Schema
from litestar.plugins import InitPluginProtocol

from shop_kernel import install_shared
from shop_ordering import models as _models  # noqa: F401  (tables join the shared metadata)
from shop_ordering.controllers import OrderController, orders_provider
from shop_ordering.services import OrderingRules

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig

__all__ = ("OrderingPlugin", "OrderingSettings")


@dataclass(frozen=True)
class OrderingSettings:
    max_quantity_per_line: int = 1000
    idempotency_window: timedelta = timedelta(hours=24)


class OrderingPlugin(InitPluginProtocol):
    """Orders with stock reservation; needs the catalog's and identity's tables (their plugins or migrations)."""

    def __init__(self, settings: OrderingSettings | None = None) -> None:
        self.settings = settings or OrderingSettings()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        install_shared(app_config)
        rules = OrderingRules(
            max_quantity_per_line=self.settings.max_quantity_per_line,
            idempotency_window=self.settings.idempotency_window,
        )
        app_config.dependencies["orders"] = Provide(orders_provider(rules))
        app_config.route_handlers.append(OrderController)
        app_config.on_startup.insert(0, partial(document_quantity_limit, limit=self.settings.max_quantity_per_line))
        return app_config


def document_quantity_limit(app: Litestar, *, limit: int) -> None:
    """The configured limit of one product per order as the `maximum` of a line's quantity in the document."""
    if app.openapi_config is None:
        return
    line = (app.openapi_schema.components.schemas or {}).get("OrderLineIn")
    quantity = (line.properties or {}).get("quantity") if isinstance(line, Schema) else None
    if isinstance(quantity, Schema):
        quantity.maximum = limit
