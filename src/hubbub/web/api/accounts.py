"""Accounts over REST: register, login, logout, me, password, sessions, tokens, users."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from ...core.errors import NotFound
from .common import (
    INT32_MAX,
    OptionalPrincipalDep,
    PrincipalDep,
    ServicesDep,
    check_origin_if_present,
    clear_session_cookie,
    client_address,
    set_session_cookie,
)
from .schemas import (
    LoginIn,
    LoginOut,
    MeOut,
    PasswordIn,
    RegisterIn,
    RegistrationOut,
    SessionOut,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserListItem,
    UserOut,
)

router = APIRouter(tags=["accounts"])


@router.get("/registration")
async def registration(services: ServicesDep) -> RegistrationOut:
    """Whether the sign-up form applies here, asked before anyone fills it in.
    Needs no authentication."""
    return RegistrationOut(
        open=services.settings.registration_open,
        first_account=await services.store.count_users() == 0,
    )


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(
    body: RegisterIn,
    request: Request,
    response: Response,
    services: ServicesDep,
    principal: OptionalPrincipalDep,
) -> UserOut:
    """Create an account. The first account of a server is its admin.

    Without a session this logs the new user in (sets the session cookie). An
    admin may register others, also while registration is closed.
    """
    check_origin_if_present(request, services)
    by_admin = principal is not None and principal.user.is_admin
    address = client_address(request)
    user = await services.accounts.register(
        body.name, body.password, trusted=by_admin, address=address
    )
    if principal is None:
        secret, _ = await services.accounts.start_session(
            user, address, request.headers.get("user-agent", "")
        )
        set_session_cookie(response, request, services, secret)
    return UserOut.of(user)


@router.post("/login")
async def login(
    body: LoginIn, request: Request, response: Response, services: ServicesDep
) -> LoginOut:
    """Log in with name and password; the session travels in the ``hubbub_session`` cookie."""
    check_origin_if_present(request, services)
    secret, session, user = await services.accounts.login(
        body.name,
        body.password,
        client_address(request),
        request.headers.get("user-agent", ""),
    )
    set_session_cookie(response, request, services, secret)
    return LoginOut(user=UserOut.of(user), session=SessionOut.of(session, session.id))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    request: Request, services: ServicesDep, principal: OptionalPrincipalDep
) -> Response:
    """End the current session and clear its cookie (a no-op without one)."""
    if principal is not None and principal.session_id is not None:
        with contextlib.suppress(NotFound):  # ended meanwhile: logged out all the same
            await services.accounts.revoke_session(principal.user, principal.session_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookie(response, request, services)
    return response


@router.get("/me")
async def me(principal: PrincipalDep) -> MeOut:
    return MeOut(
        user=UserOut.of(principal.user),
        via=principal.via,
        session=principal.session_id,
        token=principal.token_id,
    )


@router.put("/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(body: PasswordIn, principal: PrincipalDep, services: ServicesDep) -> None:
    """Change your password (the current one is needed); your other sessions end."""
    await services.accounts.change_password(
        principal.user, body.old_password, body.new_password, keep_session=principal.session_id
    )


@router.get("/sessions")
async def sessions(principal: PrincipalDep, services: ServicesDep) -> list[SessionOut]:
    return [
        SessionOut.of(s, principal.session_id)
        for s in await services.accounts.sessions(principal.user)
    ]


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(
    session_id: Annotated[str, Path(max_length=128)],
    principal: PrincipalDep,
    services: ServicesDep,
) -> None:
    """End one of your sessions; its open connections close."""
    await services.accounts.revoke_session(principal.user, session_id)


@router.get("/tokens")
async def tokens(principal: PrincipalDep, services: ServicesDep) -> list[TokenOut]:
    return [TokenOut.of(t) for t in await services.accounts.tokens(principal.user)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
async def create_token(
    body: TokenIn, principal: PrincipalDep, services: ServicesDep
) -> TokenCreated:
    """A new API token for bots and scripts: ``Authorization: Bearer <token>``.

    The secret is in this answer only; Hubbub keeps just its hash.
    """
    secret, token = await services.accounts.create_token(principal.user, body.name)
    return TokenCreated(**TokenOut.of(token).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_token(
    token_id: Annotated[int, Path(ge=1, le=INT32_MAX)],
    principal: PrincipalDep,
    services: ServicesDep,
) -> None:
    await services.accounts.delete_token(principal.user, token_id)


@router.get("/users")
async def users(
    principal: PrincipalDep,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0, le=INT32_MAX, description="a user id")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[UserListItem]:
    """Users by id, ``limit`` at a time after the id ``after``."""
    hub = services.hub
    return [
        UserListItem(**UserOut.of(u).model_dump(), online=hub.is_online(u.id))
        for u in await services.accounts.users(after_id=after, limit=limit)
    ]


@router.get("/users/{name}")
async def user(
    name: Annotated[str, Path(max_length=64)], principal: PrincipalDep, services: ServicesDep
) -> UserListItem:
    found = await services.accounts.user_named(name)
    return UserListItem(**UserOut.of(found).model_dump(), online=services.hub.is_online(found.id))
