"""`NotifyPlugin`: mounts the notify context into any Litestar app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from litestar.plugins import InitPluginProtocol

from shop_kernel import install_shared

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

__all__ = ("NotifyPlugin", "NotifySettings")


@dataclass(frozen=True)
class NotifySettings:
    """Configuration a host app passes to the plugin (filled as the context grows)."""


class NotifyPlugin(InitPluginProtocol):
    def __init__(self, settings: NotifySettings | None = None) -> None:
        self.settings = settings or NotifySettings()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        install_shared(app_config)
        return app_config
