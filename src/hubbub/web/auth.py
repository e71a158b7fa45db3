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

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
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


class CredentialCache:
    """The principals of recently authenticated credentials, for ``ttl`` seconds.

    A reconnect storm authenticates the same few credentials thousands of times
    in a few seconds (every tab and device of a user, every bot connection);
    this saves the store read for all but the first (issue 5: the token lookup
    was ~19 % of the CPU of a WebSocket connect). Only successes are kept.

    Revocation: every way a credential ends (logout, session or token revoked,
    password change, user removed) publishes ``Control.REVOKE`` for the user
    (``core/accounts.py``), and the fan-out, a listener of the bus in every
    process, calls :meth:`forget_user`: the user's entries go, and a lookup
    that started before and ends after it is not kept (:attr:`generation`).
    A session's own expiry ends its entry too. ``ttl`` bounds anything else
    (a role changed, a store edited by hand).
    """

    def __init__(
        self,
        ttl: float = 2.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[bytes, tuple[float, Principal]] = {}
        self.generation = 0  # bumped by every forget_user
        self._inflight: dict[bytes, tuple[int, asyncio.Future[Principal | None]]] = {}

    @staticmethod
    def key(kind: str, credential: str) -> bytes:
        """The cache key of a credential: a digest, so no secret is kept here."""
        return hashlib.blake2b(f"{kind}:{credential}".encode(), digest_size=16).digest()

    def get(self, key: bytes) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: bytes, principal: Principal, generation: int, expires_ms: int = 0) -> None:
        """Keep ``principal``, unless a revocation came since ``generation`` was read."""
        if generation != self.generation or self.ttl <= 0:
            return
        now = self._clock()
        deadline = now + self.ttl
        if expires_ms:
            deadline = min(deadline, now + (expires_ms - time.time() * 1000) / 1000)
        entries = self._entries
        if len(entries) >= self.max_entries:
            for stale in [k for k, (d, _) in entries.items() if d <= now]:
                del entries[stale]
            if len(entries) >= self.max_entries:
                entries.clear()
        entries[key] = (deadline, principal)

    async def lookup(
        self, key: bytes, fetch: Callable[[], Awaitable[tuple[Principal | None, int]]]
    ) -> Principal | None:
        """The principal for ``key``: kept, being read by another upgrade, or read
        now by ``fetch`` (which returns it and, for a session, its expiry in ms)."""
        hit = self.get(key)
        if hit is not None:
            return hit
        generation = self.generation
        inflight = self._inflight.get(key)
        if inflight is not None and inflight[0] == generation:
            # the same credential is being read: share that read (a storm reads it once),
            # unless a revocation came since it started
            return await asyncio.shield(inflight[1])
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = (generation, future)
        try:
            principal, expires_ms = await fetch()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" log when nobody shared it
            raise
        finally:
            if self._inflight.get(key, (0, None))[1] is future:
                del self._inflight[key]
        future.set_result(principal)
        if principal is not None:
            self.put(key, principal, generation, expires_ms)
        return principal

    def forget_user(self, user_id: int) -> None:
        self.generation += 1
        entries = self._entries
        for key in [k for k, (_, p) in entries.items() if p.user.id == user_id]:
            del entries[key]

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()


async def principal_from_scope(
    services: Services, scope: Any, cache: CredentialCache | None = None
) -> Principal | None:
    """The principal of an ASGI ``http`` or ``websocket`` scope, or None.

    With ``cache`` (the WebSocket upgrade), a credential authenticated within
    the last seconds and not revoked since is not looked up again.
    """
    headers = Headers(scope=scope)
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    accounts = services.accounts
    # Only Bearer is ours: a proxy's Basic auth in front of Hubbub must not
    # hide the session cookie.
    if scheme.lower() == "bearer":
        token_secret = credential.strip()

        async def by_token() -> tuple[Principal | None, int]:
            found = await accounts.authenticate_token(token_secret)
            if found is None:
                return None, 0
            token, user = found
            return Principal(user=user, via="token", token_id=token.id), 0

        if cache is None:
            return (await by_token())[0]
        return await cache.lookup(cache.key("token", token_secret), by_token)
    secret = session_secret(headers)
    if secret is None:
        return None
    session_secret_ = secret

    async def by_session() -> tuple[Principal | None, int]:
        session = await accounts.authenticate_session(session_secret_)
        if session is None:
            return None, 0
        info, user = session
        return Principal(user=user, via="cookie", session_id=info.id), info.expires_at

    if cache is None:
        return (await by_session())[0]
    return await cache.lookup(cache.key("session", secret), by_session)


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
