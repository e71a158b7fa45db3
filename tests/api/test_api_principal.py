"""principal_from_scope and origin_allowed on raw ASGI scopes, as the WebSocket upgrade uses them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from apihelp import PASSWORD

from hubbub.web.auth import origin_allowed, principal_from_scope
from hubbub.web.deps import Services
from hubbub.web.http import create_web_app


def ws_scope(*headers: tuple[str, str], scheme: str = "ws") -> dict[str, Any]:
    return {
        "type": "websocket",
        "scheme": scheme,
        "path": "/api/ws",
        "root_path": "",
        "query_string": b"",
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


async def test_cookie_on_a_websocket_scope(services: Services, alice: httpx.AsyncClient) -> None:
    secret = alice.cookies["hubbub_session"]
    principal = await principal_from_scope(
        services, ws_scope(("Cookie", f"theme=dark; hubbub_session={secret}; x=1"))
    )
    assert principal is not None
    assert principal.user.name == "alice"
    assert principal.via == "cookie"
    assert principal.session_id is not None
    assert principal.token_id is None


async def test_token_on_a_websocket_scope(services: Services, alice: httpx.AsyncClient) -> None:
    created = (await alice.post("/api/tokens", json={"name": "bot"})).json()
    principal = await principal_from_scope(
        services,
        ws_scope(
            ("Authorization", f"bearer {created['token']}"),
            # a bearer header wins over a cookie, even a valid one
            ("Cookie", f"hubbub_session={alice.cookies['hubbub_session']}"),
        ),
    )
    assert principal is not None
    assert (principal.via, principal.token_id, principal.session_id) == (
        "token",
        created["id"],
        None,
    )


@pytest.mark.parametrize(
    "headers",
    [
        (),
        (("Cookie", "hubbub_session="),),
        (("Cookie", "hubbub_session=forged"),),
        (("Cookie", "other=1"),),
        (("Cookie", ";;;==;"),),
        (("Authorization", "Bearer"),),
        (("Authorization", "Bearer hb_forged"),),
        (("Authorization", "Token hb_x"),),
    ],
)
async def test_no_principal(
    services: Services, alice: httpx.AsyncClient, headers: tuple[tuple[str, str], ...]
) -> None:
    assert await principal_from_scope(services, ws_scope(*headers)) is None


async def test_basic_auth_of_a_proxy_does_not_hide_the_cookie(
    services: Services, alice: httpx.AsyncClient
) -> None:
    scope = ws_scope(
        ("Authorization", "Basic dXNlcjpwYXNz"),
        ("Cookie", f"hubbub_session={alice.cookies['hubbub_session']}"),
    )
    principal = await principal_from_scope(services, scope)
    assert principal is not None
    assert principal.via == "cookie"


async def test_removed_user_has_no_principal(
    services: Services, client_factory: Any, alice: httpx.AsyncClient
) -> None:
    bob = await client_factory("bob")
    scope = ws_scope(("Cookie", f"hubbub_session={bob.cookies['hubbub_session']}"))
    assert await principal_from_scope(services, scope) is not None
    await services.accounts.remove_user("bob")
    assert await principal_from_scope(services, scope) is None
    r = await bob.post("/api/login", json={"name": "bob", "password": PASSWORD})
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("scheme", "origin", "allowed"),
    [
        ("ws", "http://chat.test", True),
        ("ws", "https://chat.test", False),
        ("wss", "https://chat.test", True),
        ("wss", "https://chat.test:443", True),
        ("ws", "http://evil.test", False),
        ("ws", "null", False),
    ],
)
def test_websocket_origin(services: Services, scheme: str, origin: str, allowed: bool) -> None:
    scope = ws_scope(("Host", "chat.test"), ("Origin", origin), scheme=scheme)
    assert origin_allowed(services.settings, scope) is allowed


def test_websocket_without_origin(services: Services) -> None:
    scope = ws_scope(("Host", "chat.test"))
    assert origin_allowed(services.settings, scope) is False
    assert origin_allowed(services.settings, scope, required=False) is True


def test_websocket_route_is_mounted(services: Services) -> None:
    app = create_web_app(services)
    assert "/api/ws" in {getattr(route, "path", None) for route in app.routes}
