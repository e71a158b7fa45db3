"""The web client: ``index.html`` at ``/`` and its assets under ``/static/``.

The page lives in ``hubbub/static/`` (shipped as package data). It refers to
everything by relative URLs, resolved against a ``<base href>`` that this
module writes into the page from the request's ``root_path``. So the same
files work at ``/`` and under a prefix such as ``/chat/`` (configured, or
from a trusted proxy's ``X-Request-Base``, see :mod:`hubbub.web.proxy`).

Rules:

- ``/`` (and ``/index.html``) answer the page with ``Cache-Control: no-cache``
  and a Content-Security-Policy: scripts only from this origin plus the inline
  import map (allowed by its hash), no plugins, no framing by other sites.
- ``/sw.js`` is the service worker (at the base path, so it may serve the page
  from its cache when offline; it never touches the API).
- ``/static/...`` are the files themselves, all revalidated by ETag
  (``no-cache``: a 304 costs little), so an upgrade of Hubbub, or of a
  vendored package, is seen whole at the next load, never half.
- Without a built client (``index.html`` missing) nothing is routed here:
  `/` answers 404, the API works as ever.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
_IMPORTMAP = re.compile(r'<script type="importmap">(.*?)</script>', re.S)
_BASE_MARK = "<!--base-->"


class ClientPage:
    """``index.html`` with its ``<base href>`` set to the request's base path."""

    def __init__(self, directory: Path) -> None:
        self.template = (directory / "index.html").read_text(encoding="utf-8")
        self.csp = content_security_policy(self.template)

    def base_of(self, request: Request) -> str:
        root = str(request.scope.get("root_path") or "").rstrip("/")
        return root + "/"

    async def respond(self, request: Request) -> Response:
        base = self.base_of(request)
        body = self.template.replace(
            _BASE_MARK, f'<base href="{html.escape(base, quote=True)}">', 1
        )
        return HTMLResponse(
            body,
            headers={
                "Cache-Control": "no-cache",
                "Content-Security-Policy": self.csp,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
            },
        )


def content_security_policy(page: str) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.encode()).digest()).decode() + "'"
        for m in _IMPORTMAP.findall(page)
    )
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {hashes}".strip(),
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "connect-src 'self'",
            "manifest-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'self'",
            "form-action 'self'",
        ]
    )


class Assets(StaticFiles):
    """Static files, revalidated at every use (ETag, ``no-cache``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:

        async def send_with_cache(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"cache-control", b"no-cache"))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_cache)


def static_routes(directory: Path = STATIC_DIR) -> list[BaseRoute]:
    """The routes of the web client, or none when it is not installed."""
    if not (directory / "index.html").is_file():
        return []
    page = ClientPage(directory)

    async def to_root(request: Request) -> Response:
        return RedirectResponse(page.base_of(request), status_code=308)

    async def service_worker(request: Request) -> Response:
        # at the base path itself, so its scope is the whole client
        return FileResponse(
            directory / "sw.js",
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    return [
        Route("/", page.respond, methods=["GET", "HEAD"], name="client", include_in_schema=False),
        Route("/index.html", to_root, methods=["GET", "HEAD"], include_in_schema=False),
        Route("/sw.js", service_worker, methods=["GET", "HEAD"], include_in_schema=False),
        Mount("/static", app=Assets(directory=directory), name="static"),
    ]
