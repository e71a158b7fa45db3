"""Under a server without Hubbub's protocol class, the endpoint still works
through ASGI ``send`` (slower): here uvicorn's stock websockets-sansio."""

from __future__ import annotations

import asyncio

from wshelp import LiveServer, make_account, open_client

from hubbub.app import HubbubServer, build_services, close_services, create_app, uvicorn_config
from hubbub.config import Settings
from hubbub.web.ws import AsgiWriter


async def test_chat_over_the_asgi_fallback(settings: Settings) -> None:
    services = await build_services(settings)
    config = uvicorn_config(create_app(services), settings)
    config.ws = "websockets-sansio"
    server = HubbubServer(config, capture_signals=False)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        assert server.bound_port is not None
        live = LiveServer(services, server.bound_port, server)
        alice = await make_account(services, "alice")
        bob = await make_account(services, "bob")
        room = await services.hub.create_room(alice.user, "lobby")
        rid = room.conversation.id
        await services.hub.join(bob.user, rid)
        a = await open_client(live, alice)
        b = await open_client(live, bob, resume={rid: 0})
        assert {type(c.writer) for c in services.fanout.everyone} == {AsgiWriter}
        await a.send(op="send", nonce="n1", conversation=rid, text="hello")
        ack = await a.expect("ack")
        while b.positions[rid] < ack["seq"]:
            await b.recv()
        assert [s for c, s in b.seen if c == rid] == list(range(1, ack["seq"] + 1))
        await a.close()
        await b.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        await close_services(services)
