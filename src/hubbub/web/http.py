"""The web application: the REST API, its errors, and the WebSocket route.

Built by the composition root (``hubbub.app``) from the :class:`Services`;
nothing here reaches for globals. OpenAPI lives at ``/api/openapi.json`` and a
browsable page at ``/api/docs``.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute

from .. import __version__
from .api import api_router
from .deps import Services
from .errors import install_error_handlers

WEBSOCKET_PATH = "/api/ws"


def create_web_app(services: Services, **fastapi_options: Any) -> FastAPI:
    """The ASGI app serving the API; ``fastapi_options`` (a lifespan, say) pass through."""
    app = FastAPI(
        title="Hubbub",
        version=__version__,
        summary="A self-hosted chat server: rooms, DMs and persistent IRC networks.",
        description="Errors, authentication and paging are described in docs/api.md.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        **fastapi_options,
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(api_router())
    _add_websocket_route(app)
    return app


def _add_websocket_route(app: FastAPI) -> None:
    """Mount the WebSocket endpoint of :mod:`hubbub.web.ws` at ``/api/ws``.

    That module is built beside this one; until it exists the API is served
    without it. An import error inside it is not hidden.
    """
    if importlib.util.find_spec(f"{__package__}.ws") is None:
        return
    ws: Any = importlib.import_module(f"{__package__}.ws")
    route = ws.websocket_route
    if isinstance(route, BaseRoute):
        app.router.routes.append(route)
    else:
        app.add_api_websocket_route(WEBSOCKET_PATH, route)
