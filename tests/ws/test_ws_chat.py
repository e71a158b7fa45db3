"""Two users chatting over real sockets, in a room and in a DM."""

from __future__ import annotations

from wshelp import LiveServer, make_account, open_client

from hubbub.web.wsproto import HubbubWebSocketProtocol


async def test_two_users_chat_in_a_room_and_a_dm(ws_server: LiveServer) -> None:
    hub = ws_server.services.hub
    alice = await make_account(ws_server.services, "alice")
    bob = await make_account(ws_server.services, "bob")
    room = await hub.create_room(alice.user, "lobby")
    await hub.join(bob.user, room.conversation.id)
    rid = room.conversation.id

    a = await open_client(ws_server, alice)
    b = await open_client(ws_server, bob, bearer=False)
    assert {c["id"] for c in a.ready["conversations"]} == {rid}
    # the raw write path is in use, not ASGI send
    writers = {type(c.writer) for c in ws_server.services.fanout.everyone}
    assert writers == {HubbubWebSocketProtocol}

    await a.send(op="send", nonce="n1", conversation=rid, text="hello bob")
    ack = await a.expect("ack")
    assert ack["nonce"] == "n1" and ack["conversation"] == rid
    got = await b.expect("message", text="hello bob")
    assert got["seq"] == ack["seq"] and got["sender"] == "alice" and got["id"] == ack["id"]

    # a DM opened over REST reaches both live connections, and its messages follow
    dm = await hub.open_dm(alice.user, "bob")
    did = dm.conversation.id
    sub = await b.expect("conversation")
    assert sub["conversation"]["id"] == did
    await b.send(op="send", nonce="n2", conversation=did, text="hi alice")
    ack2 = await b.expect("ack", nonce="n2")
    got2 = await a.expect("message", conversation=did)
    assert got2["text"] == "hi alice" and got2["seq"] == ack2["seq"]

    await a.send(op="typing", conversation=rid)
    typing = await b.expect("typing")
    assert typing == {"type": "typing", "conversation": rid, "user": "alice"}

    await b.send(op="read", conversation=rid, seq=ack["seq"])
    read = await b.expect("read")
    assert read == {"type": "read", "conversation": rid, "seq": ack["seq"]}
    await a.close()
    await b.close()


async def test_resending_a_nonce_returns_the_first_ack_and_stores_once(
    ws_server: LiveServer,
) -> None:
    services = ws_server.services
    alice = await make_account(services, "alice")
    bob = await make_account(services, "bob")
    room = await services.hub.create_room(alice.user, "lobby")
    rid = room.conversation.id
    await services.hub.join(bob.user, rid)
    a = await open_client(ws_server, alice)
    b = await open_client(ws_server, bob)
    await a.send(op="send", nonce="same", conversation=rid, text="once")
    first = await a.expect("ack")
    await a.send(op="send", nonce="same", conversation=rid, text="once")
    second = await a.expect("ack")
    assert first == second
    # a new connection (a client retrying after a cut) gets the same ack too
    await a.close()
    a2 = await open_client(ws_server, alice)
    await a2.send(op="send", nonce="same", conversation=rid, text="once")
    assert await a2.expect("ack") == first
    await a2.send(op="ping", nonce="sync")
    await a2.expect("pong")
    history = await services.hub.history(alice.user, rid, after=0)
    assert [m.text for m in history if m.kind == "text"] == ["once"]
    # bob saw it exactly once
    got = await b.expect("message", text="once")
    assert got["seq"] == first["seq"]
    await b.send(op="ping", nonce="sync")
    await b.expect("pong")
    assert [s for c, s in b.seen if c == rid].count(first["seq"]) == 1
    await a2.close()
    await b.close()
