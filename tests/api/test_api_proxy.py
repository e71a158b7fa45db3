"""The API behind a reverse proxy: base path in cookies, forwarded scheme and host in CSRF."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from apihelp import PASSWORD, ClientFactory, error_code

from hubbub.config import Settings

PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example.org"}


class TestBasePath:
    @pytest.fixture
    def settings(self, make_settings: Callable[..., Settings]) -> Settings:
        return make_settings(base_path="/chat")

    async def test_cookie_path_is_the_base_path(self, anon: httpx.AsyncClient) -> None:
        r = await anon.post("/chat/api/register", json={"name": "alice", "password": PASSWORD})
        assert r.status_code == 201
        assert "Path=/chat" in r.headers["set-cookie"]
        assert (await anon.get("/chat/api/me")).json()["user"]["name"] == "alice"
        r = await anon.get("/chat/api/nothing")
        assert error_code(r) == "not_found"


class TestForwarded:
    @pytest.fixture
    def settings(self, make_settings: Callable[..., Settings]) -> Settings:
        return make_settings(trust_forwarded=True, trusted_proxies=["127.0.0.1"])

    async def test_origin_and_cookie_follow_the_proxy(self, client_factory: ClientFactory) -> None:
        proxied = await client_factory(
            headers={**PROXY_HEADERS, "Origin": "https://chat.example.org"}
        )
        r = await proxied.post("/api/register", json={"name": "alice", "password": PASSWORD})
        assert r.status_code == 201
        assert "Secure" in r.headers["set-cookie"]
        secret = r.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        cookie = {"Cookie": f"hubbub_session={secret}"}
        r = await proxied.post("/api/rooms", json={"name": "lobby"}, headers=cookie)
        assert r.status_code == 201
        # the address the proxy listens on is not the origin the browser saw
        r = await proxied.post(
            "/api/rooms",
            json={"name": "other"},
            headers={**cookie, "Origin": "http://testserver"},
        )
        assert error_code(r) == "csrf_failed"
