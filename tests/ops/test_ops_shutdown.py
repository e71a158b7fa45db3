"""Graceful shutdown of the full stack on real uvicorn: WebSockets get 1001, requests
in flight finish, and what was acknowledged is in the store afterwards."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hubbub.app import build_services, close_services
from hubbub.core.model import MessageKind
from testenv import scaled

PASSWORD = "long enough pw"


async def test_websockets_are_closed_with_going_away(server) -> None:  # type: ignore[no-untyped-def]
    services = server.services
    alice = await services.accounts.register("alice", PASSWORD, trusted=True)
    token, _ = await services.accounts.create_token(alice, "test")
    room = await services.hub.create_room(alice, "lobby")
    sockets = []
    for _ in range(3):
        ws = await connect(
            server.ws_url,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=scaled(10),
        )
        ready = orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))
        assert ready["type"] == "ready"
        await ws.send(orjson.dumps({"op": "resume", "positions": {}}).decode())
        sockets.append(ws)
    metrics = services.metrics.render().decode()
    assert "hubbub_ws_connections 3.0" in metrics

    # an acknowledged message, then shutdown
    await sockets[0].send(
        orjson.dumps(
            {"op": "send", "nonce": "n1", "conversation": room.conversation.id, "text": "bye"}
        ).decode()
    )
    async with asyncio.timeout(scaled(10)):
        while True:
            frame = orjson.loads(await sockets[0].recv())
            if frame.get("type") == "ack":
                break
    await server.stop()
    for ws in sockets:
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(scaled(5)):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
    await close_services(services)  # what the `server` fixture's owner does after stop

    again = await build_services(server.settings)
    try:
        history = await again.store.history(room.conversation.id)
        assert [m.text for m in history if m.kind is MessageKind.TEXT] == ["bye"]
    finally:
        await close_services(again)


@pytest.fixture
def settings(make_settings):  # type: ignore[no-untyped-def]
    # the test below serves Hubbub under /chat, as behind nginx's `location /chat/`
    return make_settings(base_path="/chat")


async def test_base_path_through_the_whole_stack(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as client:
        under = await client.get("/chat/api/health")
        assert under.status_code == 200
        stripped = await client.get("/api/health")  # a proxy that strips the prefix
        assert stripped.status_code == 200
        openapi = await client.get("/chat/api/openapi.json")
        assert openapi.status_code == 200
        registered = await client.post(
            "/chat/api/register",
            json={"name": "alice", "password": PASSWORD},
            headers={"Origin": server.url},
        )
        assert registered.status_code == 201, registered.text
        cookie = registered.headers["set-cookie"]
        assert "Path=/chat" in cookie, cookie
