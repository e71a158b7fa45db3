"""Who is asking: the session cookie or the API token of a request, and CSRF.

:func:`principal_from_scope` works on any ASGI scope, ``http`` or
``websocket``, so the REST API and the WebSocket upgrade authenticate the same
way. An ``Authorization: Bearer`` header wins over a cookie (and when its
token is not valid, the cookie is not tried).

Cookies ride along on cross-site requests; bearer tokens do not. So a request
authenticated by cookie that changes anything must come from our own origin
(the ``Origin`` header, or ``Referer`` when a browser sends no Origin), which
is the defence OWASP calls "verifying origin with standard headers". Browsers
also send ``Origin`` on WebSocket upgrades, and :func:`origin_allowed` is the
check for those (cross-site WebSocket hijacking).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from ..core.model import User

if TYPE_CHECKING:
    from ..config import Settings
    from .deps import Services

SESSION_COOKIE = "hubbub_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_WEB_SCHEME = {"ws": "http", "wss": "https"}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user and the credential that proved it."""

    user: User
    via: Literal["cookie", "token"]
    session_id: str | None = None
    token_id: int | None = None


async def principal_from_scope(services: Services, scope: Any) -> Principal | None:
    """The principal of an ASGI ``http`` or ``websocket`` scope, or None."""
    headers = Headers(scope=scope)
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    # Only Bearer is ours: a proxy's Basic auth in front of Hubbub must not
    # hide the session cookie.
    if scheme.lower() == "bearer":
        found = await services.accounts.authenticate_token(credential.strip())
        if found is None:
            return None
        token, user = found
        return Principal(user=user, via="token", token_id=token.id)
    secret = session_secret(headers)
    if secret is None:
        return None
    session = await services.accounts.authenticate_session(secret)
    if session is None:
        return None
    info, user = session
    return Principal(user=user, via="cookie", session_id=info.id)


def session_secret(headers: Headers) -> str | None:
    cookie = headers.get("cookie")
    if not cookie:
        return None
    return cookie_parser(cookie).get(SESSION_COOKIE) or None


def normalize_origin(url: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port, or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = _WEB_SCHEME.get(parts.scheme.lower(), parts.scheme.lower())
    host = parts.hostname
    if scheme not in ("http", "https") or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def own_origins(settings: Settings, scope: Any) -> set[str]:
    """The origins this server answers as: the configured public URL, and the
    scheme and Host of the request as seen after the proxy middleware."""
    origins: set[str] = set()
    if settings.public_url:
        public = normalize_origin(settings.public_url)
        if public:
            origins.add(public)
    host = Headers(scope=scope).get("host")
    if host:
        scheme = _WEB_SCHEME.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
        seen = normalize_origin(f"{scheme}://{host}")
        if seen:
            origins.add(seen)
    return origins


def request_origin(headers: Headers) -> str | None:
    """The origin a browser says the request comes from: Origin, else Referer."""
    origin = headers.get("origin")
    if origin is not None:
        return normalize_origin(origin)  # "null" (sandboxed, file:) is never ours
    referer = headers.get("referer")
    if referer is not None:
        return normalize_origin(referer)
    return None


def origin_allowed(settings: Settings, scope: Any, *, required: bool = True) -> bool:
    """Whether the request comes from our own origin.

    With ``required=False`` a request that names no origin at all passes (a
    non-browser client); one that names a foreign origin never does.
    """
    headers = Headers(scope=scope)
    if headers.get("origin") is None and headers.get("referer") is None:
        return not required
    origin = request_origin(headers)
    return origin is not None and origin in own_origins(settings, scope)
