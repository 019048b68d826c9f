"""What every context plugin installs into the app it is mounted in, so it works alone or composed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.di import Provide

from shop_kernel.auth import provide_principal
from shop_kernel.openapi import document_problems
from shop_kernel.problems import problem_exception_handlers

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

__all__ = ("DB_SESSION_KEY", "install_shared")

DB_SESSION_KEY = "db_session"
"""The dependency name under which the host app's SQLAlchemy plugin provides an `AsyncSession`."""


def install_shared(app_config: AppConfig) -> None:
    """Problem+json handlers, the `principal` dependency and the documented error answers of every operation.

    Idempotent; the host app's own handlers and dependencies win.
    """
    for exc_type, handler in problem_exception_handlers().items():
        app_config.exception_handlers.setdefault(exc_type, handler)
    app_config.dependencies.setdefault("principal", Provide(provide_principal))
    if not any(getattr(hook, "func", hook) is document_problems for hook in app_config.on_startup):
        app_config.on_startup.append(document_problems)
