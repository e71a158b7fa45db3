"""Every bad input over a real socket gets its error code; the connection lives
on, and another user's connection keeps receiving throughout."""

from __future__ import annotations

import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from wshelp import Client, LiveServer, make_account, open_client

from hubbub.web.wsproto import HARD_FRAME_CAP


async def setup_pair(server: LiveServer) -> tuple[Client, Client, int, int]:
    services = server.services
    alice = await make_account(services, "alice")
    bob = await make_account(services, "bob")
    carol = await make_account(services, "carol")
    room = await services.hub.create_room(alice.user, "lobby")
    rid = room.conversation.id
    await services.hub.join(bob.user, rid)
    private = await services.hub.create_room(carol.user, "secret")
    a = await open_client(server, alice)
    b = await open_client(server, bob)
    return a, b, rid, private.conversation.id


async def bob_still_receives(a: Client, b: Client, rid: int, n: int) -> None:
    await a.send(op="send", nonce=f"ok{n}", conversation=rid, text=f"still here {n}")
    ack = await a.expect("ack", nonce=f"ok{n}")
    got = await b.expect("message", text=f"still here {n}")
    assert got["seq"] == ack["seq"]


async def test_every_bad_input_gets_its_code(ws_server: LiveServer) -> None:
    a, b, rid, private = await setup_pair(ws_server)
    cases: list[tuple[str | bytes, str]] = [
        ("{nope", "bad_json"),
        (b"\x00\x01binary", "bad_json"),
        ("[]", "bad_frame"),
        ('{"op": 1}', "bad_frame"),
        ('{"op": "dance"}', "unknown_op"),
        ('{"op": "send", "nonce": "n", "conversation": "x", "text": "t"}', "bad_frame"),
        (
            '{"op": "send", "nonce": "n", "conversation": 1, "text": "t", "kind": "join"}',
            "bad_frame",
        ),
        ('{"op": "read", "conversation": 1, "seq": -5}', "bad_frame"),
        ('{"op": "resume", "positions": {}}', "bad_frame"),  # a second resume
        ('{"op": "ping", "pad": "' + "x" * 70_000 + '"}', "too_large"),
        (
            orjson.dumps(
                {"op": "send", "nonce": "nm", "conversation": private, "text": "hi"}
            ).decode(),
            "not_member",
        ),
        (
            orjson.dumps(
                {"op": "send", "nonce": "nf", "conversation": 999999, "text": "hi"}
            ).decode(),
            "not_member",
        ),
        (orjson.dumps({"op": "typing", "conversation": private}).decode(), "not_member"),
        (orjson.dumps({"op": "read", "conversation": private, "seq": 1}).decode(), "not_member"),
        (
            orjson.dumps(
                {"op": "send", "nonce": "tl", "conversation": rid, "text": "x" * 4001}
            ).decode(),
            "too_long",
        ),
        (
            orjson.dumps({"op": "send", "nonce": "em", "conversation": rid, "text": "  "}).decode(),
            "bad_request",
        ),
    ]
    for n, (raw, code) in enumerate(cases):
        await a.ws.send(raw)
        error = await a.expect("error")
        assert error["code"] == code, (raw[:80], error)
        await bob_still_receives(a, b, rid, n)
    await a.close()
    await b.close()


async def test_flooding_is_rate_limited_and_recoverable(ws_server: LiveServer) -> None:
    settings = ws_server.services.settings
    settings.send_rate, settings.send_burst = 5.0, 10  # the frame budget: 20/s, burst 40
    a, b, _, _ = await setup_pair(ws_server)
    for _ in range(60):
        await a.send(op="ping")
    frames: list[dict[str, object]] = []
    while len(frames) < 60:
        frame = await a.recv()
        if frame["type"] in ("pong", "error"):
            frames.append(frame)
    limited = [f for f in frames if f.get("code") == "rate_limited"]
    assert limited and all(float(f["retry_after"]) > 0 for f in limited)  # type: ignore[arg-type]
    assert [f["type"] for f in frames].count("pong") >= 39  # the burst, less the resume
    await b.send(op="ping")
    assert (await b.expect("pong"))["type"] == "pong"
    await a.close()
    await b.close()


async def test_a_frame_above_the_hard_cap_closes_only_that_connection(
    ws_server: LiveServer,
) -> None:
    a, b, rid, _ = await setup_pair(ws_server)
    await a.ws.send("x" * (HARD_FRAME_CAP + 1))
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await a.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    alice = await ws_server.services.accounts.user_named("alice")
    await ws_server.services.hub.post(alice, rid, "after the big one")
    await b.expect("message", text="after the big one")
    await b.close()


def test_op_limits_come_from_settings_and_stay_above_the_send_rate() -> None:
    from hubbub.config import Settings
    from hubbub.web.ws import limits_from

    limits = limits_from(Settings(ws_ops_rate=50.0, ws_ops_burst=70, send_rate=5, send_burst=10))
    assert (limits.ops_per_second, limits.ops_burst) == (50.0, 70)
    limits = limits_from(Settings(ws_ops_rate=5.0, ws_ops_burst=5, send_rate=100, send_burst=30))
    assert (limits.ops_per_second, limits.ops_burst) == (200.0, 60)
