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
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from . import api
from .deps import Services
from .errors import TooLarge, error_response, install_error_handlers
from .static import static_routes

WEBSOCKET_PATH = "/api/ws"
MAX_BODY = 1 << 20
"""Bytes in a request body: room for the longest message, JSON-escaped."""


def create_web_app(services: Services, **fastapi_options: Any) -> FastAPI:
    """The ASGI app serving the API; ``fastapi_options`` (a lifespan, say) pass through."""
    app = FastAPI(
        title="Hubbub",
        version=__version__,
        summary="A self-hosted chat server: rooms, DMs and persistent IRC networks.",
        description="Errors, authentication and paging are described in docs/api.md.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        swagger_ui_oauth2_redirect_url="/api/docs/oauth2-redirect",
        redoc_url=None,
        **fastapi_options,
    )
    app.state.services = services
    install_error_handlers(app)
    api.include_api(app)
    _add_websocket_route(app)
    app.router.routes.extend(static_routes())  # the web client, when installed
    app.add_middleware(BodyLimit, max_body=MAX_BODY)
    return app


class BodyLimit:
    """Refuse request bodies over ``max_body`` bytes with 413 ``too_large``.

    A declared Content-Length over the limit is answered before anything is
    read; a chunked body is counted as it arrives and cut off at the limit.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await error_response(TooLarge(self._message()))(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    # FastAPI passes an HTTPException from reading the body on
                    # to the handlers, which render it as JSON.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"a request body is at most {self.max_body} bytes"


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
