"""What a user of a persistent IRC client expects, against a real InspIRCd:
``/names`` of a channel not joined answered in the server buffer, numeric
replies with their exact parameters, queries that follow nick changes, sends
that did not reach IRC marked so, and away while no browser is attached."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from ircservers import IrcServer
from rawirc import RawIrc

from hubbub.app import build_services, close_services
from hubbub.config import Settings
from hubbub.irc.errors import SendQueueFull
from testenv import RunningServer, scaled, start_server

sys.path.insert(0, str(Path(__file__).parent.parent / "ws"))
from wshelp import Account, LiveServer, make_account, open_client


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15) -> Any:
    async with asyncio.timeout(scaled(timeout)):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.1)


@pytest.fixture
async def ada(server: RunningServer) -> AsyncIterator[tuple[Account, httpx.AsyncClient]]:
    account = await make_account(server.services, "ada")
    auth = {"Authorization": f"Bearer {account.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=10) as http:
        yield account, http


async def add_network(http: httpx.AsyncClient, port: int, **extra: Any) -> dict[str, Any]:
    body = {"name": "real", "host": "127.0.0.1", "port": port, "tls": False, "nick": "ada"}
    r = await http.post("/api/networks", json={**body, **extra})
    assert r.status_code == 201, r.text
    network: dict[str, Any] = r.json()
    await eventually(lambda: _connected(http, network["id"]))
    return network


async def _connected(http: httpx.AsyncClient, network_id: int) -> bool:
    r = await http.get(f"/api/networks/{network_id}")
    return bool(r.json()["state"] == "connected")


async def conversation(
    http: httpx.AsyncClient, network_id: int, name: str
) -> dict[str, Any] | None:
    convs = (await http.get("/api/conversations")).json()
    return next(
        (c for c in convs if c["network"] == network_id and c["name"].lower() == name.lower()),
        None,
    )


async def messages(http: httpx.AsyncClient, conversation_id: int) -> list[dict[str, Any]]:
    r = await http.get(f"/api/conversations/{conversation_id}/messages", params={"limit": 200})
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["messages"]
    return found


async def command(
    http: httpx.AsyncClient, network_id: int, text: str, conversation_id: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"command": text}
    if conversation_id is not None:
        body["conversation"] = conversation_id
    r = await http.post(f"/api/networks/{network_id}/command", json=body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_names_of_a_channel_not_joined_is_answered_in_the_server_buffer(
    inspircd: IrcServer, ada: tuple[Account, httpx.AsyncClient]
) -> None:
    _, http = ada
    network = await add_network(http, inspircd.port, autojoin=["#mine"])
    mine = await eventually(lambda: conversation(http, network["id"], "#mine"))
    buffer = await eventually(lambda: conversation(http, network["id"], "*"))
    bob = await RawIrc.connect(inspircd.port, "bob")
    try:
        await bob.send("JOIN #other")
        await bob.expect(lambda line: b" 366 " in line)
        await command(http, network["id"], "/names #other")

        async def replies() -> list[dict[str, Any]] | None:
            got = [
                m
                for m in await messages(http, buffer["id"])
                if (m.get("meta") or {}).get("numeric") in ("353", "366")
            ]
            return got if len(got) >= 2 else None

        names, end = await eventually(replies)
        assert names["meta"]["numeric"] == "353" and end["meta"]["numeric"] == "366"
        assert "#other" in names["text"] and "bob" in names["text"]
        assert "#other" in end["text"]
        # the exact parameters after our nick, the last one whole
        assert names["meta"]["params"][:2] == ["=", "#other"]
        assert names["meta"]["params"][2].split("!")[0] == "@bob"  # userhost-in-names
        assert len(names["meta"]["params"]) == 3
        assert end["meta"]["params"] == ["#other", "End of /NAMES list."]

        # NAMES of a channel joined still feeds its member list, not the buffer
        await command(http, network["id"], "/names", mine["id"])
        await command(http, network["id"], "/names #other")
        await eventually(lambda: _count_numeric(http, buffer["id"], "366", 2))
        assert not [
            m
            for m in await messages(http, buffer["id"])
            if "#mine" in m["text"] and (m.get("meta") or {}).get("numeric") in ("353", "366")
        ]
    finally:
        await bob.close()
    await http.post(f"/api/networks/{network['id']}/disconnect")


async def _count_numeric(http: httpx.AsyncClient, conversation_id: int, code: str, n: int) -> bool:
    got = await messages(http, conversation_id)
    return len([m for m in got if (m.get("meta") or {}).get("numeric") == code]) >= n


async def _events(http: httpx.AsyncClient, conversation_id: int) -> list[tuple[str, str, Any]]:
    return [
        (m["sender"], m["text"], (m.get("meta") or {}).get("event"))
        for m in await messages(http, conversation_id)
        if m["kind"] == "event"
    ]


async def test_a_query_follows_its_peers_nick_change(
    inspircd: IrcServer, server: RunningServer, ada: tuple[Account, httpx.AsyncClient]
) -> None:
    account, http = ada
    network = await add_network(http, inspircd.port, autojoin=["#hub"])
    await eventually(lambda: conversation(http, network["id"], "#hub"))
    ws = await open_client(LiveServer(server.services, server.port), account)
    bob = await RawIrc.connect(inspircd.port, "bob")
    carol = await RawIrc.connect(inspircd.port, "carol")
    try:
        for raw in (bob, carol):  # NICK reaches ada through a shared channel
            await raw.send("JOIN #hub")
            await raw.expect(lambda line: b" 366 " in line)
        await bob.send("PRIVMSG ada :hi from bob")
        query = await eventually(lambda: conversation(http, network["id"], "bob"))
        await bob.send("NICK robert")

        # renamed, the nick event in it, and the clients told the new name
        async with asyncio.timeout(scaled(10)):  # after the one that made the query
            while (frame := await ws.expect("conversation"))["conversation"]["name"] != "robert":
                pass
        assert frame["conversation"]["id"] == query["id"]
        renamed = await eventually(lambda: conversation(http, network["id"], "robert"))
        assert renamed["id"] == query["id"] and renamed["kind"] == "query"
        assert await conversation(http, network["id"], "bob") is None
        assert ("bob", "robert", "nick") in await _events(http, query["id"])

        # what ada writes there goes to the new nick; robert's answer lands there
        r = await http.post(
            f"/api/conversations/{query['id']}/messages", json={"text": "hi robert", "nonce": "q1"}
        )
        assert r.status_code in (200, 201), r.text
        await bob.expect(lambda line: line.endswith(b"PRIVMSG robert :hi robert"))
        await bob.send("PRIVMSG ada :still me")
        await eventually(
            lambda: _has_text(http, query["id"], "still me"),
        )

        # a conversation for the new nick exists: the event in both, no merge
        await carol.send("PRIVMSG ada :hi from carol")
        carols = await eventually(lambda: conversation(http, network["id"], "carol"))
        await command(http, network["id"], "/query dave")
        daves = await eventually(lambda: conversation(http, network["id"], "dave"))
        await carol.send("NICK dave")

        async def both() -> bool:
            want = ("carol", "dave", "nick")
            return want in await _events(http, carols["id"]) and want in await _events(
                http, daves["id"]
            )

        await eventually(both)
        assert (await conversation(http, network["id"], "carol"))["id"] == carols["id"]
        assert (await conversation(http, network["id"], "dave"))["id"] == daves["id"]
    finally:
        await ws.close()
        await bob.close()
        await carol.close()
    await http.post(f"/api/networks/{network['id']}/disconnect")


async def _has_text(http: httpx.AsyncClient, conversation_id: int, text: str) -> bool:
    return any(m["text"] == text for m in await messages(http, conversation_id))


async def test_a_message_committed_but_not_sent_to_irc_says_so(
    inspircd: IrcServer,
    server: RunningServer,
    ada: tuple[Account, httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account, http = ada
    network = await add_network(http, inspircd.port, autojoin=["#hub"])
    hub = await eventually(lambda: conversation(http, network["id"], "#hub"))
    irc = server.services.irc
    assert irc is not None
    ws = await open_client(LiveServer(server.services, server.port), account)
    try:
        # the network goes down between the check before the commit and the send:
        # the check saw it connected a moment before
        checked = irc.check_send
        r = await http.post(f"/api/networks/{network['id']}/disconnect")
        assert r.status_code == 200, r.text
        monkeypatch.setattr(irc, "check_send", lambda conversation_id: None)
        r = await http.post(
            f"/api/conversations/{hub['id']}/messages", json={"text": "lost?", "nonce": "ns1"}
        )
        assert r.status_code == 409 and r.json()["error"]["code"] == "irc_not_connected", r.text
        monkeypatch.setattr(irc, "check_send", checked)

        stored = [m for m in await messages(http, hub["id"]) if m["text"] == "lost?"]
        assert len(stored) == 1  # committed (and published) once
        seq = stored[0]["seq"]
        frame = await ws.expect("message", conversation=hub["id"], kind="system")
        assert frame["meta"] == {"not_sent": seq, "reason": "irc_not_connected"}
        assert frame["text"] == f"not sent to IRC: the network is not connected (message {seq})"
        notes = [
            m for m in await messages(http, hub["id"]) if (m.get("meta") or {}).get("not_sent")
        ]
        assert [n["meta"]["not_sent"] for n in notes] == [seq]

        # the send queue full: the same note, its own reason
        r = await http.post(f"/api/networks/{network['id']}/connect")
        assert r.status_code == 200, r.text
        await eventually(lambda: _connected(http, network["id"]))
        running = irc._running[network["id"]]

        def full(*_: Any) -> None:
            raise SendQueueFull("500 lines wait to be sent")

        monkeypatch.setattr(running.conn, "privmsg", full)
        r = await http.post(
            f"/api/conversations/{hub['id']}/messages", json={"text": "queued?", "nonce": "ns2"}
        )
        assert r.status_code == 503 and r.json()["error"]["code"] == "irc_send_queue_full"
        frame = await ws.expect("message", conversation=hub["id"], kind="system")
        assert frame["meta"]["reason"] == "irc_send_queue_full"
        queued = [m for m in await messages(http, hub["id"]) if m["text"] == "queued?"]
        assert frame["meta"]["not_sent"] == queued[0]["seq"]
    finally:
        await ws.close()
    await http.post(f"/api/networks/{network['id']}/disconnect")


async def whois_away(bob: RawIrc, nick: str) -> bool:
    """Whether WHOIS of ``nick`` says it is away (301 before 318)."""
    seen: list[bytes] = []

    def until_end(line: bytes) -> bool:
        seen.append(line)
        return b" 318 " in line

    await bob.send(f"WHOIS {nick}")
    await bob.expect(until_end)
    return any(f" 301 bob {nick} ".encode() in line for line in seen)


async def test_away_while_no_browser_is_attached(
    inspircd: IrcServer, make_settings: Callable[..., Settings]
) -> None:
    services = await build_services(make_settings(presence_grace=0.3))
    running = await start_server(services)
    bob = await RawIrc.connect(inspircd.port, "bob")
    try:
        account = await make_account(services, "ada")
        auth = {"Authorization": f"Bearer {account.token}"}
        async with httpx.AsyncClient(base_url=running.url, headers=auth, timeout=10) as http:
            # connected with no browser: away at once, with the default text
            network = await add_network(http, inspircd.port)
            assert network["auto_away"] is True
            await eventually(lambda: whois_away(bob, "ada"))

            # a browser attaches: back; it leaves: away again after the grace period
            ws = await open_client(LiveServer(services, running.port), account)
            await eventually(lambda: _not(whois_away(bob, "ada")))
            await ws.close()
            await eventually(lambda: whois_away(bob, "ada"))
            ws = await open_client(LiveServer(services, running.port), account)
            await eventually(lambda: _not(whois_away(bob, "ada")))
            await ws.close()

            # the network's setting off: never away (the edit reconnects it)
            r = await http.patch(f"/api/networks/{network['id']}", json={"auto_away": False})
            assert r.status_code == 200 and r.json()["auto_away"] is False, r.text
            found = await eventually(lambda: _ada_there(bob))  # after the reconnect
            assert found == ["not away"]
            await asyncio.sleep(scaled(1))  # well past the grace period
            assert not await whois_away(bob, "ada")
            await http.post(f"/api/networks/{network['id']}/disconnect")
    finally:
        await bob.close()
        running.uvicorn.should_exit = True
        await asyncio.wait_for(running.task, scaled(15))
        await close_services(services)


async def _not(check: Awaitable[bool]) -> bool:
    return not await check


async def _ada_there(bob: RawIrc) -> list[str] | None:
    """Once WHOIS finds ada registered again: whether away; None while it is not."""
    seen: list[bytes] = []

    def until_end(line: bytes) -> bool:
        seen.append(line)
        return b" 318 " in line

    await bob.send("WHOIS ada")
    await bob.expect(until_end)
    if not any(b" 311 bob ada " in line for line in seen):
        return None
    return ["away" if any(b" 301 bob ada " in line for line in seen) else "not away"]
