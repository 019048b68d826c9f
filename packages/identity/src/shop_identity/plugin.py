"""`IdentityPlugin`: mounts the identity context into any Litestar app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from litestar.plugins import InitPluginProtocol

from shop_identity import models as _models  # noqa: F401  (tables join the shared metadata)
from shop_identity.controllers import AuthController
from shop_identity.services import CustomerService, TokenService
from shop_kernel import Principal, install_shared

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

__all__ = ("IdentityPlugin", "IdentitySettings")


@dataclass(frozen=True)
class IdentitySettings:
    access_token_ttl: timedelta = timedelta(hours=1)
    refresh_token_ttl: timedelta = timedelta(days=7)


class IdentityPlugin(InitPluginProtocol):
    """Registers customers, registration and profile endpoints; the host app provides `db_session`."""

    def __init__(self, settings: IdentitySettings | None = None) -> None:
        self.settings = settings or IdentitySettings()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        install_shared(app_config)
        app_config.route_handlers.append(AuthController)
        app_config.signature_namespace.update(
            {"CustomerService": CustomerService, "TokenService": TokenService, "Principal": Principal}
        )
        return app_config
