"""The handshake: Origin checked against our own, credentials required."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from wshelp import TIMEOUT, LiveServer, make_account, open_client


async def refused(server: LiveServer, headers: dict[str, str]) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with connect(server.url, additional_headers=headers, open_timeout=TIMEOUT):
            pass
    return info.value.response.status_code


async def test_a_foreign_origin_is_refused(ws_server: LiveServer) -> None:
    alice = await make_account(ws_server.services, "alice")
    cookie = f"hubbub_session={alice.cookie}"
    evil = "http://evil.example"
    assert await refused(ws_server, {"Cookie": cookie, "Origin": evil}) == 403
    assert await refused(ws_server, {"Cookie": cookie, "Origin": "null"}) == 403
    # a different port is a different origin
    other_port = f"http://127.0.0.1:{ws_server.port + 1}"
    assert await refused(ws_server, {"Cookie": cookie, "Origin": other_port}) == 403
    # a bearer token does not make a foreign origin acceptable
    bearer = f"Bearer {alice.token}"
    assert await refused(ws_server, {"Authorization": bearer, "Origin": evil}) == 403


async def test_a_cookie_needs_an_origin_a_token_does_not(ws_server: LiveServer) -> None:
    alice = await make_account(ws_server.services, "alice")
    assert await refused(ws_server, {"Cookie": f"hubbub_session={alice.cookie}"}) == 403
    client = await open_client(ws_server, alice)  # bearer, no Origin
    assert client.ready["user"]["name"] == "alice"
    await client.close()
    client = await open_client(ws_server, alice, bearer=False)  # cookie, our Origin
    await client.close()


async def test_no_or_bad_credentials_are_refused(ws_server: LiveServer) -> None:
    origin = {"Origin": ws_server.origin}
    assert await refused(ws_server, origin) == 401
    assert await refused(ws_server, {**origin, "Cookie": "hubbub_session=nope"}) == 401
    assert await refused(ws_server, {"Authorization": "Bearer nope"}) == 401
    assert await refused(ws_server, {**origin, "Authorization": "Basic YTpi"}) == 401
    # not a bearer token, so the missing Origin is what is refused first
    assert await refused(ws_server, {"Authorization": "Basic YTpi"}) == 403


async def test_public_url_is_our_origin(ws_server: LiveServer) -> None:
    ws_server.services.settings.public_url = "https://chat.example.org/chat/"
    alice = await make_account(ws_server.services, "alice")
    headers = {"Cookie": f"hubbub_session={alice.cookie}", "Origin": "https://chat.example.org"}
    async with connect(ws_server.url, additional_headers=headers, open_timeout=TIMEOUT) as ws:
        assert "ready" in str(await ws.recv())
