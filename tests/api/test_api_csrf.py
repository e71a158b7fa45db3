"""Cookie requests that change state must come from our own origin; tokens are exempt."""

from __future__ import annotations

import httpx
import pytest
from apihelp import PASSWORD, ClientFactory, error_code

from hubbub.web.auth import normalize_origin
from hubbub.web.deps import Services


@pytest.fixture
async def cookie_only(client_factory: ClientFactory, alice: httpx.AsyncClient) -> httpx.AsyncClient:
    """Alice's session cookie in a client that sends no Origin by default."""
    c = await client_factory(headers={})
    c.cookies.set("hubbub_session", alice.cookies["hubbub_session"])
    return c


async def test_cookie_post_without_origin_refused(cookie_only: httpx.AsyncClient) -> None:
    r = await cookie_only.post("/api/rooms", json={"name": "lobby"})
    assert r.status_code == 403
    assert error_code(r) == "csrf_failed"


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "http://testserver.evil.example",
        "https://testserver",  # another scheme is another origin
        "http://testserver:8080",
        "null",
        "garbage",
    ],
)
async def test_cookie_post_foreign_origin_refused(
    cookie_only: httpx.AsyncClient, origin: str
) -> None:
    r = await cookie_only.post("/api/rooms", json={"name": "lobby"}, headers={"Origin": origin})
    assert r.status_code == 403
    assert error_code(r) == "csrf_failed"


@pytest.mark.parametrize(
    ("method", "path"), [("PUT", "/api/me/password"), ("DELETE", "/api/tokens/1")]
)
async def test_other_unsafe_methods_checked(
    cookie_only: httpx.AsyncClient, method: str, path: str
) -> None:
    r = await cookie_only.request(method, path, headers={"Origin": "http://evil.example"})
    assert error_code(r) == "csrf_failed"


async def test_cookie_post_own_origin_or_referer_ok(cookie_only: httpx.AsyncClient) -> None:
    r = await cookie_only.post(
        "/api/rooms", json={"name": "lobby"}, headers={"Origin": "http://TESTSERVER:80"}
    )
    assert r.status_code == 201
    r = await cookie_only.post(
        "/api/rooms", json={"name": "other"}, headers={"Referer": "http://testserver/chat/x"}
    )
    assert r.status_code == 201


async def test_cookie_get_needs_no_origin(cookie_only: httpx.AsyncClient) -> None:
    assert (await cookie_only.get("/api/me")).status_code == 200


async def test_public_url_origin_accepted(
    services: Services, cookie_only: httpx.AsyncClient
) -> None:
    services.settings.public_url = "https://chat.example.org/chat/"
    r = await cookie_only.post(
        "/api/rooms", json={"name": "lobby"}, headers={"Origin": "https://chat.example.org"}
    )
    assert r.status_code == 201


async def test_bearer_is_exempt(alice: httpx.AsyncClient, client_factory: ClientFactory) -> None:
    token = (await alice.post("/api/tokens", json={"name": "t"})).json()["token"]
    bot = await client_factory(
        headers={"Authorization": f"Bearer {token}", "Origin": "http://evil.example"}
    )
    assert (await bot.post("/api/rooms", json={"name": "lobby"})).status_code == 201


async def test_login_with_foreign_origin_refused(
    alice: httpx.AsyncClient, client_factory: ClientFactory
) -> None:
    c = await client_factory(headers={"Origin": "http://evil.example"})
    r = await c.post("/api/login", json={"name": "alice", "password": PASSWORD})
    assert error_code(r) == "csrf_failed"
    r = await c.post("/api/register", json={"name": "mallory", "password": PASSWORD})
    assert error_code(r) == "csrf_failed"
    # a script without any Origin may log in
    script = await client_factory(headers={})
    r = await script.post("/api/login", json={"name": "alice", "password": PASSWORD})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://Example.org", "http://example.org"),
        ("https://example.org:443/x?y", "https://example.org"),
        ("http://example.org:8080/", "http://example.org:8080"),
        ("wss://example.org/api/ws", "https://example.org"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://example.org:99999", None),
        ("ftp://example.org", None),
        ("null", None),
        ("", None),
    ],
)
def test_normalize_origin(url: str, origin: str | None) -> None:
    assert normalize_origin(url) == origin
