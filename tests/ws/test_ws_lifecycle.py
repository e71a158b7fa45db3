"""How connections end: too slow (4008), revoked (4001), server shutdown (1001)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from wshelp import Client, LiveServer, make_account, open_client

from hubbub.core.events import Event, Scope


async def read_until_closed(client: Client) -> int:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await client.recv(timeout=20)
    assert info.value.rcvd is not None
    return info.value.rcvd.code


async def test_a_consumer_that_stops_reading_gets_4008_and_resumes(ws_server: LiveServer) -> None:
    services = ws_server.services
    services.fanout.send_buffer = 16384
    alice = await make_account(services, "alice")
    bob = await make_account(services, "bob")
    room = await services.hub.create_room(alice.user, "lobby")
    rid = room.conversation.id
    await services.hub.join(bob.user, rid)
    a = await open_client(ws_server, alice)
    b = await open_client(ws_server, bob, max_queue=1)  # stops reading its socket when full
    for i in range(3):
        await services.hub.post(alice.user, rid, f"before {i}")
    # a burst far larger than every buffer on the way: the server's, both kernels'
    pad = orjson.dumps({"type": "notice", "pad": "x" * 60_000})
    bob_conns = lambda: services.fanout.users.get(bob.user.id, set())  # noqa: E731
    for _ in range(2000):
        await services.bus.publish(Event(Scope.USER, bob.user.id, pad))
        await asyncio.sleep(0)  # a loop pass: the fan-out flushes
        if not bob_conns():
            break
    assert not bob_conns(), "the slow connection was never closed"
    # alice is unaffected
    await a.send(op="send", nonce="during", conversation=rid, text="during")
    await a.expect("ack", nonce="during")
    # bob reads on: a prefix of the stream, then the close code
    assert await read_until_closed(b) == 4008
    start = b.ready["conversations"][0]["last_seq"]
    seqs = [s for c, s in b.seen if c == rid]
    assert seqs == list(range(start + 1, start + 1 + len(seqs)))
    # and resumes where it stopped: nothing missing, nothing twice
    b2 = await open_client(ws_server, bob, resume={rid: b.positions[rid]})
    last = (await services.hub.conversation(alice.user, rid)).conversation.last_seq
    while b2.positions[rid] < last:
        await b2.recv()
    assert [s for c, s in b.seen + b2.seen if c == rid] == list(range(start + 1, last + 1))
    await a.close()
    await b2.close()


async def test_revoking_a_session_closes_its_connections_only(ws_server: LiveServer) -> None:
    services = ws_server.services
    alice = await make_account(services, "alice")
    by_cookie = await open_client(ws_server, alice, bearer=False)
    by_token = await open_client(ws_server, alice)
    await services.accounts.revoke_session(alice.user, alice.session_id)
    assert await read_until_closed(by_cookie) == 4001
    revoked = await by_token.expect("revoked")
    assert revoked == {"type": "revoked", "session": alice.session_id}
    await by_token.send(op="ping")
    await by_token.expect("pong")
    # revoking the token closes the other one
    [token] = await services.accounts.tokens(alice.user)
    await services.accounts.delete_token(alice.user, token.id)
    assert await read_until_closed(by_token) == 4001


async def test_server_shutdown_says_going_away(ws_server: LiveServer) -> None:
    alice = await make_account(ws_server.services, "alice")
    client = await open_client(ws_server, alice)
    ws_server.uvicorn.should_exit = True
    assert await read_until_closed(client) == 1001
