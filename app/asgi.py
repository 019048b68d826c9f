"""ASGI entry point: `uvicorn --factory app.asgi:create_app`."""

from app.main import create_app

__all__ = ("create_app",)
