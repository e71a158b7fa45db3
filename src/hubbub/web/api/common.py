"""What every router needs: the services, the caller, the CSRF check, cookies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from ...core.errors import Unauthorized
from ..auth import (
    SAFE_METHODS,
    SESSION_COOKIE,
    Principal,
    origin_allowed,
    principal_from_scope,
)
from ..deps import Services
from ..errors import CsrfFailed

INT32_MAX = 2_147_483_647
SEQ_MAX = 2**62


async def get_services(request: Request) -> Services:
    """``async``: FastAPI runs a plain ``def`` dependency in a worker thread."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def optional_principal(request: Request, services: ServicesDep) -> Principal | None:
    """The caller if authenticated; cookie requests that change state must pass CSRF."""
    principal = await principal_from_scope(services, request.scope)
    if (
        principal is not None
        and principal.via == "cookie"
        and request.method not in SAFE_METHODS
        and not origin_allowed(services.settings, request.scope)
    ):
        raise CsrfFailed("cross-site request refused: Origin does not match this server")
    return principal


# For OpenAPI only (the docs page's "Authorize"); principal_from_scope does the work.
_cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="the session cookie set by /api/login"
)
_bearer_scheme = HTTPBearer(auto_error=False, description="an API token from /api/tokens")


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
    _cookie: Annotated[str | None, Security(_cookie_scheme)],
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)],
) -> Principal:
    if principal is None:
        raise Unauthorized("log in first (session cookie or Authorization: Bearer token)")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


def check_origin_if_present(request: Request, services: Services) -> None:
    """Login and registration have no session yet; a browser's Origin must still be ours."""
    if not origin_allowed(services.settings, request.scope, required=False):
        raise CsrfFailed("cross-site request refused: Origin does not match this server")


def client_address(request: Request) -> str:
    """The client's address as the proxy middleware left it in the scope."""
    return request.client.host if request.client else ""


def cookie_path(request: Request, services: Services) -> str:
    root = str(request.scope.get("root_path") or services.settings.base_path or "")
    return root.rstrip("/") or "/"


def cookie_secure(request: Request, services: Services) -> bool:
    configured = services.settings.cookie_secure
    if configured is not None:
        return configured
    return request.url.scheme in ("https", "wss")


def set_session_cookie(
    response: Response, request: Request, services: Services, secret: str
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=services.settings.session_days * 86_400,
        path=cookie_path(request, services),
        secure=cookie_secure(request, services),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, request: Request, services: Services) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=cookie_path(request, services),
        secure=cookie_secure(request, services),
        httponly=True,
        samesite="lax",
    )
