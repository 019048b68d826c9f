"""ASGI entry point: `uvicorn --factory app.asgi:create_app`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from app import main
from app.gc_tuning import freeze_survivors
from app.processes import SUPERVISED, die_with_parent

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ("create_app",)


def create_app() -> Litestar:
    """The app of one serving process; under `shop serve` that process stops when `shop serve` dies. Once it has
    started, what it holds for its whole life is kept out of garbage collection (`app.gc_tuning`)."""
    if os.environ.get(SUPERVISED) == "1":
        die_with_parent()
    app = main.create_app()
    app.on_startup.append(freeze_survivors)
    return app
