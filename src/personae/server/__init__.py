"""The HTTP server: ``create_app(store, settings=...)`` builds the FastAPI application.

Needs the ``server`` extra (``pip install 'personae[server]'``); ``personae serve`` runs it
under uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from personae.server.settings import ServerSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServerSettings", "create_app"]


def create_app(store: Any = None, *, settings: ServerSettings | None = None,
               engine: Any = None) -> FastAPI:
    """Build the FastAPI application (see :func:`personae.server.app.create_app`)."""
    try:
        from personae.server.app import create_app as _create_app
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("fastapi", "starlette", "orjson",
                                                   "prometheus_client", "pydantic"):
            from personae.errors import MissingExtra

            raise MissingExtra(exc.name, "server") from None
        raise
    return _create_app(store, settings=settings, engine=engine)
