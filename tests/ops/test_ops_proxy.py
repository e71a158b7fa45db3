"""Forwarded headers and the base path: believed from trusted proxies only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from hubbub.config import Settings
from hubbub.web.proxy import ProxyMiddleware, parse_forwarded

PROXY = "10.1.2.3"
OUTSIDER = "203.0.113.9"


async def echo(request: Request) -> JSONResponse:
    response = JSONResponse(
        {
            "client": request.client.host if request.client else None,
            "scheme": request.url.scheme,
            "host": request.headers.get("host"),
            "url": str(request.url),
            "root_path": request.scope.get("root_path", ""),
            "path": request.scope["path"],
            "self": str(request.url_for("echo")),
            "forwarded_headers": sorted(
                k for k in request.headers if k.startswith("x-") or k == "forwarded"
            ),
        }
    )
    response.set_cookie("c", "v", path=(request.scope.get("root_path") or "") + "/")
    return response


inner = Starlette(routes=[Route("/api/echo", echo, name="echo")])


def client_for(settings: Settings, peer: str) -> httpx.AsyncClient:
    app = ProxyMiddleware(inner, settings)
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://hubbub.internal:8080")


@pytest.fixture
def trusting(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(trust_forwarded=True, trusted_proxies=["10.0.0.0/8", "127.0.0.1"])


FORWARDED = {
    "X-Forwarded-For": "198.51.100.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "chat.example.org",
}


async def get(settings: Settings, peer: str, path: str = "/api/echo", **headers: str) -> Any:
    async with client_for(settings, peer) as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def test_trusted_proxy_headers_are_applied(trusting: Settings) -> None:
    body = (await get(trusting, PROXY, **FORWARDED)).json()
    assert body["client"] == "198.51.100.7"
    assert body["scheme"] == "https"
    assert body["url"] == "https://chat.example.org/api/echo"
    assert body["self"] == "https://chat.example.org/api/echo"


async def test_untrusted_peer_headers_are_ignored_and_removed(trusting: Settings) -> None:
    body = (await get(trusting, OUTSIDER, **FORWARDED, **{"X-Request-Base": "/evil"})).json()
    assert body["client"] == OUTSIDER
    assert body["scheme"] == "http"
    assert body["host"] == "hubbub.internal:8080"
    assert body["root_path"] == ""
    assert body["forwarded_headers"] == []  # nothing further in can be fooled


async def test_nothing_is_trusted_unless_configured(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(trust_forwarded=False, trusted_proxies=["10.0.0.0/8"])
    body = (await get(settings, PROXY, **FORWARDED)).json()
    assert body["client"] == PROXY
    assert body["scheme"] == "http"
    assert body["forwarded_headers"] == []


async def test_client_is_the_first_untrusted_hop_from_the_right(trusting: Settings) -> None:
    # The client wrote "6.6.6.6" itself; 198.51.100.7 is what our proxies saw.
    body = (
        await get(trusting, PROXY, **{"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.9.9.9"})
    ).json()
    assert body["client"] == "198.51.100.7"


async def test_rfc7239_forwarded(trusting: Settings) -> None:
    header = (
        'for=6.6.6.6;proto=http, for="[2001:db8:cafe::17]:4711";proto=https;host=chat.example.org'
    )
    body = (await get(trusting, PROXY, Forwarded=header)).json()
    assert body["client"] == "2001:db8:cafe::17"
    assert body["url"] == "https://chat.example.org/api/echo"


async def test_bad_values_are_ignored(trusting: Settings) -> None:
    body = (
        await get(
            trusting,
            PROXY,
            **{
                "X-Forwarded-For": "not-an-ip",
                "X-Forwarded-Proto": "gopher",
                "X-Forwarded-Host": "evil.example/path",
            },
        )
    ).json()
    assert body["client"] == PROXY
    assert body["scheme"] == "http"
    assert body["host"] == "hubbub.internal:8080"


async def test_request_base_header_sets_root_path_and_cookie_path(trusting: Settings) -> None:
    response = await get(
        trusting, PROXY, "/chat/api/echo", **FORWARDED, **{"X-Request-Base": "/chat"}
    )
    body = response.json()
    assert body["root_path"] == "/chat"
    assert body["path"] == "/chat/api/echo"
    assert body["self"] == "https://chat.example.org/chat/api/echo"
    assert "Path=/chat/" in response.headers["set-cookie"]


async def test_request_base_as_full_url_like_convos(trusting: Settings) -> None:
    body = (
        await get(
            trusting,
            PROXY,
            "/chat/api/echo",
            **{"X-Request-Base": "https://example.org/chat/"},
        )
    ).json()
    assert body["self"] == "https://example.org/chat/api/echo"


async def test_prefix_stripped_by_the_proxy_is_put_back(trusting: Settings) -> None:
    # nginx `proxy_pass http://hubbub/;` strips /chat: the path arrives bare.
    body = (await get(trusting, PROXY, "/api/echo", **{"X-Request-Base": "/chat"})).json()
    assert body["path"] == "/chat/api/echo"
    assert body["self"] == "http://hubbub.internal:8080/chat/api/echo"


async def test_configured_base_path_needs_no_proxy(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(base_path="/chat/")
    body = (await get(settings, OUTSIDER, "/chat/api/echo")).json()
    assert body["root_path"] == "/chat"
    assert body["self"] == "http://hubbub.internal:8080/chat/api/echo"


async def test_request_base_from_an_untrusted_peer_is_ignored(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        base_path="/chat", trust_forwarded=True, trusted_proxies=["10.0.0.0/8"]
    )
    body = (await get(settings, OUTSIDER, "/chat/api/echo", **{"X-Request-Base": "/other"})).json()
    assert body["root_path"] == "/chat"


async def test_websocket_scheme_follows_the_proxy(trusting: Settings) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(scope)

    middleware = ProxyMiddleware(app, trusting)
    scope = {
        "type": "websocket",
        "scheme": "ws",
        "path": "/api/ws",
        "raw_path": b"/api/ws",
        "root_path": "",
        "client": (PROXY, 1234),
        "headers": [
            (b"host", b"hubbub.internal"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-for", b"198.51.100.7"),
            (b"x-request-base", b"/chat"),
        ],
    }
    await middleware(scope, None, None)  # type: ignore[arg-type]
    assert seen["scheme"] == "wss"
    assert seen["client"] == ("198.51.100.7", 0)
    assert seen["root_path"] == "/chat"
    assert seen["path"] == "/chat/api/ws"
    assert seen["raw_path"] == b"/chat/api/ws"
    assert scope["path"] == "/api/ws"  # the caller's scope is not changed


def test_parse_forwarded_quoted_values() -> None:
    assert parse_forwarded('for="_gazonk";proto=https, For="[2001:db8::1]:80"') == [
        {"for": "_gazonk", "proto": "https"},
        {"for": "[2001:db8::1]:80"},
    ]


@pytest.mark.parametrize("base", ["/chat/../admin", "chat", "/chat?x=1", "//evil.example", "/./x"])
async def test_bad_request_base_is_ignored(trusting: Settings, base: str) -> None:
    body = (await get(trusting, PROXY, **{"X-Request-Base": base})).json()
    assert body["root_path"] == ""
