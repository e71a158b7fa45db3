"""Two users chatting over real sockets, in a room and in a DM."""

from __future__ import annotations

from wshelp import LiveServer, make_account, open_client


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
