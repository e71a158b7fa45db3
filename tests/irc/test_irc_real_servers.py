"""Our Connection against real IRC servers (InspIRCd: IRCv3; ngircd: almost no caps)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from ircservers import IrcServer
from rawirc import EventLog, RawIrc

from hubbub.irc.config import ClientConfig
from hubbub.irc.connection import Connection, ConnState, NetworkConfig, Reconnecting
from hubbub.irc.events import (
    Disconnected,
    Error,
    Join,
    Member,
    Message,
    MessageKind,
    Names,
    Nick,
    Registered,
)
from hubbub.irc.state import State

FAST = {"throttle_burst": 5, "throttle_interval": 0.05}


def network(
    server: IrcServer, nick: str = "hubbub", *, tls: bool = False, **kw: object
) -> NetworkConfig:
    client = ClientConfig(nick=nick, username="hub", realname="Hubbub Test", **FAST)  # type: ignore[arg-type]
    port = server.tls_port if tls else server.port
    options: dict[str, object] = {
        "backoff_base": 0.2,
        "backoff_cap": 1.0,
        "allow_private_addresses": True,  # the servers are on 127.0.0.1
        **kw,
    }
    return NetworkConfig("127.0.0.1", port, client, tls=tls, **options)  # type: ignore[arg-type]


@pytest.fixture
async def started() -> AsyncIterator[list[Connection]]:
    conns: list[Connection] = []
    yield conns
    for conn in conns:
        await conn.stop("test over")


async def connect(conns: list[Connection], config: NetworkConfig) -> tuple[Connection, EventLog]:
    conn = Connection(config)
    conns.append(conn)
    conn.start()
    log = EventLog(conn)
    return conn, log


async def test_inspircd_channel_and_query(inspircd: IrcServer, started: list[Connection]) -> None:
    conn, log = await connect(started, network(inspircd, channels=("#hub",)))
    reg = await log.wait(lambda e: isinstance(e, Registered))
    for cap in (
        "server-time",
        "message-tags",
        "echo-message",
        "batch",
        "labeled-response",
        "multi-prefix",
    ):
        assert cap in reg.caps
    names = await log.wait(lambda e: isinstance(e, Names) and e.channel == "#hub")
    assert names.members == (Member("hubbub", "@"),)  # the creator is an operator

    raw = await RawIrc.connect(inspircd.port, "alice")
    await raw.send("JOIN #hub")
    await log.wait(lambda e: isinstance(e, Join) and e.nick == "alice")
    await raw.send("PRIVMSG #hub :hello hubbub")
    msg = await log.wait(lambda e: isinstance(e, Message) and e.nick == "alice")
    assert (msg.conversation, msg.text, msg.is_channel) == ("#hub", "hello hubbub", True)
    assert msg.msgid and msg.time.tzinfo is not None

    conn.privmsg("#hub", "hi alice")
    echo = await log.wait(lambda e: isinstance(e, Message) and e.own)
    assert echo.is_echo and echo.msgid  # echo-message: the server's copy, with its msgid
    await raw.expect(lambda line: line.endswith(b"PRIVMSG #hub :hi alice"))

    await raw.send("PRIVMSG hubbub :a private word")
    query = await log.wait(lambda e: isinstance(e, Message) and e.text == "a private word")
    assert query.conversation == "alice" and not query.is_channel
    conn.privmsg("alice", "and back")
    await raw.expect(lambda line: line.endswith(b"PRIVMSG alice :and back"))
    conn.action("alice", "waves")
    await raw.expect(lambda line: line.endswith(b"PRIVMSG alice :\x01ACTION waves\x01"))
    await raw.send("PRIVMSG hubbub :\x01VERSION\x01")
    await raw.expect(lambda line: b"NOTICE alice :\x01VERSION Hubbub\x01" in line)
    await raw.close()


async def test_inspircd_long_message_and_non_utf8(
    inspircd: IrcServer, started: list[Connection]
) -> None:
    conn, log = await connect(started, network(inspircd, channels=("#long",)))
    await log.wait(lambda e: isinstance(e, Names) and e.channel == "#long")
    raw = await RawIrc.connect(inspircd.port, "bob")
    await raw.send("JOIN #long")
    await log.wait(lambda e: isinstance(e, Join) and e.nick == "bob")

    text = " ".join(f"word{i}-é€🙂" for i in range(200))  # ~2.6 KB of mixed-width UTF-8
    conn.privmsg("#long", text)
    parts: list[str] = []
    while "".join(parts) != text:
        line = await raw.expect(lambda line: b"PRIVMSG #long :" in line)
        assert len(line) + 2 <= 512 or line.startswith(b"@")
        parts.append(line.split(b"PRIVMSG #long :", 1)[1].decode("utf-8"))
    assert len(parts) > 4

    await raw.send(b"PRIVMSG #long :caf\xe9 cr\xe8me \xff")
    msg = await log.wait(lambda e: isinstance(e, Message) and e.nick == "bob")
    assert msg.text == "café crème ÿ"
    await raw.close()


async def test_inspircd_nick_collision_and_regain(
    inspircd: IrcServer, started: list[Connection]
) -> None:
    holder = await RawIrc.connect(inspircd.port, "hubbub")
    conn, log = await connect(started, network(inspircd))
    reg = await log.wait(lambda e: isinstance(e, Registered))
    assert reg.nick == "hubbub_"
    await asyncio.sleep(0.2)  # MONITOR + hubbub is on its way
    await holder.send("QUIT :bye")
    nick = await log.wait(lambda e: isinstance(e, Nick) and e.is_me)
    assert (nick.old, nick.new) == ("hubbub_", "hubbub")
    assert conn.client.nick == "hubbub"
    await holder.close()


async def test_inspircd_restart_reconnects_and_rejoins(
    inspircd: IrcServer, started: list[Connection]
) -> None:
    conn, log = await connect(started, network(inspircd, channels=("#stay",)))
    await log.wait(lambda e: isinstance(e, Names) and e.channel == "#stay")
    conn.join("#joined-later")
    await log.wait(lambda e: isinstance(e, Join) and e.is_me and e.channel == "#joined-later")

    inspircd.stop()
    gone = await log.wait(lambda e: isinstance(e, Disconnected))
    assert gone.retry
    await log.wait(lambda e: isinstance(e, Reconnecting))
    inspircd.start()
    await log.wait(lambda e: isinstance(e, Registered), timeout=20)
    joined: set[str] = set()
    while joined != {"#stay", "#joined-later"}:
        event = await log.wait(lambda e: isinstance(e, Join) and e.is_me)
        joined.add(event.channel)
    assert conn.state is ConnState.CONNECTED

    raw = await RawIrc.connect(inspircd.port, "carol")
    await raw.send("JOIN #stay", "PRIVMSG #stay :welcome back")
    msg = await log.wait(lambda e: isinstance(e, Message) and e.nick == "carol")
    assert msg.text == "welcome back"
    await raw.close()


async def test_inspircd_tls_self_signed(inspircd: IrcServer, started: list[Connection]) -> None:
    # Verification is on by default: the self-signed certificate is refused, for good.
    conn, log = await connect(started, network(inspircd, tls=True))
    err = await log.wait(lambda e: isinstance(e, Error))
    assert err.fatal and "certificate" in err.message and "refused" in err.message
    final = await log.wait(lambda e: isinstance(e, Disconnected))
    assert not final.retry
    await asyncio.sleep(0.3)
    assert conn.state is ConnState.FAILED
    assert not any(isinstance(e, Registered) for e in log.seen)

    # Allowed for this network: it connects (over TLS, never plaintext).
    conn2, log2 = await connect(
        started, network(inspircd, "tlsok", tls=True, accept_self_signed=True)
    )
    await log2.wait(lambda e: isinstance(e, Registered))
    assert conn2.client.state is State.REGISTERED

    # Pinned to a fingerprint that does not match: refused.
    bad = network(inspircd, "pinned", tls=True, accept_self_signed=True, tls_fingerprint="00" * 32)
    _conn3, log3 = await connect(started, bad)
    err3 = await log3.wait(lambda e: isinstance(e, Error))
    assert "fingerprint" in err3.message

    good = network(
        inspircd,
        "pinned2",
        tls=True,
        accept_self_signed=True,
        tls_fingerprint=inspircd.cert_fingerprint,
    )
    _conn4, log4 = await connect(started, good)
    await log4.wait(lambda e: isinstance(e, Registered))


async def test_plaintext_port_is_not_tls(inspircd: IrcServer, started: list[Connection]) -> None:
    # TLS asked for on a plaintext port: a clear connect error and a retry, never plaintext.
    plain = network(inspircd, "mixed")
    config = NetworkConfig(
        plain.host,
        plain.port,
        plain.client,
        tls=True,
        connect_timeout=1.0,
        backoff_base=5.0,
        allow_private_addresses=True,
    )
    _conn, log = await connect(started, config)
    gone = await log.wait(lambda e: isinstance(e, Disconnected))
    assert gone.retry and "TLS" in gone.reason
    assert not any(isinstance(e, Registered) for e in log.seen)


async def test_ngircd_channel_query_long_and_latin1(
    ngircd: IrcServer, started: list[Connection]
) -> None:
    conn, log = await connect(started, network(ngircd, channels=("#ng",)))
    reg = await log.wait(lambda e: isinstance(e, Registered))
    assert "echo-message" not in reg.caps
    names = await log.wait(lambda e: isinstance(e, Names) and e.channel == "#ng")
    assert names.members == (Member("hubbub", "@"),)
    raw = await RawIrc.connect(ngircd.port, "dave")
    await raw.send("JOIN #ng")
    await log.wait(lambda e: isinstance(e, Join) and e.nick == "dave")

    conn.privmsg("#ng", "hello dave")
    own = await log.wait(lambda e: isinstance(e, Message) and e.own)
    assert not own.is_echo and own.kind is MessageKind.PRIVMSG  # synthesised without echo-message
    await raw.expect(lambda line: line.endswith(b"PRIVMSG #ng :hello dave"))

    await raw.send(b"PRIVMSG hubbub :gr\xfc\xdfe")
    msg = await log.wait(lambda e: isinstance(e, Message) and e.nick == "dave")
    assert (msg.text, msg.conversation) == ("grüße", "dave")

    text = "ä" * 700
    conn.privmsg("dave", text)
    parts: list[str] = []
    while "".join(parts) != text:
        line = await raw.expect(lambda line: b"PRIVMSG dave :" in line)
        parts.append(line.split(b"PRIVMSG dave :", 1)[1].decode("utf-8"))
    assert len(parts) >= 3
    await raw.close()


async def test_ngircd_nick_collision_without_monitor(
    ngircd: IrcServer, started: list[Connection]
) -> None:
    holder = await RawIrc.connect(ngircd.port, "hubbub")
    client = ClientConfig(nick="hubbub", alt_nick="hubalt", regain_interval=0.3, **FAST)  # type: ignore[arg-type]
    _conn, log = await connect(
        started,
        NetworkConfig("127.0.0.1", ngircd.port, client, tls=False, allow_private_addresses=True),
    )
    reg = await log.wait(lambda e: isinstance(e, Registered))
    assert reg.nick == "hubalt"
    await holder.send("QUIT :bye")
    nick = await log.wait(lambda e: isinstance(e, Nick) and e.is_me, timeout=15)
    assert nick.new == "hubbub"
    await holder.close()


async def test_ngircd_tls(ngircd: IrcServer, started: list[Connection]) -> None:
    conn, log = await connect(started, network(ngircd, tls=True))
    err = await log.wait(lambda e: isinstance(e, Error))
    assert err.fatal and "refused" in err.message
    conn2, log2 = await connect(
        started, network(ngircd, "tlsng", tls=True, accept_self_signed=True)
    )
    await log2.wait(lambda e: isinstance(e, Registered))
    conn2.join("#tls")
    await log2.wait(lambda e: isinstance(e, Names) and e.channel == "#tls")
    assert conn.state is ConnState.FAILED
