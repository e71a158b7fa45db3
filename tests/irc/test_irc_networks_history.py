"""The IRC service against the scripted IRCv3 server: chathistory across a Hubbub
restart stores every line once, the user's own sent message included (keyed by
its echo's msgid)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

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
            user = await services.accounts.register("ada", "correct horse battery", trusted=True)
            network = await services.store.create_network(
                user.id,
                kind=NetworkKind.IRC,
                name="fake",
                config={
                    "host": "127.0.0.1",
                    "port": server.port,
                    "tls": False,
                    "nick": "ada",
                    "autojoin": ["#chan"],
                },
            )
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
            user = await services.accounts.register("ada", "correct horse battery", trusted=True)
            network = await services.store.create_network(
                user.id,
                kind=NetworkKind.IRC,
                name="fake",
                config={
                    "host": "127.0.0.1",
                    "port": server.port,
                    "tls": False,
                    "nick": "ada",
                    "autojoin": ["#chan"],
                },
            )
            irc, store = services.irc, services.store
            assert irc is not None
            await irc.connect(network.id)
            chan = await eventually(lambda: store.find_network_conversation(network.id, "#chan"))
            await eventually(
                lambda: asyncio.sleep(0, irc.state(network.id)["state"] == "connected")
            )
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
