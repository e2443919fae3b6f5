"""The proxy's HTTP server: a starlette app whose query routes are lean ASGI handlers."""

from .app import create_app

__all__ = ["create_app"]
