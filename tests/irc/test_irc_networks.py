"""IRC networks in Hubbub, end to end against a real InspIRCd.

A Hubbub user adds a network over REST, Hubbub connects; a plain IRC client
on a raw socket and the Hubbub user talk in a channel and in a query (both
ways, in history and over the WebSocket); Hubbub restarts on the same data
dir and the network comes back and rejoins by itself. Admin limits and
secrets at rest are checked without a server.
"""

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
from hubbub.core.model import NetworkKind
from hubbub.web.deps import Services
from testenv import RunningServer, scaled, start_server

sys.path.insert(0, str(Path(__file__).parent.parent / "ws"))
from wshelp import Account, LiveServer, make_account, open_client


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10) -> Any:
    """The first truthy result of ``check()``, polled."""
    async with asyncio.timeout(scaled(timeout)):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.05)


_clients: list[httpx.AsyncClient] = []


def api(server: RunningServer, account: Account) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {account.token}"}, timeout=10
    )
    _clients.append(client)
    return client


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _clients:
        await _clients.pop().aclose()


async def conversation_named(http: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
    r = await http.get("/api/conversations")
    assert r.status_code == 200, r.text
    return next((c for c in r.json() if c["name"].lower() == name.lower()), None)


async def texts(http: httpx.AsyncClient, conversation: int) -> list[tuple[str, str, str]]:
    r = await http.get(f"/api/conversations/{conversation}/messages", params={"limit": 200})
    assert r.status_code == 200, r.text
    return [(m["kind"], m["sender"], m["text"]) for m in r.json()["messages"]]


async def stop(running: RunningServer) -> None:
    running.uvicorn.should_exit = True
    await asyncio.wait_for(running.task, scaled(15))


async def test_channel_and_query_both_ways_and_back_after_restart(
    inspircd: IrcServer, settings: Settings
) -> None:
    services = await build_services(settings)
    running = await start_server(services)
    bob = await RawIrc.connect(inspircd.port, "bob")
    try:
        account = await make_account(services, "ada")
        http = api(running, account)
        r = await http.post(
            "/api/networks",
            json={
                "name": "test",
                "host": "127.0.0.1",
                "port": inspircd.port,
                "tls": False,
                "nick": "ada",
                "autojoin": ["#hub"],
                "password": "server-pass-1234",
                "highlight": ["hubbub"],
            },
        )
        assert r.status_code == 201, r.text
        network = r.json()
        assert network["password_set"] is True
        assert "server-pass-1234" not in r.text
        ws = await open_client(LiveServer(services, running.port), account)

        await bob.send("JOIN #hub")
        hub = await eventually(lambda: conversation_named(http, "#hub"))
        assert hub["network"] == network["id"] and hub["kind"] == "channel"
        state = await eventually(lambda: _state(http, network["id"], "connected"), timeout=15)
        assert state["current_nick"] == "ada"
        await bob.expect(lambda line: b"JOIN" in line and b"ada" in line)

        # the member list, with prefixes, as a user event
        async with asyncio.timeout(scaled(10)):
            while True:
                frame = await ws.expect("irc_members", conversation=hub["id"])
                nicks = {m["nick"]: m["prefixes"] for m in frame["members"]}
                if set(nicks) == {"ada", "bob"}:
                    break
        assert "@" in nicks["ada"] + nicks["bob"]  # whoever made the channel is op

        # IRC -> Hubbub: in history and live on the WebSocket, a mention marked
        await bob.send("PRIVMSG #hub :hello ada, welcome to hubbub")
        frame = await ws.expect("message", conversation=hub["id"], sender="bob")
        assert frame["text"] == "hello ada, welcome to hubbub"
        assert frame["meta"]["mention"] is True

        # Hubbub -> IRC: committed once (the echo is not stored again)
        r = await http.post(
            f"/api/conversations/{hub['id']}/messages", json={"text": "hi bob", "nonce": "n1"}
        )
        assert r.status_code in (200, 201), r.text
        await bob.expect(lambda line: line.endswith(b"PRIVMSG #hub :hi bob"))
        await bob.send("PRIVMSG #hub :after")
        await ws.expect("message", conversation=hub["id"], text="after")
        assert [t for t in await texts(http, hub["id"]) if t[2] == "hi bob"] == [
            ("text", "ada", "hi bob")
        ]

        # a query, both ways
        await bob.send("PRIVMSG ada :psst")
        query = await eventually(lambda: conversation_named(http, "bob"))
        assert query["kind"] == "query"
        r = await http.post(
            f"/api/conversations/{query['id']}/messages", json={"text": "yes?", "nonce": "n2"}
        )
        assert r.status_code in (200, 201), r.text
        await bob.expect(lambda line: line.endswith(b"PRIVMSG bob :yes?"))
        assert [t[1:] for t in await texts(http, query["id"])] == [
            ("bob", "psst"),
            ("ada", "yes?"),
        ]

        # a command: /me in the channel, stored once from its echo
        r = await http.post(
            f"/api/networks/{network['id']}/command",
            json={"command": "/me waves", "conversation": hub["id"]},
        )
        assert r.status_code == 200, r.text
        await bob.expect(lambda line: line.endswith(b"PRIVMSG #hub :\x01ACTION waves\x01"))
        await eventually(lambda: _has(http, hub["id"], ("action", "ada", "waves")))
        r = await http.post(f"/api/networks/{network['id']}/command", json={"command": "/frob"})
        assert r.json()["error"]["code"] == "irc_unknown_command"
        # the network's state reaches the WebSocket as a user event
        r = await http.post(f"/api/networks/{network['id']}/disconnect")
        assert r.status_code == 200 and r.json()["enabled"] is False, r.text
        frame = await ws.expect("network")
        assert frame["network"]["state"] == "disconnected"
        await bob.expect(lambda line: b"QUIT" in line and b"ada" in line)
        r = await http.post(f"/api/networks/{network['id']}/connect")
        assert r.status_code == 200 and r.json()["enabled"] is True, r.text
        async with asyncio.timeout(scaled(15)):
            while (await ws.expect("network"))["network"]["state"] != "connected":
                pass
        await bob.expect(lambda line: b"JOIN" in line and b"ada" in line)
        await ws.close()

        # restart Hubbub on the same data dir: the network comes back and rejoins
        await stop(running)
        await close_services(services)
        await bob.expect(lambda line: b"QUIT" in line and b"ada" in line)
        assert b"server-pass-1234" not in (settings.data_dir / "hubbub.db").read_bytes()
        services = await build_services(settings)
        running = await start_server(services)
        await bob.expect(lambda line: b"JOIN" in line and b"ada" in line, timeout=15)
        http = api(running, account)
        await bob.send("PRIVMSG #hub :back?")
        await eventually(lambda: _has(http, hub["id"], ("text", "bob", "back?")), timeout=10)
    finally:
        await bob.close()
        await stop(running)
        await close_services(services)


async def _state(http: httpx.AsyncClient, network_id: int, want: str) -> dict[str, Any] | None:
    r = await http.get(f"/api/networks/{network_id}")
    body: dict[str, Any] = r.json()
    return body if body["state"] == want else None


async def _has(http: httpx.AsyncClient, conversation: int, row: tuple[str, str, str]) -> bool:
    return row in await texts(http, conversation)


@pytest.fixture
def limited(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(irc_max_networks=1, irc_allowed_servers=["*.allowed.test", "127.0.0.1:1"])


async def test_admin_limits_and_secrets(limited: Settings) -> None:
    services: Services = await build_services(limited)
    running = await start_server(services)
    try:
        account = await make_account(services, "ada")
        http = api(running, account)
        base = {"name": "a", "nick": "ada", "connect": False, "sasl_mechanism": "PLAIN"}
        r = await http.post(
            "/api/networks", json={**base, "host": "irc.elsewhere.test", "port": 6697}
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "irc_server_not_allowed"
        r = await http.post(
            "/api/networks",
            json={**base, "host": "irc.allowed.test", "sasl_password": "sasl-secret-5678"},
        )
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["sasl_password_set"] is True and "sasl-secret-5678" not in r.text
        r = await http.post("/api/networks", json={**base, "name": "b", "host": "irc.allowed.test"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "irc_too_many_networks"
        r = await http.post(f"/api/networks/{created['id']}/command", json={"command": "/join #x"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "irc_not_connected"
        # another user does not see it
        other = api(running, await make_account(services, "eve"))
        assert (await other.get(f"/api/networks/{created['id']}")).status_code == 404
        r = await http.get("/api/networks")
        assert "sasl-secret-5678" not in r.text
        # PATCH keeps the secret unless given; "" removes it
        r = await http.patch(f"/api/networks/{created['id']}", json={"realname": "Ada"})
        assert r.json()["sasl_password_set"] is True
        data = (limited.data_dir / "hubbub.db").read_bytes()
        assert b"sasl-secret-5678" not in data
        r = await http.patch(f"/api/networks/{created['id']}", json={"sasl_password": ""})
        assert r.json()["sasl_password_set"] is False
        r = await http.delete(f"/api/networks/{created['id']}")
        assert r.status_code == 204
    finally:
        await stop(running)
        await close_services(services)


async def test_irc_switched_off(make_settings: Callable[..., Settings]) -> None:
    services = await build_services(make_settings(irc_enabled=False))
    running = await start_server(services)
    try:
        http = api(running, await make_account(services, "ada"))
        r = await http.get("/api/networks")
        assert r.status_code == 403 and r.json()["error"]["code"] == "irc_disabled"
    finally:
        await stop(running)
        await close_services(services)


async def test_private_addresses_refused_by_default(
    make_settings: Callable[..., Settings],
) -> None:
    """The default (``irc_allow_private_addresses`` off): a network at a loopback,
    private or link-local address is refused when saved, before any connect."""
    services = await build_services(make_settings(irc_allow_private_addresses=False))
    running = await start_server(services)
    try:
        http = api(running, await make_account(services, "ada"))
        base = {"name": "a", "nick": "ada", "port": 6667, "tls": False}
        for host, why in [
            ("127.0.0.1", "loopback"),
            ("10.0.0.1", "private"),
            ("localhost", "loopback"),
            ("[::1]", "loopback"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"),
        ]:
            r = await http.post("/api/networks", json={**base, "host": host})
            assert r.status_code == 403, (host, r.text)
            error = r.json()["error"]
            assert error["code"] == "irc_server_not_allowed", host
            assert why in error["message"] and "not allowed" in error["message"], error
        assert (await http.get("/api/networks")).json() == []
        # a public address is saved (not connected: no traffic leaves the machine) …
        r = await http.post("/api/networks", json={**base, "host": "8.8.8.8", "connect": False})
        assert r.status_code == 201, r.text
        # … and cannot be moved to a private one
        r = await http.patch(f"/api/networks/{r.json()['id']}", json={"host": "192.168.1.1"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "irc_server_not_allowed"
        assert "private" in r.json()["error"]["message"]
    finally:
        await stop(running)
        await close_services(services)


async def test_private_address_allowed_when_listed(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(irc_allow_private_addresses=False, irc_allowed_servers=["127.0.0.1"])
    services = await build_services(settings)
    running = await start_server(services)
    try:
        http = api(running, await make_account(services, "ada"))
        base = {"name": "a", "nick": "ada", "port": 6667, "tls": False, "connect": False}
        r = await http.post("/api/networks", json={**base, "host": "127.0.0.1"})
        assert r.status_code == 201, r.text
    finally:
        await stop(running)
        await close_services(services)


async def test_stored_private_network_is_not_connected(
    make_settings: Callable[..., Settings],
) -> None:
    """A network saved before the guard (or by other means) at 127.0.0.1: the
    connection refuses it before any TCP connect, and says why."""
    accepted: list[int] = []

    def on_connect(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    services = await build_services(make_settings(irc_allow_private_addresses=False))
    try:
        user = await services.accounts.register("ada", "correct horse battery", trusted=True)
        network = await services.store.create_network(
            user.id,
            kind=NetworkKind.IRC,
            name="old",
            config={"host": "127.0.0.1", "port": port, "tls": False, "nick": "ada"},
        )
        irc = services.irc
        assert irc is not None
        await irc.connect(network.id)
        state = await eventually(
            lambda: asyncio.sleep(
                0, irc.state(network.id) if irc.state(network.id)["state"] == "failed" else None
            )
        )
        assert "loopback" in state["error"]
        assert accepted == []
    finally:
        await close_services(services)
        listener.close()
        await listener.wait_closed()


async def test_ngircd_without_echo_message_stores_a_send_once(
    ngircd: IrcServer, settings: Settings
) -> None:
    """ngircd offers no echo-message: the client's own copy is recognised instead."""
    services = await build_services(settings)
    running = await start_server(services)
    bob = await RawIrc.connect(ngircd.port, "bob")
    try:
        http = api(running, await make_account(services, "ada"))
        r = await http.post(
            "/api/networks",
            json={
                "name": "ng",
                "host": "127.0.0.1",
                "port": ngircd.port,
                "tls": False,
                "nick": "ada",
                "autojoin": ["#ng"],
            },
        )
        assert r.status_code == 201, r.text
        await bob.send("JOIN #ng")
        chan = await eventually(lambda: conversation_named(http, "#ng"))
        await eventually(lambda: _state(http, r.json()["id"], "connected"), timeout=15)
        await bob.expect(lambda line: b"JOIN" in line and b"ada" in line)
        long = "word " * 150  # more than one IRC line
        r = await http.post(
            f"/api/conversations/{chan['id']}/messages", json={"text": long.strip(), "nonce": "n"}
        )
        assert r.status_code in (200, 201), r.text
        await bob.expect(lambda line: b"PRIVMSG #ng :" in line)
        await bob.send("PRIVMSG #ng :done")
        await eventually(lambda: _has(http, chan["id"], ("text", "bob", "done")))
        rows = [t for t in await texts(http, chan["id"]) if t[0] == "text"]
        assert rows == [("text", "ada", long.strip()), ("text", "bob", "done")]
    finally:
        await bob.close()
        await stop(running)
        await close_services(services)
