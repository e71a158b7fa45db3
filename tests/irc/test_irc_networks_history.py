"""The IRC service against the scripted IRCv3 server: chathistory across a Hubbub
restart stores every line once, the user's own sent message included (keyed by
its echo's msgid)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fakeserver import FakeServer, Peer

from hubbub.app import build_services, close_services
from hubbub.config import Settings
from hubbub.core.model import MessageKind, NetworkKind
from testenv import scaled

CAPS = "server-time message-tags batch labeled-response draft/chathistory echo-message"
T = "@time=2026-11-23T10:00:0{}.000Z;msgid={} "


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10) -> Any:
    async with asyncio.timeout(scaled(timeout)):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.05)


async def test_replay_after_restart_stores_each_line_once(settings: Settings) -> None:
    asked: list[str] = []

    async def first(peer: Peer) -> None:
        await peer.register(nick="ada", caps=CAPS)
        assert (await peer.expect("JOIN")) == "JOIN #chan"
        latest = await peer.expect("CHATHISTORY")
        label = latest.split(" ", 1)[0].removeprefix("@label=")
        await peer.send(
            ":ada!u@h JOIN #chan",
            f"@label={label} BATCH +h0 chathistory #chan",
            "@batch=h0;" + T.format(1, "m1")[1:] + ":bob!b@h PRIVMSG #chan :one",
            "BATCH -h0",
        )
        await peer.expect("PRIVMSG #chan")
        await peer.send(T.format(2, "m2") + ":ada!u@h PRIVMSG #chan :mine")
        await peer.expect("QUIT", timeout=30)

    async def second(peer: Peer) -> None:
        await peer.register(nick="ada", caps=CAPS)
        assert (await peer.expect("JOIN")) == "JOIN #chan"
        line = await peer.expect("CHATHISTORY")
        label, body = line.split(" ", 1)
        asked.append(body)
        await peer.send(
            ":ada!u@h JOIN #chan",
            f"{label} BATCH +h1 chathistory #chan",
            "@batch=h1;" + T.format(1, "m1")[1:] + ":bob!b@h PRIVMSG #chan :one",
            "@batch=h1;" + T.format(2, "m2")[1:] + ":ada!u@h PRIVMSG #chan :mine",
            "@batch=h1;" + T.format(3, "m3")[1:] + ":carol!c@h PRIVMSG #chan :three",
            "BATCH -h1",
        )
        await asyncio.sleep(scaled(10))

    async with FakeServer([first, second]) as server:
        services = await build_services(settings)
        try:
            user, network = await _ada_on(services, server.port)
            assert services.irc is not None
            await services.irc.connect(network.id)
            store = services.store

            async def chan_texts() -> list[str]:
                found = await store.find_network_conversation(network.id, "#CHAN")
                if found is None:
                    return []
                return [m.text for m in await store.history(found.id) if m.kind is MessageKind.TEXT]

            await eventually(chan_texts)
            irc = services.irc
            await eventually(
                lambda: asyncio.sleep(0, irc.state(network.id)["state"] == "connected")
            )
            chan = await store.find_network_conversation(network.id, "#chan")
            assert chan is not None
            await services.hub.post(user, chan.id, "mine", nonce="n1")
            await eventually(lambda: store.message_by_ext_key(chan.id, "id:m2"))
        finally:
            await close_services(services)

        services = await build_services(settings)
        try:
            store = services.store

            async def three() -> bool:
                return "three" in await chan_texts()

            await eventually(three)
            assert await chan_texts() == ["one", "mine", "three"]
            assert asked == ["CHATHISTORY AFTER #chan msgid=m2 100"]
            assert not server.errors
        finally:
            await close_services(services)


async def test_a_send_whose_echo_never_came_before_the_connection_dropped_is_marked(
    settings: Settings,
) -> None:
    """echo-message: the server reads the PRIVMSG but closes before echoing it; the
    message stays stored and gets a "maybe not sent" note naming its seq. One
    echoed before the drop gets none."""

    async def dropping(peer: Peer) -> None:
        await peer.register(nick="ada", caps="server-time echo-message")
        await peer.expect("JOIN")
        await peer.send(":ada!u@h JOIN #chan")
        await peer.expect("PRIVMSG #chan echoed")  # one word: no colon
        await peer.send(":ada!u@h PRIVMSG #chan :echoed")
        await peer.expect("PRIVMSG #chan lost")
        await peer.close()  # no echo of it

    async def after(peer: Peer) -> None:
        await peer.register(nick="ada", caps="server-time echo-message")
        await asyncio.sleep(scaled(10))

    async with FakeServer([dropping, after]) as server:
        services = await build_services(settings)
        try:
            user, _network, chan = await _ada_in_chan(services, server.port)
            store = services.store
            echoed = await services.hub.post(user, chan.id, "echoed", nonce="e1")

            async def keyed() -> bool:  # its echo came: it carries the server's time
                history = await store.history(chan.id)
                return any(
                    m.id == echoed.message.id and "irc_time" in (m.meta or {}) for m in history
                )

            await eventually(keyed)
            lost = await services.hub.post(user, chan.id, "lost", nonce="e2")

            async def notes() -> list[Any]:
                history = await store.history(chan.id)
                return [m for m in history if (m.meta or {}).get("not_sent") is not None]

            (note,) = await eventually(notes)
            assert note.kind is MessageKind.SYSTEM
            assert note.meta == {
                "not_sent": lost.message.seq,
                "reason": "connection_lost",
                "maybe": True,
            }
            assert note.text.startswith("maybe not sent to IRC: the connection was lost")
            await asyncio.sleep(scaled(0.5))
            assert len(await notes()) == 1  # not the echoed one, and once
            assert not server.errors
        finally:
            await close_services(services)


LONG = " ".join(f"w{i:04d}" for i in range(220))  # three lines on IRC


def _text(line: str) -> str:
    """The text of a ``PRIVMSG target :text`` line the client sent."""
    body = line.split(" ", 1)[1] if line.startswith("@") else line
    text = body.split(" ", 2)[2]
    return text[1:] if text.startswith(":") else text


async def _parts(peer: Peer) -> list[str]:
    parts = [_text(await peer.expect("PRIVMSG #chan"))]
    while "".join(parts) != LONG:
        parts.append(_text(await peer.expect("PRIVMSG #chan")))
    return parts


def _replayed(batch: str, parts: list[str], start: int = 2) -> list[str]:
    return [
        f"@batch={batch};" + T.format(start + i, f"p{i + 1}")[1:] + f":ada!u@h PRIVMSG #chan :{p}"
        for i, p in enumerate(parts)
    ]


async def _answer_history(peer: Peer, asked: list[str], *lines: str) -> None:
    line = await peer.expect("CHATHISTORY")
    label, body = line.split(" ", 1)
    asked.append(body)
    await peer.send(f"{label} BATCH +r chathistory #chan", *lines, "BATCH -r")


async def _ada_on(services: Any, port: int) -> tuple[Any, Any]:
    user = await services.accounts.register("ada", "correct horse battery", trusted=True)
    network = await services.store.create_network(
        user.id,
        kind=NetworkKind.IRC,
        name="fake",
        config={
            "host": "127.0.0.1",
            "port": port,
            "tls": False,
            "nick": "ada",
            "autojoin": ["#chan"],
        },
    )
    return user, network


async def _ada_in_chan(services: Any, port: int) -> tuple[Any, Any, Any]:
    """ada's network connected, and its #chan: (user, network, conversation)."""
    user, network = await _ada_on(services, port)
    irc, store = services.irc, services.store
    assert irc is not None
    await irc.connect(network.id)
    chan = await eventually(lambda: store.find_network_conversation(network.id, "#chan"))
    await eventually(lambda: asyncio.sleep(0, irc.state(network.id)["state"] == "connected"))
    return user, network, chan


async def _said(store: Any, network_id: int) -> list[Any]:
    """What #chan holds but the JOIN lines of each session."""
    chan = await store.find_network_conversation(network_id, "#chan")
    if chan is None:
        return []
    return [m for m in await store.history(chan.id) if m.kind is not MessageKind.JOIN]


async def test_a_message_sent_in_three_lines_is_stored_once_though_every_part_is_replayed(
    settings: Settings,
) -> None:
    """echo-message + msgid + draft/chathistory: a long message goes out as three
    PRIVMSGs, each echoed with its own msgid. The server then drops the
    connection, and on the reconnect (and again after a Hubbub restart) replays
    all three parts: each part's msgid leads to the one stored message (the
    first on the message, the others in ``message_ext_keys``), so the history
    holds it once, and the other lines once."""
    asked: list[str] = []
    sent_parts: list[str] = []
    keyed_all = asyncio.Event()

    async def first(peer: Peer) -> None:
        await peer.register(nick="ada", caps=CAPS)
        await peer.expect("JOIN")
        await peer.send(":ada!u@h JOIN #chan")
        await _answer_history(peer, asked)
        parts = await _parts(peer)
        sent_parts.extend(parts)
        for i, part in enumerate(parts):
            await peer.send(T.format(2 + i, f"p{i + 1}") + f":ada!u@h PRIVMSG #chan :{part}")
        async with asyncio.timeout(scaled(30)):
            await keyed_all.wait()
        await peer.close()  # a reconnect: the gap fill replays every part

    async def second(peer: Peer) -> None:
        await peer.register(nick="ada", caps=CAPS)
        await peer.expect("JOIN")
        await peer.send(":ada!u@h JOIN #chan")
        await _answer_history(
            peer,
            asked,
            *_replayed("r", sent_parts),
            "@batch=r;" + T.format(5, "m5")[1:] + ":bob!b@h PRIVMSG #chan :later",
        )
        await peer.expect("QUIT", timeout=30)

    async def third(peer: Peer) -> None:
        await peer.register(nick="ada", caps=CAPS)
        await peer.expect("JOIN")
        await peer.send(":ada!u@h JOIN #chan")
        await _answer_history(
            peer,
            asked,
            *_replayed("r", sent_parts),
            "@batch=r;" + T.format(5, "m5")[1:] + ":bob!b@h PRIVMSG #chan :later",
            "@batch=r;" + T.format(6, "m6")[1:] + ":carol!c@h PRIVMSG #chan :last",
        )
        await asyncio.sleep(scaled(10))

    async with FakeServer([first, second, third]) as server:
        services = await build_services(settings)
        try:
            user, network, chan = await _ada_in_chan(services, server.port)
            store = services.store
            posted = await services.hub.post(user, chan.id, LONG, nonce="long")
            message_id = posted.message.id

            async def keyed() -> list[str]:
                keys = await store.message_ext_keys(message_id)
                return keys if len(keys) == 3 else []

            assert await eventually(keyed) == ["id:p1", "id:p2", "id:p3"]
            assert len(sent_parts) == 3
            keyed_all.set()

            async def later() -> bool:
                return any(m.text == "later" for m in await _said(store, network.id))

            await eventually(later)
            said = await _said(store, network.id)
            assert [(m.text, m.sender_id) for m in said] == [(LONG, user.id), ("later", None)]
        finally:
            await close_services(services)

        services = await build_services(settings)  # a restart: the keys come from the store
        try:
            store = services.store

            async def last() -> bool:
                return any(m.text == "last" for m in await _said(store, network.id))

            await eventually(last)
            said = await _said(store, network.id)
            assert [m.text for m in said] == [LONG, "later", "last"]
            assert said[0].id == message_id
            assert asked == [
                "CHATHISTORY LATEST #chan * 100",
                "CHATHISTORY AFTER #chan msgid=p3 100",  # the newest part anchors
                "CHATHISTORY AFTER #chan msgid=m5 100",
            ]
            assert not server.errors
        finally:
            await close_services(services)


@pytest.mark.parametrize("echoed", [0, 1])
async def test_parts_whose_echo_the_dropped_connection_lost_key_the_message_on_replay(
    settings: Settings, echoed: int
) -> None:
    """echo-message: the server reads the three PRIVMSGs of a long message but
    closes before echoing any (or after echoing the first only). The message
    gets its "maybe not sent" note; the gap fill of the next session replays the
    three parts, which this process still knows as unechoed: they key the
    message instead of being stored as lines of their own (the note stays:
    "maybe" was all that could be said; an echoed part is known by its key)."""
    asked: list[str] = []
    sent_parts: list[str] = []

    async def dropping(peer: Peer) -> None:
        await peer.register(nick="ada", caps=CAPS)
        await peer.expect("JOIN")
        await peer.send(":ada!u@h JOIN #chan")
        await _answer_history(  # something to anchor the next gap fill
            peer, asked, "@batch=r;" + T.format(1, "m1")[1:] + ":bob!b@h PRIVMSG #chan :before"
        )
        sent_parts.extend(await _parts(peer))
        for i, part in enumerate(sent_parts[:echoed]):
            await peer.send(T.format(2 + i, f"p{i + 1}") + f":ada!u@h PRIVMSG #chan :{part}")
        await peer.close()  # no echo of the others

    async def after(peer: Peer) -> None:
        await peer.register(nick="ada", caps=CAPS)
        await peer.expect("JOIN")
        await peer.send(":ada!u@h JOIN #chan")
        await _answer_history(
            peer,
            asked,
            *_replayed("r", sent_parts),
            "@batch=r;" + T.format(5, "m5")[1:] + ":bob!b@h PRIVMSG #chan :later",
        )
        await asyncio.sleep(scaled(10))

    async with FakeServer([dropping, after]) as server:
        services = await build_services(settings)
        try:
            user, network, chan = await _ada_in_chan(services, server.port)
            store = services.store

            async def before() -> bool:
                return any(m.text == "before" for m in await _said(store, network.id))

            await eventually(before)
            posted = await services.hub.post(user, chan.id, LONG, nonce="long")

            async def later() -> bool:
                return any(m.text == "later" for m in await _said(store, network.id))

            await eventually(later)
            said = await _said(store, network.id)
            assert [m.text for m in said][:2] == ["before", LONG]
            assert [m.kind for m in said][2:] == [MessageKind.SYSTEM, MessageKind.TEXT]
            assert said[1].id == posted.message.id and said[1].sender_id == user.id
            assert said[2].meta == {
                "not_sent": posted.message.seq,
                "reason": "connection_lost",
                "maybe": True,
            }
            assert said[3].text == "later"
            assert await store.message_ext_keys(posted.message.id) == ["id:p1", "id:p2", "id:p3"]
            assert len(sent_parts) == 3
            assert asked == [
                "CHATHISTORY LATEST #chan * 100",
                f"CHATHISTORY AFTER #chan msgid={'p1' if echoed else 'm1'} 100",
            ]
            assert not server.errors
        finally:
            await close_services(services)
