"""shop_notify: the notify bounded context. Public API for other contexts and host apps."""

from shop_notify.plugin import NotifyPlugin, NotifySettings

__all__ = ("NotifyPlugin", "NotifySettings")
