"""The SSRF guard of IRC connections: which addresses are refused (pure), the
resolver check, and the connection refusing before any TCP connect, connecting
only to the address it checked (DNS rebinding).

No traffic leaves loopback: resolutions of public names are faked, and so is
the TCP connect whenever a faked public address would be dialled.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hubbub.irc import connection
from hubbub.irc.addresses import AddressNotAllowed, refusal, resolve
from hubbub.irc.config import ClientConfig
from hubbub.irc.connection import Connection, ConnState, NetworkConfig
from hubbub.irc.events import Disconnected, Error
from hubbub.irc.service import IrcPolicy, ServerNotAllowed
from testenv import scaled

REFUSED = {
    # IPv4
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "10.0.0.1": "private",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",  # cloud metadata
    "169.254.0.1": "link-local",
    "100.64.0.1": "carrier-grade NAT",
    "100.127.255.254": "carrier-grade NAT",
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "",
    "192.0.2.1": "",  # documentation
    # IPv6
    "::1": "loopback",
    "::": "unspecified",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "fe80::1": "link-local",
    "fe80::1%1": "link-local",
    "ff02::1": "multicast",
    "fec0::1": "",  # site-local (deprecated)
    "2001:db8::1": "",  # documentation
    # IPv4 inside IPv6
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "link-local",
    "::ffff:100.64.0.1": "carrier-grade NAT",
    "::ffff:0.0.0.0": "unspecified",
    "2002:7f00:1::1": "loopback",  # 6to4 of 127.0.0.1
    "2002:a00:1::1": "private",  # 6to4 of 10.0.0.1
    "64:ff9b::a9fe:a9fe": "link-local",  # NAT64 of 169.254.169.254
}
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255",  # just below 100.64/10
    "100.128.0.1",  # just above
    "172.32.0.1",  # just above 172.16/12
    "2606:4700:4700::1111",
    "2a00:1450:4001::1",
    "::ffff:8.8.8.8",
]


@pytest.mark.parametrize(("address", "why"), sorted(REFUSED.items()))
def test_refused_addresses(address: str, why: str) -> None:
    reason = refusal(address)
    assert reason is not None, address
    assert why in reason


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses(address: str) -> None:
    assert refusal(address) is None


def test_refusal_wants_an_address() -> None:
    with pytest.raises(ValueError):
        refusal("localhost")


def fake_resolver(
    monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]
) -> list[str]:
    """The loop's getaddrinfo answers from ``answers`` (one list per lookup, the
    last one repeated); returns the names looked up."""
    loop = asyncio.get_running_loop()
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        asked.append(host)
        seq = answers[host]
        found = seq.pop(0) if len(seq) > 1 else seq[0]
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in found
        ]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return asked


async def test_resolve_checks_every_address(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_resolver(
        monkeypatch,
        {
            "public.test": [["8.8.8.8", "2606:4700:4700::1111"]],
            "mixed.test": [["8.8.8.8", "10.0.0.1"]],
            "meta.test": [["169.254.169.254"]],
        },
    )
    assert await resolve("public.test", 6697, allow_private=False) == [
        "8.8.8.8",
        "2606:4700:4700::1111",
    ]
    with pytest.raises(AddressNotAllowed, match=r"mixed\.test resolves to 10\.0\.0\.1, a private"):
        await resolve("mixed.test", 6697, allow_private=False)
    with pytest.raises(AddressNotAllowed, match="link-local"):
        await resolve("meta.test", 6697, allow_private=False)
    assert await resolve("meta.test", 6697, allow_private=True) == ["169.254.169.254"]


async def test_resolve_real_loopback_names() -> None:
    with pytest.raises(AddressNotAllowed, match=r"127\.0\.0\.1 is a loopback address"):
        await resolve("127.0.0.1", 6667, allow_private=False)
    with pytest.raises(AddressNotAllowed, match="loopback"):
        await resolve("[::1]", 6667, allow_private=False)
    with pytest.raises(AddressNotAllowed, match=r"localhost resolves to .*loopback"):
        await resolve("localhost", 6667, allow_private=False)
    with pytest.raises(AddressNotAllowed, match="loopback"):
        await resolve("2130706433", 6667, allow_private=False)  # 127.0.0.1 as a number
    assert "127.0.0.1" in await resolve("127.0.0.1", 6667, allow_private=True)


async def test_policy_check_address(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_resolver(monkeypatch, {"irc.public.test": [["8.8.8.8"]], "irc.lan.test": [["10.1.2.3"]]})
    policy = IrcPolicy()
    await policy.check_address("irc.public.test", 6697)
    for host in ("127.0.0.1", "10.0.0.1", "irc.lan.test", "169.254.169.254", "[::1]"):
        with pytest.raises(ServerNotAllowed):
            await policy.check_address(host, 6697)
    await IrcPolicy(allow_private_addresses=True).check_address("irc.lan.test", 6697)
    listed = IrcPolicy(allowed_servers=("irc.lan.test:6697",))
    await listed.check_address("irc.lan.test", 6697)
    assert listed.private_allowed("irc.lan.test", 6697)
    assert not listed.private_allowed("irc.lan.test", 6667)
    assert not IrcPolicy().private_allowed("irc.lan.test", 6697)


async def test_policy_lets_an_unresolvable_name_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def fail(*_: Any, **__: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(loop, "getaddrinfo", fail)
    await IrcPolicy().check_address("irc.nowhere.test", 6697)  # checked again at connect


@pytest.fixture
async def listener() -> AsyncIterator[tuple[int, list[int]]]:
    """A TCP server on 127.0.0.1 that counts the connections it gets."""
    accepted: list[int] = []

    def on_connect(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, accepted
    finally:
        server.close()
        await server.wait_closed()


def config(host: str, port: int, **kw: Any) -> NetworkConfig:
    client = ClientConfig(nick="hubbub")
    return NetworkConfig(host, port, client, tls=False, backoff_base=0.05, backoff_cap=0.1, **kw)


async def events_until_disconnected(conn: Connection) -> list[Any]:
    seen: list[Any] = []
    async with asyncio.timeout(scaled(5)):
        while not seen or not isinstance(seen[-1], Disconnected):
            seen.append(await conn.next_event())
    return seen


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_connection_refuses_loopback_before_connecting(
    host: str, listener: tuple[int, list[int]]
) -> None:
    port, accepted = listener
    conn = Connection(config(host, port))
    conn.start()
    try:
        seen = await events_until_disconnected(conn)
        assert any(isinstance(e, Error) and e.fatal and "loopback" in e.message for e in seen)
        gone = seen[-1]
        assert isinstance(gone, Disconnected) and not gone.retry and "loopback" in gone.reason
        await asyncio.sleep(0.05)
        assert conn.state is ConnState.FAILED and conn.last_error and "loopback" in conn.last_error
        assert accepted == []
    finally:
        await conn.stop()


async def test_connection_allowed_to_loopback_when_configured(
    listener: tuple[int, list[int]],
) -> None:
    port, accepted = listener
    conn = Connection(config("localhost", port, allow_private_addresses=True))
    conn.start()
    try:
        async with asyncio.timeout(scaled(5)):
            while not accepted:
                await asyncio.sleep(0.01)
    finally:
        await conn.stop()


async def test_connection_dials_the_checked_address_not_the_name_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name answers a public address, then loopback. The first
    attempt dials the public address it checked (the name kept for TLS); the next
    lookup answers loopback and is refused, nothing is dialled."""
    asked = fake_resolver(monkeypatch, {"irc.rebind.test": [["8.8.8.8"], ["127.0.0.1"]]})
    dialled: list[tuple[str, object]] = []

    async def open_connection(host: str, port: int, **kw: Any) -> Any:
        dialled.append((host, kw.get("server_hostname")))
        raise ConnectionRefusedError("refused (test)")

    monkeypatch.setattr(connection.asyncio, "open_connection", open_connection)
    conn = Connection(
        NetworkConfig(
            "irc.rebind.test",
            6697,
            ClientConfig(nick="hubbub"),
            accept_self_signed=True,
            backoff_base=0.01,
            backoff_cap=0.02,
        )
    )
    conn.start()
    try:
        async with asyncio.timeout(scaled(5)):
            while conn.state is not ConnState.FAILED:
                await conn.next_event()
        assert dialled == [("8.8.8.8", "irc.rebind.test")]
        assert asked == ["irc.rebind.test", "irc.rebind.test"]
        assert conn.last_error and "resolves to 127.0.0.1, a loopback address" in conn.last_error
    finally:
        await conn.stop()
