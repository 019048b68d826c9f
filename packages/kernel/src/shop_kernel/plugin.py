"""What every context plugin installs into the app it is mounted in, so it works alone or composed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Request
from litestar.di import Provide
from litestar.exceptions import ImproperlyConfiguredException

from shop_kernel.auth import provide_principal
from shop_kernel.openapi import document_problems
from shop_kernel.problems import problem_exception_handlers
from shop_kernel.response_cache import RESPONSE_CACHE, ResponseCache, ResponseCacheMiddleware
from shop_kernel.text import TextInputMiddleware, TextRequest
from shop_kernel.units import UNIT_KEY, provide_unit

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

__all__ = ("DB_SESSION_KEY", "install_shared")

DB_SESSION_KEY = "db_session"
"""The dependency name under which the host app's SQLAlchemy plugin provides an `AsyncSession`."""


def install_shared(app_config: AppConfig) -> None:
    """Problem+json handlers, the `principal` and `unit` (`shop_kernel.units`) dependencies, the documented error
    answers of every operation, the text rule (`shop_kernel.text`: the request class that checks bodies, the
    middleware that checks URLs) and the response cache (`shop_kernel.response_cache`: one per app, used by routes
    that declare a `CacheRule`).

    Idempotent; the host app's own handlers and dependencies win. A host app's own request class must derive
    from `TextRequest`: without it, text that is not text would reach the handlers of a context.
    """
    for exc_type, handler in problem_exception_handlers().items():
        app_config.exception_handlers.setdefault(exc_type, handler)
    app_config.dependencies.setdefault("principal", Provide(provide_principal))
    app_config.dependencies.setdefault(UNIT_KEY, Provide(provide_unit))
    if app_config.request_class in (None, Request):  # unset, or Litestar's own named explicitly
        app_config.request_class = TextRequest
    elif not issubclass(app_config.request_class, TextRequest):
        raise ImproperlyConfiguredException(
            f"request_class {app_config.request_class.__qualname__} must derive from shop_kernel.TextRequest"
        )
    if not any(isinstance(middleware, TextInputMiddleware) for middleware in app_config.middleware):
        app_config.middleware.append(TextInputMiddleware())
    app_config.state.setdefault(RESPONSE_CACHE, ResponseCache())
    if not any(isinstance(middleware, ResponseCacheMiddleware) for middleware in app_config.middleware):
        app_config.middleware.append(ResponseCacheMiddleware())  # innermost: after auth and rate limits
    if not any(getattr(hook, "func", hook) is document_problems for hook in app_config.on_startup):
        app_config.on_startup.append(document_problems)
